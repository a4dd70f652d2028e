//! What a new environment holds before anyone calls it: its root business unit, the built-in
//! roles, and its creator as a System Administrator.

use time::OffsetDateTime;
use uuid::Uuid;

use super::metadata::EntityDef;
use super::record::{FieldValue, Record};
use super::security::{self, Privilege, SYSTEM_ADMINISTRATOR};

/// Who created the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creator {
    /// A service principal: it becomes an application user, found by its app id.
    Application { app_id: Uuid, display_name: String },
    /// A person: found by their directory object id.
    User {
        object_id: Uuid,
        upn: String,
        display_name: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentSeed {
    pub root_business_unit: Uuid,
    pub creator_user: Uuid,
    /// Rows to insert, in order (a row's lookups point only at earlier rows).
    pub rows: Vec<Record>,
    pub role_privileges: Vec<(Uuid, Privilege)>,
    pub user_roles: Vec<(Uuid, Uuid)>,
}

/// Set the id and the who/when/version columns of a new system row.
pub fn stamp(mut r: Record, id_col: &str, id: Uuid, by: Uuid, now: OffsetDateTime) -> Record {
    r.fields.insert(id_col.into(), FieldValue::Id(id));
    for col in ["createdby", "modifiedby"] {
        r.fields.insert(col.into(), FieldValue::Id(by));
    }
    for col in ["createdon", "modifiedon"] {
        r.fields.insert(col.into(), FieldValue::Instant(now));
    }
    r.fields.insert("versionnumber".into(), FieldValue::Int(1));
    r
}

/// A system user row: an application user (non-interactive, unlicensed) or a person.
pub fn system_user(
    who: &Creator,
    id: Uuid,
    business_unit: Uuid,
    by: Uuid,
    now: OffsetDateTime,
) -> Record {
    let row = match who {
        Creator::Application {
            app_id,
            display_name,
        } => Record::new("systemuser")
            .with("fullname", FieldValue::Text(format!("# {display_name}")))
            .with("applicationid", FieldValue::Id(*app_id))
            .with("accessmode", FieldValue::Int(4))
            .with("islicensed", FieldValue::Bool(false)),
        Creator::User {
            object_id,
            upn,
            display_name,
        } => Record::new("systemuser")
            .with("fullname", FieldValue::Text(display_name.clone()))
            .with("domainname", FieldValue::Text(upn.clone()))
            .with("internalemailaddress", FieldValue::Text(upn.clone()))
            .with("azureactivedirectoryobjectid", FieldValue::Id(*object_id))
            .with("accessmode", FieldValue::Int(0))
            .with("islicensed", FieldValue::Bool(true)),
    };
    stamp(
        row.with("businessunitid", FieldValue::Id(business_unit))
            .with("isdisabled", FieldValue::Bool(false))
            .with("isguest", FieldValue::Bool(false)),
        "systemuserid",
        id,
        by,
        now,
    )
}

/// A role row in a business unit.
pub fn role(name: &str, id: Uuid, business_unit: Uuid, by: Uuid, now: OffsetDateTime) -> Record {
    stamp(
        Record::new("role")
            .with("name", FieldValue::Text(name.to_string()))
            .with("businessunitid", FieldValue::Id(business_unit)),
        "roleid",
        id,
        by,
        now,
    )
}

pub fn build(
    env_name: &str,
    tables: &[EntityDef],
    creator: &Creator,
    now: OffsetDateTime,
) -> EnvironmentSeed {
    let bu = Uuid::new_v4();
    let user = Uuid::new_v4();
    let mut rows = vec![stamp(
        Record::new("businessunit")
            .with("name", FieldValue::Text(env_name.to_string()))
            .with("isdisabled", FieldValue::Bool(false)),
        "businessunitid",
        bu,
        user,
        now,
    )];
    rows.push(system_user(creator, user, bu, user, now));
    let mut role_privileges = Vec::new();
    let mut user_roles = Vec::new();
    for role in security::builtin_roles(tables) {
        let id = Uuid::new_v4();
        if role.name == SYSTEM_ADMINISTRATOR {
            user_roles.push((user, id));
        }
        rows.push(self::role(&role.name, id, bu, user, now));
        role_privileges.extend(role.privileges.into_iter().map(|p| (id, p)));
    }
    EnvironmentSeed {
        root_business_unit: bu,
        creator_user: user,
        rows,
        role_privileges,
        user_roles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::system_tables::builtin_entities;

    #[test]
    fn the_creator_is_a_system_administrator_in_the_root_unit() {
        let now = time::macros::datetime!(2026-11-23 12:00 UTC);
        let app = Uuid::new_v4();
        let s = build(
            "dev",
            &builtin_entities(),
            &Creator::Application {
                app_id: app,
                display_name: "admin".into(),
            },
            now,
        );
        let user = s.rows.iter().find(|r| r.entity == "systemuser").unwrap();
        assert_eq!(user.id("applicationid"), Some(app));
        assert_eq!(user.id("businessunitid"), Some(s.root_business_unit));
        let admin_role = s
            .rows
            .iter()
            .find(|r| r.fields.get("name") == Some(&FieldValue::Text(SYSTEM_ADMINISTRATOR.into())))
            .unwrap();
        assert_eq!(
            s.user_roles,
            vec![(s.creator_user, admin_role.id("roleid").unwrap())]
        );
        assert!(
            s.role_privileges.iter().any(
                |(r, p)| *r == admin_role.id("roleid").unwrap() && p.name == "prvCreateaccount"
            )
        );
        assert_eq!(
            s.rows[0].entity, "businessunit",
            "lookup targets come first"
        );
    }
}
