//! A flow's `connectionReferences` (Power Automate's clientdata shape): each connection name its
//! definition uses may stand for one of the environment's connection references, which every
//! environment binds to its own connection — so a flow moves from DEV to TEST to PROD unchanged.
//!
//! ```json
//! {"shared_commondataserviceforapps": {
//!    "runtimeSource": "embedded",
//!    "connection": {"connectionReferenceLogicalName": "pfx_sharedcommondataserviceforapps_abc"},
//!    "api": {"name": "shared_commondataserviceforapps"}}}
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Whose connection a reference runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeSource {
    /// The connection the reference is bound to (the flow's own).
    Embedded,
    /// The connection of whoever starts the run (run-only users).
    Invoker,
}

impl RuntimeSource {
    pub fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Invoker => "invoker",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Embedded, Self::Invoker]
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
    }
}

/// One entry of `connectionReferences`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowReference {
    pub runtime_source: RuntimeSource,
    /// `connection.connectionReferenceLogicalName`: the environment's connection reference.
    pub logical_name: Option<String>,
    /// `connection.name`: a connection named directly (flows outside solutions).
    pub connection_name: Option<String>,
    /// `api.name`: the connector, such as `shared_commondataserviceforapps`.
    pub api_name: Option<String>,
}

/// A flow's `connectionReferences`, by the connection name its definition uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionReferences(BTreeMap<String, FlowReference>);

fn text<'a>(
    entry: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, String> {
    let mut at: Option<&Value> = None;
    let mut obj = Some(entry);
    for part in path.split('.') {
        at = obj.and_then(|o| o.get(part));
        obj = at.and_then(|v| v.as_object());
    }
    match at {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => Ok(Some(s.as_str())),
        Some(_) => Err(format!(
            "connectionReferences.{key}.{path} must be text of 1 to 200 characters."
        )),
    }
}

impl ConnectionReferences {
    /// Read and check the property (absent or null: none). Errors name the entry and field.
    pub fn parse(v: &Value) -> Result<Self, String> {
        let map = match v {
            Value::Null => return Ok(Self::default()),
            Value::Object(m) => m,
            _ => {
                return Err("connectionReferences must be an object keyed by the connection names the definition uses.".into());
            }
        };
        let mut out = BTreeMap::new();
        for (key, entry) in map {
            if key.trim().is_empty() || key.len() > 200 {
                return Err(
                    "Each key of connectionReferences is a connection name the definition uses (1 to 200 characters).".into(),
                );
            }
            let e = entry.as_object().ok_or_else(|| {
                format!("connectionReferences.{key} must be an object such as {{\"connection\": {{\"connectionReferenceLogicalName\": \"…\"}}}}.")
            })?;
            for (k, v) in [("connection", e.get("connection")), ("api", e.get("api"))] {
                if v.is_some_and(|v| !v.is_object() && !v.is_null()) {
                    return Err(format!("connectionReferences.{key}.{k} must be an object."));
                }
            }
            let runtime_source = match text(e, key, "runtimeSource")? {
                None => RuntimeSource::Embedded,
                Some(s) => RuntimeSource::parse(s).ok_or_else(|| {
                    format!("connectionReferences.{key}.runtimeSource is '{s}': use 'embedded' or 'invoker'.")
                })?,
            };
            let logical_name = text(e, key, "connection.connectionReferenceLogicalName")?;
            let connection_name = text(e, key, "connection.name")?;
            if logical_name.is_none() && connection_name.is_none() && e.contains_key("connection") {
                return Err(format!(
                    "connectionReferences.{key}.connection needs its connectionReferenceLogicalName."
                ));
            }
            out.insert(
                key.clone(),
                FlowReference {
                    runtime_source,
                    logical_name: logical_name.map(str::to_string),
                    connection_name: connection_name.map(str::to_string),
                    api_name: text(e, key, "api.name")?.map(str::to_string),
                },
            );
        }
        Ok(Self(out))
    }

    /// The property as stored and returned: what the client sent, checked, with each entry's
    /// `runtimeSource` spelled out (`embedded` when it sent none).
    pub fn normalize(v: &Value) -> Result<Value, String> {
        let parsed = Self::parse(v)?;
        let mut out = match v {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        for (key, r) in &parsed.0 {
            if let Some(Value::Object(e)) = out.get_mut(key) {
                e.insert("runtimeSource".into(), r.runtime_source.name().into());
            }
        }
        Ok(Value::Object(out))
    }

    pub fn get(&self, connection_name: &str) -> Option<&FlowReference> {
        self.0.get(connection_name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &FlowReference)> {
        self.0.iter()
    }

    /// The connection references' logical names, each once.
    pub fn logical_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .0
            .values()
            .filter_map(|r| r.logical_name.as_deref())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// The connector's name in a connector id: `/providers/Microsoft.PowerApps/apis/shared_x` → `shared_x`.
pub fn connector_name(connector_id: &str) -> &str {
    connector_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(connector_id)
}

/// The connector id a settings file and a connection reference carry for a connector name.
pub fn connector_id(connector: &str) -> String {
    format!(
        "/providers/Microsoft.PowerApps/apis/{}",
        connector_name(connector)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_are_read_and_runtime_source_defaults_to_embedded() {
        let v = json!({
            "shared_commondataserviceforapps": {
                "connection": {"connectionReferenceLogicalName": "pfx_dv"},
                "api": {"name": "shared_commondataserviceforapps"},
                "tier": "NotSpecified",
            },
            "mine": {"runtimeSource": "invoker", "connection": {"name": "sp-dataverse"}},
        });
        let r = ConnectionReferences::parse(&v).unwrap();
        let dv = r.get("shared_commondataserviceforapps").unwrap();
        assert_eq!(dv.runtime_source, RuntimeSource::Embedded);
        assert_eq!(dv.logical_name.as_deref(), Some("pfx_dv"));
        assert_eq!(
            dv.api_name.as_deref(),
            Some("shared_commondataserviceforapps")
        );
        let mine = r.get("mine").unwrap();
        assert_eq!(mine.runtime_source, RuntimeSource::Invoker);
        assert_eq!(mine.connection_name.as_deref(), Some("sp-dataverse"));
        assert_eq!(r.logical_names(), vec!["pfx_dv"]);
        let n = ConnectionReferences::normalize(&v).unwrap();
        assert_eq!(
            n["shared_commondataserviceforapps"]["runtimeSource"],
            "embedded"
        );
        assert_eq!(
            n["shared_commondataserviceforapps"]["tier"], "NotSpecified",
            "kept as sent"
        );
        assert_eq!(n["mine"]["runtimeSource"], "invoker");
        assert_eq!(
            ConnectionReferences::parse(&Value::Null).unwrap(),
            ConnectionReferences::default()
        );
    }

    #[test]
    fn bad_entries_name_their_field() {
        for (v, says) in [
            (json!([]), "must be an object keyed"),
            (json!({"k": 1}), "connectionReferences.k must be an object"),
            (
                json!({"k": {"runtimeSource": "owner"}}),
                "'owner': use 'embedded' or 'invoker'",
            ),
            (
                json!({"k": {"connection": {}}}),
                "needs its connectionReferenceLogicalName",
            ),
            (
                json!({"k": {"connection": {"connectionReferenceLogicalName": 7}}}),
                "k.connection.connectionReferenceLogicalName must be text",
            ),
            (json!({"k": {"api": "x"}}), "k.api must be an object"),
        ] {
            let e = ConnectionReferences::parse(&v).unwrap_err();
            assert!(e.contains(says), "{v}: {e}");
        }
    }

    #[test]
    fn connector_ids_and_names() {
        assert_eq!(
            connector_name("/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"),
            "shared_commondataserviceforapps"
        );
        assert_eq!(connector_name("shared_x"), "shared_x");
        assert_eq!(
            connector_id("shared_x"),
            "/providers/Microsoft.PowerApps/apis/shared_x"
        );
    }
}
