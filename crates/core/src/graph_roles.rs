//! The Microsoft Graph resource and the application permissions (app roles) Keyway's management
//! API checks. Ids are Graph's own where Graph has the role, so tokens read as they would in Entra.

use uuid::{Uuid, uuid};

/// Microsoft Graph's well-known application id.
pub const GRAPH_APP_ID: Uuid = uuid!("00000003-0000-0000-c000-000000000000");
pub const GRAPH_RESOURCE_URI: &str = "https://graph.microsoft.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphRole {
    pub id: Uuid,
    pub value: &'static str,
    pub description: &'static str,
}

pub const APPLICATION_READ_ALL: GraphRole = GraphRole {
    id: uuid!("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"),
    value: "Application.Read.All",
    description: "Read all applications and service principals",
};
pub const APPLICATION_READWRITE_ALL: GraphRole = GraphRole {
    id: uuid!("1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"),
    value: "Application.ReadWrite.All",
    description: "Read and write all applications and service principals",
};
pub const USER_READ_ALL: GraphRole = GraphRole {
    id: uuid!("df021288-bdef-4463-88db-98f22de89214"),
    value: "User.Read.All",
    description: "Read all users",
};
pub const USER_READWRITE_ALL: GraphRole = GraphRole {
    id: uuid!("741f803b-c850-494e-b5df-cde7c675a1ca"),
    value: "User.ReadWrite.All",
    description: "Read and write all users",
};
pub const DIRECTORY_READ_ALL: GraphRole = GraphRole {
    id: uuid!("7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
    value: "Directory.Read.All",
    description: "Read directory data",
};
pub const DIRECTORY_READWRITE_ALL: GraphRole = GraphRole {
    id: uuid!("19dbc75e-c2e2-444c-a770-ec69d8559fc7"),
    value: "Directory.ReadWrite.All",
    description: "Read and write directory data (applications, service principals, users)",
};
pub const APP_ROLE_ASSIGNMENT_READWRITE_ALL: GraphRole = GraphRole {
    id: uuid!("06b708a9-e830-4db3-a914-8e69da51d44f"),
    value: "AppRoleAssignment.ReadWrite.All",
    description: "Grant and revoke app roles, including these administrator roles",
};
/// Keyway's own: create and manage tenants. Honoured only in the system tenant.
pub const KEYWAY_TENANT_READWRITE_ALL: GraphRole = GraphRole {
    id: uuid!("5c0e7f8a-2b7d-4c36-9a55-6f1d3e0b9a01"),
    value: "Keyway.Tenant.ReadWrite.All",
    description: "Create, list and rotate the signing keys of tenants (system tenant only)",
};

/// Keyway's own: create, list and delete environments of the tenant.
pub const KEYWAY_ENVIRONMENT_READWRITE_ALL: GraphRole = GraphRole {
    id: uuid!("8d3b6f2e-4a1c-4e7b-b2d9-3c5a7e9f1b02"),
    value: "Keyway.Environment.ReadWrite.All",
    description: "Create, list and delete the tenant's environments",
};

pub const ALL: [GraphRole; 9] = [
    APPLICATION_READ_ALL,
    APPLICATION_READWRITE_ALL,
    USER_READ_ALL,
    USER_READWRITE_ALL,
    DIRECTORY_READ_ALL,
    DIRECTORY_READWRITE_ALL,
    APP_ROLE_ASSIGNMENT_READWRITE_ALL,
    KEYWAY_TENANT_READWRITE_ALL,
    KEYWAY_ENVIRONMENT_READWRITE_ALL,
];

pub fn by_id(id: Uuid) -> Option<GraphRole> {
    ALL.into_iter().find(|r| r.id == id)
}

pub fn by_value(value: &str) -> Option<GraphRole> {
    ALL.into_iter()
        .find(|r| r.value.eq_ignore_ascii_case(value))
}

/// What a management call needs. Any one of the listed roles grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ReadApplications,
    WriteApplications,
    ReadUsers,
    WriteUsers,
    AssignRoles,
    ManageTenants,
    ReadEnvironments,
    ManageEnvironments,
}

impl Permission {
    pub fn granted_by(self) -> &'static [&'static str] {
        match self {
            Self::ReadApplications => &[
                "Application.Read.All",
                "Application.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Self::WriteApplications => &["Application.ReadWrite.All", "Directory.ReadWrite.All"],
            Self::ReadUsers => &[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Self::WriteUsers => &["User.ReadWrite.All", "Directory.ReadWrite.All"],
            Self::AssignRoles => &["AppRoleAssignment.ReadWrite.All"],
            Self::ManageTenants => &["Keyway.Tenant.ReadWrite.All"],
            Self::ReadEnvironments => &[
                "Keyway.Environment.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Self::ManageEnvironments => &[
                "Keyway.Environment.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
        }
    }

    /// Does a token carrying `roles` hold this permission?
    pub fn is_granted(self, roles: &[String]) -> bool {
        self.granted_by()
            .iter()
            .any(|needed| roles.iter().any(|r| r == needed))
    }
}

/// The roles the bootstrap administrator application holds.
pub const ADMINISTRATOR: [GraphRole; 5] = [
    DIRECTORY_READWRITE_ALL,
    APPLICATION_READWRITE_ALL,
    APP_ROLE_ASSIGNMENT_READWRITE_ALL,
    KEYWAY_TENANT_READWRITE_ALL,
    KEYWAY_ENVIRONMENT_READWRITE_ALL,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_write_implies_app_read_but_not_role_assignment() {
        let roles = vec!["Directory.ReadWrite.All".to_string()];
        assert!(Permission::ReadApplications.is_granted(&roles));
        assert!(Permission::WriteUsers.is_granted(&roles));
        assert!(!Permission::AssignRoles.is_granted(&roles));
        assert!(!Permission::ManageTenants.is_granted(&roles));
    }

    #[test]
    fn roles_are_found_by_id_and_value() {
        assert_eq!(
            by_value("application.readwrite.all"),
            Some(APPLICATION_READWRITE_ALL)
        );
        assert_eq!(by_id(USER_READ_ALL.id), Some(USER_READ_ALL));
    }
}
