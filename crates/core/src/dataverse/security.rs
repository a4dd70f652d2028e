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

    /// The access a table privilege's name grants (`prvAppendToaccount` → AppendTo).
    pub fn of_privilege(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("prv")?;
        // AppendTo before Append: the longer verb wins.
        [
            Self::AppendTo,
            Self::Append,
            Self::Create,
            Self::Read,
            Self::Write,
            Self::Delete,
            Self::Assign,
            Self::Share,
        ]
        .into_iter()
        .find(|a| rest.starts_with(a.verb()) && rest.len() > a.verb().len())
    }

    /// Dataverse's `AccessRights` flag, the unit of sharing masks.
    pub fn right(self) -> u32 {
        match self {
            Self::Read => 1,
            Self::Write => 2,
            Self::Append => 4,
            Self::AppendTo => 16,
            Self::Create => 32,
            Self::Delete => 65536,
            Self::Share => 262144,
            Self::Assign => 524288,
        }
    }

    /// `ReadAccess`, as `AccessRights` names it.
    pub fn right_name(self) -> &'static str {
        match self {
            Self::Read => "ReadAccess",
            Self::Write => "WriteAccess",
            Self::Append => "AppendAccess",
            Self::AppendTo => "AppendToAccess",
            Self::Create => "CreateAccess",
            Self::Delete => "DeleteAccess",
            Self::Share => "ShareAccess",
            Self::Assign => "AssignAccess",
        }
    }
}

/// The rights a record can be shared with (creating is not about an existing record).
pub const SHAREABLE: [Access; 7] = [
    Access::Read,
    Access::Write,
    Access::Append,
    Access::AppendTo,
    Access::Delete,
    Access::Share,
    Access::Assign,
];

/// Parse an `AccessMask` as clients send it: `"ReadAccess, WriteAccess"` (names joined by commas
/// or spaces), or the number. The error names what is wrong.
pub fn parse_access_mask(text: &str) -> Result<u32, String> {
    if let Ok(n) = text.trim().parse::<u32>() {
        let all: u32 = SHAREABLE.iter().map(|a| a.right()).sum();
        return if n != 0 && n & !all == 0 {
            Ok(n)
        } else {
            Err(format!(
                "The access mask {n} is not a combination of shareable rights."
            ))
        };
    }
    let mut mask = 0;
    for word in text.split([',', ' ', '|']).filter(|w| !w.is_empty()) {
        if word == "None" {
            continue;
        }
        let a = SHAREABLE
            .iter()
            .find(|a| a.right_name() == word)
            .ok_or_else(|| {
                format!(
                    "'{word}' is not an access right that can be shared (use {}).",
                    SHAREABLE.map(|a| a.right_name()).join(", ")
                )
            })?;
        mask |= a.right();
    }
    if mask == 0 {
        return Err(
            "The access mask grants nothing: name at least one right, such as ReadAccess.".into(),
        );
    }
    Ok(mask)
}

/// `"ReadAccess, WriteAccess"` for a mask, as Dataverse writes it back.
pub fn access_mask_names(mask: u32) -> String {
    let names: Vec<&str> = SHAREABLE
        .iter()
        .filter(|a| mask & a.right() != 0)
        .map(|a| a.right_name())
        .collect();
    if names.is_empty() {
        "None".into()
    } else {
        names.join(", ")
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

/// Cloud flows' privileges (Dataverse's `workflow` records): unlike the named ones above they
/// have depths. User reaches the caller's own flows, Organization every flow.
pub const READ_WORKFLOW: &str = "prvReadWorkflow";
pub const WRITE_WORKFLOW: &str = "prvWriteWorkflow";
pub const DELETE_WORKFLOW: &str = "prvDeleteWorkflow";
pub const WORKFLOW: [&str; 3] = [READ_WORKFLOW, WRITE_WORKFLOW, DELETE_WORKFLOW];

/// The built-in roles' flow privileges: administrators and customizers reach every flow, makers
/// and basic users their own.
pub fn builtin_workflow_depth(role: &str) -> Option<Depth> {
    match role {
        SYSTEM_ADMINISTRATOR | SYSTEM_CUSTOMIZER => Some(Depth::Organization),
        ENVIRONMENT_MAKER | BASIC_USER => Some(Depth::User),
        _ => None,
    }
}

fn workflow_at(depth: Depth) -> impl Iterator<Item = Privilege> {
    WORKFLOW.iter().map(move |n| Privilege {
        name: n.to_string(),
        depth,
    })
}

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
    admin.extend(workflow_at(Depth::Organization));

    let mut customizer = all_on(entities, Depth::Organization);
    customizer.retain(|p| !p.name.starts_with("prvDelete") || p.name.ends_with("role"));
    customizer.push(Privilege {
        name: CUSTOMIZE.into(),
        depth: Depth::Organization,
    });
    customizer.extend(workflow_at(Depth::Organization));

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
    basic.extend(workflow_at(Depth::User));

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
        for a in ALL_ACCESS {
            assert_eq!(Access::of_privilege(&a.privilege("appendix")), Some(a));
        }
        assert_eq!(Access::of_privilege("prvActOnBehalfOfAnotherUser"), None);
        assert_eq!(Access::of_privilege("prvRead"), None);
    }

    #[test]
    fn access_masks_read_and_write_as_dataverse_spells_them() {
        assert_eq!(parse_access_mask("ReadAccess, WriteAccess"), Ok(3));
        assert_eq!(
            parse_access_mask("ReadAccess WriteAccess ShareAccess"),
            Ok(262147)
        );
        assert_eq!(parse_access_mask("524288"), Ok(524288));
        assert!(
            parse_access_mask("CreateAccess")
                .unwrap_err()
                .contains("CreateAccess")
        );
        assert!(parse_access_mask("None").is_err());
        assert!(parse_access_mask("32").is_err());
        assert_eq!(
            access_mask_names(65539),
            "ReadAccess, WriteAccess, DeleteAccess"
        );
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
        // Makers customize the environment but reach only their own flows.
        let maker = role(ENVIRONMENT_MAKER);
        assert_eq!(has(maker, CUSTOMIZE), Some(Depth::Organization));
        for w in WORKFLOW {
            assert_eq!(has(maker, w), Some(Depth::User));
            assert_eq!(has(role(BASIC_USER), w), Some(Depth::User));
            assert_eq!(has(admin, w), Some(Depth::Organization));
            assert_eq!(has(role(SYSTEM_CUSTOMIZER), w), Some(Depth::Organization));
            assert_eq!(has(role(DELEGATE), w), None);
            assert_eq!(
                parse_privilege(&format!("{w}:Basic")).unwrap().depth,
                Depth::User
            );
        }
        for r in &roles {
            let want = builtin_workflow_depth(&r.name);
            assert_eq!(has(r, READ_WORKFLOW), want, "{}", r.name);
        }
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
