//! Audit history: who changed which row, how, with old and new values, as rows of the
//! append-only `audit` table. Their canonical bytes feed the hash chain.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::metadata::EntityDef;
use super::record::{FieldValue, Record};

/// Dataverse's audit actions Keyway records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Create = 1,
    Update = 2,
    Delete = 3,
    Assign = 13,
    Share = 14,
    AddMember = 31,
    RemoveMember = 32,
    ModifyShare = 48,
    Unshare = 49,
    AssignRoleToTeam = 53,
    RemoveRoleFromTeam = 54,
    AssignRoleToUser = 55,
    RemoveRoleFromUser = 56,
}

impl AuditAction {
    /// `operation`: 1 Create, 2 Update, 3 Delete, 4 Access.
    pub fn operation(self) -> i64 {
        match self {
            Self::Create => 1,
            Self::Delete => 3,
            Self::Share | Self::ModifyShare | Self::Unshare => 4,
            _ => 2,
        }
    }
}

/// Who made a change, and within which transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditContext {
    /// The user the change is attributed to (the impersonated one, when impersonating).
    pub user_id: Uuid,
    /// The real caller when impersonating, else `None`.
    pub calling_user_id: Option<Uuid>,
    pub transaction_id: Uuid,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub audit_id: Uuid,
    pub action: i64,
    pub operation: i64,
    pub entity: String,
    pub object_type_code: i64,
    pub object_id: Uuid,
    pub user_id: Uuid,
    pub calling_user_id: Option<Uuid>,
    pub transaction_id: Uuid,
    /// Unix microseconds.
    pub created_on: i64,
    /// Comma-separated logical names of the changed columns.
    pub attribute_mask: String,
    /// `{"oldValue": {...}, "newValue": {...}}`.
    pub change_data: serde_json::Value,
}

fn json(v: &FieldValue) -> serde_json::Value {
    v.to_json()
}

/// Columns that are bookkeeping, not content: never listed as changes.
const BOOKKEEPING: [&str; 5] = [
    "versionnumber",
    "modifiedon",
    "modifiedby",
    "modifiedonbehalfby",
    "createdon",
];

/// The audit row for a change from `old` to `new` (either may be absent).
pub fn entry(
    action: AuditAction,
    entity: &EntityDef,
    object_id: Uuid,
    old: Option<&Record>,
    new: Option<&Record>,
    ctx: &AuditContext,
) -> AuditEntry {
    let mut old_values = BTreeMap::new();
    let mut new_values = BTreeMap::new();
    let empty = BTreeMap::new();
    let (o, n) = (
        old.map_or(&empty, |r| &r.fields),
        new.map_or(&empty, |r| &r.fields),
    );
    let mut names: Vec<&String> = o.keys().chain(n.keys()).collect();
    names.sort();
    names.dedup();
    let mut mask = Vec::new();
    for name in names {
        if BOOKKEEPING.contains(&name.as_str()) {
            continue;
        }
        let (before, after) = (o.get(name), n.get(name));
        let changed = match action {
            AuditAction::Update | AuditAction::Assign | AuditAction::ModifyShare => {
                after.is_some() && before != after
            }
            _ => true,
        };
        if !changed {
            continue;
        }
        mask.push(name.clone());
        if let Some(b) = before.filter(|_| old.is_some()) {
            old_values.insert(name.clone(), json(b));
        }
        if let Some(a) = after.filter(|_| new.is_some()) {
            new_values.insert(name.clone(), json(a));
        }
    }
    AuditEntry {
        audit_id: Uuid::new_v4(),
        action: action as i64,
        operation: action.operation(),
        entity: entity.logical_name.clone(),
        object_type_code: entity.object_type_code,
        object_id,
        user_id: ctx.user_id,
        calling_user_id: ctx.calling_user_id,
        transaction_id: ctx.transaction_id,
        created_on: crate::clock::to_micros(ctx.at),
        attribute_mask: mask.join(","),
        change_data: serde_json::json!({"oldValue": old_values, "newValue": new_values}),
    }
}

impl AuditEntry {
    /// The bytes the hash chain covers: every field, in a fixed order.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::system_tables::builtin_entities;

    #[test]
    fn updates_record_only_what_changed() {
        let account = builtin_entities()
            .into_iter()
            .find(|e| e.logical_name == "account")
            .unwrap();
        let id = Uuid::new_v4();
        let old = Record::new("account")
            .with("name", FieldValue::Text("A".into()))
            .with("numberofemployees", FieldValue::Int(5));
        let new = Record::new("account")
            .with("name", FieldValue::Text("B".into()))
            .with("numberofemployees", FieldValue::Int(5))
            .with("versionnumber", FieldValue::Int(2));
        let ctx = AuditContext {
            user_id: Uuid::new_v4(),
            calling_user_id: None,
            transaction_id: Uuid::new_v4(),
            at: time::macros::datetime!(2026-11-23 12:00 UTC),
        };
        let e = entry(
            AuditAction::Update,
            &account,
            id,
            Some(&old),
            Some(&new),
            &ctx,
        );
        assert_eq!(e.attribute_mask, "name");
        assert_eq!(e.change_data["oldValue"]["name"], "A");
        assert_eq!(e.change_data["newValue"]["name"], "B");
        assert_eq!((e.action, e.operation, e.object_type_code), (2, 2, 1));
        let d = entry(AuditAction::Delete, &account, id, Some(&old), None, &ctx);
        assert_eq!(d.change_data["newValue"], serde_json::json!({}));
        assert_eq!(d.change_data["oldValue"]["numberofemployees"], 5);
        assert_ne!(e.canonical(), d.canonical());
    }
}
