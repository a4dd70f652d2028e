//! Who may do what with a connection: its owner, and those it is shared with as Can use
//! (`CanView`), Can edit (`CanEdit`) or Can share (`CanViewWithShare`) — and the connector's
//! rules for sharing (desktop-flow connections only with a run owner, only to service principals).

use super::catalog::{Connector, SharingPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Can use: run flows with it; never read or change its parameters.
    CanView,
    /// Can use and share it onwards as Can use.
    CanViewWithShare,
    /// Can use, read its (masked) parameters and change them.
    CanEdit,
    /// Everything, including deleting and sharing.
    Owner,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::CanView => "CanView",
            Self::CanViewWithShare => "CanViewWithShare",
            Self::CanEdit => "CanEdit",
            Self::Owner => "Owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::CanView,
            Self::CanViewWithShare,
            Self::CanEdit,
            Self::Owner,
        ]
        .into_iter()
        .find(|r| r.name().eq_ignore_ascii_case(s))
    }

    pub fn can_read_parameters(self) -> bool {
        matches!(self, Self::CanEdit | Self::Owner)
    }

    pub fn can_edit(self) -> bool {
        matches!(self, Self::CanEdit | Self::Owner)
    }

    pub fn can_delete(self) -> bool {
        self == Self::Owner
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    ServicePrincipal,
    Group,
}

impl PrincipalKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::ServicePrincipal => "ServicePrincipal",
            Self::Group => "Group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::User, Self::ServicePrincipal, Self::Group]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }
}

/// Why a share is refused (a 403 for the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShareRefused(pub String);

/// May someone holding `caller` on a connection of `connector` grant `role` to a `grantee`?
pub fn may_share(
    connector: &Connector,
    has_run_owner: bool,
    caller: Role,
    grantee: PrincipalKind,
    role: Role,
) -> Result<(), ShareRefused> {
    let refuse = |m: String| Err(ShareRefused(m));
    match caller {
        Role::Owner => {}
        Role::CanViewWithShare if role == Role::CanView => {}
        Role::CanViewWithShare => {
            return refuse(
                "Who can share a connection may share it only as Can use (CanView).".into(),
            );
        }
        _ => {
            return refuse(format!(
                "Only the connection's owner (or someone it is shared with as CanViewWithShare) may share it; you hold {}.",
                caller.name()
            ));
        }
    }
    if role == Role::Owner {
        return refuse("Ownership cannot be shared: grant CanView or CanEdit.".into());
    }
    if connector.sharing == SharingPolicy::RunOwnerOnly {
        if !has_run_owner {
            return refuse(format!(
                "A {} connection can be shared only once it has an explicit run owner (parameter set azureRelayRunOwner).",
                connector.display_name
            ));
        }
        if grantee != PrincipalKind::ServicePrincipal {
            return refuse(format!(
                "A {} connection can be shared only with service principals, not a {}.",
                connector.display_name,
                grantee.name()
            ));
        }
        if role == Role::CanViewWithShare {
            return refuse(format!(
                "A {} connection cannot be shared as CanViewWithShare: grant CanView or CanEdit.",
                connector.display_name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::catalog::{DATAVERSE, DESKTOP_FLOWS, connector};
    use super::*;

    #[test]
    fn owners_share_use_and_edit_and_nobody_hands_out_ownership() {
        let dv = connector(DATAVERSE).unwrap();
        for role in [Role::CanView, Role::CanEdit, Role::CanViewWithShare] {
            assert!(may_share(dv, false, Role::Owner, PrincipalKind::User, role).is_ok());
        }
        assert!(may_share(dv, false, Role::Owner, PrincipalKind::User, Role::Owner).is_err());
        assert!(may_share(dv, false, Role::CanEdit, PrincipalKind::User, Role::CanView).is_err());
        assert!(may_share(dv, false, Role::CanView, PrincipalKind::User, Role::CanView).is_err());
        assert!(
            may_share(
                dv,
                false,
                Role::CanViewWithShare,
                PrincipalKind::User,
                Role::CanView
            )
            .is_ok()
        );
        assert!(
            may_share(
                dv,
                false,
                Role::CanViewWithShare,
                PrincipalKind::User,
                Role::CanEdit
            )
            .is_err()
        );
    }

    #[test]
    fn desktop_flow_connections_need_a_run_owner_and_go_only_to_service_principals() {
        let df = connector(DESKTOP_FLOWS).unwrap();
        let sp = PrincipalKind::ServicePrincipal;
        assert!(may_share(df, false, Role::Owner, sp, Role::CanView).is_err());
        assert!(may_share(df, true, Role::Owner, sp, Role::CanView).is_ok());
        assert!(may_share(df, true, Role::Owner, sp, Role::CanEdit).is_ok());
        assert!(may_share(df, true, Role::Owner, sp, Role::CanViewWithShare).is_err());
        let e = may_share(df, true, Role::Owner, PrincipalKind::User, Role::CanView).unwrap_err();
        assert!(e.0.contains("only with service principals"), "{e}");
    }

    #[test]
    fn only_editors_and_owners_see_parameters() {
        assert!(!Role::CanView.can_read_parameters());
        assert!(!Role::CanViewWithShare.can_read_parameters());
        assert!(Role::CanEdit.can_read_parameters() && Role::CanEdit.can_edit());
        assert!(!Role::CanEdit.can_delete() && Role::Owner.can_delete());
        assert_eq!(Role::parse("canedit"), Some(Role::CanEdit));
    }
}
