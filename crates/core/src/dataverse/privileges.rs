//! The privileges an environment knows (eight per table, and the named ones), each with a stable
//! id, and the changes `AddPrivilegesRole`, `ReplacePrivilegesRole` and `RemovePrivilegeRole`
//! make to a role.

use uuid::Uuid;

use super::metadata::{EntityDef, Ownership};
use super::security::{self, ALL_ACCESS, Access, Depth, Privilege};

/// One privilege of the environment, as the `privileges` entity set lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeInfo {
    pub id: Uuid,
    pub name: String,
    /// The record access it grants; `None` for named privileges such as prvCustomizeEntities.
    pub access: Option<Access>,
    /// Organization-owned tables (and named privileges) know only None and Organization.
    pub ownership: Ownership,
}

impl PrivilegeInfo {
    /// Dataverse's `AccessRight` flag (0 for named privileges).
    pub fn access_right(&self) -> u32 {
        self.access.map_or(0, Access::right)
    }

    /// Whether it may be granted at `depth`'s level: basic, local and deep only for user-owned
    /// tables.
    pub fn can_be(&self, depth: Depth) -> bool {
        match depth {
            Depth::None => false,
            Depth::Organization => true,
            _ => self.ownership == Ownership::UserOwned,
        }
    }

    /// The depth a grant at `depth` gets (organization-owned: Organization).
    pub fn clamp(&self, depth: Depth) -> Depth {
        security::clamp(depth, self.ownership)
    }
}

/// The id of privilege `name` in environment `env_id`: the same every time it is asked.
pub fn privilege_id(env_id: Uuid, name: &str) -> Uuid {
    Uuid::new_v5(&env_id, format!("keyway:privilege:{name}").as_bytes())
}

/// Every privilege of an environment with these tables, named ones last.
pub fn catalog(env_id: Uuid, tables: &[EntityDef]) -> Vec<PrivilegeInfo> {
    let mut out: Vec<PrivilegeInfo> = tables
        .iter()
        .flat_map(|e| {
            ALL_ACCESS.iter().map(move |a| {
                let name = a.privilege(&e.logical_name);
                PrivilegeInfo {
                    id: privilege_id(env_id, &name),
                    name,
                    access: Some(*a),
                    ownership: e.ownership,
                }
            })
        })
        .collect();
    out.extend(security::NAMED.iter().map(|n| PrivilegeInfo {
        id: privilege_id(env_id, n),
        name: n.to_string(),
        access: None,
        ownership: Ownership::OrganizationOwned,
    }));
    // Flow privileges have depths, as a user-owned table's do.
    out.extend(security::WORKFLOW.iter().map(|n| PrivilegeInfo {
        id: privilege_id(env_id, n),
        name: n.to_string(),
        access: None,
        ownership: Ownership::UserOwned,
    }));
    out
}

/// `PrivilegeDepth` as the Web API writes it: Basic, Local, Deep, Global.
pub fn depth_wire_name(depth: Depth) -> &'static str {
    match depth {
        Depth::None => "None",
        Depth::User => "Basic",
        Depth::BusinessUnit => "Local",
        Depth::ParentChild => "Deep",
        Depth::Organization => "Global",
    }
}

/// A `Depth` from the wire: "Basic".."Global" (or Keyway's names), or 0..3.
pub fn parse_depth(v: &serde_json::Value) -> Option<Depth> {
    match v {
        serde_json::Value::Number(n) => match n.as_u64()? {
            0 => Some(Depth::User),
            1 => Some(Depth::BusinessUnit),
            2 => Some(Depth::ParentChild),
            3 => Some(Depth::Organization),
            _ => None,
        },
        serde_json::Value::String(s) => Depth::parse(s).filter(|d| *d != Depth::None),
        _ => None,
    }
}

/// What one role-privilege action does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    /// `AddPrivilegesRole`: add these; one the role already has keeps the deeper depth.
    Add(Vec<Privilege>),
    /// `ReplacePrivilegesRole`: the role grants exactly these afterwards.
    Replace(Vec<Privilege>),
    /// `RemovePrivilegeRole`: the role no longer grants this one.
    Remove(String),
}

impl RoleChange {
    /// The role's privileges after the change, ordered by name.
    pub fn apply(&self, old: &[Privilege]) -> Vec<Privilege> {
        let mut out: Vec<Privilege> = match self {
            Self::Add(new) => {
                let mut out = old.to_vec();
                for p in new {
                    match out.iter_mut().find(|o| o.name == p.name) {
                        Some(o) => o.depth = o.depth.max(p.depth),
                        None => out.push(p.clone()),
                    }
                }
                out
            }
            Self::Replace(new) => {
                let mut out: Vec<Privilege> = Vec::new();
                for p in new {
                    match out.iter_mut().find(|o| o.name == p.name) {
                        Some(o) => o.depth = o.depth.max(p.depth),
                        None => out.push(p.clone()),
                    }
                }
                out
            }
            Self::Remove(name) => old.iter().filter(|p| &p.name != name).cloned().collect(),
        };
        out.retain(|p| p.depth != Depth::None);
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// The first privilege of `wanted` that `held` does not grant as deep: a caller may hand out
/// only what they hold themselves.
pub fn exceeding(wanted: &[Privilege], held: impl Fn(&str) -> Depth) -> Option<&Privilege> {
    wanted.iter().find(|p| held(&p.name) < p.depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::system_tables::builtin_entities;

    fn p(name: &str, depth: Depth) -> Privilege {
        Privilege {
            name: name.into(),
            depth,
        }
    }

    #[test]
    fn the_catalog_names_every_privilege_once_with_stable_ids() {
        let env = Uuid::new_v4();
        let tables = builtin_entities();
        let all = catalog(env, &tables);
        assert_eq!(
            all.len(),
            tables.len() * 8 + security::NAMED.len() + security::WORKFLOW.len()
        );
        let read = all.iter().find(|p| p.name == "prvReadaccount").unwrap();
        assert_eq!(read.id, privilege_id(env, "prvReadaccount"));
        assert_ne!(read.id, privilege_id(Uuid::new_v4(), "prvReadaccount"));
        assert_eq!(read.access_right(), 1);
        assert!(read.can_be(Depth::User) && read.can_be(Depth::Organization));
        let role = all.iter().find(|p| p.name == "prvWriterole").unwrap();
        assert!(!role.can_be(Depth::BusinessUnit) && role.can_be(Depth::Organization));
        assert_eq!(role.clamp(Depth::User), Depth::Organization);
        let named = all.iter().find(|p| p.name == security::CUSTOMIZE).unwrap();
        assert_eq!(named.access_right(), 0);
        let flows = all
            .iter()
            .find(|p| p.name == security::READ_WORKFLOW)
            .unwrap();
        assert!(flows.can_be(Depth::User) && flows.clamp(Depth::User) == Depth::User);
    }

    #[test]
    fn depths_read_as_the_web_api_writes_them() {
        assert_eq!(parse_depth(&"Basic".into()), Some(Depth::User));
        assert_eq!(parse_depth(&"Global".into()), Some(Depth::Organization));
        assert_eq!(parse_depth(&2.into()), Some(Depth::ParentChild));
        assert_eq!(parse_depth(&4.into()), None);
        assert_eq!(parse_depth(&"None".into()), None);
        assert_eq!(depth_wire_name(Depth::BusinessUnit), "Local");
    }

    #[test]
    fn role_changes_add_replace_and_remove() {
        let old = vec![
            p("prvReadaccount", Depth::User),
            p("prvWriteaccount", Depth::User),
        ];
        let added = RoleChange::Add(vec![
            p("prvReadaccount", Depth::Organization),
            p("prvWriteaccount", Depth::None),
            p("prvCreateaccount", Depth::User),
        ])
        .apply(&old);
        assert_eq!(
            added,
            vec![
                p("prvCreateaccount", Depth::User),
                p("prvReadaccount", Depth::Organization),
                p("prvWriteaccount", Depth::User),
            ]
        );
        let replaced =
            RoleChange::Replace(vec![p("prvReadcontact", Depth::BusinessUnit)]).apply(&old);
        assert_eq!(replaced, vec![p("prvReadcontact", Depth::BusinessUnit)]);
        let removed = RoleChange::Remove("prvReadaccount".into()).apply(&old);
        assert_eq!(removed, vec![p("prvWriteaccount", Depth::User)]);
    }

    #[test]
    fn nobody_hands_out_more_than_they_hold() {
        let wanted = vec![
            p("prvReadaccount", Depth::User),
            p("prvWriteaccount", Depth::Organization),
        ];
        let held = |n: &str| {
            if n == "prvReadaccount" {
                Depth::Organization
            } else {
                Depth::BusinessUnit
            }
        };
        assert_eq!(exceeding(&wanted, held).unwrap().name, "prvWriteaccount");
        assert!(exceeding(&wanted, |_| Depth::Organization).is_none());
    }
}
