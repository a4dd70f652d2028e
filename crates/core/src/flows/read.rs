//! Reading a definition's JSON with the path of every value at hand: objects whose unknown
//! properties are refused by name, typed scalars, and templates whose references are recorded.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::definition::FlowParameter;
use super::error::{DefinitionError, JsonPath, did_you_mean};
use super::expression::{Reference, ReferenceKind, Template};

/// The properties of one JSON object, taken one by one; whatever is left over is refused.
pub(super) struct Fields<'v> {
    path: JsonPath,
    what: &'static str,
    map: &'v Map<String, Value>,
    /// Keys asked for (present or not) and keys taken by pattern: the known ones.
    asked: Vec<&'v str>,
}

impl<'v> Fields<'v> {
    /// `value` must be an object; `what` names it in messages ("a Compose action").
    pub(super) fn of(
        value: &'v Value,
        path: &JsonPath,
        what: &'static str,
    ) -> Result<Self, DefinitionError> {
        match value {
            Value::Object(map) => Ok(Self {
                path: path.clone(),
                what,
                map,
                asked: Vec::new(),
            }),
            other => Err(DefinitionError::at(
                path,
                format!("expected an object for {what}, found {}", kind(other)),
            )),
        }
    }

    pub(super) fn path_of(&self, key: &str) -> JsonPath {
        self.path.key(key)
    }

    pub(super) fn take(&mut self, key: &'static str) -> Option<&'v Value> {
        self.asked.push(key);
        self.map.get(key)
    }

    pub(super) fn require(&mut self, key: &'static str) -> Result<&'v Value, DefinitionError> {
        self.take(key).ok_or_else(|| {
            DefinitionError::at(
                &self.path,
                format!("{} needs the property '{key}'", capitalized(self.what)),
            )
        })
    }

    /// The keys not taken so far that `keep` accepts (`item/…` parameters, for example); they
    /// count as taken.
    pub(super) fn take_matching(
        &mut self,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<(&'v String, &'v Value)> {
        let map: &'v Map<String, Value> = self.map;
        let found: Vec<(&'v String, &'v Value)> = map
            .iter()
            .filter(|(key, _)| !self.asked.contains(&key.as_str()) && keep(key))
            .collect();
        self.asked.extend(found.iter().map(|(key, _)| key.as_str()));
        found
    }

    /// Refuses the first property nobody asked for (keys accepted by `also` excepted).
    pub(super) fn finish_except(self, also: impl Fn(&str) -> bool) -> Result<(), DefinitionError> {
        let Some(unknown) = self
            .map
            .keys()
            .find(|key| !self.asked.contains(&key.as_str()) && !also(key))
        else {
            return Ok(());
        };
        let hint = match did_you_mean(unknown, self.asked.iter().copied()) {
            Some(close) => format!(" (did you mean '{close}'?)"),
            None => {
                let mut known: Vec<&str> = self.asked.clone();
                known.sort_unstable();
                known.dedup();
                format!("; the known ones are {}", quoted_list(&known))
            }
        };
        Err(DefinitionError::at(
            &self.path.key(unknown),
            format!("unknown property '{unknown}' in {}{hint}", self.what),
        ))
    }

    pub(super) fn finish(self) -> Result<(), DefinitionError> {
        self.finish_except(|_| false)
    }
}

pub(super) fn quoted_list(items: &[&str]) -> String {
    match items {
        [] => "nothing".into(),
        [only] => format!("'{only}'"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|item| format!("'{item}'")).collect();
            format!("{} and '{last}'", init.join(", "))
        }
    }
}

fn capitalized(what: &str) -> String {
    let mut chars = what.chars();
    match chars.next() {
        Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn string<'v>(
    value: &'v Value,
    path: &JsonPath,
    what: &str,
) -> Result<&'v str, DefinitionError> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(DefinitionError::at(
            path,
            format!("{what} must be a string, found {}", kind(other)),
        )),
    }
}

/// A string that must be fixed when the flow is saved (a table name, a connection name).
pub(super) fn fixed_string<'v>(
    value: &'v Value,
    path: &JsonPath,
    what: &str,
) -> Result<&'v str, DefinitionError> {
    let text = string(value, path, what)?;
    if text.trim().is_empty() {
        return Err(DefinitionError::at(path, format!("{what} is empty")));
    }
    if text.starts_with('@') || text.contains("@{") {
        return Err(DefinitionError::at(
            path,
            format!("{what} must be written out, not computed by an expression"),
        ));
    }
    Ok(text)
}

/// A whole number in `range`, written as a number or as digits in a string (both appear in
/// exported flows).
pub(super) fn code(
    value: &Value,
    path: &JsonPath,
    what: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, DefinitionError> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if range.contains(&n) => Ok(n),
        _ => Err(DefinitionError::at(
            path,
            format!(
                "{what} must be a whole number from {} to {}, found {value}",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// One of `options` (matched without regard to case), answered as the option's index.
pub(super) fn choice(
    value: &Value,
    path: &JsonPath,
    what: &str,
    options: &[&str],
) -> Result<usize, DefinitionError> {
    let text = string(value, path, what)?;
    options
        .iter()
        .position(|option| option.eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            let hint = did_you_mean(text, options.iter().copied())
                .map(|close| format!(" (did you mean '{close}'?)"))
                .unwrap_or_default();
            DefinitionError::at(
                path,
                format!(
                    "'{text}' is not a valid {what}{hint}; use {}",
                    quoted_list(options)
                ),
            )
        })
}

/// Where an expression reads a flow name: the JSON path of its string and the reference.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Read {
    pub(crate) path: JsonPath,
    pub(crate) reference: Reference,
}

/// Parses templates for one trigger or action, checking parameter names against the
/// definition's declarations and recording the actions they read.
pub(super) struct Templates<'d> {
    pub(super) parameters: &'d BTreeMap<String, FlowParameter>,
    pub(super) reads: Vec<Read>,
}

impl<'d> Templates<'d> {
    pub(super) fn new(parameters: &'d BTreeMap<String, FlowParameter>) -> Self {
        Self {
            parameters,
            reads: Vec::new(),
        }
    }

    pub(super) fn parse(
        &mut self,
        value: &Value,
        path: &JsonPath,
    ) -> Result<Template, DefinitionError> {
        let template = Template::parse_at(value, path)?;
        let mut fault = None;
        template.visit_expressions(path, &mut |at, expression| {
            for reference in expression.root().references() {
                match reference.kind {
                    ReferenceKind::Parameter if !self.parameters.contains_key(&reference.name) => {
                        if fault.is_none() {
                            fault = Some(DefinitionError::in_expression(
                                at,
                                reference.offset,
                                format!(
                                    "the parameter '{}' is not declared in the definition's parameters",
                                    reference.name
                                ),
                            ));
                        }
                    }
                    ReferenceKind::Parameter => {}
                    ReferenceKind::Action => self.reads.push(Read {
                        path: at.clone(),
                        reference,
                    }),
                }
            }
        });
        match fault {
            Some(err) => Err(err),
            None => Ok(template),
        }
    }

    /// The reads recorded since the last call, handed to the trigger or action that made them.
    pub(super) fn take_reads(&mut self) -> Vec<Read> {
        std::mem::take(&mut self.reads)
    }
}
