//! Solutions (seed 002's ALM): the archive one environment exports and another imports, its
//! version, and the deployment settings file in `pac`'s exact shape, which gives each target
//! environment its own connection for every connection reference and its own variable values.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataverse::system_tables::{
    VARIABLE_BOOLEAN, VARIABLE_JSON, VARIABLE_NUMBER, VARIABLE_STRING,
};
use crate::flows::references::{ConnectionReferences, connector_name};

/// The archive's `format`: one JSON document (Keyway's own, not a Dataverse zip).
pub const FORMAT: &str = "keyway-solution/1";

/// `major.minor.build.revision`, as Dataverse versions solutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub [u32; 4]);

impl Version {
    pub const FIRST: Version = Version([1, 0, 0, 0]);

    /// Two to four whole numbers separated by dots (missing parts are 0).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a version: use four numbers such as 1.0.0.0.");
        let parts: Vec<&str> = s.trim().split('.').collect();
        if !(2..=4).contains(&parts.len()) {
            return Err(bad());
        }
        let mut v = [0u32; 4];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            v[i] = p.parse().map_err(|_| bad())?;
        }
        Ok(Self(v))
    }

    /// The next revision: what an export without an explicit version gets.
    pub fn bump(self) -> Self {
        let [a, b, c, d] = self.0;
        Self([a, b, c, d.saturating_add(1)])
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// What a solution holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ComponentKind {
    /// A custom table, by logical name.
    Table,
    /// A security role, by name.
    Role,
    /// A cloud flow, by name.
    Flow,
    /// A connection reference, by logical name.
    ConnectionReference,
    /// An environment variable definition, by schema name.
    EnvironmentVariable,
}

impl ComponentKind {
    pub const ALL: [ComponentKind; 5] = [
        Self::Table,
        Self::Role,
        Self::Flow,
        Self::ConnectionReference,
        Self::EnvironmentVariable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Role => "role",
            Self::Flow => "flow",
            Self::ConnectionReference => "connectionreference",
            Self::EnvironmentVariable => "environmentvariable",
        }
    }

    /// Its name, any case, with or without dashes (`connection-reference`).
    pub fn parse(s: &str) -> Option<Self> {
        let n: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Self::ALL.into_iter().find(|k| k.name() == n)
    }
}

/// A solution's unique name: letters, digits and underscores, a letter first, at most 65.
pub fn validate_unique_name(s: &str) -> Result<String, String> {
    let ok = (1..=65).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "'{s}' is not a solution unique name: use letters, digits and underscores, starting with a letter, at most 65 characters."
        ));
    }
    Ok(s.to_string())
}

/// A publisher's customization prefix: 2 to 8 lower-case letters or digits, a letter first,
/// not `mscrm` (Dataverse's rule).
pub fn validate_prefix(s: &str) -> Result<String, String> {
    let p = s.trim().to_ascii_lowercase();
    let ok = (2..=8).contains(&p.len())
        && p.starts_with(|c: char| c.is_ascii_lowercase())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !p.starts_with("mscrm");
    if !ok {
        return Err(format!(
            "'{s}' is not a publisher prefix: use 2 to 8 lower-case letters or digits, starting with a letter (not mscrm)."
        ));
    }
    Ok(p)
}

/// An environment variable's type by its label (`String`, `Number`, `Boolean`, `JSON`).
pub fn variable_type(label: &str) -> Option<i32> {
    match label.to_ascii_lowercase().as_str() {
        "string" | "text" => Some(VARIABLE_STRING),
        "number" | "decimal" => Some(VARIABLE_NUMBER),
        "boolean" | "two options" => Some(VARIABLE_BOOLEAN),
        "json" => Some(VARIABLE_JSON),
        _ => None,
    }
}

pub fn variable_type_label(code: i64) -> Option<&'static str> {
    match i32::try_from(code).ok()? {
        VARIABLE_STRING => Some("String"),
        VARIABLE_NUMBER => Some("Number"),
        VARIABLE_BOOLEAN => Some("Boolean"),
        VARIABLE_JSON => Some("JSON"),
        _ => None,
    }
}

/// Does `value` suit a variable of type `code`?
pub fn check_variable_value(schema_name: &str, code: i32, value: &str) -> Result<(), String> {
    let ok = match code {
        VARIABLE_NUMBER => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
        VARIABLE_BOOLEAN => matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no"
        ),
        VARIABLE_JSON => serde_json::from_str::<Value>(value).is_ok(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        let label = variable_type_label(i64::from(code)).unwrap_or("String");
        Err(format!(
            "The value '{value}' of '{schema_name}' is not a {label}."
        ))
    }
}

/// The exported solution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Archive {
    pub format: String,
    pub solution: ArchiveSolution,
    /// Custom tables, each as `POST EntityDefinitions` takes it (SchemaName, OwnershipType,
    /// Attributes with `@odata.type`).
    #[serde(default)]
    pub tables: Vec<Value>,
    #[serde(default)]
    pub roles: Vec<ArchiveRole>,
    #[serde(default)]
    pub connection_references: Vec<ArchiveReference>,
    #[serde(default)]
    pub environment_variables: Vec<ArchiveVariable>,
    #[serde(default)]
    pub flows: Vec<ArchiveFlow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveSolution {
    pub unique_name: String,
    pub friendly_name: String,
    pub publisher_prefix: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_date_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveRole {
    pub name: String,
    pub privileges: Vec<ArchivePrivilege>,
}

/// `{"name": "prvReadaccount", "depth": "Global"}` (Basic, Local, Deep, Global).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchivePrivilege {
    pub name: String,
    pub depth: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveReference {
    pub logical_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps`.
    pub connector_id: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A variable's definition and default value; current values come from the settings file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveVariable {
    pub schema_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `String`, `Number`, `Boolean` or `JSON`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub default_value: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveFlow {
    pub name: String,
    /// `on` or `off` in the environment it was exported from.
    pub state: String,
    pub definition: Value,
    #[serde(default)]
    pub connection_references: Value,
}

impl Archive {
    /// Read an archive and check what does not need an environment: the format, the names, the
    /// version, each reference's connector and each flow's `connectionReferences`.
    pub fn parse(v: &Value) -> Result<Self, String> {
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(format!(
                "This is not a Keyway solution archive: its \"format\" must be \"{FORMAT}\" (write one with keyway solution export)."
            ));
        }
        let a: Archive = serde_json::from_value(v.clone())
            .map_err(|e| format!("The solution archive is not readable: {e}."))?;
        validate_unique_name(&a.solution.unique_name)?;
        validate_prefix(&a.solution.publisher_prefix)?;
        Version::parse(&a.solution.version)?;
        let mut seen: Vec<&str> = Vec::new();
        for r in &a.connection_references {
            if r.logical_name.trim().is_empty() || r.logical_name.len() > 100 {
                return Err(
                    "Each connection reference needs a logicalName of 1 to 100 characters.".into(),
                );
            }
            if seen.contains(&r.logical_name.as_str()) {
                return Err(format!(
                    "The connection reference '{}' is in the archive twice.",
                    r.logical_name
                ));
            }
            seen.push(&r.logical_name);
            if connector_name(&r.connector_id).is_empty() {
                return Err(format!(
                    "The connection reference '{}' needs its connectorId.",
                    r.logical_name
                ));
            }
        }
        // Each text must fit the column it is written to, so that an import refused by the
        // environment is refused here, before anything is written.
        let fits = |what: String, text: &Option<String>, max: usize| match text {
            Some(t) if t.chars().count() > max => {
                Err(format!("{what} is longer than {max} characters."))
            }
            _ => Ok(()),
        };
        for r in &a.connection_references {
            let what = format!("The connection reference '{}'", r.logical_name);
            fits(format!("{what}'s displayName"), &r.display_name, 400)?;
            fits(format!("{what}'s description"), &r.description, 2000)?;
            fits(
                format!("{what}'s connectorId"),
                &Some(r.connector_id.clone()),
                400,
            )?;
        }
        let mut seen: Vec<&str> = Vec::new();
        for v in &a.environment_variables {
            let n = v.schema_name.as_str();
            if n.trim().is_empty() || n.trim() != n || n.chars().count() > 100 {
                return Err(
                    "Each environment variable needs a schemaName of 1 to 100 characters, without leading or trailing spaces.".into(),
                );
            }
            if seen.contains(&n) {
                return Err(format!(
                    "The environment variable '{n}' is in the archive twice."
                ));
            }
            seen.push(n);
            let what = format!("The environment variable '{n}'");
            fits(format!("{what}'s displayName"), &v.display_name, 100)?;
            fits(format!("{what}'s defaultValue"), &v.default_value, 2000)?;
            fits(format!("{what}'s description"), &v.description, 2000)?;
            if variable_type(&v.kind).is_none() {
                return Err(format!(
                    "The environment variable '{}' has type '{}': use String, Number, Boolean or JSON.",
                    v.schema_name, v.kind
                ));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for r in &a.roles {
            let n = r.name.as_str();
            if n.trim().is_empty() || n.trim() != n || n.chars().count() > 100 {
                return Err(
                    "Each role needs a name of 1 to 100 characters, without leading or trailing spaces.".into(),
                );
            }
            if seen.contains(&n) {
                return Err(format!("The role '{n}' is in the archive twice."));
            }
            // Export never carries them; an archive naming one would rewrite it in the target.
            let builtin = [
                crate::dataverse::security::SYSTEM_ADMINISTRATOR,
                crate::dataverse::security::SYSTEM_CUSTOMIZER,
                crate::dataverse::security::BASIC_USER,
                crate::dataverse::security::ENVIRONMENT_MAKER,
                crate::dataverse::security::DELEGATE,
            ];
            if builtin.iter().any(|b| b.eq_ignore_ascii_case(n)) {
                return Err(format!(
                    "The archive carries the built-in role '{n}', which every environment has and an import does not change."
                ));
            }
            seen.push(n);
        }
        let mut seen: Vec<&str> = Vec::new();
        for f in &a.flows {
            let n = f.name.as_str();
            if n.trim().is_empty() || n.chars().count() > 200 {
                return Err("Each flow needs a name of 1 to 200 characters.".into());
            }
            // Import finds a flow by its name: two with one name would both be made.
            if seen.contains(&n) {
                return Err(format!("The flow '{n}' is in the archive twice."));
            }
            seen.push(n);
            if f.state != "on" && f.state != "off" {
                return Err(format!(
                    "The flow '{}' has state '{}': use on or off.",
                    f.name, f.state
                ));
            }
            ConnectionReferences::parse(&f.connection_references)
                .map_err(|e| format!("The flow '{}': {e}", f.name))?;
        }
        Ok(a)
    }

    pub fn reference(&self, logical_name: &str) -> Option<&ArchiveReference> {
        self.connection_references
            .iter()
            .find(|r| r.logical_name == logical_name)
    }

    pub fn variable(&self, schema_name: &str) -> Option<&ArchiveVariable> {
        self.environment_variables
            .iter()
            .find(|v| v.schema_name == schema_name)
    }
}

/// The deployment settings file `pac solution create-settings` writes and
/// `pac solution import --settings-file` reads (keys in this order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DeploymentSettings {
    #[serde(rename = "EnvironmentVariables", default)]
    pub environment_variables: Vec<VariableSetting>,
    #[serde(rename = "ConnectionReferences", default)]
    pub connection_references: Vec<ReferenceSetting>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableSetting {
    #[serde(rename = "SchemaName")]
    pub schema_name: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceSetting {
    #[serde(rename = "LogicalName")]
    pub logical_name: String,
    /// The target environment's connection (its name); empty until filled in.
    #[serde(rename = "ConnectionId", default)]
    pub connection_id: String,
    #[serde(rename = "ConnectorId", default)]
    pub connector_id: String,
}

/// The settings file for an archive: every variable and reference, values and connections empty.
pub fn settings_template(a: &Archive) -> DeploymentSettings {
    DeploymentSettings {
        environment_variables: a
            .environment_variables
            .iter()
            .map(|v| VariableSetting {
                schema_name: v.schema_name.clone(),
                value: String::new(),
            })
            .collect(),
        connection_references: a
            .connection_references
            .iter()
            .map(|r| ReferenceSetting {
                logical_name: r.logical_name.clone(),
                connection_id: String::new(),
                connector_id: r.connector_id.clone(),
            })
            .collect(),
    }
}

/// Read a settings file for importing `a`: each entry must name a variable or reference of the
/// solution (once), a reference's ConnectorId (when given) its connector, a value its type.
pub fn parse_settings(v: &Value, a: &Archive) -> Result<DeploymentSettings, String> {
    let obj = v.as_object().ok_or(
        "The settings file must be a JSON object with EnvironmentVariables and ConnectionReferences (write one with keyway solution create-settings).",
    )?;
    if let Some(k) = obj
        .keys()
        .find(|k| *k != "EnvironmentVariables" && *k != "ConnectionReferences")
    {
        return Err(format!(
            "The settings file has '{k}': it holds only EnvironmentVariables and ConnectionReferences."
        ));
    }
    let s: DeploymentSettings = serde_json::from_value(v.clone())
        .map_err(|e| format!("The settings file is not in pac's shape: {e}."))?;
    for (i, r) in s.connection_references.iter().enumerate() {
        let Some(def) = a.reference(&r.logical_name) else {
            return Err(format!(
                "The settings file names the connection reference '{}', which the solution {} does not hold.",
                r.logical_name, a.solution.unique_name
            ));
        };
        if s.connection_references[..i]
            .iter()
            .any(|p| p.logical_name == r.logical_name)
        {
            return Err(format!(
                "The settings file names the connection reference '{}' twice.",
                r.logical_name
            ));
        }
        if !r.connector_id.is_empty()
            && connector_name(&r.connector_id) != connector_name(&def.connector_id)
        {
            return Err(format!(
                "The settings file gives '{}' the connector '{}', but it is a reference to '{}'.",
                r.logical_name, r.connector_id, def.connector_id
            ));
        }
    }
    for (i, e) in s.environment_variables.iter().enumerate() {
        let Some(def) = a.variable(&e.schema_name) else {
            return Err(format!(
                "The settings file names the environment variable '{}', which the solution {} does not hold.",
                e.schema_name, a.solution.unique_name
            ));
        };
        if s.environment_variables[..i]
            .iter()
            .any(|p| p.schema_name == e.schema_name)
        {
            return Err(format!(
                "The settings file names the environment variable '{}' twice.",
                e.schema_name
            ));
        }
        if !e.value.is_empty() {
            let code = variable_type(&def.kind).unwrap_or(VARIABLE_STRING);
            check_variable_value(&e.schema_name, code, &e.value)?;
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn archive() -> Archive {
        Archive::parse(&json!({
            "format": FORMAT,
            "solution": {"uniqueName": "Contoso_Flows", "friendlyName": "Contoso flows", "publisherPrefix": "pfx", "version": "1.0.0.1"},
            "connectionReferences": [{"logicalName": "pfx_sharedcommondataserviceforapps_abc", "connectorId": "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"}],
            "environmentVariables": [{"schemaName": "pfx_Var", "type": "Number", "defaultValue": "3"}],
        }))
        .unwrap()
    }

    #[test]
    fn versions_parse_bump_and_order() {
        let v = Version::parse("1.0.0.0").unwrap();
        assert_eq!(v.bump().to_string(), "1.0.0.1");
        assert_eq!(Version::parse("2.1").unwrap().to_string(), "2.1.0.0");
        assert!(Version::parse("1.0.0.0").unwrap() < Version::parse("1.0.0.10").unwrap());
        for bad in ["", "1", "1.x", "1.0.0.0.0", "-1.0"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_settings_file_is_pacs_shape_exactly() {
        let s = settings_template(&archive());
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"EnvironmentVariables":[{"SchemaName":"pfx_Var","Value":""}],"ConnectionReferences":[{"LogicalName":"pfx_sharedcommondataserviceforapps_abc","ConnectionId":"","ConnectorId":"/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"}]}"#
        );
        let read = parse_settings(&serde_json::to_value(&s).unwrap(), &archive()).unwrap();
        assert_eq!(read, s);
    }

    #[test]
    fn bad_settings_files_say_what_is_wrong() {
        let a = archive();
        for (v, says) in [
            (json!([]), "must be a JSON object"),
            (json!({"Other": []}), "has 'Other'"),
            (
                json!({"ConnectionReferences": [{"LogicalName": "nope", "ConnectionId": "x"}]}),
                "'nope', which the solution Contoso_Flows does not hold",
            ),
            (
                json!({"ConnectionReferences": [{"LogicalName": "pfx_sharedcommondataserviceforapps_abc", "ConnectorId": "/providers/Microsoft.PowerApps/apis/shared_office365"}]}),
                "but it is a reference to",
            ),
            (
                json!({"EnvironmentVariables": [{"SchemaName": "pfx_Var", "Value": "three"}]}),
                "'three' of 'pfx_Var' is not a Number",
            ),
            (
                json!({"EnvironmentVariables": [{"SchemaName": "pfx_Var", "Value": 3}]}),
                "not in pac's shape",
            ),
        ] {
            let e = parse_settings(&v, &a).unwrap_err();
            assert!(e.contains(says), "{v}: {e}");
        }
    }

    #[test]
    fn archives_are_checked() {
        assert!(
            Archive::parse(&json!({"format": "zip"}))
                .unwrap_err()
                .contains("not a Keyway solution archive")
        );
        let mut v = serde_json::to_value(archive()).unwrap();
        v["solution"]["publisherPrefix"] = json!("MSCRM");
        assert!(Archive::parse(&v).unwrap_err().contains("publisher prefix"));
        let mut v = serde_json::to_value(archive()).unwrap();
        v["flows"] = json!([{"name": "f", "state": "on", "definition": {}, "connectionReferences": {"k": {"runtimeSource": "x"}}}]);
        assert!(Archive::parse(&v).unwrap_err().contains("The flow 'f'"));
        assert_eq!(
            ComponentKind::parse("Connection-Reference"),
            Some(ComponentKind::ConnectionReference)
        );
        assert_eq!(validate_prefix("Pfx").unwrap(), "pfx");
    }
}
