//! A connection's parameter values checked against its parameter set's schema, and split into
//! the public values (shown back) and the secrets (sealed, never shown). A masked secret sent
//! back on update means "keep what is stored" — never the literal mask as a new password.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::catalog::ParameterSet;

/// What every API shows in place of a secret value.
pub const MASK: &str = "********";

/// Values that stand for "the stored secret, unchanged" when sent back.
fn is_masked(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c == '*'))
}

/// A value the schema refuses, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    /// The parameter at fault (empty when the whole object is).
    pub field: String,
    pub message: String,
}

/// Checked values: what is public, the new secrets, and the secrets to keep as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checked {
    pub public: Map<String, Value>,
    pub secrets: BTreeMap<String, String>,
    pub kept: Vec<String>,
}

/// Check `values` against `set`. `stored` names the secrets already stored (on update), which a
/// masked value keeps.
pub fn check(
    set: &ParameterSet,
    values: &Map<String, Value>,
    stored: &[String],
) -> Result<Checked, ValueError> {
    let mut instance = Map::new();
    let mut out = Checked::default();
    for (k, v) in values {
        if set.is_secret(k) && is_masked(v) {
            if !stored.iter().any(|s| s == k) {
                return Err(ValueError {
                    field: k.clone(),
                    message: format!(
                        "'{k}' is masked, but no value is stored for it: send the secret itself."
                    ),
                });
            }
            out.kept.push(k.clone());
            // Stands in for the stored secret so the schema's rules still apply.
            instance.insert(k.clone(), Value::String("kept".into()));
            continue;
        }
        instance.insert(k.clone(), v.clone());
    }
    // Defaults the schema declares (such as token:grantType) fill what is absent.
    for (k, p) in set.schema["properties"].as_object().into_iter().flatten() {
        if let Some(d) = p.get("default")
            && !instance.contains_key(k)
        {
            instance.insert(k.clone(), d.clone());
        }
    }
    let validator = jsonschema::draft7::new(&set.schema).map_err(|e| ValueError {
        field: String::new(),
        message: format!("the parameter set '{}' has a bad schema: {e}", set.name),
    })?;
    let instance = Value::Object(instance);
    if let Some(e) = validator.iter_errors(&instance).next() {
        let path = e.instance_path().to_string();
        let field = match (path.trim_start_matches('/'), e.kind()) {
            ("", jsonschema::error::ValidationErrorKind::Required { property }) => {
                property.as_str().unwrap_or_default().to_string()
            }
            ("", jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected }) => {
                unexpected.first().cloned().unwrap_or_default()
            }
            (f, _) => f.replace("~1", "/").replace("~0", "~"),
        };
        let message = if set.is_secret(&field) {
            // Never echo a secret back in an error.
            format!("'{field}' is not valid for parameter set '{}'.", set.name)
        } else {
            format!(
                "'{field}' is not valid for parameter set '{}': {e}",
                set.name
            )
        };
        return Err(ValueError { field, message });
    }
    let Value::Object(instance) = instance else {
        return Ok(out);
    };
    for (k, v) in instance {
        if out.kept.contains(&k) {
            continue;
        }
        if set.is_secret(&k) {
            if let Value::String(s) = v {
                out.secrets.insert(k, s);
            }
        } else {
            out.public.insert(k, v);
        }
    }
    Ok(out)
}

/// The public values with every stored secret shown as the mask.
pub fn masked_view(public: &Map<String, Value>, secrets: &[String]) -> Map<String, Value> {
    let mut out = public.clone();
    for s in secrets {
        out.insert(s.clone(), Value::String(MASK.into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::catalog::{DATAVERSE, connector};
    use super::*;
    use serde_json::json;

    fn sp() -> &'static ParameterSet {
        connector(DATAVERSE)
            .unwrap()
            .parameter_set("ServicePrincipalOauth")
            .unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn good_values_split_into_public_and_secret() {
        let c = check(
            sp(),
            &obj(json!({"token:clientId": "c", "token:clientSecret": "s3cret", "token:TenantId": "t"})),
            &[],
        )
        .unwrap();
        assert_eq!(c.secrets.get("token:clientSecret").unwrap(), "s3cret");
        assert_eq!(c.public["token:grantType"], "client_credentials");
        assert!(!c.public.contains_key("token:clientSecret"));
    }

    #[test]
    fn errors_name_the_field_and_never_the_secret() {
        let e = check(
            sp(),
            &obj(json!({"token:clientId": "c", "token:TenantId": "t"})),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field, "token:clientSecret", "{e}");
        let e = check(
            sp(),
            &obj(json!({"token:clientId": 5, "token:clientSecret": "s", "token:TenantId": "t"})),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field, "token:clientId", "{e}");
        let e = check(sp(), &obj(json!({"token:clientId": "c", "token:clientSecret": "s", "token:TenantId": "t", "surprise": 1})), &[]).unwrap_err();
        assert_eq!(e.field, "surprise", "{e}");
        let e = check(
            sp(),
            &obj(json!({"token:clientId": "c", "token:clientSecret": "", "token:TenantId": "t"})),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field, "token:clientSecret");
        let e = check(sp(), &obj(json!({"token:clientId": "c", "token:clientSecret": "x", "token:TenantId": "t", "environmentUrl": "ftp://nope"})), &[]).unwrap_err();
        assert_eq!(e.field, "environmentUrl", "{e}");
    }

    #[test]
    fn a_mask_sent_back_keeps_the_stored_secret() {
        let values = obj(
            json!({"token:clientId": "c2", "token:clientSecret": "********", "token:TenantId": "t"}),
        );
        let c = check(sp(), &values, &["token:clientSecret".into()]).unwrap();
        assert!(c.secrets.is_empty());
        assert_eq!(c.kept, vec!["token:clientSecret".to_string()]);
        assert_eq!(c.public["token:clientId"], "c2");
        let e = check(sp(), &values, &[]).unwrap_err();
        assert_eq!(e.field, "token:clientSecret");
        assert_eq!(
            masked_view(&c.public, &["token:clientSecret".into()])["token:clientSecret"],
            MASK
        );
    }
}
