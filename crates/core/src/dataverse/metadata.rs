//! Table (entity) and column (attribute) metadata as Dataverse describes them, and the SQL
//! shape each becomes: every table is a real SQL table, every column a typed SQL column.

use uuid::Uuid;

use crate::directory::DirectoryError;

/// Dataverse attribute types Keyway stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    String,
    Memo,
    Integer,
    BigInt,
    Decimal,
    Double,
    Money,
    Boolean,
    DateTime,
    Uniqueidentifier,
    Lookup,
    Owner,
    Customer,
    Picklist,
    State,
    Status,
}

impl AttributeType {
    /// The name in `AttributeType` of the metadata API.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "String",
            Self::Memo => "Memo",
            Self::Integer => "Integer",
            Self::BigInt => "BigInt",
            Self::Decimal => "Decimal",
            Self::Double => "Double",
            Self::Money => "Money",
            Self::Boolean => "Boolean",
            Self::DateTime => "DateTime",
            Self::Uniqueidentifier => "Uniqueidentifier",
            Self::Lookup => "Lookup",
            Self::Owner => "Owner",
            Self::Customer => "Customer",
            Self::Picklist => "Picklist",
            Self::State => "State",
            Self::Status => "Status",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        ALL_TYPES
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// What a value of this type is stored as.
    pub fn storage(self) -> Storage {
        match self {
            Self::String | Self::Memo => Storage::Text,
            Self::Integer | Self::BigInt | Self::Picklist | Self::State | Self::Status => {
                Storage::Int
            }
            Self::Decimal | Self::Double | Self::Money => Storage::Real,
            Self::Boolean => Storage::Bool,
            Self::DateTime => Storage::Instant,
            Self::Uniqueidentifier | Self::Lookup | Self::Owner | Self::Customer => Storage::Id,
        }
    }

    /// Lookups appear on the wire as `_<name>_value`.
    pub fn is_lookup(self) -> bool {
        matches!(self, Self::Lookup | Self::Owner | Self::Customer)
    }
}

const ALL_TYPES: [AttributeType; 16] = [
    AttributeType::String,
    AttributeType::Memo,
    AttributeType::Integer,
    AttributeType::BigInt,
    AttributeType::Decimal,
    AttributeType::Double,
    AttributeType::Money,
    AttributeType::Boolean,
    AttributeType::DateTime,
    AttributeType::Uniqueidentifier,
    AttributeType::Lookup,
    AttributeType::Owner,
    AttributeType::Customer,
    AttributeType::Picklist,
    AttributeType::State,
    AttributeType::Status,
];

/// How a column is kept in SQL (the backend maps each to its own type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Text,
    Int,
    Real,
    Bool,
    /// Unix microseconds.
    Instant,
    /// A GUID as lower-case text.
    Id,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Owned by a user or team, inside a business unit: access depths apply.
    UserOwned,
    /// One per organization: only None or Organization access.
    OrganizationOwned,
}

impl Ownership {
    pub fn name(self) -> &'static str {
        match self {
            Self::UserOwned => "UserOwned",
            Self::OrganizationOwned => "OrganizationOwned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    pub logical_name: String,
    pub schema_name: String,
    pub kind: AttributeType,
    /// For strings: the longest value accepted.
    pub max_length: Option<u32>,
    pub required: bool,
    /// For lookups: the table the value points at.
    pub target: Option<String>,
    /// Set by Keyway (ids, owner, created/modified by and on, version): clients cannot write them.
    pub system: bool,
    pub metadata_id: Uuid,
    /// For choice (picklist) columns: the values a row may hold, with their labels. Empty means
    /// any whole number (built-in columns whose choices Keyway does not list).
    pub options: Vec<OptionDef>,
    /// For lookups made through `RelationshipDefinitions`: the one-to-many relationship's
    /// SchemaName, as the client named it.
    pub relationship: Option<String>,
}

/// One choice of a choice column: `1 = Red`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionDef {
    pub value: i32,
    pub label: String,
}

impl AttributeDef {
    /// A plain column of `kind`, not required, not a system column, with no choices.
    pub fn new(
        logical_name: &str,
        schema_name: &str,
        kind: AttributeType,
        metadata_id: Uuid,
    ) -> Self {
        Self {
            logical_name: logical_name.to_string(),
            schema_name: schema_name.to_string(),
            kind,
            max_length: None,
            required: false,
            target: None,
            system: false,
            metadata_id,
            options: Vec::new(),
            relationship: None,
        }
    }

    /// The label of a choice value, when this is a choice column that lists it.
    pub fn option_label(&self, value: i64) -> Option<&str> {
        self.options
            .iter()
            .find(|o| i64::from(o.value) == value)
            .map(|o| o.label.as_str())
    }

    /// A value written to a choice column must be one of its choices (when it lists them).
    pub fn check_option(&self, value: i64) -> Result<(), String> {
        if self.kind != AttributeType::Picklist
            || self.options.is_empty()
            || self.option_label(value).is_some()
        {
            return Ok(());
        }
        let valid: Vec<String> = self
            .options
            .iter()
            .map(|o| format!("{} ({})", o.value, o.label))
            .collect();
        Err(format!(
            "{value} is not a valid value for '{}': use one of {}.",
            self.logical_name,
            valid.join(", ")
        ))
    }
}

/// Choices as a client defines them: distinct values in the 32-bit range, non-empty labels.
pub fn validate_options(column: &str, options: Vec<OptionDef>) -> Result<Vec<OptionDef>, String> {
    if options.is_empty() {
        return Err(format!(
            "The choice column '{column}' needs at least one option."
        ));
    }
    for (i, o) in options.iter().enumerate() {
        if o.label.trim().is_empty() {
            return Err(format!(
                "The option {} of '{column}' needs a label.",
                o.value
            ));
        }
        if options[..i].iter().any(|p| p.value == o.value) {
            return Err(format!(
                "The option value {} is given twice in '{column}'.",
                o.value
            ));
        }
    }
    Ok(options)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityDef {
    pub logical_name: String,
    pub schema_name: String,
    pub entity_set_name: String,
    pub primary_id: String,
    pub primary_name: String,
    pub object_type_code: i64,
    pub ownership: Ownership,
    pub is_custom: bool,
    pub audited: bool,
    pub metadata_id: Uuid,
    pub attributes: Vec<AttributeDef>,
}

impl EntityDef {
    pub fn attribute(&self, logical_name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.logical_name == logical_name)
    }

    /// A lookup by its navigation property name: the logical name, or (for lookups Dataverse
    /// names after their SchemaName, such as `new_AccountId`) the SchemaName.
    pub fn lookup_by_navigation(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .filter(|a| a.kind.is_lookup())
            .find(|a| a.logical_name == name || a.schema_name == name)
    }

    /// The SQL table holding this entity's rows in environment number `env_number`. Built only
    /// from validated logical names, never from request text.
    pub fn sql_table(&self, env_number: i64) -> String {
        format!("dv{env_number}_{}", self.logical_name)
    }
}

/// A logical name for a table or column: lower-case letters, digits and underscores, a letter
/// first, at most 50 characters (Dataverse's rule, and safe as a quoted SQL identifier).
pub fn validate_logical_name(field: &'static str, name: &str) -> Result<String, DirectoryError> {
    let n = name.trim().to_ascii_lowercase();
    let ok = (1..=50).contains(&n.len())
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(DirectoryError::invalid(
            field,
            format!(
                "'{name}' is not a logical name: use lower-case letters, digits and underscores, starting with a letter, at most 50 characters"
            ),
        ));
    }
    Ok(n)
}

/// A stable metadata id for built-in definitions, so every environment names them alike.
pub fn builtin_id(entity: &str, attribute: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("keyway:metadata:{entity}:{attribute}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_by_name() {
        for t in ALL_TYPES {
            assert_eq!(AttributeType::parse(t.name()), Some(t));
        }
        assert_eq!(AttributeType::parse("lookup"), Some(AttributeType::Lookup));
        assert_eq!(AttributeType::parse("Image"), None);
    }

    #[test]
    fn choice_values_are_checked_against_the_options() {
        let mut a = AttributeDef::new(
            "new_color",
            "new_Color",
            AttributeType::Picklist,
            Uuid::nil(),
        );
        assert!(
            a.check_option(42).is_ok(),
            "no options listed: any whole number"
        );
        a.options = validate_options(
            "new_Color",
            vec![
                OptionDef {
                    value: 1,
                    label: "Red".into(),
                },
                OptionDef {
                    value: 2,
                    label: "Blue".into(),
                },
            ],
        )
        .unwrap();
        assert!(a.check_option(2).is_ok());
        assert_eq!(a.option_label(1), Some("Red"));
        let err = a.check_option(7).unwrap_err();
        assert!(
            err.contains("7 is not a valid value for 'new_color'"),
            "{err}"
        );
        assert!(validate_options("x", vec![]).is_err());
        let other = AttributeDef::new("n", "N", AttributeType::Integer, Uuid::nil());
        assert!(
            other.check_option(7).is_ok(),
            "only choice columns are checked"
        );
    }

    #[test]
    fn logical_names_are_safe_identifiers() {
        assert_eq!(
            validate_logical_name("LogicalName", "new_Project").unwrap(),
            "new_project"
        );
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "a\"b",
            "drop table;",
            &"x".repeat(51),
        ] {
            assert!(validate_logical_name("LogicalName", bad).is_err(), "{bad}");
        }
    }
}
