//! One-to-many relationships as Dataverse describes them, derived from lookup columns: every
//! lookup is the referencing side of one relationship per table it may point at.

use uuid::Uuid;

use super::metadata::{AttributeDef, AttributeType, EntityDef};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub schema_name: String,
    pub metadata_id: Uuid,
    /// The "one" side: the table pointed at, by its primary id.
    pub referenced_entity: String,
    pub referenced_attribute: String,
    /// The "many" side: the table holding the lookup column.
    pub referencing_entity: String,
    pub referencing_attribute: String,
    /// What `@odata.bind` and `$expand` name on the referencing table.
    pub navigation: String,
    pub is_custom: bool,
}

/// The tables a lookup may point at (a customer lookup: accounts and contacts).
pub fn targets(a: &AttributeDef) -> Vec<&str> {
    match a.kind {
        AttributeType::Customer => vec!["account", "contact"],
        _ => a.target.as_deref().into_iter().collect(),
    }
}

/// The relationships of one lookup column of `e`, one per target table.
fn of_lookup(tables: &[EntityDef], e: &EntityDef, a: &AttributeDef) -> Vec<Relationship> {
    let targets = targets(a);
    let several = targets.len() > 1;
    targets
        .into_iter()
        .filter_map(|t| tables.iter().find(|x| x.logical_name == t))
        .map(|t| {
            let schema_name = match (&a.relationship, several) {
                (Some(name), false) => name.clone(),
                (Some(name), true) => format!("{name}_{}", t.logical_name),
                (None, _) => format!("{}_{}_{}", e.logical_name, a.logical_name, t.logical_name),
            };
            Relationship {
                schema_name,
                metadata_id: Uuid::new_v5(
                    &a.metadata_id,
                    format!("relationship:{}", t.logical_name).as_bytes(),
                ),
                referenced_entity: t.logical_name.clone(),
                referenced_attribute: t.primary_id.clone(),
                referencing_entity: e.logical_name.clone(),
                referencing_attribute: a.logical_name.clone(),
                // Customer lookups are bound per target: parentcustomerid_account@odata.bind.
                navigation: if several {
                    format!("{}_{}", a.logical_name, t.logical_name)
                } else if a.relationship.is_some() {
                    a.schema_name.clone()
                } else {
                    a.logical_name.clone()
                },
                is_custom: a.relationship.is_some(),
            }
        })
        .collect()
}

/// Every one-to-many relationship of the environment's tables.
pub fn all(tables: &[EntityDef]) -> Vec<Relationship> {
    tables
        .iter()
        .flat_map(|e| {
            e.attributes
                .iter()
                .filter(|a| a.kind.is_lookup())
                .flat_map(move |a| of_lookup(tables, e, a))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::system_tables::builtin_entities;

    #[test]
    fn lookups_become_relationships() {
        let tables = builtin_entities();
        let all = all(&tables);
        let primary = all
            .iter()
            .find(|r| r.referencing_attribute == "primarycontactid")
            .unwrap();
        assert_eq!(primary.referenced_entity, "contact");
        assert_eq!(primary.referenced_attribute, "contactid");
        assert_eq!(primary.referencing_entity, "account");
        assert_eq!(primary.navigation, "primarycontactid");
        let customer: Vec<_> = all
            .iter()
            .filter(|r| r.referencing_attribute == "parentcustomerid")
            .map(|r| r.navigation.as_str())
            .collect();
        assert_eq!(
            customer,
            ["parentcustomerid_account", "parentcustomerid_contact"]
        );
        let mut ids: Vec<_> = all.iter().map(|r| r.metadata_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "relationship ids are distinct");
        let mut names: Vec<_> = all.iter().map(|r| r.schema_name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "relationship names are distinct");
    }
}
