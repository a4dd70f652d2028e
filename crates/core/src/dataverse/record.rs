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

impl FieldValue {
    /// As the Web API writes it: ids as strings, times as ISO 8601 UTC.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Text(s) => s.clone().into(),
            Self::Int(n) => (*n).into(),
            Self::Real(x) => serde_json::json!(x),
            Self::Bool(b) => (*b).into(),
            Self::Id(u) => u.to_string().into(),
            Self::Instant(t) => crate::wire::graph_time::format(t).into(),
        }
    }
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
