//! The metadata API (`EntityDefinitions`): tables and columns as Dataverse describes them.
//! Metadata is small and already in memory, so `$filter` is evaluated here; record tables are
//! never filtered this way.

use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::{AttributeDef, AttributeType, EntityDef};
use keyway_core::dataverse::relationships::Relationship;
use keyway_core::odata::{CompareOp, Expr, Literal, Operand, QueryOptions, TextFunc};
use serde_json::{Map, Value, json};

use super::Result;

pub fn entity_json(e: &EntityDef) -> Map<String, Value> {
    let v = json!({
        "MetadataId": e.metadata_id,
        "LogicalName": e.logical_name,
        "SchemaName": e.schema_name,
        "EntitySetName": e.entity_set_name,
        "LogicalCollectionName": e.entity_set_name,
        "PrimaryIdAttribute": e.primary_id,
        "PrimaryNameAttribute": e.primary_name,
        "ObjectTypeCode": e.object_type_code,
        "OwnershipType": e.ownership.name(),
        "IsCustomEntity": e.is_custom,
        "IsPrivate": false,
        "IsActivity": false,
        "IsAuditEnabled": {"Value": e.audited, "CanBeChanged": true},
        "ChangeTrackingEnabled": false,
        "CanChangeTrackingBeEnabled": {"Value": false, "CanBeChanged": false},
        "DisplayName": {"UserLocalizedLabel": {"Label": e.schema_name, "LanguageCode": 1033}, "LocalizedLabels": [{"Label": e.schema_name, "LanguageCode": 1033}]},
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub fn attribute_json(e: &EntityDef, a: &AttributeDef) -> Map<String, Value> {
    let mut v = json!({
        "@odata.type": format!("#Microsoft.Dynamics.CRM.{}AttributeMetadata", match a.kind {
            AttributeType::Memo => "Memo",
            AttributeType::Owner | AttributeType::Customer => "Lookup",
            AttributeType::State => "State",
            AttributeType::Status => "Status",
            other => other.name(),
        }),
        "MetadataId": a.metadata_id,
        "LogicalName": a.logical_name,
        "SchemaName": a.schema_name,
        "EntityLogicalName": e.logical_name,
        "AttributeType": a.kind.name(),
        "IsCustomAttribute": e.is_custom,
        "IsPrimaryId": a.logical_name == e.primary_id,
        "IsPrimaryName": a.logical_name == e.primary_name,
        "IsValidForCreate": !a.system || a.logical_name == e.primary_id,
        "IsValidForUpdate": !a.system,
        "IsValidForRead": true,
        "RequiredLevel": {"Value": if a.required { "ApplicationRequired" } else { "None" }, "CanBeChanged": !a.system},
    });
    if let Some(m) = v.as_object_mut() {
        if let Some(max) = a.max_length {
            m.insert("MaxLength".into(), max.into());
        }
        if let Some(t) = &a.target {
            m.insert("Targets".into(), json!([t]));
        }
        if a.kind == AttributeType::Picklist {
            m.insert("OptionSet".into(), option_set_json(e, a));
        }
    }
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn label_json(text: &str) -> Value {
    let one = json!({"Label": text, "LanguageCode": 1033, "IsManaged": false});
    json!({"LocalizedLabels": [one.clone()], "UserLocalizedLabel": one})
}

/// A choice column's own option set, as `$expand=OptionSet` reads it.
fn option_set_json(e: &EntityDef, a: &AttributeDef) -> Value {
    let options: Vec<Value> = a
        .options
        .iter()
        .map(|o| json!({"Value": o.value, "Label": label_json(&o.label), "Description": {"LocalizedLabels": [], "UserLocalizedLabel": null}}))
        .collect();
    json!({
        "MetadataId": uuid::Uuid::new_v5(&a.metadata_id, b"optionset"),
        "Name": format!("{}_{}", e.logical_name, a.logical_name),
        "IsGlobal": false,
        "IsCustomOptionSet": a.metadata_id != keyway_core::dataverse::metadata::builtin_id(&e.logical_name, &a.logical_name),
        "OptionSetType": "Picklist",
        "Options": options,
    })
}

/// `…/Attributes/Microsoft.Dynamics.CRM.<Cast>AttributeMetadata`: the columns of that kind (an
/// empty list when none), with `$select`, `$filter` and `$expand=OptionSet` (the only
/// navigation an attribute has here; `GlobalOptionSet` is always null).
pub fn cast_attributes(e: &EntityDef, cast: &str, options: &QueryOptions) -> Result<Vec<Value>> {
    let want = format!("#Microsoft.Dynamics.CRM.{cast}AttributeMetadata");
    let mut expand_option_set = false;
    for x in &options.expand {
        match x.navigation.as_str() {
            "OptionSet" | "GlobalOptionSet" if cast == "Picklist" => {
                expand_option_set |= x.navigation == "OptionSet";
            }
            other => {
                return Err(DataverseError::Syntax(format!(
                    "Could not find a navigation property named '{other}' on type 'Microsoft.Dynamics.CRM.{cast}AttributeMetadata'."
                ))
                .into());
            }
        }
    }
    let attrs: Vec<Map<String, Value>> = e
        .attributes
        .iter()
        .map(|a| attribute_json(e, a))
        .filter(|m| m.get("@odata.type").and_then(|t| t.as_str()) == Some(want.as_str()))
        .collect();
    let plain = QueryOptions {
        expand: vec![],
        ..options.clone()
    };
    let mut out = query(attrs.clone(), &plain, "AttributeMetadata")?;
    if options.select.is_some() && cast == "Picklist" {
        // `$select` keeps only what it names; an expanded option set comes along all the same.
        for v in out.iter_mut() {
            let name = v
                .get("LogicalName")
                .and_then(|n| n.as_str())
                .map(str::to_string);
            let full = attrs.iter().find(|m| {
                m.get("MetadataId") == v.get("MetadataId")
                    || name
                        .as_deref()
                        .is_some_and(|n| m.get("LogicalName").and_then(|l| l.as_str()) == Some(n))
            });
            if let (Some(o), Some(full)) = (v.as_object_mut(), full) {
                if expand_option_set && let Some(set) = full.get("OptionSet") {
                    o.insert("OptionSet".into(), set.clone());
                }
                if options
                    .expand
                    .iter()
                    .any(|x| x.navigation == "GlobalOptionSet")
                {
                    o.insert("GlobalOptionSet".into(), Value::Null);
                }
            }
        }
    }
    Ok(out)
}

/// A one-to-many relationship as `OneToManyRelationshipMetadata`.
pub fn relationship_json(r: &Relationship) -> Map<String, Value> {
    let v = json!({
        "@odata.type": "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "MetadataId": r.metadata_id,
        "SchemaName": r.schema_name,
        "RelationshipType": "OneToManyRelationship",
        "IsCustomRelationship": r.is_custom,
        "IsManaged": false,
        "IsValidForAdvancedFind": true,
        "IsHierarchical": false,
        "ReferencedEntity": r.referenced_entity,
        "ReferencedAttribute": r.referenced_attribute,
        "ReferencingEntity": r.referencing_entity,
        "ReferencingAttribute": r.referencing_attribute,
        "ReferencedEntityNavigationPropertyName": r.schema_name,
        "ReferencingEntityNavigationPropertyName": r.navigation,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `RelationshipDefinitions(<MetadataId>)` or `RelationshipDefinitions(SchemaName='x')`.
pub fn find_relationship(all: &[Relationship], key: &str) -> Result<Relationship> {
    let key = key.trim();
    let found = if let Some(name) = key.strip_prefix("SchemaName=") {
        let name = name.trim_matches('\'');
        all.iter()
            .find(|r| r.schema_name.eq_ignore_ascii_case(name))
    } else {
        uuid::Uuid::parse_str(key)
            .ok()
            .and_then(|id| all.iter().find(|r| r.metadata_id == id))
    };
    found.cloned().ok_or_else(|| {
        DataverseError::RecordNotFound {
            entity: "RelationshipMetadata".into(),
            id: key.to_string(),
        }
        .into()
    })
}

/// The SDK messages a plug-in or flow trigger can be registered on, per table.
pub const SDK_MESSAGES: [&str; 7] = [
    "Create",
    "Update",
    "Delete",
    "Retrieve",
    "RetrieveMultiple",
    "Assign",
    "GrantAccess",
];

/// A message's id: the same in every environment.
pub fn sdk_message_id(name: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("keyway:sdkmessage:{name}").as_bytes(),
    )
}

/// `sdkmessages`: one row per message.
pub fn sdk_messages() -> Vec<Map<String, Value>> {
    SDK_MESSAGES
        .iter()
        .filter_map(|m| match json!({"sdkmessageid": sdk_message_id(m), "name": m, "categoryname": "Data", "isprivate": false, "isvalidforexecuteasync": true}) {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .collect()
}

/// `sdkmessagefilters`: one row per table and message. Each carries its message under
/// `sdkmessageid` so that `$filter=sdkmessageid/name eq 'Create'` can read through it; the
/// caller drops it unless `$expand`ed.
pub fn sdk_message_filters(env_id: uuid::Uuid, tables: &[EntityDef]) -> Vec<Map<String, Value>> {
    let messages = sdk_messages();
    tables
        .iter()
        .flat_map(|e| {
            messages.iter().filter_map(move |m| {
                let name = m.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                let v = json!({
                    "sdkmessagefilterid": uuid::Uuid::new_v5(&env_id, format!("keyway:sdkmessagefilter:{}:{name}", e.logical_name).as_bytes()),
                    "primaryobjecttypecode": e.logical_name,
                    "secondaryobjecttypecode": "none",
                    "_sdkmessageid_value": m.get("sdkmessageid"),
                    "iscustomprocessingstepallowed": true,
                    "isvisible": true,
                    "availability": 4,
                    "sdkmessageid": m,
                });
                match v {
                    Value::Object(o) => Some(o),
                    _ => None,
                }
            })
        })
        .collect()
}

fn unknown(kind: &str, name: &str) -> DataverseError {
    DataverseError::Syntax(format!(
        "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{kind}'."
    ))
}

fn member<'a>(obj: &'a Map<String, Value>, path: &[String], kind: &str) -> Result<&'a Value> {
    let mut cur: Option<&Value> = None;
    let mut map = obj;
    for seg in path {
        let v = map.get(seg).ok_or_else(|| unknown(kind, seg))?;
        cur = Some(v);
        if let Value::Object(m) = v {
            map = m;
        }
    }
    cur.ok_or_else(|| unknown(kind, "").into())
}

fn equal(v: &Value, l: &Literal) -> bool {
    match (v, l) {
        (Value::String(s), Literal::String(t)) => s.eq_ignore_ascii_case(t),
        (Value::String(s), Literal::Guid(g)) => s.eq_ignore_ascii_case(&g.to_string()),
        (Value::Bool(b), Literal::Bool(c)) => b == c,
        (Value::Number(n), Literal::Int(i)) => n.as_i64() == Some(*i),
        (Value::Null, Literal::Null) => true,
        _ => false,
    }
}

/// Does a metadata object satisfy the filter?
pub fn matches(e: &Expr, obj: &Map<String, Value>, kind: &str) -> Result<bool> {
    Ok(match e {
        Expr::And(a, b) => matches(a, obj, kind)? && matches(b, obj, kind)?,
        Expr::Or(a, b) => matches(a, obj, kind)? || matches(b, obj, kind)?,
        Expr::Not(a) => !matches(a, obj, kind)?,
        Expr::Value(Operand::Literal(Literal::Bool(b))) => *b,
        Expr::Value(Operand::Property(p)) => member(obj, p, kind)?.as_bool() == Some(true),
        Expr::Value(Operand::Literal(_)) => {
            return Err(DataverseError::Syntax("A constant is not a condition.".into()).into());
        }
        Expr::Text {
            func,
            property,
            value,
        } => {
            let s = member(obj, property, kind)?
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let v = value.to_ascii_lowercase();
            match func {
                TextFunc::Contains => s.contains(&v),
                TextFunc::StartsWith => s.starts_with(&v),
                TextFunc::EndsWith => s.ends_with(&v),
            }
        }
        Expr::Compare { left, op, right } => {
            let (path, lit) = match (left, right) {
                (Operand::Property(p), Operand::Literal(l))
                | (Operand::Literal(l), Operand::Property(p)) => (p, l),
                _ => {
                    return Err(DataverseError::Unsupported(
                        "Metadata filters compare a property with a value.".into(),
                    )
                    .into());
                }
            };
            let v = member(obj, path, kind)?;
            match op {
                CompareOp::Eq => equal(v, lit),
                CompareOp::Ne => !equal(v, lit),
                _ => {
                    return Err(DataverseError::Unsupported(
                        "Metadata filters support eq and ne.".into(),
                    )
                    .into());
                }
            }
        }
    })
}

/// Filter and select metadata objects as a query asks.
pub fn query(
    items: Vec<Map<String, Value>>,
    options: &QueryOptions,
    kind: &str,
) -> Result<Vec<Value>> {
    if options.top.is_some() || !options.orderby.is_empty() || options.skiptoken.is_some() {
        return Err(DataverseError::Unsupported(
            "Metadata queries support $filter and $select only.".into(),
        )
        .into());
    }
    let mut out = Vec::new();
    for item in items {
        if let Some(f) = &options.filter
            && !matches(f, &item, kind)?
        {
            continue;
        }
        let item = match &options.select {
            Some(cols) => {
                let mut m = Map::new();
                for c in cols {
                    let v = item.get(c).ok_or_else(|| unknown(kind, c))?;
                    m.insert(c.clone(), v.clone());
                }
                for key in ["MetadataId", "@odata.type"] {
                    if let Some(v) = item.get(key) {
                        m.insert(key.into(), v.clone());
                    }
                }
                m
            }
            None => item,
        };
        out.push(Value::Object(item));
    }
    Ok(out)
}

/// `LogicalName='account'` or a metadata id.
pub fn find_entity<'a>(tables: &'a [EntityDef], key: &str) -> Result<&'a EntityDef> {
    let key = key.trim();
    let found = if let Some(name) = key.strip_prefix("LogicalName=") {
        let name = name.trim_matches('\'');
        tables.iter().find(|e| e.logical_name == name)
    } else {
        uuid::Uuid::parse_str(key)
            .ok()
            .and_then(|id| tables.iter().find(|e| e.metadata_id == id))
    };
    found.ok_or_else(|| {
        DataverseError::RecordNotFound {
            entity: "EntityMetadata".into(),
            id: key.to_string(),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyway_core::dataverse::system_tables::builtin_entities;

    #[test]
    fn sdk_message_filters_are_found_through_the_message_name() {
        let tables = builtin_entities();
        let items = sdk_message_filters(uuid::Uuid::nil(), &tables);
        assert_eq!(items.len(), tables.len() * SDK_MESSAGES.len());
        let o = QueryOptions::parse(
            "$filter=sdkmessageid/name eq 'Create' and primaryobjecttypecode eq 'account'",
        )
        .unwrap();
        let f = o.filter.unwrap();
        let found: Vec<_> = items
            .iter()
            .filter(|m| matches(&f, m, "sdkmessagefilter").unwrap())
            .collect();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0]["_sdkmessageid_value"],
            json!(sdk_message_id("Create"))
        );
    }

    #[test]
    fn the_picklist_cast_lists_choice_columns_with_their_options() {
        let tables = builtin_entities();
        let team = tables.iter().find(|e| e.logical_name == "team").unwrap();
        let o = QueryOptions::parse("$select=LogicalName&$expand=OptionSet").unwrap();
        let got = cast_attributes(team, "Picklist", &o).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["LogicalName"], "teamtype");
        assert_eq!(
            got[0]["OptionSet"]["Options"][1]["Label"]["LocalizedLabels"][0]["Label"],
            "Access"
        );
        let plain = cast_attributes(
            team,
            "Picklist",
            &QueryOptions::parse("$select=LogicalName").unwrap(),
        )
        .unwrap();
        assert!(plain[0].get("OptionSet").is_none(), "not expanded");
        let account = tables.iter().find(|e| e.logical_name == "account").unwrap();
        assert!(
            cast_attributes(account, "Picklist", &QueryOptions::default())
                .unwrap()
                .is_empty()
        );
        assert!(
            cast_attributes(
                team,
                "String",
                &QueryOptions::parse("$expand=OptionSet").unwrap()
            )
            .is_err()
        );
    }

    #[test]
    fn metadata_filters_like_the_dataverse_client_sends() {
        let items: Vec<_> = builtin_entities().iter().map(entity_json).collect();
        let o = QueryOptions::parse("$filter=IsPrivate eq false and (LogicalName eq 'account')&$select=LogicalName,EntitySetName").unwrap();
        let got = query(items.clone(), &o, "EntityMetadata").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["EntitySetName"], "accounts");
        assert!(got[0].get("SchemaName").is_none());
        let none = query(
            items.clone(),
            &QueryOptions::parse("$filter=LogicalName eq 'widget'").unwrap(),
            "EntityMetadata",
        )
        .unwrap();
        assert!(none.is_empty());
        assert!(
            query(
                items,
                &QueryOptions::parse("$filter=Nope eq 1").unwrap(),
                "EntityMetadata"
            )
            .is_err()
        );
    }
}
