//! Dataverse's security model in the domain's words: record privileges per table at an access
//! depth, named privileges, and the built-in roles every environment starts with.

use super::metadata::{EntityDef, Ownership};

/// How far a privilege reaches. Dataverse calls these Basic, Local, Deep and Global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Depth {
    None,
    /// Records the user (or a team of theirs) owns, or that were shared with them.
    User,
    /// Records in the user's business unit.
    BusinessUnit,
    /// Records in the user's business unit and every unit below it.
    ParentChild,
    /// Every record.
    Organization,
}

impl Depth {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::User => "User",
            Self::BusinessUnit => "BusinessUnit",
            Self::ParentChild => "ParentChildBusinessUnits",
            Self::Organization => "Organization",
        }
    }

    /// Accepts Keyway's names and Dataverse's (Basic, Local, Deep, Global).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "user" | "basic" => Some(Self::User),
            "businessunit" | "local" => Some(Self::BusinessUnit),
            "parentchildbusinessunits" | "parentchild" | "deep" => Some(Self::ParentChild),
            "organization" | "global" => Some(Self::Organization),
            _ => None,
        }
    }
}

/// The record privileges a table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Create,
    Read,
    Write,
    Delete,
    Append,
    AppendTo,
    Assign,
    Share,
}

pub const ALL_ACCESS: [Access; 8] = [
    Access::Create,
    Access::Read,
    Access::Write,
    Access::Delete,
    Access::Append,
    Access::AppendTo,
    Access::Assign,
    Access::Share,
];

impl Access {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Read => "Read",
            Self::Write => "Write",
            Self::Delete => "Delete",
            Self::Append => "Append",
            Self::AppendTo => "AppendTo",
            Self::Assign => "Assign",
            Self::Share => "Share",
        }
    }

    /// `prvReadaccount`, as Dataverse names it.
    pub fn privilege(self, entity: &str) -> String {
        format!("prv{}{entity}", self.verb())
    }
}

/// Privileges that are not about one table.
pub const ACT_ON_BEHALF: &str = "prvActOnBehalfOfAnotherUser";
pub const READ_AUDIT_SUMMARY: &str = "prvReadAuditSummary";
pub const READ_RECORD_AUDIT_HISTORY: &str = "prvReadRecordAuditHistory";
pub const CUSTOMIZE: &str = "prvCustomizeEntities";
pub const NAMED: [&str; 4] = [
    ACT_ON_BEHALF,
    READ_AUDIT_SUMMARY,
    READ_RECORD_AUDIT_HISTORY,
    CUSTOMIZE,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    pub name: String,
    pub depth: Depth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDef {
    pub name: String,
    pub privileges: Vec<Privilege>,
}

pub const SYSTEM_ADMINISTRATOR: &str = "System Administrator";
pub const SYSTEM_CUSTOMIZER: &str = "System Customizer";
pub const BASIC_USER: &str = "Basic User";
pub const ENVIRONMENT_MAKER: &str = "Environment Maker";
pub const DELEGATE: &str = "Delegate";

/// The deepest a privilege may go on a table: organization-owned tables know only None and
/// Organization.
pub fn clamp(depth: Depth, ownership: Ownership) -> Depth {
    match (ownership, depth) {
        (Ownership::OrganizationOwned, Depth::None) => Depth::None,
        (Ownership::OrganizationOwned, _) => Depth::Organization,
        (Ownership::UserOwned, d) => d,
    }
}

fn all_on(entities: &[EntityDef], depth: Depth) -> Vec<Privilege> {
    entities
        .iter()
        .flat_map(|e| {
            ALL_ACCESS.iter().map(move |a| Privilege {
                name: a.privilege(&e.logical_name),
                depth: clamp(depth, e.ownership),
            })
        })
        .collect()
}

/// The roles every environment starts with, for its tables.
pub fn builtin_roles(entities: &[EntityDef]) -> Vec<RoleDef> {
    let named = |depth| {
        NAMED.iter().map(move |n| Privilege {
            name: n.to_string(),
            depth,
        })
    };
    let mut admin = all_on(entities, Depth::Organization);
    admin.extend(named(Depth::Organization));

    let mut customizer = all_on(entities, Depth::Organization);
    customizer.retain(|p| !p.name.starts_with("prvDelete") || p.name.ends_with("role"));
    customizer.push(Privilege {
        name: CUSTOMIZE.into(),
        depth: Depth::Organization,
    });

    // Basic User: their own records of the standard tables, and reading the organization's setup.
    let mut basic: Vec<Privilege> = entities
        .iter()
        .filter(|e| e.ownership == Ownership::UserOwned && !e.is_custom)
        .flat_map(|e| {
            ALL_ACCESS.iter().map(move |a| Privilege {
                name: a.privilege(&e.logical_name),
                depth: Depth::User,
            })
        })
        .collect();
    basic.extend(
        entities
            .iter()
            .filter(|e| e.ownership == Ownership::OrganizationOwned)
            .map(|e| Privilege {
                name: Access::Read.privilege(&e.logical_name),
                depth: Depth::Organization,
            }),
    );

    let mut maker = basic.clone();
    maker.push(Privilege {
        name: CUSTOMIZE.into(),
        depth: Depth::Organization,
    });

    vec![
        RoleDef {
            name: SYSTEM_ADMINISTRATOR.into(),
            privileges: admin,
        },
        RoleDef {
            name: SYSTEM_CUSTOMIZER.into(),
            privileges: customizer,
        },
        RoleDef {
            name: BASIC_USER.into(),
            privileges: basic,
        },
        RoleDef {
            name: ENVIRONMENT_MAKER.into(),
            privileges: maker,
        },
        RoleDef {
            name: DELEGATE.into(),
            privileges: vec![Privilege {
                name: ACT_ON_BEHALF.into(),
                depth: Depth::Organization,
            }],
        },
    ]
}

/// `prvReadaccount:BusinessUnit` (the CLI's form).
pub fn parse_privilege(spec: &str) -> Option<Privilege> {
    let (name, depth) = spec.split_once(':')?;
    let name = name.trim();
    let ok = name.starts_with("prv")
        && name.len() > 3
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| {
        Depth::parse(depth.trim()).map(|depth| Privilege {
            name: name.to_string(),
            depth,
        })
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::system_tables::builtin_entities;

    #[test]
    fn privilege_names_follow_dataverse() {
        assert_eq!(Access::Read.privilege("account"), "prvReadaccount");
        assert_eq!(Access::AppendTo.privilege("contact"), "prvAppendTocontact");
    }

    #[test]
    fn builtin_roles_have_what_their_names_say() {
        let roles = builtin_roles(&builtin_entities());
        let role = |n: &str| roles.iter().find(|r| r.name == n).unwrap();
        let has = |r: &RoleDef, p: &str| r.privileges.iter().find(|x| x.name == p).map(|x| x.depth);
        let admin = role(SYSTEM_ADMINISTRATOR);
        assert_eq!(has(admin, "prvDeleteaccount"), Some(Depth::Organization));
        assert_eq!(has(admin, ACT_ON_BEHALF), Some(Depth::Organization));
        assert_eq!(has(role(BASIC_USER), "prvReadaccount"), Some(Depth::User));
        assert_eq!(
            has(role(BASIC_USER), "prvReadbusinessunit"),
            Some(Depth::Organization)
        );
        assert_eq!(has(role(BASIC_USER), ACT_ON_BEHALF), None);
        assert_eq!(
            has(role(DELEGATE), ACT_ON_BEHALF),
            Some(Depth::Organization)
        );
        assert_eq!(role(DELEGATE).privileges.len(), 1);
    }

    #[test]
    fn organization_owned_tables_have_no_partial_depth() {
        assert_eq!(
            clamp(Depth::User, Ownership::OrganizationOwned),
            Depth::Organization
        );
        assert_eq!(
            clamp(Depth::None, Ownership::OrganizationOwned),
            Depth::None
        );
        assert_eq!(
            clamp(Depth::BusinessUnit, Ownership::UserOwned),
            Depth::BusinessUnit
        );
    }

    #[test]
    fn cli_privilege_specs() {
        assert_eq!(
            parse_privilege("prvReadaccount:BusinessUnit"),
            Some(Privilege {
                name: "prvReadaccount".into(),
                depth: Depth::BusinessUnit
            })
        );
        assert_eq!(
            parse_privilege("prvReadaccount:Global").unwrap().depth,
            Depth::Organization
        );
        assert_eq!(parse_privilege("prvReadaccount"), None);
        assert_eq!(parse_privilege("read:User"), None);
        assert_eq!(parse_privilege("prvReadaccount:Everything"), None);
    }
}
