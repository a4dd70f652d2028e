//! A row of a Dataverse table as the domain sees it: typed field values by column name.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Null,
    Text(String),
    Int(i64),
    Real(f64),
    Bool(bool),
    Instant(OffsetDateTime),
    Id(Uuid),
}

/// Column name → value, for one row of one table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub entity: String,
    pub fields: BTreeMap<String, FieldValue>,
}

impl Record {
    pub fn new(entity: &str) -> Self {
        Self {
            entity: entity.to_string(),
            fields: BTreeMap::new(),
        }
    }

    pub fn with(mut self, column: &str, value: FieldValue) -> Self {
        self.fields.insert(column.to_string(), value);
        self
    }

    pub fn id(&self, column: &str) -> Option<Uuid> {
        match self.fields.get(column) {
            Some(FieldValue::Id(u)) => Some(*u),
            _ => None,
        }
    }
}
