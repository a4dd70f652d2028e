//! An environment's tables in SQL: their metadata rows, and the real tables (typed columns,
//! indexes on ownership and lookups) made from them. Identifiers come only from validated
//! metadata and are quoted; nothing here takes request text.

use keyway_core::dataverse::metadata::{
    AttributeDef, AttributeType, EntityDef, OptionDef, Ownership,
};
use uuid::Uuid;

use crate::StoreError;
use crate::sql::{Dialect, Row, Tx, Value, ident};

/// Record the metadata of `entities` and create their tables, inside the caller's transaction.
pub(crate) async fn provision(
    tx: &mut dyn Tx,
    dialect: Dialect,
    env_id: Uuid,
    env_number: i64,
    entities: &[EntityDef],
) -> Result<(), StoreError> {
    for (pos, e) in entities.iter().enumerate() {
        insert_entity(tx, env_id, e, pos as i64).await?;
        create_table(tx, dialect, env_number, e).await?;
    }
    Ok(())
}

pub(crate) async fn insert_entity_and_table(
    tx: &mut dyn Tx,
    dialect: Dialect,
    env_id: Uuid,
    env_number: i64,
    e: &EntityDef,
) -> Result<(), StoreError> {
    let pos = tx
        .fetch(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM dv_entities WHERE environment_id = $1",
            vec![env_id.into()],
        )
        .await?
        .first()
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0);
    insert_entity(tx, env_id, e, pos).await?;
    create_table(tx, dialect, env_number, e).await
}

/// Add a column to an existing table (metadata row, SQL column, and an index for lookups).
pub(crate) async fn add_attribute(
    tx: &mut dyn Tx,
    dialect: Dialect,
    env_id: Uuid,
    env_number: i64,
    e: &EntityDef,
    a: &AttributeDef,
) -> Result<(), StoreError> {
    let pos = tx
        .fetch("SELECT COALESCE(MAX(position), 0) + 1 FROM dv_attributes WHERE environment_id = $1 AND entity = $2", vec![env_id.into(), e.logical_name.clone().into()])
        .await?
        .first()
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0);
    insert_attribute(tx, env_id, &e.logical_name, a, pos).await?;
    let table = e.sql_table(env_number);
    tx.execute(
        &format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            ident(&table),
            ident(&a.logical_name),
            dialect.column_type(a.kind.storage())
        ),
        vec![],
    )
    .await?;
    if a.kind.is_lookup() {
        tx.execute(
            &format!(
                "CREATE INDEX {} ON {} ({})",
                ident(&format!("{table}__{}", a.logical_name)),
                ident(&table),
                ident(&a.logical_name)
            ),
            vec![],
        )
        .await?;
    }
    Ok(())
}

async fn insert_entity(
    tx: &mut dyn Tx,
    env_id: Uuid,
    e: &EntityDef,
    pos: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO dv_entities (environment_id, logical_name, schema_name, entity_set_name, primary_id, primary_name, object_type_code, ownership, is_custom, audited, metadata_id, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        vec![
            env_id.into(),
            e.logical_name.clone().into(),
            e.schema_name.clone().into(),
            e.entity_set_name.clone().into(),
            e.primary_id.clone().into(),
            e.primary_name.clone().into(),
            e.object_type_code.into(),
            e.ownership.name().into(),
            e.is_custom.into(),
            e.audited.into(),
            e.metadata_id.into(),
            pos.into(),
        ],
    )
    .await?;
    for (i, a) in e.attributes.iter().enumerate() {
        insert_attribute(tx, env_id, &e.logical_name, a, i as i64).await?;
    }
    Ok(())
}

async fn insert_attribute(
    tx: &mut dyn Tx,
    env_id: Uuid,
    entity: &str,
    a: &AttributeDef,
    pos: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO dv_attributes (environment_id, entity, logical_name, schema_name, attribute_type, max_length, required, target, system, metadata_id, position, options, relationship) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        vec![
            env_id.into(),
            entity.into(),
            a.logical_name.clone().into(),
            a.schema_name.clone().into(),
            a.kind.name().into(),
            Value::Int(a.max_length.map(i64::from)),
            a.required.into(),
            a.target.clone().into(),
            a.system.into(),
            a.metadata_id.into(),
            pos.into(),
            Value::Text(options_json(&a.options)),
            a.relationship.clone().into(),
        ],
    )
    .await
    .map(|_| ())
}

/// Choices as stored: `[{"value":1,"label":"Red"}]`, or NULL when a column has none.
fn options_json(options: &[OptionDef]) -> Option<String> {
    if options.is_empty() {
        return None;
    }
    let list: Vec<serde_json::Value> = options
        .iter()
        .map(|o| serde_json::json!({"value": o.value, "label": o.label}))
        .collect();
    Some(serde_json::Value::from(list).to_string())
}

fn options_from(text: Option<String>) -> Result<Vec<OptionDef>, StoreError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let bad = || StoreError::Database(format!("unreadable column options {text}"));
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|_| bad())?;
    list.iter()
        .map(|o| {
            Ok(OptionDef {
                value: o["value"]
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(bad)?,
                label: o["label"].as_str().ok_or_else(bad)?.to_string(),
            })
        })
        .collect()
}

async fn create_table(
    tx: &mut dyn Tx,
    dialect: Dialect,
    env_number: i64,
    e: &EntityDef,
) -> Result<(), StoreError> {
    let table = e.sql_table(env_number);
    let columns: Vec<String> = e
        .attributes
        .iter()
        .map(|a| {
            let ty = dialect.column_type(a.kind.storage());
            if a.logical_name == e.primary_id {
                format!("{} {ty} PRIMARY KEY NOT NULL", ident(&a.logical_name))
            } else {
                format!("{} {ty}", ident(&a.logical_name))
            }
        })
        .collect();
    tx.execute(
        &format!("CREATE TABLE {} ({})", ident(&table), columns.join(", ")),
        vec![],
    )
    .await?;
    // Indexes for what queries and access checks filter on: ownership, lookups, names, time.
    let mut indexed: Vec<&str> = e
        .attributes
        .iter()
        .filter(|a| {
            a.kind.is_lookup() || a.logical_name == e.primary_name || a.logical_name == "createdon"
        })
        .map(|a| a.logical_name.as_str())
        .collect();
    indexed.dedup();
    for col in indexed {
        tx.execute(
            &format!(
                "CREATE INDEX {} ON {} ({})",
                ident(&format!("{table}__{col}")),
                ident(&table),
                ident(col)
            ),
            vec![],
        )
        .await?;
    }
    let keys = match e.is_custom {
        true => &[][..],
        false => keyway_core::dataverse::system_tables::unique_columns(&e.logical_name),
    };
    for col in keys {
        tx.execute(
            &format!(
                "CREATE UNIQUE INDEX {} ON {} ({})",
                ident(&format!("{table}__{col}__key")),
                ident(&table),
                ident(col)
            ),
            vec![],
        )
        .await?;
    }
    if e.ownership == Ownership::UserOwned {
        // Business-unit depth reads filter on the unit and page by the key.
        tx.execute(
            &format!(
                "CREATE INDEX {} ON {} ({}, {})",
                ident(&format!("{table}__bu_key")),
                ident(&table),
                ident("owningbusinessunit"),
                ident(&e.primary_id)
            ),
            vec![],
        )
        .await?;
    }
    Ok(())
}

/// Drop the tables of an environment (its metadata rows go with the environment's row).
pub(crate) async fn drop_tables(
    tx: &mut dyn Tx,
    env_number: i64,
    entities: &[EntityDef],
) -> Result<(), StoreError> {
    for e in entities.iter().rev() {
        tx.execute(
            &format!("DROP TABLE IF EXISTS {}", ident(&e.sql_table(env_number))),
            vec![],
        )
        .await?;
    }
    Ok(())
}

fn ownership(s: &str) -> Result<Ownership, StoreError> {
    match s {
        "UserOwned" => Ok(Ownership::UserOwned),
        "OrganizationOwned" => Ok(Ownership::OrganizationOwned),
        other => Err(StoreError::Database(format!("unknown ownership {other}"))),
    }
}

fn attribute_from(r: &Row) -> Result<(String, AttributeDef), StoreError> {
    let kind = r.text(3)?;
    Ok((
        r.text(0)?,
        AttributeDef {
            logical_name: r.text(1)?,
            schema_name: r.text(2)?,
            kind: AttributeType::parse(&kind)
                .ok_or_else(|| StoreError::Database(format!("unknown attribute type {kind}")))?,
            max_length: r.opt_int(4)?.and_then(|n| u32::try_from(n).ok()),
            required: r.bool(5)?,
            target: r.opt_text(6)?,
            system: r.bool(7)?,
            metadata_id: r.uuid(8)?,
            options: options_from(r.opt_text(9)?)?,
            relationship: r.opt_text(10)?,
        },
    ))
}

/// The environment's tables with their columns, in creation order.
pub(crate) fn load(rows_e: Vec<Row>, rows_a: Vec<Row>) -> Result<Vec<EntityDef>, StoreError> {
    let mut entities = Vec::with_capacity(rows_e.len());
    for r in &rows_e {
        entities.push(EntityDef {
            logical_name: r.text(0)?,
            schema_name: r.text(1)?,
            entity_set_name: r.text(2)?,
            primary_id: r.text(3)?,
            primary_name: r.text(4)?,
            object_type_code: r.int(5)?,
            ownership: ownership(&r.text(6)?)?,
            is_custom: r.bool(7)?,
            audited: r.bool(8)?,
            metadata_id: r.uuid(9)?,
            attributes: Vec::new(),
        });
    }
    for r in &rows_a {
        let (entity, a) = attribute_from(r)?;
        if let Some(e) = entities.iter_mut().find(|e| e.logical_name == entity) {
            e.attributes.push(a);
        }
    }
    Ok(entities)
}

pub(crate) const ENTITY_QUERY: &str = "SELECT logical_name, schema_name, entity_set_name, primary_id, primary_name, object_type_code, ownership, is_custom, audited, metadata_id FROM dv_entities WHERE environment_id = $1 ORDER BY position";
pub(crate) const ATTRIBUTE_QUERY: &str = "SELECT entity, logical_name, schema_name, attribute_type, max_length, required, target, system, metadata_id, options, relationship FROM dv_attributes WHERE environment_id = $1 ORDER BY entity, position";
