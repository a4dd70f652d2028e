//! Environment variables as flow parameters (a parameter whose `metadata.schemaName` names one):
//! which parameter types a variable's type fits, and its text value as the parameter's value.

use serde_json::Value;

use super::ParameterType;
use crate::dataverse::system_tables::{
    VARIABLE_BOOLEAN, VARIABLE_JSON, VARIABLE_NUMBER, VARIABLE_STRING,
};

/// Does a parameter of `kind` take the values of a variable of type `code`? String ↔ String,
/// Number ↔ Int or Float, Boolean ↔ Bool, JSON ↔ Object or Array. Secret variables (Secure*
/// parameters) are not supported.
pub fn fits(kind: ParameterType, code: i64) -> bool {
    let Ok(code) = i32::try_from(code) else {
        return false;
    };
    matches!(
        (code, kind),
        (VARIABLE_STRING, ParameterType::String)
            | (VARIABLE_NUMBER, ParameterType::Int | ParameterType::Float)
            | (VARIABLE_BOOLEAN, ParameterType::Bool)
            | (VARIABLE_JSON, ParameterType::Object | ParameterType::Array)
    )
}

/// The parameter types a variable of type `code` fits, for messages.
pub fn fitting_types(code: i64) -> &'static str {
    match i32::try_from(code) {
        Ok(VARIABLE_STRING) => "String",
        Ok(VARIABLE_NUMBER) => "Int or Float",
        Ok(VARIABLE_BOOLEAN) => "Bool",
        Ok(VARIABLE_JSON) => "Object or Array",
        _ => "none (Keyway's variables are String, Number, Boolean or JSON)",
    }
}

/// A variable's value (Dataverse keeps it as text) as a parameter of `kind` holds it.
pub fn convert(kind: ParameterType, text: &str) -> Result<Value, String> {
    let t = text.trim();
    match kind {
        ParameterType::String => Ok(Value::String(text.to_string())),
        ParameterType::Int => t
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("'{text}' is not a whole number")),
        ParameterType::Float => match t.parse::<i64>() {
            Ok(n) => Ok(Value::from(n)),
            Err(_) => t
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("'{text}' is not a number")),
        },
        ParameterType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(Value::Bool(true)),
            "false" | "no" => Ok(Value::Bool(false)),
            _ => Err(format!("'{text}' is not true or false (nor yes or no)")),
        },
        ParameterType::Object | ParameterType::Array => {
            let want = if kind == ParameterType::Object {
                "an object"
            } else {
                "an array"
            };
            match serde_json::from_str::<Value>(t) {
                Ok(v) if kind == ParameterType::Object && v.is_object() => Ok(v),
                Ok(v) if kind == ParameterType::Array && v.is_array() => Ok(v),
                Ok(_) => Err(format!("the JSON value is not {want}")),
                Err(e) => Err(format!("the value is not JSON ({e})")),
            }
        }
        ParameterType::SecureString | ParameterType::SecureObject => {
            Err("secret environment variables are not supported".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_fit_as_power_automate_pairs_them() {
        let code = i64::from;
        assert!(fits(ParameterType::String, code(VARIABLE_STRING)));
        assert!(fits(ParameterType::Int, code(VARIABLE_NUMBER)));
        assert!(fits(ParameterType::Float, code(VARIABLE_NUMBER)));
        assert!(fits(ParameterType::Bool, code(VARIABLE_BOOLEAN)));
        assert!(fits(ParameterType::Object, code(VARIABLE_JSON)));
        assert!(fits(ParameterType::Array, code(VARIABLE_JSON)));
        assert!(!fits(ParameterType::String, code(VARIABLE_NUMBER)));
        assert!(!fits(ParameterType::Bool, code(VARIABLE_STRING)));
        assert!(!fits(ParameterType::SecureString, code(VARIABLE_STRING)));
        assert!(!fits(ParameterType::String, 100_000_005));
    }

    #[test]
    fn values_convert_to_the_parameter_type_or_say_why_not() {
        assert_eq!(convert(ParameterType::String, " a ").unwrap(), json!(" a "));
        assert_eq!(convert(ParameterType::Int, " 42 ").unwrap(), json!(42));
        assert!(
            convert(ParameterType::Int, "4.5")
                .unwrap_err()
                .contains("whole")
        );
        assert_eq!(convert(ParameterType::Float, "4.5").unwrap(), json!(4.5));
        assert_eq!(convert(ParameterType::Float, "4").unwrap(), json!(4));
        assert!(convert(ParameterType::Float, "NaN").is_err());
        assert_eq!(convert(ParameterType::Bool, "Yes").unwrap(), json!(true));
        assert_eq!(convert(ParameterType::Bool, "false").unwrap(), json!(false));
        assert!(convert(ParameterType::Bool, "maybe").is_err());
        assert_eq!(
            convert(ParameterType::Object, r#"{"a":1}"#).unwrap(),
            json!({"a": 1})
        );
        assert!(convert(ParameterType::Object, "[1]").is_err());
        assert_eq!(convert(ParameterType::Array, "[1]").unwrap(), json!([1]));
        assert!(convert(ParameterType::Array, "{").is_err());
    }
}
