//! Rows of an environment's tables: typed values in, typed values out.

use keyway_core::dataverse::metadata::{EntityDef, Storage};
use keyway_core::dataverse::record::{FieldValue, Record};

use crate::StoreError;
use crate::sql::{Row, Tx, Value, ident};

/// The SQL value of a field, typed by the column's storage (so a null is bound with its type).
pub(crate) fn to_sql(storage: Storage, v: &FieldValue) -> Result<Value, StoreError> {
    let wrong = || StoreError::Database(format!("value {v:?} does not fit a {storage:?} column"));
    Ok(match (storage, v) {
        (Storage::Text, FieldValue::Null) => Value::Text(None),
        (Storage::Id, FieldValue::Null) => Value::Text(None),
        (Storage::Int | Storage::Instant, FieldValue::Null) => Value::Int(None),
        (Storage::Real, FieldValue::Null) => Value::Real(None),
        (Storage::Bool, FieldValue::Null) => Value::Bool(None),
        (Storage::Text, FieldValue::Text(s)) => Value::Text(Some(s.clone())),
        (Storage::Id, FieldValue::Id(u)) => (*u).into(),
        (Storage::Int, FieldValue::Int(n)) => Value::Int(Some(*n)),
        (Storage::Real, FieldValue::Real(x)) => Value::Real(Some(*x)),
        (Storage::Real, FieldValue::Int(n)) => Value::Real(Some(*n as f64)),
        (Storage::Bool, FieldValue::Bool(b)) => Value::Bool(Some(*b)),
        (Storage::Instant, FieldValue::Instant(t)) => (*t).into(),
        _ => return Err(wrong()),
    })
}

/// A field read back, typed by the column's storage.
pub(crate) fn from_sql(storage: Storage, row: &Row, i: usize) -> Result<FieldValue, StoreError> {
    if row.is_null(i) {
        return Ok(FieldValue::Null);
    }
    Ok(match storage {
        Storage::Text => FieldValue::Text(row.text(i)?),
        Storage::Id => FieldValue::Id(row.uuid(i)?),
        Storage::Int => FieldValue::Int(row.int(i)?),
        Storage::Instant => FieldValue::Instant(row.time(i)?),
        Storage::Bool => FieldValue::Bool(row.bool(i)?),
        Storage::Real => match row.0.get(i) {
            Some(Value::Real(Some(x))) => FieldValue::Real(*x),
            Some(Value::Int(Some(n))) => FieldValue::Real(*n as f64),
            _ => {
                return Err(StoreError::Database(format!(
                    "column {i}: expected a number"
                )));
            }
        },
    })
}

/// Insert one row; every field must be a column of the entity.
pub(crate) async fn insert(
    tx: &mut dyn Tx,
    env_number: i64,
    entity: &EntityDef,
    record: &Record,
) -> Result<(), StoreError> {
    let mut cols = Vec::with_capacity(record.fields.len());
    let mut args = Vec::with_capacity(record.fields.len());
    for (name, value) in &record.fields {
        let attr = entity.attribute(name).ok_or_else(|| {
            StoreError::Database(format!("{} has no column {name}", entity.logical_name))
        })?;
        cols.push(ident(&attr.logical_name));
        args.push(to_sql(attr.kind.storage(), value)?);
    }
    let placeholders: Vec<String> = (1..=args.len()).map(|i| format!("${i}")).collect();
    tx.execute(
        &format!(
            "INSERT INTO {} ({}) VALUES ({})",
            ident(&entity.sql_table(env_number)),
            cols.join(", "),
            placeholders.join(", ")
        ),
        args,
    )
    .await
    .map(|_| ())
}
