//! Environment variables in cloud flows: a definition parameter whose `metadata.schemaName`
//! names a variable must name one of the environment's (with a type that fits) to be saved, and
//! takes the variable's current value, else its default, when each run starts. Read as the
//! server from the variables' tables, not as the caller.

use std::collections::BTreeMap;

use keyway_core::dataverse::authz::RowScope;
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::environment::Environment;
use keyway_core::flows::variables::{convert, fits, fitting_types};
use keyway_core::flows::{FlowDefinition, ParameterType};
use keyway_core::odata::{CompareOp, Expr, Literal, Operand};
use keyway_core::solutions::variable_type_label;
use keyway_store::EnvironmentStore;
use serde_json::Value;

use super::ServiceError;
use super::flows::Unresolved;
use crate::state::AppState;

/// One environment variable: its definition's type and default, and its current value.
struct Variable {
    kind: i64,
    default: Option<String>,
    current: Option<String>,
}

/// The first row of a built-in table whose `column` equals `literal`.
async fn row_where(
    state: &AppState,
    env: &Environment,
    entity: &str,
    column: &str,
    literal: Literal,
) -> Result<Option<Record>, ServiceError> {
    let tables = state.directory.tables(state, env).await?;
    let Some(table) = tables
        .iter()
        .find(|t| t.logical_name == entity && !t.is_custom)
    else {
        return Ok(None);
    };
    let filter = Expr::Compare {
        left: Operand::Property(vec![column.into()]),
        op: CompareOp::Eq,
        right: Operand::Literal(literal),
    };
    let (rows, _) = state
        .store
        .records_list(
            env,
            keyway_store::RecordList {
                entity: table,
                scope: &RowScope::All,
                filter: Some(&filter),
                orderby: &[],
                limit: 1,
                after: None,
                count: false,
            },
        )
        .await?;
    Ok(rows.into_iter().next())
}

/// A text column, an empty one counting as unset (as an empty `Value` in a settings file does).
fn text(r: &Record, column: &str) -> Option<String> {
    match r.fields.get(column) {
        Some(FieldValue::Text(t)) if !t.is_empty() => Some(t.clone()),
        _ => None,
    }
}

/// The environment's variable with this schema name, if it has one.
async fn variable(
    state: &AppState,
    env: &Environment,
    schema_name: &str,
) -> Result<Option<Variable>, ServiceError> {
    let literal = Literal::String(schema_name.to_string());
    let Some(def) = row_where(
        state,
        env,
        "environmentvariabledefinition",
        "schemaname",
        literal,
    )
    .await?
    else {
        return Ok(None);
    };
    let kind = match def.fields.get("type") {
        Some(FieldValue::Int(code)) => *code,
        _ => 0,
    };
    let current = match def.id("environmentvariabledefinitionid") {
        Some(id) => row_where(
            state,
            env,
            "environmentvariablevalue",
            "_environmentvariabledefinitionid_value",
            Literal::Guid(id),
        )
        .await?
        .and_then(|v| text(&v, "value")),
        None => None,
    };
    Ok(Some(Variable {
        kind,
        default: text(&def, "defaultvalue"),
        current,
    }))
}

fn refused(code: &'static str, message: String) -> Unresolved {
    Unresolved {
        code,
        message,
        reference: None,
    }
}

/// The variable type a parameter of `kind` would need, for the message that says how to make it.
fn type_for(kind: ParameterType) -> &'static str {
    match kind {
        ParameterType::Int | ParameterType::Float => "100000001 (Number)",
        ParameterType::Bool => "100000002 (Boolean)",
        ParameterType::Object | ParameterType::Array => "100000003 (JSON)",
        _ => "100000000 (String)",
    }
}

/// At save: each environment-variable parameter names a variable of the environment whose type
/// fits the parameter's (`EnvironmentVariableNotFound`, `EnvironmentVariableTypeMismatch`).
pub async fn check_save(
    state: &AppState,
    env: &Environment,
    def: &FlowDefinition,
) -> Result<Option<Unresolved>, ServiceError> {
    for (name, p) in def.environment_variables() {
        let schema = p.schema_name.as_deref().unwrap_or_default();
        if matches!(
            p.kind,
            ParameterType::SecureString | ParameterType::SecureObject
        ) {
            return Ok(Some(refused(
                "EnvironmentVariableTypeMismatch",
                format!(
                    "The flow's parameter '{name}' is a {:?} parameter for the environment variable '{schema}': secret environment variables are not supported; use a String, Int, Float, Bool, Object or Array parameter.",
                    p.kind
                ),
            )));
        }
        let Some(v) = variable(state, env, schema).await? else {
            return Ok(Some(refused(
                "EnvironmentVariableNotFound",
                format!(
                    "The flow's parameter '{name}' stands for the environment variable '{schema}', which environment '{}' does not have: create it (POST environmentvariabledefinitions with {{\"schemaname\": \"{schema}\", \"type\": {}}}) or import the solution that holds it.",
                    env.name,
                    type_for(p.kind)
                ),
            )));
        };
        if !fits(p.kind, v.kind) {
            return Ok(Some(refused(
                "EnvironmentVariableTypeMismatch",
                format!(
                    "The flow's parameter '{name}' is a {:?} parameter, but the environment variable '{schema}' is a {} variable, which fits a {} parameter: change the parameter's type.",
                    p.kind,
                    variable_type_label(v.kind).unwrap_or("variable of an unknown type"),
                    fitting_types(v.kind)
                ),
            )));
        }
    }
    Ok(None)
}

/// At a run's start: the parameters' values, each environment-variable parameter taking the
/// variable's current value, else its default value, else the parameter's own default. `Err`
/// is why the run fails (`InvalidEnvironmentVariableValue`, `EnvironmentVariableNotFound`).
pub async fn run_parameters(
    state: &AppState,
    env: &Environment,
    def: &FlowDefinition,
) -> Result<Result<BTreeMap<String, Value>, (String, String)>, ServiceError> {
    let mut values = def.default_parameters();
    for (name, p) in def.environment_variables() {
        let schema = p.schema_name.as_deref().unwrap_or_default();
        let Some(v) = variable(state, env, schema).await? else {
            return Ok(Err((
                "EnvironmentVariableNotFound".into(),
                format!(
                    "The flow's parameter '{name}' stands for the environment variable '{schema}', which environment '{}' no longer has: create it again or import the solution that holds it.",
                    env.name
                ),
            )));
        };
        let (text, which) = match (v.current, v.default) {
            (Some(t), _) => (t, "current value"),
            (None, Some(t)) => (t, "default value"),
            (None, None) => continue,
        };
        match convert(p.kind, &text) {
            Ok(value) => {
                values.insert(name.to_string(), value);
            }
            Err(why) => {
                return Ok(Err((
                    "InvalidEnvironmentVariableValue".into(),
                    format!(
                        "The environment variable '{schema}' has a {which} the flow's {:?} parameter '{name}' cannot take: {why}. Set a value that fits (PATCH environmentvariablevalues(<id>) with {{\"value\": …}}).",
                        p.kind
                    ),
                )));
            }
        }
    }
    Ok(Ok(values))
}
