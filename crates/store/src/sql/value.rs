//! Values crossing the SQL seam. Nulls carry their type so PostgreSQL can bind them.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Bool(Option<bool>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(Some(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_string()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Self::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Self::Blob(Some(v))
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Self::Blob(Some(v.to_vec()))
    }
}
/// Ids are stored as lower-case hyphenated text on both backends.
impl From<Uuid> for Value {
    fn from(v: Uuid) -> Self {
        Self::Text(Some(v.to_string()))
    }
}
impl From<Option<Uuid>> for Value {
    fn from(v: Option<Uuid>) -> Self {
        Self::Text(v.map(|u| u.to_string()))
    }
}
/// Instants are stored as Unix microseconds on both backends.
impl From<OffsetDateTime> for Value {
    fn from(v: OffsetDateTime) -> Self {
        Self::Int(Some(keyway_core::clock::to_micros(v)))
    }
}
impl From<Option<OffsetDateTime>> for Value {
    fn from(v: Option<OffsetDateTime>) -> Self {
        Self::Int(v.map(keyway_core::clock::to_micros))
    }
}

/// One result row, read by column position.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

fn bad(i: usize, want: &str) -> StoreError {
    StoreError::Database(format!("column {i}: expected {want}"))
}

impl Row {
    fn get(&self, i: usize) -> Result<&Value, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Database(format!("no column {i}")))
    }

    pub fn is_null(&self, i: usize) -> bool {
        matches!(
            self.0.get(i),
            None | Some(
                Value::Int(None)
                    | Value::Real(None)
                    | Value::Text(None)
                    | Value::Blob(None)
                    | Value::Bool(None)
            )
        )
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.get(i)? {
            Value::Text(v) => Ok(v.clone()),
            _ if self.is_null(i) => Ok(None),
            _ => Err(bad(i, "text")),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or_else(|| bad(i, "non-null text"))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.get(i)? {
            Value::Int(v) => Ok(*v),
            _ if self.is_null(i) => Ok(None),
            _ => Err(bad(i, "integer")),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or_else(|| bad(i, "non-null integer"))
    }

    pub fn bool(&self, i: usize) -> Result<bool, StoreError> {
        match self.get(i)? {
            Value::Bool(Some(b)) => Ok(*b),
            Value::Int(Some(n)) => Ok(*n != 0),
            _ => Err(bad(i, "boolean")),
        }
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        match self.get(i)? {
            Value::Blob(Some(b)) => Ok(b.clone()),
            _ => Err(bad(i, "bytes")),
        }
    }

    pub fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        Uuid::parse_str(&self.text(i)?).map_err(|_| bad(i, "uuid"))
    }

    pub fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        self.opt_text(i)?
            .map(|s| Uuid::parse_str(&s).map_err(|_| bad(i, "uuid")))
            .transpose()
    }

    pub fn time(&self, i: usize) -> Result<OffsetDateTime, StoreError> {
        Ok(keyway_core::clock::from_micros(self.int(i)?))
    }

    pub fn opt_time(&self, i: usize) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.opt_int(i)?.map(keyway_core::clock::from_micros))
    }
}
