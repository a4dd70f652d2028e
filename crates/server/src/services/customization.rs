//! Custom tables and columns through the metadata API (`POST EntityDefinitions`,
//! `POST EntityDefinitions(…)/Attributes`): validated definitions become real SQL tables and
//! columns, and the administrators' roles get every privilege on a new table.

use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::{
    AttributeDef, AttributeType, EntityDef, OptionDef, Ownership, validate_logical_name,
    validate_options,
};
use keyway_core::dataverse::security::{self, ALL_ACCESS, Depth, Privilege};
use keyway_core::dataverse::system_tables::system_columns;
use keyway_store::{SecurityStore, StoreError};
use serde_json::Value;
use uuid::Uuid;

use super::webapi::WebApiCaller;
use super::{Result, ServiceError};
use crate::state::AppState;

fn syntax(msg: impl Into<String>) -> ServiceError {
    DataverseError::Syntax(msg.into()).into()
}

fn require_customizer(c: &WebApiCaller) -> Result<()> {
    if c.principal.depth(security::CUSTOMIZE) == Depth::None {
        let d = keyway_core::dataverse::authz::Denied {
            user_id: c.principal.user_id,
            privilege: security::CUSTOMIZE.into(),
            role_count: c.role_count,
        };
        return Err(DataverseError::MissingPrivilege(d.message()).into());
    }
    Ok(())
}

/// One column from its metadata JSON (`@odata.type` such as
/// `Microsoft.Dynamics.CRM.IntegerAttributeMetadata`, or `AttributeType`).
pub(crate) fn attribute(v: &Value) -> Result<(AttributeDef, bool)> {
    let schema = v
        .get("SchemaName")
        .and_then(|s| s.as_str())
        .ok_or_else(|| syntax("Each attribute needs a SchemaName."))?;
    let logical = validate_logical_name("SchemaName", schema).map_err(|e| syntax(e.to_string()))?;
    let type_name = v
        .get("@odata.type")
        .and_then(|t| t.as_str())
        .and_then(|t| t.trim_start_matches('#').strip_prefix("Microsoft.Dynamics.CRM."))
        .and_then(|t| t.strip_suffix("AttributeMetadata"))
        .or_else(|| v.get("AttributeType").and_then(|t| t.as_str()))
        .ok_or_else(|| syntax(format!("The attribute '{schema}' needs an @odata.type such as Microsoft.Dynamics.CRM.StringAttributeMetadata.")))?;
    let kind = AttributeType::parse(type_name)
        .ok_or_else(|| syntax(format!("'{type_name}' is not an attribute type.")))?;
    match kind {
        AttributeType::Lookup => {
            return Err(syntax(format!(
                "A lookup column is made with its relationship: POST RelationshipDefinitions with a Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata whose Lookup is '{schema}'."
            )));
        }
        AttributeType::Customer
        | AttributeType::Owner
        | AttributeType::State
        | AttributeType::Status
        | AttributeType::Uniqueidentifier => {
            return Err(DataverseError::Unsupported(format!(
                "Creating {type_name} columns is not supported."
            ))
            .into());
        }
        _ => {}
    }
    let options = if kind == AttributeType::Picklist {
        options(schema, v)?
    } else {
        Vec::new()
    };
    let max_length = match kind {
        AttributeType::String | AttributeType::Memo => {
            let m = v.get("MaxLength").and_then(|m| m.as_u64()).unwrap_or(100);
            Some(
                u32::try_from(m)
                    .ok()
                    .filter(|m| (1..=1_048_576).contains(m))
                    .ok_or_else(|| {
                        syntax(format!("MaxLength of '{schema}' must be 1 to 1048576."))
                    })?,
            )
        }
        _ => None,
    };
    let required = matches!(
        v.pointer("/RequiredLevel/Value").and_then(|r| r.as_str()),
        Some("ApplicationRequired" | "SystemRequired")
    );
    let primary = v
        .get("IsPrimaryName")
        .and_then(|p| p.as_bool())
        .unwrap_or(false);
    Ok((
        AttributeDef {
            max_length,
            required,
            options,
            ..AttributeDef::new(&logical, schema, kind, Uuid::new_v4())
        },
        primary,
    ))
}

/// A label as the metadata API sends it: `{"LocalizedLabels": [{"Label": "Red", …}]}` (or the
/// `UserLocalizedLabel`).
fn label_text(v: &Value) -> Option<&str> {
    v.pointer("/LocalizedLabels/0/Label")
        .or_else(|| v.pointer("/UserLocalizedLabel/Label"))
        .and_then(|l| l.as_str())
}

/// The choices of a new choice column: `OptionSet.Options[{Value, Label}]`.
fn options(schema: &str, v: &Value) -> Result<Vec<OptionDef>> {
    let set = v.get("OptionSet").ok_or_else(|| {
        syntax(format!(
            "The choice column '{schema}' needs an OptionSet with its Options."
        ))
    })?;
    if set.get("IsGlobal").and_then(|g| g.as_bool()) == Some(true)
        || v.get("GlobalOptionSet").is_some()
        || v.get("GlobalOptionSet@odata.bind").is_some()
    {
        return Err(DataverseError::Unsupported(
            "Global choices are not supported: give the column its own OptionSet.".into(),
        )
        .into());
    }
    let list = set
        .get("Options")
        .and_then(|o| o.as_array())
        .ok_or_else(|| syntax(format!("The OptionSet of '{schema}' needs Options.")))?;
    let parsed = list
        .iter()
        .map(|o| {
            let value = o
                .get("Value")
                .and_then(|n| n.as_i64())
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| {
                    syntax(format!(
                        "Each option of '{schema}' needs a Value (a 32-bit whole number)."
                    ))
                })?;
            let label = o.get("Label").and_then(label_text).ok_or_else(|| {
                syntax(format!(
                    "The option {value} of '{schema}' needs a Label with LocalizedLabels."
                ))
            })?;
            Ok(OptionDef {
                value,
                label: label.to_string(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    validate_options(schema, parsed).map_err(syntax)
}

fn plural(name: &str) -> String {
    if name.ends_with('s') || name.ends_with('x') {
        format!("{name}es")
    } else {
        format!("{name}s")
    }
}

/// `POST EntityDefinitions`: a new table with its primary name column and any others.
pub async fn create_table(state: &AppState, c: &WebApiCaller, body: &Value) -> Result<EntityDef> {
    let entity = table_def(c, body)?;
    write_table(state, c, entity).await
}

/// The table `POST EntityDefinitions` would make of `body`, checked but not yet written (a
/// solution import checks every table before it writes any).
pub(crate) fn table_def(c: &WebApiCaller, body: &Value) -> Result<EntityDef> {
    require_customizer(c)?;
    let schema = body
        .get("SchemaName")
        .and_then(|s| s.as_str())
        .ok_or_else(|| syntax("A table needs a SchemaName, such as new_Project."))?;
    let logical = validate_logical_name("SchemaName", schema).map_err(|e| syntax(e.to_string()))?;
    let set = plural(&logical);
    if c.tables.iter().any(|e| {
        e.logical_name == logical || e.entity_set_name == set || e.entity_set_name == logical
    }) {
        return Err(DataverseError::Duplicate.into());
    }
    let ownership = match body
        .get("OwnershipType")
        .and_then(|o| o.as_str())
        .unwrap_or("UserOwned")
    {
        "UserOwned" => Ownership::UserOwned,
        "OrganizationOwned" => Ownership::OrganizationOwned,
        other => {
            return Err(syntax(format!(
                "OwnershipType '{other}' is not UserOwned or OrganizationOwned."
            )));
        }
    };
    let primary_id = format!("{logical}id");
    let mut attributes = system_columns(&logical, &primary_id, ownership);
    let mut primary_name = None;
    for v in body
        .get("Attributes")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
    {
        let (a, is_primary) = attribute(v)?;
        if attributes.iter().any(|x| x.logical_name == a.logical_name) {
            return Err(syntax(format!(
                "The column '{}' is given twice or is a system column.",
                a.logical_name
            )));
        }
        if is_primary {
            if a.kind != AttributeType::String || primary_name.is_some() {
                return Err(syntax(
                    "A table has exactly one primary name column, of type String.",
                ));
            }
            primary_name = Some(a.logical_name.clone());
        }
        attributes.push(a);
    }
    let primary_name = primary_name
        .ok_or_else(|| syntax("A table needs one String attribute with IsPrimaryName: true."))?;
    let entity = EntityDef {
        object_type_code: 10_000 + c.tables.iter().filter(|e| e.is_custom).count() as i64,
        schema_name: schema.to_string(),
        entity_set_name: set,
        primary_id,
        primary_name,
        ownership,
        is_custom: true,
        audited: true,
        metadata_id: Uuid::new_v4(),
        attributes,
        logical_name: logical,
    };
    Ok(entity)
}

async fn write_table(state: &AppState, c: &WebApiCaller, entity: EntityDef) -> Result<EntityDef> {
    let admin_roles: Vec<Uuid> = state
        .store
        .roles(&c.env)
        .await?
        .into_iter()
        .filter(|(_, n)| n == security::SYSTEM_ADMINISTRATOR || n == security::SYSTEM_CUSTOMIZER)
        .map(|(id, _)| id)
        .collect();
    let name = entity.logical_name.as_str();
    let grants: Vec<(Uuid, Privilege)> = admin_roles
        .iter()
        .flat_map(|r| {
            ALL_ACCESS.iter().map(move |a| {
                (
                    *r,
                    Privilege {
                        name: a.privilege(name),
                        depth: Depth::Organization,
                    },
                )
            })
        })
        .collect();
    state
        .store
        .table_create(&c.env, &entity, &grants)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => DataverseError::Duplicate.into(),
            other => ServiceError::from(other),
        })?;
    tracing::info!(environment = %c.env.name, table = %entity.logical_name, "custom table created");
    Ok(entity)
}

/// `POST EntityDefinitions(…)/Attributes`: a new column.
pub async fn add_column(
    state: &AppState,
    c: &WebApiCaller,
    entity: &EntityDef,
    body: &Value,
) -> Result<AttributeDef> {
    require_customizer(c)?;
    let (a, primary) = attribute(body)?;
    if primary {
        return Err(syntax(
            "A table's primary name column is chosen when the table is created.",
        ));
    }
    if a.required {
        return Err(DataverseError::Unsupported("Adding a required column to an existing table is not supported: existing rows have no value.".into()).into());
    }
    if entity.attribute(&a.logical_name).is_some() {
        return Err(DataverseError::Duplicate.into());
    }
    state.store.column_add(&c.env, entity, &a).await?;
    Ok(a)
}

/// `POST RelationshipDefinitions` with a `OneToManyRelationshipMetadata`: the lookup column it
/// names, made on the referencing table (a real SQL column, indexed) and pointing at the
/// referenced table. Returns the referencing table and the new column.
pub async fn create_relationship<'a>(
    state: &AppState,
    c: &'a WebApiCaller,
    body: &Value,
) -> Result<(&'a EntityDef, AttributeDef)> {
    require_customizer(c)?;
    let kind = body
        .get("@odata.type")
        .and_then(|t| t.as_str())
        .map(|t| t.trim_start_matches('#'))
        .unwrap_or_default();
    match kind {
        "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata" => {}
        "Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata" => {
            return Err(DataverseError::Unsupported(
                "Many-to-many relationships are not supported: make a one-to-many relationship (a lookup) instead.".into(),
            )
            .into());
        }
        _ => {
            return Err(syntax(
                "A relationship needs \"@odata.type\": \"Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata\".",
            ));
        }
    }
    let text = |field: &'static str| {
        body.get(field)
            .and_then(|s| s.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| syntax(format!("A one-to-many relationship needs its {field}.")))
    };
    let schema = text("SchemaName")?;
    validate_logical_name("SchemaName", schema).map_err(|e| syntax(e.to_string()))?;
    let table_named = |field: &'static str| -> Result<&'a EntityDef> {
        let name = text(field)?.to_ascii_lowercase();
        c.tables
            .iter()
            .find(|e| e.logical_name == name)
            .ok_or_else(|| {
                syntax(format!(
                    "{field} '{name}' is not a table of this environment."
                ))
            })
    };
    let referenced = table_named("ReferencedEntity")?;
    let referencing = table_named("ReferencingEntity")?;
    if let Some(a) = body.get("ReferencedAttribute").and_then(|a| a.as_str())
        && !a.eq_ignore_ascii_case(&referenced.primary_id)
    {
        return Err(syntax(format!(
            "ReferencedAttribute must be {}'s primary key, {}.",
            referenced.logical_name, referenced.primary_id
        )));
    }
    if keyway_core::dataverse::relationships::all(&c.tables)
        .iter()
        .any(|r| r.schema_name.eq_ignore_ascii_case(schema))
    {
        return Err(DataverseError::Duplicate.into());
    }
    let lookup = body
        .get("Lookup")
        .filter(|l| l.is_object())
        .ok_or_else(|| syntax("A one-to-many relationship needs its Lookup: {\"@odata.type\": \"Microsoft.Dynamics.CRM.LookupAttributeMetadata\", \"SchemaName\": …}."))?;
    let lookup_type = lookup
        .get("@odata.type")
        .and_then(|t| t.as_str())
        .map(|t| t.trim_start_matches('#'));
    let attribute_type = lookup.get("AttributeType").and_then(|t| t.as_str());
    if lookup_type.is_some_and(|t| t != "Microsoft.Dynamics.CRM.LookupAttributeMetadata")
        || attribute_type.is_some_and(|t| !t.eq_ignore_ascii_case("Lookup"))
    {
        return Err(syntax(
            "The Lookup of a relationship is a Microsoft.Dynamics.CRM.LookupAttributeMetadata (AttributeType Lookup).",
        ));
    }
    let column_schema = lookup
        .get("SchemaName")
        .and_then(|s| s.as_str())
        .ok_or_else(|| syntax("The Lookup needs a SchemaName, such as new_AccountId."))?;
    let logical =
        validate_logical_name("SchemaName", column_schema).map_err(|e| syntax(e.to_string()))?;
    if referencing.attribute(&logical).is_some() {
        return Err(DataverseError::Duplicate.into());
    }
    if matches!(
        lookup
            .pointer("/RequiredLevel/Value")
            .and_then(|r| r.as_str()),
        Some("ApplicationRequired" | "SystemRequired")
    ) {
        return Err(DataverseError::Unsupported("Adding a required column to an existing table is not supported: existing rows have no value.".into()).into());
    }
    let a = AttributeDef {
        target: Some(referenced.logical_name.clone()),
        relationship: Some(schema.to_string()),
        ..AttributeDef::new(
            &logical,
            column_schema,
            AttributeType::Lookup,
            Uuid::new_v4(),
        )
    };
    state
        .store
        .column_add(&c.env, referencing, &a)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => DataverseError::Duplicate.into(),
            other => ServiceError::from(other),
        })?;
    tracing::info!(environment = %c.env.name, relationship = %schema, "lookup column created");
    Ok((referencing, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn option(value: i64, text: &str) -> Value {
        json!({"Value": value, "Label": {"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}]}})
    }

    fn picklist(options: Value) -> Value {
        json!({"@odata.type": "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata", "SchemaName": "new_Color", "OptionSet": {"Options": options}})
    }

    #[test]
    fn choice_columns_take_their_options_from_the_option_set() {
        let (a, _) = attribute(&picklist(json!([option(1, "Red"), option(2, "Blue")]))).unwrap();
        assert_eq!(a.kind, AttributeType::Picklist);
        assert_eq!(a.option_label(2), Some("Blue"));
        assert!(a.check_option(3).unwrap_err().contains("1 (Red), 2 (Blue)"));
        for bad in [
            json!([]),
            json!([option(1, "Red"), option(1, "Rouge")]),
            json!([option(1, "")]),
            json!([{"Value": 1}]),
            json!([option(1 << 40, "Huge")]),
        ] {
            assert!(attribute(&picklist(bad.clone())).is_err(), "{bad}");
        }
        let global = json!({"@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata", "SchemaName": "new_Size", "OptionSet": {"IsGlobal": true, "Options": [option(1, "S")]}});
        assert!(attribute(&global).is_err());
    }

    #[test]
    fn lookups_are_made_through_relationships() {
        let lookup = json!({"@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata", "SchemaName": "new_AccountId"});
        let err = attribute(&lookup).unwrap_err().to_string();
        assert!(err.contains("RelationshipDefinitions"), "{err}");
    }
}
