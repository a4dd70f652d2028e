//! Who may touch which rows: the union of a user's roles (their own and their teams') gives each
//! privilege its deepest depth, and a depth turns into a rule on the row's owner and owning
//! business unit, widened by the rows shared with the user or their teams — checked here for one
//! row, and handed to the store as a row scope for queries.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::metadata::Ownership;
use super::security::{Access, Depth, Privilege};

/// The caller as authorization sees them.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub business_unit: Uuid,
    /// Every privilege of the user's roles and of their teams' roles.
    pub privileges: Vec<Privilege>,
    /// The teams the user belongs to: rows a team owns count as the user's own, and rows shared
    /// with a team are shared with its members.
    pub teams: Vec<Uuid>,
}

impl Principal {
    /// The user and their teams: whose ownership and shares the user enjoys.
    pub fn identities(&self) -> Vec<Uuid> {
        std::iter::once(self.user_id)
            .chain(self.teams.iter().copied())
            .collect()
    }

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
    /// Rows owned by one of `owners`, or owned within one of `business_units`, or shared.
    Owned {
        owners: Vec<Uuid>,
        business_units: Vec<Uuid>,
        shared: Option<Shared>,
    },
}

/// Rows shared with one of `principals` with the access right `right` (an `AccessRights` flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub principals: Vec<Uuid>,
    pub right: u32,
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
    // A share widens what the privilege reaches; it never stands in for the privilege itself.
    let shared = Access::of_privilege(privilege)
        .filter(|a| *a != Access::Create)
        .map(|a| Shared {
            principals: principal.identities(),
            right: a.right(),
        });
    let owned = |business_units| RowScope::Owned {
        owners: principal.identities(),
        business_units,
        shared: shared.clone(),
    };
    match (ownership, depth) {
        (_, Depth::None) => Err(deny()),
        (Ownership::OrganizationOwned, _) | (_, Depth::Organization) => Ok(RowScope::All),
        (Ownership::UserOwned, Depth::User) => Ok(owned(vec![])),
        (Ownership::UserOwned, Depth::BusinessUnit) => Ok(owned(vec![principal.business_unit])),
        (Ownership::UserOwned, Depth::ParentChild) => {
            Ok(owned(units.subtree(principal.business_unit)))
        }
    }
}

impl RowScope {
    /// Does a row with this owner and owning unit fall inside by ownership alone?
    pub fn admits(&self, owner: Option<Uuid>, owning_unit: Option<Uuid>) -> bool {
        match self {
            Self::All => true,
            Self::Owned {
                owners,
                business_units,
                ..
            } => {
                owner.is_some_and(|o| owners.contains(&o))
                    || owning_unit.is_some_and(|u| business_units.contains(&u))
            }
        }
    }
}

impl RowScope {
    /// The shares that would let a row in that ownership does not, if any count.
    pub fn shared(&self) -> Option<&Shared> {
        match self {
            Self::All => None,
            Self::Owned { shared, .. } => shared.as_ref(),
        }
    }

    /// Does a row fall inside, given its owner, owning unit and its share grants
    /// (`(principal, access mask)`)?
    pub fn admits_row(
        &self,
        owner: Option<Uuid>,
        owning_unit: Option<Uuid>,
        grants: &[(Uuid, u32)],
    ) -> bool {
        self.admits(owner, owning_unit)
            || self.shared().is_some_and(|s| {
                grants
                    .iter()
                    .any(|(p, mask)| mask & s.right != 0 && s.principals.contains(p))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Check one row: the privilege's scope must admit it.
    #[allow(clippy::too_many_arguments)]
    fn check_row(
        principal: &Principal,
        units: &BusinessUnits,
        privilege: &str,
        ownership: Ownership,
        role_count: usize,
        owner: Option<Uuid>,
        owning_unit: Option<Uuid>,
        grants: &[(Uuid, u32)],
    ) -> Result<(), Denied> {
        let s = scope(principal, units, privilege, ownership, role_count)?;
        if s.admits_row(owner, owning_unit, grants) {
            Ok(())
        } else {
            Err(Denied {
                user_id: principal.user_id,
                privilege: privilege.to_string(),
                role_count,
            })
        }
    }

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
            teams: vec![],
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
                &[],
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
            &[],
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
            teams: vec![],
        };
        assert_eq!(p.depth("prvReadaccount"), Depth::ParentChild);
        assert_eq!(p.depth("prvWriteaccount"), Depth::None);
    }

    #[test]
    fn teams_own_for_their_members_and_shares_widen_but_never_replace_a_privilege() {
        let (units, [_, a, _, b]) = tree();
        let team = Uuid::new_v4();
        let mut user = who(a, Depth::User);
        user.teams = vec![team];
        let stranger = Uuid::new_v4();
        let read = |p: &Principal, owner: Uuid, grants: &[(Uuid, u32)]| {
            check_row(
                p,
                &units,
                "prvReadaccount",
                Ownership::UserOwned,
                1,
                Some(owner),
                Some(b),
                grants,
            )
            .is_ok()
        };
        assert!(read(&user, team, &[]), "a row of the user's team is theirs");
        assert!(!read(&user, stranger, &[]));
        assert!(
            read(&user, stranger, &[(user.user_id, 1)]),
            "shared to read"
        );
        assert!(
            read(&user, stranger, &[(team, 3)]),
            "shared with their team"
        );
        assert!(
            !read(&user, stranger, &[(user.user_id, 2)]),
            "shared to write only"
        );
        assert!(!read(&user, stranger, &[(Uuid::new_v4(), 1)]));
        let none = who(a, Depth::None);
        assert!(
            !read(&none, stranger, &[(none.user_id, 1)]),
            "a share needs the privilege"
        );
        let s = scope(&user, &units, "prvWriteaccount", Ownership::UserOwned, 1);
        assert!(s.is_err(), "no Write privilege at all");
        let s = scope(&user, &units, "prvReadaccount", Ownership::UserOwned, 1).unwrap();
        assert_eq!(
            s.shared(),
            Some(&Shared {
                principals: vec![user.user_id, team],
                right: 1
            })
        );
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
