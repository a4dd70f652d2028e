//! Evaluating parsed expressions and templates during a run, against what the run has seen so
//! far (trigger outputs, earlier actions' outputs, parameters, the run's clock), with Logic Apps'
//! semantics where a flow could tell the difference: `?[]` on null is null, `[]` is an error,
//! `equals` compares numbers by value, interpolation writes values as text.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::action::{Condition, RunStatus};
use super::datetime::{ROUND_TRIP, format_timestamp, parse_timestamp};
use super::expression::{Expr, Expression, Function, Segment, Template};

/// What an expression can read during a run. The server implements it over a run's record;
/// [`RecordedRun`] is a plain one.
pub trait FlowContext {
    /// The trigger's outputs: `{"body": {…}}` for the Dataverse trigger.
    fn trigger_outputs(&self) -> &Value;
    /// An action that has finished, with its status and outputs; `None` while it has not run.
    fn action(&self, name: &str) -> Option<ActionRecord<'_>>;
    /// A flow parameter's value (its `defaultValue` unless the run was given another).
    fn parameter(&self, name: &str) -> Option<&Value>;
    /// The run's clock: expressions never read the wall clock themselves.
    fn now(&self) -> OffsetDateTime;
    /// A fresh GUID for `guid()`.
    fn new_guid(&self) -> Uuid;
}

/// A finished action as expressions see it.
#[derive(Clone, Copy, Debug)]
pub struct ActionRecord<'a> {
    pub status: RunStatus,
    pub outputs: &'a Value,
}

/// A [`FlowContext`] over values held in memory: the trigger's outputs, actions' outputs as
/// they finish, parameters, and a fixed instant.
#[derive(Clone, Debug)]
pub struct RecordedRun {
    pub trigger_outputs: Value,
    pub actions: BTreeMap<String, (RunStatus, Value)>,
    pub parameters: BTreeMap<String, Value>,
    pub now: OffsetDateTime,
}

impl RecordedRun {
    pub fn new(trigger_outputs: Value, now: OffsetDateTime) -> Self {
        Self {
            trigger_outputs,
            actions: BTreeMap::new(),
            parameters: BTreeMap::new(),
            now,
        }
    }

    /// Records an action's result so later expressions can read it.
    pub fn record(&mut self, action: &str, status: RunStatus, outputs: Value) {
        self.actions.insert(action.to_owned(), (status, outputs));
    }
}

impl FlowContext for RecordedRun {
    fn trigger_outputs(&self) -> &Value {
        &self.trigger_outputs
    }

    fn action(&self, name: &str) -> Option<ActionRecord<'_>> {
        self.actions
            .get(name)
            .map(|(status, outputs)| ActionRecord {
                status: *status,
                outputs,
            })
    }

    fn parameter(&self, name: &str) -> Option<&Value> {
        self.parameters.get(name)
    }

    fn now(&self) -> OffsetDateTime {
        self.now
    }

    fn new_guid(&self) -> Uuid {
        Uuid::new_v4()
    }
}

/// Why an expression could not be evaluated, naming it and the offset of the failing part.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct EvaluationError {
    pub expression: String,
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for EvaluationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the expression '{}' failed at {}: {}",
            self.expression, self.offset, self.message
        )
    }
}

/// A failure inside one expression, before it is named.
struct Fail {
    offset: usize,
    message: String,
}

type Eval<T> = Result<T, Fail>;

fn fail<T>(offset: usize, message: impl Into<String>) -> Eval<T> {
    Err(Fail {
        offset,
        message: message.into(),
    })
}

/// Evaluates one expression.
pub fn evaluate(
    expression: &Expression,
    context: &dyn FlowContext,
) -> Result<Value, EvaluationError> {
    eval(expression.root(), context).map_err(|failure| EvaluationError {
        expression: expression.text().to_owned(),
        offset: failure.offset,
        message: failure.message,
    })
}

impl Template {
    /// The value with every expression evaluated: what the action receives as its inputs.
    pub fn evaluate(&self, context: &dyn FlowContext) -> Result<Value, EvaluationError> {
        match self {
            Template::Literal(value) => Ok(value.clone()),
            Template::Expression(expression) => evaluate(expression, context),
            Template::Interpolation(segments) => {
                let mut text = String::new();
                for segment in segments {
                    match segment {
                        Segment::Text(part) => text.push_str(part),
                        Segment::Expression(expression) => {
                            text.push_str(&to_text(&evaluate(expression, context)?));
                        }
                    }
                }
                Ok(Value::String(text))
            }
            Template::Array(items) => items
                .iter()
                .map(|item| item.evaluate(context))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Template::Object(fields) => fields
                .iter()
                .map(|(key, item)| Ok((key.clone(), item.evaluate(context)?)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
        }
    }
}

impl Condition {
    /// Whether an `If` takes its `actions` (true) or its `else` (false).
    pub fn evaluate(&self, context: &dyn FlowContext) -> Result<bool, EvaluationError> {
        match self {
            Condition::Expression(template) => match template.evaluate(context)? {
                Value::Bool(b) => Ok(b),
                other => Err(EvaluationError {
                    expression: describe_template(template),
                    offset: 0,
                    message: format!(
                        "an If condition must be true or false, and this is {}",
                        type_name(&other)
                    ),
                }),
            },
            Condition::And(all) => {
                for condition in all {
                    if !condition.evaluate(context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(any) => {
                for condition in any {
                    if condition.evaluate(context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(inner) => Ok(!inner.evaluate(context)?),
            Condition::Compare {
                function,
                left,
                right,
            } => {
                let args = vec![left.evaluate(context)?, right.evaluate(context)?];
                let named = |message: String| EvaluationError {
                    expression: format!(
                        "{function}({}, {})",
                        describe_template(left),
                        describe_template(right)
                    ),
                    offset: 0,
                    message,
                };
                match apply(*function, args, context) {
                    Ok(Value::Bool(b)) => Ok(b),
                    Ok(other) => Err(named(format!("the comparison gave {}", type_name(&other)))),
                    Err(message) => Err(named(message)),
                }
            }
        }
    }
}

/// A template as it was written, near enough to find it in the definition.
fn describe_template(template: &Template) -> String {
    match template {
        Template::Expression(expression) => expression.text().to_owned(),
        Template::Literal(value) => value.to_string(),
        Template::Interpolation(segments) => segments
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.as_str(),
                Segment::Expression(expression) => expression.text(),
            })
            .collect(),
        Template::Array(_) | Template::Object(_) => "a JSON value with expressions".into(),
    }
}

fn eval(expr: &Expr, context: &dyn FlowContext) -> Eval<Value> {
    match expr {
        Expr::Null => Ok(Value::Null),
        Expr::Bool(b) => Ok(Value::Bool(*b)),
        Expr::Int(n) => Ok(Value::from(*n)),
        Expr::Float(x) => float(*x).or_else(|message| fail(0, message)),
        Expr::String(s) => Ok(Value::String(s.clone())),
        Expr::Member {
            target,
            key,
            optional,
            at,
        } => {
            let target = eval(target, context)?;
            let key = eval(key, context)?;
            member(&target, &key, *optional).or_else(|message| fail(*at, message))
        }
        Expr::Call { function, args, at } => call(*function, args, *at, context),
    }
}

/// Calls with lazy arguments (`if`, `and`, `or`) here; the rest evaluate every argument first.
fn call(function: Function, args: &[Expr], at: usize, context: &dyn FlowContext) -> Eval<Value> {
    let boolean = |expr: &Expr| -> Eval<bool> {
        match eval(expr, context)? {
            Value::Bool(b) => Ok(b),
            other => fail(
                at,
                format!(
                    "'{function}' expects true or false, and got {}",
                    type_name(&other)
                ),
            ),
        }
    };
    match function {
        Function::If => {
            let [condition, then, otherwise] = args else {
                return fail(at, "'if' takes 3 arguments");
            };
            if boolean(condition)? {
                eval(then, context)
            } else {
                eval(otherwise, context)
            }
        }
        Function::And => {
            for arg in args {
                if !boolean(arg)? {
                    return Ok(Value::Bool(false));
                }
            }
            Ok(Value::Bool(true))
        }
        Function::Or => {
            for arg in args {
                if boolean(arg)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        _ => {
            let values = args
                .iter()
                .map(|arg| eval(arg, context))
                .collect::<Eval<Vec<_>>>()?;
            apply(function, values, context).or_else(|message| fail(at, message))
        }
    }
}

/// A function applied to evaluated arguments (arity was checked when the flow was saved).
fn apply(function: Function, args: Vec<Value>, context: &dyn FlowContext) -> Result<Value, String> {
    let mut args = args.into_iter();
    let name = function.name();
    Ok(match function {
        Function::TriggerOutputs => context.trigger_outputs().clone(),
        Function::TriggerBody => context
            .trigger_outputs()
            .get("body")
            .cloned()
            .unwrap_or(Value::Null),
        Function::Outputs | Function::Body | Function::Actions => {
            let action = text_arg(name, take(&mut args))?;
            let Some(record) = context.action(&action) else {
                return Err(format!("the action '{action}' has not run in this run"));
            };
            if record.status == RunStatus::Skipped && function != Function::Actions {
                return Err(format!(
                    "the action '{action}' was skipped, so it has no outputs"
                ));
            }
            match function {
                Function::Outputs => record.outputs.clone(),
                Function::Body => record.outputs.get("body").cloned().unwrap_or(Value::Null),
                _ => serde_json::json!({
                    "name": action,
                    "status": record.status.as_str(),
                    "outputs": record.outputs,
                }),
            }
        }
        Function::Parameters => {
            let parameter = text_arg(name, take(&mut args))?;
            context
                .parameter(&parameter)
                .cloned()
                .ok_or_else(|| format!("the flow parameter '{parameter}' has no value"))?
        }
        Function::Concat => Value::String(args_text(std::iter::once(take(&mut args)).chain(args))),
        Function::Equals => Value::Bool(json_equal(&take(&mut args), &take(&mut args))),
        Function::Not => match take(&mut args) {
            Value::Bool(b) => Value::Bool(!b),
            other => {
                return Err(format!(
                    "'not' expects true or false, and got {}",
                    type_name(&other)
                ));
            }
        },
        Function::Greater | Function::GreaterOrEquals | Function::Less | Function::LessOrEquals => {
            let (a, b) = (take(&mut args), take(&mut args));
            let order = compare(&a, &b).ok_or_else(|| {
                format!(
                    "'{name}' compares two numbers or two strings, not {} and {}",
                    type_name(&a),
                    type_name(&b)
                )
            })?;
            Value::Bool(match function {
                Function::Greater => order == Ordering::Greater,
                Function::GreaterOrEquals => order != Ordering::Less,
                Function::Less => order == Ordering::Less,
                _ => order != Ordering::Greater,
            })
        }
        Function::Add | Function::Sub | Function::Mul | Function::Div | Function::Mod => {
            arithmetic(function, &take(&mut args), &take(&mut args))?
        }
        Function::UtcNow => {
            let format = optional_text(name, args.next())?;
            Value::String(format_timestamp(
                context.now(),
                format.as_deref().unwrap_or(ROUND_TRIP),
            )?)
        }
        Function::FormatDateTime => {
            let at = timestamp_arg(name, take(&mut args))?;
            let format = optional_text(name, args.next())?;
            Value::String(format_timestamp(
                at,
                format.as_deref().unwrap_or(ROUND_TRIP),
            )?)
        }
        Function::AddDays => {
            let at = timestamp_arg(name, take(&mut args))?;
            let days = match as_number(&take(&mut args)) {
                Some(Num::Int(days)) => days,
                _ => {
                    return Err(
                        "'addDays' expects a whole number of days as its second argument".into(),
                    );
                }
            };
            let moved = days
                .checked_mul(86_400)
                .map(Duration::seconds)
                .and_then(|by| at.checked_add(by))
                .ok_or_else(|| format!("adding {days} days leaves the supported range of dates"))?;
            let format = optional_text(name, args.next())?;
            Value::String(format_timestamp(
                moved,
                format.as_deref().unwrap_or(ROUND_TRIP),
            )?)
        }
        Function::String => Value::String(to_text(&take(&mut args))),
        Function::Int => Value::from(to_int(&take(&mut args))?),
        Function::Float => float(to_float(&take(&mut args))?)?,
        Function::Bool => Value::Bool(to_bool(&take(&mut args))?),
        Function::Json => match take(&mut args) {
            Value::String(text) => serde_json::from_str(&text)
                .map_err(|err| format!("'json' was given text that is not JSON: {err}"))?,
            already @ (Value::Object(_) | Value::Array(_)) => already,
            other => {
                return Err(format!(
                    "'json' expects a string, and got {}",
                    type_name(&other)
                ));
            }
        },
        Function::Coalesce => std::iter::once(take(&mut args))
            .chain(args)
            .find(|value| !value.is_null())
            .unwrap_or(Value::Null),
        Function::Empty => Value::Bool(match take(&mut args) {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(items) => items.is_empty(),
            Value::Object(map) => map.is_empty(),
            other => {
                return Err(format!(
                    "'empty' expects a string, array or object, and got {}",
                    type_name(&other)
                ));
            }
        }),
        Function::Length => Value::from(match take(&mut args) {
            Value::String(s) => s.chars().count(),
            Value::Array(items) => items.len(),
            other => {
                return Err(format!(
                    "'length' expects a string or an array, and got {}",
                    type_name(&other)
                ));
            }
        }),
        Function::ToLower => Value::String(text_arg(name, take(&mut args))?.to_lowercase()),
        Function::ToUpper => Value::String(text_arg(name, take(&mut args))?.to_uppercase()),
        Function::Trim => Value::String(text_arg(name, take(&mut args))?.trim().to_owned()),
        Function::Contains => Value::Bool(match (take(&mut args), take(&mut args)) {
            (Value::String(text), Value::String(part)) => text.contains(&part),
            (Value::String(text), other) => text.contains(&to_text(&other)),
            (Value::Array(items), value) => items.iter().any(|item| json_equal(item, &value)),
            (Value::Object(map), Value::String(key)) => map.contains_key(&key),
            (collection, _) => {
                return Err(format!(
                    "'contains' looks in a string, an array or an object, not in {}",
                    type_name(&collection)
                ));
            }
        }),
        Function::StartsWith | Function::EndsWith => {
            let text = text_arg(name, take(&mut args))?.to_lowercase();
            let part = text_arg(name, take(&mut args))?.to_lowercase();
            Value::Bool(if function == Function::StartsWith {
                text.starts_with(&part)
            } else {
                text.ends_with(&part)
            })
        }
        Function::Guid => {
            let id = context.new_guid();
            let format = optional_text(name, args.next())?;
            Value::String(match format.as_deref().unwrap_or("D") {
                "N" | "n" => id.simple().to_string(),
                "D" | "d" => id.hyphenated().to_string(),
                "B" | "b" => id.braced().to_string(),
                "P" | "p" => format!("({})", id.hyphenated()),
                other => return Err(format!("'{other}' is not a GUID format: use N, D, B or P")),
            })
        }
        Function::If | Function::And | Function::Or => {
            return Err(format!("'{name}' needs its arguments unevaluated"));
        }
    })
}

/// `target[key]` / `target?[key]`, with Power Automate's `body/name` path keys.
fn member(target: &Value, key: &Value, optional: bool) -> Result<Value, String> {
    let missing = |what: String| if optional { Ok(Value::Null) } else { Err(what) };
    match (target, key) {
        (Value::Null, _) if optional => Ok(Value::Null),
        (Value::Null, key) => Err(format!(
            "cannot read [{}] of null; write ?[{}] to get null instead",
            key_text(key),
            key_text(key)
        )),
        (Value::Object(map), Value::String(name)) => {
            if let Some(value) = map.get(name) {
                return Ok(value.clone());
            }
            if name.contains('/') {
                return path(target, name, optional);
            }
            missing(format!(
                "the property '{name}' does not exist; the object has {}",
                property_list(map)
            ))
        }
        (Value::Array(items), Value::Number(n)) => {
            match n.as_u64().and_then(|i| usize::try_from(i).ok()) {
                Some(i) => match items.get(i) {
                    Some(item) => Ok(item.clone()),
                    None => missing(format!(
                        "the index {i} is outside the array of {} items",
                        items.len()
                    )),
                },
                None => Err(format!("{n} is not an array index")),
            }
        }
        (target, key) => Err(format!(
            "cannot read [{}] of {}",
            key_text(key),
            type_name(target)
        )),
    }
}

/// `body/name`: each segment read in turn.
fn path(target: &Value, name: &str, optional: bool) -> Result<Value, String> {
    let mut value = target.clone();
    for segment in name.split('/') {
        value = match value {
            Value::Object(mut map) => match map.remove(segment) {
                Some(found) => found,
                None if optional => return Ok(Value::Null),
                None => {
                    return Err(format!(
                        "the property '{segment}' of the path '{name}' does not exist; the object has {}",
                        property_list(&map)
                    ));
                }
            },
            Value::Null if optional => return Ok(Value::Null),
            other => {
                return Err(format!(
                    "cannot read '{segment}' of the path '{name}' from {}",
                    type_name(&other)
                ));
            }
        };
    }
    Ok(value)
}

fn property_list(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return "no properties".into();
    }
    let names: Vec<String> = map.keys().take(10).map(|k| format!("'{k}'")).collect();
    let more = if map.len() > 10 { ", …" } else { "" };
    format!("{}{more}", names.join(", "))
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

/// How a value is written into text (interpolation, `string()`, `concat()`).
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match as_number(value) {
            Some(Num::Float(x)) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            Some(Num::Float(x)) => format!("{x}"),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

fn args_text(args: impl Iterator<Item = Value>) -> String {
    args.map(|arg| to_text(&arg)).collect()
}

#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(n) => n as f64,
            Num::Float(x) => x,
        }
    }
}

fn as_number(value: &Value) -> Option<Num> {
    let Value::Number(n) = value else {
        return None;
    };
    match n.as_i64() {
        Some(i) => Some(Num::Int(i)),
        None => n.as_f64().map(Num::Float),
    }
}

fn float(x: f64) -> Result<Value, String> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| format!("{x} is not a finite number"))
}

/// Logic Apps' equality: numbers by value, everything else structurally.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (as_number(a), as_number(b)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => x == y,
            (Some(x), Some(y)) => x.as_f64() == y.as_f64(),
            _ => a == b,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, a)| y.get(key).is_some_and(|b| json_equal(a, b)))
        }
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (as_number(a), as_number(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => Some(x.cmp(&y)),
        (Some(x), Some(y)) => x.as_f64().partial_cmp(&y.as_f64()),
        _ => match (a, b) {
            (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
            _ => None,
        },
    }
}

fn arithmetic(function: Function, a: &Value, b: &Value) -> Result<Value, String> {
    let name = function.name();
    let (Some(x), Some(y)) = (as_number(a), as_number(b)) else {
        return Err(format!(
            "'{name}' expects two numbers, and got {} and {}",
            type_name(a),
            type_name(b)
        ));
    };
    if matches!(function, Function::Div | Function::Mod) && y.as_f64() == 0.0 {
        return Err(format!("'{name}' cannot divide by zero"));
    }
    if let (Num::Int(x), Num::Int(y)) = (x, y) {
        let result = match function {
            Function::Add => x.checked_add(y),
            Function::Sub => x.checked_sub(y),
            Function::Mul => x.checked_mul(y),
            Function::Div => x.checked_div(y),
            _ => x.checked_rem(y),
        };
        return result
            .map(Value::from)
            .ok_or_else(|| format!("'{name}' overflows a 64-bit integer"));
    }
    let (x, y) = (x.as_f64(), y.as_f64());
    float(match function {
        Function::Add => x + y,
        Function::Sub => x - y,
        Function::Mul => x * y,
        Function::Div => x / y,
        _ => x % y,
    })
}

fn to_int(value: &Value) -> Result<i64, String> {
    match (value, as_number(value)) {
        (_, Some(Num::Int(n))) => Ok(n),
        (_, Some(Num::Float(x))) if x.fract() == 0.0 && x.abs() < 9.2e18 => Ok(x as i64),
        (Value::String(text), _) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("'int' was given '{text}', which is not a whole number")),
        _ => Err(format!(
            "'int' cannot convert {} to a whole number",
            type_name(value)
        )),
    }
}

fn to_float(value: &Value) -> Result<f64, String> {
    match (value, as_number(value)) {
        (_, Some(n)) => Ok(n.as_f64()),
        (Value::String(text), _) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("'float' was given '{text}', which is not a number")),
        _ => Err(format!(
            "'float' cannot convert {} to a number",
            type_name(value)
        )),
    }
}

fn to_bool(value: &Value) -> Result<bool, String> {
    match (value, as_number(value)) {
        (Value::Bool(b), _) => Ok(*b),
        (_, Some(n)) => Ok(n.as_f64() != 0.0),
        (Value::String(text), _) if text.eq_ignore_ascii_case("true") => Ok(true),
        (Value::String(text), _) if text.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!(
            "'bool' cannot convert {} to true or false",
            describe_value(value)
        )),
    }
}

fn take(args: &mut impl Iterator<Item = Value>) -> Value {
    args.next().unwrap_or(Value::Null)
}

fn text_arg(function: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!(
            "'{function}' expects a string, and got {}",
            type_name(&other)
        )),
    }
}

fn optional_text(function: &str, value: Option<Value>) -> Result<Option<String>, String> {
    value.map(|value| text_arg(function, value)).transpose()
}

fn timestamp_arg(function: &str, value: Value) -> Result<OffsetDateTime, String> {
    let text = text_arg(function, value)?;
    parse_timestamp(&text).ok_or_else(|| {
        format!("'{function}' was given '{text}', which is not an ISO 8601 timestamp")
    })
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        other => type_name(other).to_owned(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
