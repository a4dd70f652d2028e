//! A cloud flow's definition in the Logic Apps shape Power Automate exports (`$schema`,
//! `contentVersion`, `parameters`, one trigger, `actions` with `runAfter`), validated once when
//! the flow is saved: every value's path is known, unknown properties and kinds are refused,
//! expressions are parsed, the actions form a DAG, and an execution order is computed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::action::{Action, ActionKind, Feature, read_action};
use super::error::{DefinitionError, JsonPath, did_you_mean};
use super::expression::ReferenceKind;
use super::read::{Fields, Read, Templates, choice, kind};
use super::trigger::{Trigger, TriggerKind, read_triggers};

pub use super::action::RunStatus;

/// Whether the flow runs: off flows keep their definition but their trigger does nothing.
/// Dataverse's `workflow.statecode`: 0 Draft (off), 1 Activated (on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowState {
    Off,
    On,
}

impl FlowState {
    pub fn state_code(self) -> i32 {
        match self {
            FlowState::Off => 0,
            FlowState::On => 1,
        }
    }
}

/// A validated flow definition. It serializes as the JSON it was read from, so a saved flow
/// exports unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowDefinition {
    pub schema: Option<String>,
    pub content_version: Option<String>,
    pub parameters: BTreeMap<String, FlowParameter>,
    pub trigger: Trigger,
    pub actions: Scope,
    source: Value,
}

/// A declared parameter (`parameters.<name>`): `$connections` and `$authentication` in every
/// export, environment variables in solution flows.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowParameter {
    pub kind: ParameterType,
    pub default_value: Option<Value>,
    /// `metadata.schemaName`: the environment variable whose value the parameter takes at run
    /// time (its default value applies only where the variable has no value at all).
    pub schema_name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterType {
    String,
    SecureString,
    Int,
    Float,
    Bool,
    Array,
    Object,
    SecureObject,
}

const PARAMETER_TYPES: [&str; 8] = [
    "String",
    "SecureString",
    "Int",
    "Float",
    "Bool",
    "Array",
    "Object",
    "SecureObject",
];

const PARAMETER_KINDS: [ParameterType; 8] = [
    ParameterType::String,
    ParameterType::SecureString,
    ParameterType::Int,
    ParameterType::Float,
    ParameterType::Bool,
    ParameterType::Array,
    ParameterType::Object,
    ParameterType::SecureObject,
];

impl ParameterType {
    fn accepts(self, value: &Value) -> bool {
        match self {
            ParameterType::String | ParameterType::SecureString => value.is_string(),
            ParameterType::Int => value.is_i64() || value.is_u64(),
            ParameterType::Float => value.is_number(),
            ParameterType::Bool => value.is_boolean(),
            ParameterType::Array => value.is_array(),
            ParameterType::Object | ParameterType::SecureObject => value.is_object(),
        }
    }
}

/// The actions at one level (the flow's top level, or a branch of an `If`) and the order they
/// start in: each after the actions it runs after, ties broken by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    pub actions: BTreeMap<String, Action>,
    pub order: Vec<String>,
}

impl Scope {
    /// The actions in execution order.
    pub fn in_order(&self) -> impl Iterator<Item = &Action> {
        self.order.iter().filter_map(|name| self.actions.get(name))
    }

    /// Every action here and in nested scopes, depth first in execution order.
    pub fn all_actions(&self) -> Vec<&Action> {
        let mut all = Vec::new();
        for action in self.in_order() {
            all.push(action);
            if let ActionKind::If(branches) = &action.kind {
                all.extend(branches.actions.all_actions());
                all.extend(branches.else_actions.all_actions());
            }
        }
        all
    }

    /// Names of the actions nested inside `action` (its `If` branches), at any depth.
    fn nested_names(action: &Action) -> Vec<&str> {
        match &action.kind {
            ActionKind::If(branches) => branches
                .actions
                .all_actions()
                .into_iter()
                .chain(branches.else_actions.all_actions())
                .map(|nested| nested.name.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl FlowDefinition {
    /// Validates a definition given as JSON text; a key written twice in one object is refused
    /// (JSON parsers would otherwise keep the last one silently).
    pub fn from_json(text: &str) -> Result<FlowDefinition, DefinitionError> {
        let value = super::strict_json::parse(text).map_err(|message| DefinitionError {
            path: String::new(),
            offset: None,
            message,
        })?;
        FlowDefinition::parse(&value)
    }

    /// Validates a definition: shape, expressions, references and the action graph.
    pub fn parse(value: &Value) -> Result<FlowDefinition, DefinitionError> {
        let root = JsonPath::root();
        let mut fields = Fields::of(value, &root, "a flow definition")?;
        let schema = match fields.take("$schema") {
            Some(value) => {
                Some(super::read::string(value, &root.key("$schema"), "$schema")?.to_owned())
            }
            None => None,
        };
        let content_version = match fields.take("contentVersion") {
            Some(value) => Some(
                super::read::string(value, &root.key("contentVersion"), "contentVersion")?
                    .to_owned(),
            ),
            None => None,
        };
        let parameters = match fields.take("parameters") {
            Some(value) => read_parameters(value, &root.key("parameters"))?,
            None => BTreeMap::new(),
        };
        if let Some(outputs) = fields.take("outputs")
            && outputs.as_object().is_none_or(|map| !map.is_empty())
        {
            return Err(DefinitionError::at(
                &root.key("outputs"),
                "definition outputs are not supported; leave 'outputs' empty ({})",
            ));
        }
        let mut templates = Templates::new(&parameters);
        let (trigger, trigger_reads) = read_triggers(
            fields.require("triggers")?,
            &root.key("triggers"),
            &mut templates,
        )?;
        if let Some(read) = trigger_reads.first() {
            return Err(DefinitionError::in_expression(
                &read.path,
                read.reference.offset,
                format!(
                    "a trigger cannot read the action '{}': no action has run when the trigger fires",
                    read.reference.name
                ),
            ));
        }
        let actions = read_scope(
            fields.require("actions")?,
            &root.key("actions"),
            &mut templates,
        )?;
        fields.finish()?;
        if actions.actions.is_empty() {
            return Err(DefinitionError::at(
                &root.key("actions"),
                "a flow needs at least one action",
            ));
        }
        let definition = FlowDefinition {
            schema,
            content_version,
            parameters,
            trigger,
            actions,
            source: value.clone(),
        };
        definition.check_names()?;
        check_reads(
            &definition.actions,
            &root.key("actions"),
            &BTreeSet::new(),
            &definition.known_names(),
            &definition.trigger.name,
        )?;
        Ok(definition)
    }

    /// The JSON the definition was read from.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// The top-level actions in execution order.
    pub fn execution_order(&self) -> &[String] {
        &self.actions.order
    }

    /// Any action by name, nested ones included.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions
            .all_actions()
            .into_iter()
            .find(|action| action.name == name)
    }

    /// The connection references the flow names (`host.connectionName` of its trigger and
    /// actions, an Http action's connection): each must be bound before the flow turns on.
    pub fn connection_names(&self) -> BTreeSet<&str> {
        let mut names = BTreeSet::new();
        if let TriggerKind::Dataverse(trigger) = &self.trigger.kind {
            names.insert(trigger.connection_name.as_str());
        }
        for action in self.actions.all_actions() {
            match &action.kind {
                ActionKind::Dataverse(op) => {
                    names.insert(op.connection_name.as_str());
                }
                ActionKind::RunDesktopFlow(run) => {
                    names.insert(run.connection_name.as_str());
                }
                ActionKind::Http(http) => {
                    if let Some(auth) = &http.authentication {
                        names.insert(auth.connection_name.as_str());
                    }
                }
                _ => {}
            }
        }
        names
    }

    /// Features the environment must have for this flow to run (desktop flows need machines).
    pub fn required_features(&self) -> BTreeSet<Feature> {
        self.actions
            .all_actions()
            .into_iter()
            .filter_map(|action| action.kind.required_feature())
            .collect()
    }

    /// The parameters that stand for environment variables (`metadata.schemaName`), by name.
    pub fn environment_variables(&self) -> impl Iterator<Item = (&str, &FlowParameter)> {
        self.parameters
            .iter()
            .filter(|(_, p)| p.schema_name.is_some())
            .map(|(name, p)| (name.as_str(), p))
    }

    /// The parameters' default values, as a run starts with them.
    pub fn default_parameters(&self) -> BTreeMap<String, Value> {
        self.parameters
            .iter()
            .filter_map(|(name, parameter)| Some((name.clone(), parameter.default_value.clone()?)))
            .collect()
    }

    fn known_names(&self) -> BTreeSet<String> {
        self.actions
            .all_actions()
            .into_iter()
            .map(|action| action.name.clone())
            .collect()
    }

    /// Action names are unique across the flow, since `outputs('X')` names one without scope.
    fn check_names(&self) -> Result<(), DefinitionError> {
        let mut seen: BTreeMap<&str, JsonPath> = BTreeMap::new();
        let mut stack = vec![(&self.actions, JsonPath::root().key("actions"))];
        while let Some((scope, path)) = stack.pop() {
            for action in scope.in_order() {
                let at = path.key(&action.name);
                if let Some(first) = seen.get(action.name.as_str()) {
                    return Err(DefinitionError::at(
                        &at,
                        format!(
                            "the action name '{}' is already used at {first}: action names are unique in a flow",
                            action.name
                        ),
                    ));
                }
                seen.insert(&action.name, at.clone());
                if let ActionKind::If(branches) = &action.kind {
                    stack.push((&branches.actions, at.key("actions")));
                    stack.push((&branches.else_actions, at.key("else").key("actions")));
                }
            }
        }
        Ok(())
    }
}

impl Serialize for FlowDefinition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FlowDefinition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        FlowDefinition::parse(&value).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<Value> for FlowDefinition {
    type Error = DefinitionError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        FlowDefinition::parse(&value)
    }
}

fn read_parameters(
    value: &Value,
    path: &JsonPath,
) -> Result<BTreeMap<String, FlowParameter>, DefinitionError> {
    let Value::Object(map) = value else {
        return Err(DefinitionError::at(
            path,
            format!("parameters must be an object, found {}", kind(value)),
        ));
    };
    let mut parameters = BTreeMap::new();
    for (name, body) in map {
        let at = path.key(name);
        let mut fields = Fields::of(body, &at, "a parameter")?;
        let kind = PARAMETER_KINDS
            .get(choice(
                fields.require("type")?,
                &at.key("type"),
                "parameter type",
                &PARAMETER_TYPES,
            )?)
            .copied()
            .unwrap_or(ParameterType::Object);
        let default_value = fields.take("defaultValue").cloned();
        if let Some(default) = &default_value
            && !kind.accepts(default)
        {
            return Err(DefinitionError::at(
                &at.key("defaultValue"),
                format!(
                    "the default value is {}, which a {:?} parameter cannot hold",
                    super::read::kind(default),
                    kind
                ),
            ));
        }
        let schema_name = match fields.take("metadata").and_then(|m| m.get("schemaName")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(other) => {
                return Err(DefinitionError::at(
                    &at.key("metadata").key("schemaName"),
                    format!(
                        "schemaName names an environment variable and must be its schema name, found {}",
                        super::read::kind(other)
                    ),
                ));
            }
        };
        fields.take("allowedValues");
        fields.finish()?;
        parameters.insert(
            name.clone(),
            FlowParameter {
                kind,
                default_value,
                schema_name,
            },
        );
    }
    Ok(parameters)
}

/// Reads the actions of one scope and orders them.
pub(super) fn read_scope(
    value: &Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
) -> Result<Scope, DefinitionError> {
    let Value::Object(map) = value else {
        return Err(DefinitionError::at(
            path,
            format!(
                "actions must be an object of named actions, found {}",
                kind(value)
            ),
        ));
    };
    let mut actions = BTreeMap::new();
    for (name, body) in map {
        let action = read_action(name, body, &path.key(name), templates)?;
        actions.insert(name.clone(), action);
    }
    let order = execution_order(&actions, path)?;
    Ok(Scope { actions, order })
}

/// Kahn's algorithm over `runAfter`, smallest name first among the ready ones; a target that
/// is missing, in another scope, or part of a cycle is refused at that action's `runAfter`.
fn execution_order(
    actions: &BTreeMap<String, Action>,
    path: &JsonPath,
) -> Result<Vec<String>, DefinitionError> {
    for action in actions.values() {
        for target in action.run_after.keys() {
            if !actions.contains_key(target) {
                let at = path.key(&action.name).key("runAfter").key(target);
                let hint = did_you_mean(target, actions.keys().map(String::as_str))
                    .map(|close| format!(" (did you mean '{close}'?)"))
                    .unwrap_or_default();
                return Err(DefinitionError::at(
                    &at,
                    format!(
                        "'{}' runs after '{target}', which is not an action at this level{hint}; runAfter names actions of the same scope",
                        action.name
                    ),
                ));
            }
        }
    }
    let mut waiting: BTreeMap<&str, usize> = actions
        .values()
        .map(|action| (action.name.as_str(), action.run_after.len()))
        .collect();
    let mut ready: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut order = Vec::with_capacity(actions.len());
    while let Some(name) = ready.pop_first() {
        waiting.remove(name);
        order.push(name.to_owned());
        for action in actions.values() {
            if action.run_after.contains_key(name)
                && let Some(count) = waiting.get_mut(action.name.as_str())
            {
                *count -= 1;
                if *count == 0 {
                    ready.insert(&action.name);
                }
            }
        }
    }
    if let Some((&start, _)) = waiting.iter().next() {
        let cycle = find_cycle(actions, start, &waiting);
        return Err(DefinitionError::at(
            &path
                .key(cycle.first().copied().unwrap_or(start))
                .key("runAfter"),
            format!(
                "these actions wait for each other in a cycle: {}",
                cycle.join(" → ")
            ),
        ));
    }
    Ok(order)
}

/// Follows `runAfter` from `start` among the actions that never became ready until a name
/// repeats, and returns that loop (first name repeated at the end).
fn find_cycle<'a>(
    actions: &'a BTreeMap<String, Action>,
    start: &'a str,
    stuck: &BTreeMap<&str, usize>,
) -> Vec<&'a str> {
    let mut trail: Vec<&str> = Vec::new();
    let mut current = start;
    loop {
        if let Some(at) = trail.iter().position(|name| *name == current) {
            let mut cycle: Vec<&str> = trail.split_off(at);
            cycle.push(current);
            return cycle;
        }
        trail.push(current);
        let next = actions.get(current).and_then(|action| {
            action
                .run_after
                .keys()
                .find(|target| stuck.contains_key(target.as_str()))
        });
        match next {
            Some(next) => current = next,
            None => return trail,
        }
    }
}

/// Every `outputs('X')`/`body('X')`/`actions('X')` must name an action that has finished
/// when the reading action starts: an ancestor through `runAfter` in its scope or an enclosing
/// one, or an action nested inside such an ancestor.
fn check_reads(
    scope: &Scope,
    path: &JsonPath,
    inherited: &BTreeSet<&str>,
    known: &BTreeSet<String>,
    trigger: &str,
) -> Result<(), DefinitionError> {
    for action in scope.in_order() {
        let mut before = inherited.clone();
        for ancestor in ancestors(scope, &action.name) {
            before.insert(ancestor);
            if let Some(done) = scope.actions.get(ancestor) {
                before.extend(Scope::nested_names(done));
            }
        }
        for Read {
            path: at,
            reference,
        } in &action.reads
        {
            if reference.kind != ReferenceKind::Action {
                continue;
            }
            let name = reference.name.as_str();
            let problem = if name == trigger {
                Some(format!(
                    "'{name}' is the trigger: read it with triggerOutputs() or triggerBody()"
                ))
            } else if !known.contains(name) {
                let hint = did_you_mean(name, known.iter().map(String::as_str))
                    .map(|close| format!(" (did you mean '{close}'?)"))
                    .unwrap_or_default();
                Some(format!("there is no action named '{name}'{hint}"))
            } else if name == action.name {
                Some(format!("'{name}' cannot read its own outputs"))
            } else if !before.contains(name) {
                Some(format!(
                    "'{}' reads '{name}', which does not run before it: add '{name}' to its runAfter (or to an action it runs after)",
                    action.name
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(DefinitionError::in_expression(
                    at,
                    reference.offset,
                    problem,
                ));
            }
        }
        if let ActionKind::If(branches) = &action.kind {
            let at = path.key(&action.name);
            check_reads(
                &branches.actions,
                &at.key("actions"),
                &before,
                known,
                trigger,
            )?;
            check_reads(
                &branches.else_actions,
                &at.key("else").key("actions"),
                &before,
                known,
                trigger,
            )?;
        }
    }
    Ok(())
}

/// The actions `name` runs after, directly or through others, in its scope.
fn ancestors<'a>(scope: &'a Scope, name: &str) -> BTreeSet<&'a str> {
    let mut found = BTreeSet::new();
    let mut pending: Vec<&str> = scope
        .actions
        .get(name)
        .map(|action| action.run_after.keys().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(next) = pending.pop() {
        if let Some((key, action)) = scope.actions.get_key_value(next)
            && found.insert(key.as_str())
        {
            pending.extend(action.run_after.keys().map(String::as_str));
        }
    }
    found
}
