//! Who may touch which rows: the union of a user's roles gives each privilege its deepest
//! depth, and a depth turns into a rule on the row's owner and owning business unit — checked
//! here for one row, and handed to the store as a row scope for queries.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::metadata::Ownership;
use super::security::{Depth, Privilege};

/// The caller as authorization sees them.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub business_unit: Uuid,
    pub privileges: Vec<Privilege>,
}

impl Principal {
    /// The deepest grant of `privilege` among all the user's roles.
    pub fn depth(&self, privilege: &str) -> Depth {
        self.privileges
            .iter()
            .filter(|p| p.name == privilege)
            .map(|p| p.depth)
            .max()
            .unwrap_or(Depth::None)
    }
}

/// A refusal, in Dataverse's words (code 0x80040220).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub user_id: Uuid,
    pub privilege: String,
    pub role_count: usize,
}

impl Denied {
    pub fn message(&self) -> String {
        format!(
            "Principal user (Id={}, type=8, roleCount={}) is missing {} privilege. Grant it with a security role (`keyway env role create … --privilege {}:<depth>`).",
            self.user_id, self.role_count, self.privilege, self.privilege
        )
    }
}

/// An environment's business-unit tree.
#[derive(Debug, Clone, Default)]
pub struct BusinessUnits {
    parent: HashMap<Uuid, Option<Uuid>>,
}

impl BusinessUnits {
    pub fn new(units: impl IntoIterator<Item = (Uuid, Option<Uuid>)>) -> Self {
        Self {
            parent: units.into_iter().collect(),
        }
    }

    /// `unit` and every unit below it.
    pub fn subtree(&self, unit: Uuid) -> Vec<Uuid> {
        let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (child, parent) in &self.parent {
            if let Some(p) = parent {
                children.entry(*p).or_default().push(*child);
            }
        }
        let mut out = vec![unit];
        let mut seen: HashSet<Uuid> = HashSet::from([unit]);
        let mut i = 0;
        while i < out.len() {
            for c in children.get(&out[i]).into_iter().flatten() {
                if seen.insert(*c) {
                    out.push(*c);
                }
            }
            i += 1;
        }
        out
    }
}

/// Which rows a privilege reaches: the store turns this into its WHERE clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowScope {
    All,
    /// Rows owned by one of `owners`, or owned within one of `business_units`.
    Owned {
        owners: Vec<Uuid>,
        business_units: Vec<Uuid>,
    },
}

/// The rows `privilege` lets the principal reach in a table, or the refusal naming it.
pub fn scope(
    principal: &Principal,
    units: &BusinessUnits,
    privilege: &str,
    ownership: Ownership,
    role_count: usize,
) -> Result<RowScope, Denied> {
    let deny = || Denied {
        user_id: principal.user_id,
        privilege: privilege.to_string(),
        role_count,
    };
    let depth = principal.depth(privilege);
    match (ownership, depth) {
        (_, Depth::None) => Err(deny()),
        (Ownership::OrganizationOwned, _) | (_, Depth::Organization) => Ok(RowScope::All),
        (Ownership::UserOwned, Depth::User) => Ok(RowScope::Owned {
            owners: vec![principal.user_id],
            business_units: vec![],
        }),
        (Ownership::UserOwned, Depth::BusinessUnit) => Ok(RowScope::Owned {
            owners: vec![principal.user_id],
            business_units: vec![principal.business_unit],
        }),
        (Ownership::UserOwned, Depth::ParentChild) => Ok(RowScope::Owned {
            owners: vec![principal.user_id],
            business_units: units.subtree(principal.business_unit),
        }),
    }
}

impl RowScope {
    /// Does a row with this owner and owning unit fall inside?
    pub fn admits(&self, owner: Option<Uuid>, owning_unit: Option<Uuid>) -> bool {
        match self {
            Self::All => true,
            Self::Owned {
                owners,
                business_units,
            } => {
                owner.is_some_and(|o| owners.contains(&o))
                    || owning_unit.is_some_and(|u| business_units.contains(&u))
            }
        }
    }
}

/// Check one row: the privilege's scope must admit it.
pub fn check_row(
    principal: &Principal,
    units: &BusinessUnits,
    privilege: &str,
    ownership: Ownership,
    role_count: usize,
    owner: Option<Uuid>,
    owning_unit: Option<Uuid>,
) -> Result<(), Denied> {
    let s = scope(principal, units, privilege, ownership, role_count)?;
    if s.admits(owner, owning_unit) {
        Ok(())
    } else {
        Err(Denied {
            user_id: principal.user_id,
            privilege: privilege.to_string(),
            role_count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (BusinessUnits, [Uuid; 4]) {
        let (root, a, a1, b) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        (
            BusinessUnits::new([
                (root, None),
                (a, Some(root)),
                (a1, Some(a)),
                (b, Some(root)),
            ]),
            [root, a, a1, b],
        )
    }

    fn who(bu: Uuid, depth: Depth) -> Principal {
        Principal {
            user_id: Uuid::new_v4(),
            business_unit: bu,
            privileges: vec![Privilege {
                name: "prvReadaccount".into(),
                depth,
            }],
        }
    }

    #[test]
    fn depths_reach_as_far_as_they_say() {
        let (units, [root, a, a1, b]) = tree();
        let stranger = Uuid::new_v4();
        let check = |p: &Principal, owner: Uuid, unit: Uuid| {
            check_row(
                p,
                &units,
                "prvReadaccount",
                Ownership::UserOwned,
                1,
                Some(owner),
                Some(unit),
            )
            .is_ok()
        };
        let user = who(a, Depth::User);
        assert!(check(&user, user.user_id, a));
        assert!(!check(&user, stranger, a));
        let local = who(a, Depth::BusinessUnit);
        assert!(
            check(&local, stranger, a)
                && !check(&local, stranger, a1)
                && !check(&local, stranger, root)
        );
        let deep = who(a, Depth::ParentChild);
        assert!(
            check(&deep, stranger, a)
                && check(&deep, stranger, a1)
                && !check(&deep, stranger, b)
                && !check(&deep, stranger, root)
        );
        let global = who(a, Depth::Organization);
        assert!(check(&global, stranger, b));
        let none = who(a, Depth::None);
        let err = check_row(
            &none,
            &units,
            "prvReadaccount",
            Ownership::UserOwned,
            1,
            None,
            None,
        )
        .unwrap_err();
        assert!(
            err.message()
                .contains("is missing prvReadaccount privilege")
        );
    }

    #[test]
    fn roles_add_up_to_the_deepest_grant() {
        let p = Principal {
            user_id: Uuid::new_v4(),
            business_unit: Uuid::new_v4(),
            privileges: vec![
                Privilege {
                    name: "prvReadaccount".into(),
                    depth: Depth::User,
                },
                Privilege {
                    name: "prvReadaccount".into(),
                    depth: Depth::ParentChild,
                },
            ],
        };
        assert_eq!(p.depth("prvReadaccount"), Depth::ParentChild);
        assert_eq!(p.depth("prvWriteaccount"), Depth::None);
    }

    #[test]
    fn subtrees_survive_cycles() {
        let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
        let units = BusinessUnits::new([(x, Some(y)), (y, Some(x))]);
        let mut s = units.subtree(x);
        s.sort();
        let mut want = vec![x, y];
        want.sort();
        assert_eq!(s, want);
    }
}
