//! The metadata API (`EntityDefinitions`): tables and columns as Dataverse describes them.
//! Metadata is small and already in memory, so `$filter` is evaluated here; record tables are
//! never filtered this way.

use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::{AttributeDef, AttributeType, EntityDef};
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
            m.insert("OptionSet".into(), json!({"Options": []}));
        }
    }
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
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
