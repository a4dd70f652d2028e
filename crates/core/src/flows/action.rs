//! A flow's actions as Power Automate exports them: Dataverse operations through a connection
//! reference (`OpenApiConnection`), `If`, `Compose`, `Http`, `Terminate`, and desktop flow runs
//! (reserved: they validate, and need the machines feature to run).

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{DefinitionError, JsonPath};
use super::expression::{Function, Template};
use super::read::{Fields, Read, Templates, choice, fixed_string, kind, quoted_list};
use super::trigger::DATAVERSE_API;

/// The desktop flows connector's API name.
pub const DESKTOP_FLOW_API: &str = "shared_uiflow";

/// One action. Names are unique in the whole flow, nested ones included.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub name: String,
    /// Siblings this action waits for, and the outcomes of theirs it runs after.
    pub run_after: BTreeMap<String, Vec<RunStatus>>,
    pub kind: ActionKind,
    pub description: Option<String>,
    /// Where this action's expressions name other actions (checked against `run_after`).
    pub(crate) reads: Vec<Read>,
}

/// The outcome of an action, as `runAfter` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunStatus {
    Succeeded,
    Failed,
    Skipped,
    TimedOut,
}

const RUN_STATUSES: [&str; 4] = ["Succeeded", "Failed", "Skipped", "TimedOut"];

/// What a run does next with an action, given the statuses of the siblings it runs after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunDecision {
    /// Some action it runs after has not finished yet.
    Wait,
    Run,
    /// An action it runs after finished with a status it does not run after: it is skipped
    /// (and actions after it see `Skipped`).
    Skip,
}

impl Action {
    /// Logic Apps' rule: run once every `runAfter` action has finished with one of the listed
    /// statuses; skip as soon as one finished with another. `finished` answers a sibling's
    /// status once it has one.
    pub fn decide(&self, finished: impl Fn(&str) -> Option<RunStatus>) -> RunDecision {
        let mut waiting = false;
        for (name, statuses) in &self.run_after {
            match finished(name) {
                Some(status) if statuses.contains(&status) => {}
                Some(_) => return RunDecision::Skip,
                None => waiting = true,
            }
        }
        if waiting {
            RunDecision::Wait
        } else {
            RunDecision::Run
        }
    }
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Failed => "Failed",
            RunStatus::Skipped => "Skipped",
            RunStatus::TimedOut => "TimedOut",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ActionKind {
    /// Boxed: the largest kind by far.
    Dataverse(Box<DataverseAction>),
    If(IfAction),
    /// `Compose`: its outputs are its inputs, evaluated.
    Compose(Template),
    Http(HttpAction),
    Terminate(Terminate),
    RunDesktopFlow(DesktopFlowRun),
}

impl ActionKind {
    /// A feature the environment needs before a flow with this action can run.
    pub fn required_feature(&self) -> Option<Feature> {
        match self {
            ActionKind::RunDesktopFlow(_) => Some(Feature::Machines),
            _ => None,
        }
    }
}

/// Optional parts of Keyway a flow may depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// Machines and machine groups, which desktop flows run on.
    Machines,
}

/// A Dataverse operation (`OpenApiConnection` on `shared_commondataserviceforapps`).
#[derive(Clone, Debug, PartialEq)]
pub struct DataverseAction {
    /// The key of the connection reference the flow uses (`host.connectionName`).
    pub connection_name: String,
    pub operation: DataverseOperation,
    /// The table's entity set name as exports write it (`contacts`).
    pub entity_name: String,
    pub record_id: Option<Template>,
    /// Column values (`item/lastname`, or the members of `item`), keyed by column.
    pub item: BTreeMap<String, Template>,
    pub filter: Option<Template>,
    pub select: Option<Template>,
    pub order_by: Option<Template>,
    pub top: Option<Template>,
    pub expand: Option<Template>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataverseOperation {
    /// "Add a new row".
    CreateRecord,
    /// "Update a row".
    UpdateRecord,
    /// "Delete a row".
    DeleteRecord,
    /// "Get a row by ID".
    GetItem,
    /// "List rows".
    ListRecords,
}

const DATAVERSE_OPERATIONS: [&str; 5] = [
    "CreateRecord",
    "UpdateRecord",
    "DeleteRecord",
    "GetItem",
    "ListRecords",
];

impl DataverseOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateRecord => "CreateRecord",
            Self::UpdateRecord => "UpdateRecord",
            Self::DeleteRecord => "DeleteRecord",
            Self::GetItem => "GetItem",
            Self::ListRecords => "ListRecords",
        }
    }

    /// The `inputs.parameters` this operation takes besides `entityName` and `item/…`.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::CreateRecord => &[],
            Self::UpdateRecord | Self::DeleteRecord => &["recordId"],
            Self::GetItem => &["recordId", "$select", "$expand"],
            Self::ListRecords => &["$filter", "$select", "$orderby", "$top", "$expand"],
        }
    }

    fn parameters_what(self) -> &'static str {
        match self {
            Self::CreateRecord => "CreateRecord's parameters",
            Self::UpdateRecord => "UpdateRecord's parameters",
            Self::DeleteRecord => "DeleteRecord's parameters",
            Self::GetItem => "GetItem's parameters",
            Self::ListRecords => "ListRecords' parameters",
        }
    }

    fn takes_item(self) -> bool {
        matches!(self, Self::CreateRecord | Self::UpdateRecord)
    }
}

/// `If`: a condition and two branches (either may be empty).
#[derive(Clone, Debug, PartialEq)]
pub struct IfAction {
    pub condition: Condition,
    pub actions: super::definition::Scope,
    pub else_actions: super::definition::Scope,
}

/// An `If`'s `expression`: a boolean expression string, or the designer's condition object
/// (`{"and": [{"equals": ["@…", "x"]}]}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    Expression(Template),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        function: Function,
        left: Template,
        right: Template,
    },
}

const COMPARISONS: [&str; 8] = [
    "equals",
    "contains",
    "startsWith",
    "endsWith",
    "greater",
    "greaterOrEquals",
    "less",
    "lessOrEquals",
];

impl Condition {
    pub(super) fn read(
        value: &Value,
        path: &JsonPath,
        templates: &mut Templates<'_>,
    ) -> Result<Condition, DefinitionError> {
        match value {
            Value::String(_) | Value::Bool(_) => {
                let template = templates.parse(value, path)?;
                match &template {
                    Template::Expression(_) | Template::Literal(Value::Bool(_)) => {
                        Ok(Condition::Expression(template))
                    }
                    _ => Err(DefinitionError::at(
                        path,
                        "a condition must be an expression starting with @ (such as @equals(…)) or a condition object",
                    )),
                }
            }
            Value::Object(map) if map.len() == 1 => {
                let Some((operator, operand)) = map.iter().next() else {
                    return Err(DefinitionError::at(path, "a condition object is empty"));
                };
                let at = path.key(operator);
                match operator.as_str() {
                    "and" | "or" => {
                        let Value::Array(items) = operand else {
                            return Err(DefinitionError::at(
                                &at,
                                format!("'{operator}' takes an array of conditions"),
                            ));
                        };
                        if items.is_empty() {
                            return Err(DefinitionError::at(
                                &at,
                                format!("'{operator}' needs at least one condition"),
                            ));
                        }
                        let all = items
                            .iter()
                            .enumerate()
                            .map(|(n, item)| Condition::read(item, &at.index(n), templates))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(if operator == "and" {
                            Condition::And(all)
                        } else {
                            Condition::Or(all)
                        })
                    }
                    "not" => Ok(Condition::Not(Box::new(Condition::read(
                        operand, &at, templates,
                    )?))),
                    name => {
                        let Some(function) = COMPARISONS
                            .iter()
                            .find(|known| known.eq_ignore_ascii_case(name))
                            .and_then(|known| Function::from_name(known))
                        else {
                            return Err(DefinitionError::at(
                                &at,
                                format!(
                                    "unknown condition operator '{name}'; use 'and', 'or', 'not', {}",
                                    quoted_list(&COMPARISONS)
                                ),
                            ));
                        };
                        let Value::Array(pair) = operand else {
                            return Err(DefinitionError::at(
                                &at,
                                format!("'{name}' takes an array of two values"),
                            ));
                        };
                        let [left, right] = pair.as_slice() else {
                            return Err(DefinitionError::at(
                                &at,
                                format!("'{name}' compares two values, {} given", pair.len()),
                            ));
                        };
                        Ok(Condition::Compare {
                            function,
                            left: templates.parse(left, &at.index(0))?,
                            right: templates.parse(right, &at.index(1))?,
                        })
                    }
                }
            }
            other => Err(DefinitionError::at(
                path,
                format!(
                    "a condition must be an expression string or an object with one operator, found {}",
                    match other {
                        Value::Object(map) => format!("an object with {} properties", map.len()),
                        other => kind(other).to_owned(),
                    }
                ),
            )),
        }
    }
}

/// `Http`: a call whose bearer token comes from a connection (Keyway's authentication type
/// `Connection`), so no secret is written in the definition.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpAction {
    pub method: String,
    pub uri: Template,
    pub headers: BTreeMap<String, Template>,
    pub queries: BTreeMap<String, Template>,
    pub body: Option<Template>,
    pub authentication: Option<HttpAuthentication>,
}

/// `{"type": "Connection", "connectionName": "<reference>", "audience": "<resource>"?}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAuthentication {
    pub connection_name: String,
    /// The resource the token is for; absent, the connection's own resource.
    pub audience: Option<String>,
}

const HTTP_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `Terminate`: ends the run with a status (and for `Failed`, an error code and message).
#[derive(Clone, Debug, PartialEq)]
pub struct Terminate {
    pub status: TerminateStatus,
    pub code: Option<Template>,
    pub message: Option<Template>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminateStatus {
    Succeeded,
    Failed,
    Cancelled,
}

/// A desktop flow run (`RunDesktopFlow`, or an export's `OpenApiConnection` on
/// `shared_uiflow` / `RunUIFlow_V2`).
#[derive(Clone, Debug, PartialEq)]
pub struct DesktopFlowRun {
    pub connection_name: String,
    /// The desktop flow's id (`desktopFlowId`, or an export's `uiFlowId` / `workflowId`).
    pub desktop_flow_id: Template,
    pub run_mode: DesktopRunMode,
    pub run_priority: DesktopRunPriority,
    /// Seconds the run may take (default 3 hours, at most 24).
    pub timeout: Option<Template>,
    /// The desktop flow's input variables (`item/<name>`).
    pub inputs: BTreeMap<String, Template>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DesktopRunMode {
    Attended,
    Unattended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DesktopRunPriority {
    Normal,
    High,
}

const ACTION_TYPES: [&str; 6] = [
    "OpenApiConnection",
    "If",
    "Compose",
    "Http",
    "Terminate",
    "RunDesktopFlow",
];

/// What a connector action's or trigger's `host` says.
pub(super) struct ConnectorHost {
    pub(super) connection_name: String,
    pub(super) operation_id: String,
    pub(super) api_id: Option<String>,
}

impl ConnectorHost {
    /// Whether `apiId` (when given) names `api` (`/providers/Microsoft.PowerApps/apis/<api>`).
    pub(super) fn api_is(&self, api: &str) -> bool {
        self.api_id.as_deref().is_none_or(|id| {
            id.rsplit('/')
                .next()
                .is_some_and(|last| last.eq_ignore_ascii_case(api))
        })
    }
}

/// Reads `host`; `default_operation` stands in for an absent `operationId` where the action
/// type already says what runs (`RunDesktopFlow`).
pub(super) fn read_connector_host(
    value: &Value,
    path: &JsonPath,
    default_operation: Option<&str>,
) -> Result<ConnectorHost, DefinitionError> {
    let mut host = Fields::of(value, path, "a connector host")?;
    if host.take("connection").is_some() {
        return Err(DefinitionError::at(
            &host.path_of("connection"),
            "name the connection reference with host.connectionName, as solution flows do; host.connection is not supported",
        ));
    }
    let connection_name = fixed_string(
        host.require("connectionName")?,
        &host.path_of("connectionName"),
        "connectionName",
    )?
    .to_owned();
    let operation_id = match (host.take("operationId"), default_operation) {
        (Some(value), _) => {
            fixed_string(value, &host.path_of("operationId"), "operationId")?.to_owned()
        }
        (None, Some(default)) => default.to_owned(),
        (None, None) => {
            host.require("operationId")?;
            String::new()
        }
    };
    let api_id = match host.take("apiId") {
        Some(value) => Some(fixed_string(value, &host.path_of("apiId"), "apiId")?.to_owned()),
        None => None,
    };
    host.finish()?;
    Ok(ConnectorHost {
        connection_name,
        operation_id,
        api_id,
    })
}

/// Reads one action (not yet checked against its siblings).
pub(super) fn read_action(
    name: &str,
    value: &Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
) -> Result<Action, DefinitionError> {
    use super::definition::read_scope as scope;
    check_name(name, path)?;
    let mut fields = Fields::of(value, path, "an action")?;
    let type_path = fields.path_of("type");
    let action_type = choice(
        fields.require("type")?,
        &type_path,
        "action type",
        &ACTION_TYPES,
    )?;
    fields.take("metadata");
    let description = match fields.take("description") {
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            return Err(DefinitionError::at(
                &fields.path_of("description"),
                format!("description must be a string, found {}", kind(other)),
            ));
        }
        None => None,
    };
    let run_after = match fields.take("runAfter") {
        Some(value) => read_run_after(value, &fields.path_of("runAfter"))?,
        None => BTreeMap::new(),
    };
    let inputs_path = fields.path_of("inputs");
    let kind = match action_type {
        0 => read_connector_action(fields.require("inputs")?, &inputs_path, templates, false)?,
        1 => {
            let condition = Condition::read(
                fields.require("expression")?,
                &fields.path_of("expression"),
                templates,
            )?;
            let empty = Value::Object(serde_json::Map::new());
            let actions = scope(
                fields.take("actions").unwrap_or(&empty),
                &fields.path_of("actions"),
                templates,
            )?;
            let else_actions = match fields.take("else") {
                Some(otherwise) => {
                    let mut branch =
                        Fields::of(otherwise, &fields.path_of("else"), "an If's else branch")?;
                    let branch_path = branch.path_of("actions");
                    let actions = scope(
                        branch.take("actions").unwrap_or(&empty),
                        &branch_path,
                        templates,
                    )?;
                    branch.finish()?;
                    actions
                }
                None => super::definition::Scope::default(),
            };
            ActionKind::If(IfAction {
                condition,
                actions,
                else_actions,
            })
        }
        2 => ActionKind::Compose(templates.parse(fields.require("inputs")?, &inputs_path)?),
        3 => ActionKind::Http(read_http(
            fields.require("inputs")?,
            &inputs_path,
            templates,
        )?),
        4 => ActionKind::Terminate(read_terminate(
            fields.require("inputs")?,
            &inputs_path,
            templates,
        )?),
        _ => read_connector_action(fields.require("inputs")?, &inputs_path, templates, true)?,
    };
    fields.finish()?;
    Ok(Action {
        name: name.to_owned(),
        run_after,
        kind,
        description,
        reads: templates.take_reads(),
    })
}

/// Logic Apps' rule for action names: at most 80 characters, none of `< > % & \ ? /`.
fn check_name(name: &str, path: &JsonPath) -> Result<(), DefinitionError> {
    let bad = name
        .chars()
        .find(|c| matches!(c, '<' | '>' | '%' | '&' | '\\' | '?' | '/') || c.is_control());
    if name.trim().is_empty() || name.chars().count() > 80 || bad.is_some() {
        return Err(DefinitionError::at(
            path,
            format!(
                "'{name}' is not a valid action name: use 1 to 80 characters without < > % & \\ ? / (the designer writes Create_a_row)"
            ),
        ));
    }
    Ok(())
}

fn read_run_after(
    value: &Value,
    path: &JsonPath,
) -> Result<BTreeMap<String, Vec<RunStatus>>, DefinitionError> {
    let Value::Object(map) = value else {
        return Err(DefinitionError::at(
            path,
            "runAfter must be an object such as {\"Get_a_row\": [\"Succeeded\"]}",
        ));
    };
    let mut run_after = BTreeMap::new();
    for (name, statuses) in map {
        let at = path.key(name);
        let Value::Array(items) = statuses else {
            return Err(DefinitionError::at(
                &at,
                "list the statuses to run after, such as [\"Succeeded\"]",
            ));
        };
        if items.is_empty() {
            return Err(DefinitionError::at(
                &at,
                "list at least one status: Succeeded, Failed, Skipped or TimedOut",
            ));
        }
        let mut list = Vec::new();
        for (n, item) in items.iter().enumerate() {
            let status = match choice(item, &at.index(n), "run status", &RUN_STATUSES)? {
                0 => RunStatus::Succeeded,
                1 => RunStatus::Failed,
                2 => RunStatus::Skipped,
                _ => RunStatus::TimedOut,
            };
            if !list.contains(&status) {
                list.push(status);
            }
        }
        run_after.insert(name.clone(), list);
    }
    Ok(run_after)
}

/// `OpenApiConnection` (a Dataverse operation or a desktop flow run) or `RunDesktopFlow`.
fn read_connector_action(
    value: &Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
    desktop: bool,
) -> Result<ActionKind, DefinitionError> {
    let mut inputs = Fields::of(value, path, "a connector action's inputs")?;
    let host_path = inputs.path_of("host");
    let host = read_connector_host(
        inputs.require("host")?,
        &host_path,
        desktop.then_some("RunUIFlow_V2"),
    )?;
    if let Some(authentication) = inputs.take("authentication") {
        templates.parse(authentication, &inputs.path_of("authentication"))?;
    }
    let params_path = inputs.path_of("parameters");
    let empty = Value::Object(serde_json::Map::new());
    let parameters = inputs.take("parameters").unwrap_or(&empty);
    inputs.finish()?;
    let is_desktop = desktop
        || (host.api_id.is_some() && host.api_is(DESKTOP_FLOW_API))
        || host.operation_id == "RunUIFlow_V2";
    if is_desktop {
        if !host.api_is(DESKTOP_FLOW_API) {
            return Err(DefinitionError::at(
                &host_path.key("apiId"),
                format!("a desktop flow runs through the {DESKTOP_FLOW_API} connector"),
            ));
        }
        return read_desktop_flow(host, parameters, &params_path, templates)
            .map(ActionKind::RunDesktopFlow);
    }
    if !host.api_is(DATAVERSE_API) {
        return Err(DefinitionError::at(
            &host_path.key("apiId"),
            format!(
                "'{}' is not a connector Keyway runs: connector actions use Dataverse ({DATAVERSE_API}) or desktop flows ({DESKTOP_FLOW_API})",
                host.api_id.as_deref().unwrap_or("")
            ),
        ));
    }
    let operation = match choice(
        &Value::String(host.operation_id.clone()),
        &host_path.key("operationId"),
        "Dataverse operation",
        &DATAVERSE_OPERATIONS,
    )? {
        0 => DataverseOperation::CreateRecord,
        1 => DataverseOperation::UpdateRecord,
        2 => DataverseOperation::DeleteRecord,
        3 => DataverseOperation::GetItem,
        _ => DataverseOperation::ListRecords,
    };
    read_dataverse(
        host.connection_name,
        operation,
        parameters,
        &params_path,
        templates,
    )
    .map(|op| ActionKind::Dataverse(Box::new(op)))
}

fn read_dataverse(
    connection_name: String,
    operation: DataverseOperation,
    value: &Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
) -> Result<DataverseAction, DefinitionError> {
    let mut params = Fields::of(value, path, operation.parameters_what())?;
    let entity_name = fixed_string(
        params.require("entityName")?,
        &params.path_of("entityName"),
        "entityName",
    )?
    .to_owned();
    let mut optional = |key: &'static str| -> Result<Option<Template>, DefinitionError> {
        if !operation.parameters().contains(&key) {
            return Ok(None);
        }
        match params.take(key) {
            Some(value) => templates.parse(value, &path.key(key)).map(Some),
            None => Ok(None),
        }
    };
    let record_id = optional("recordId")?;
    let (filter, select, order_by, top, expand) = (
        optional("$filter")?,
        optional("$select")?,
        optional("$orderby")?,
        optional("$top")?,
        optional("$expand")?,
    );
    if record_id.is_none() && operation.parameters().contains(&"recordId") {
        return Err(DefinitionError::at(
            path,
            format!("{} needs 'recordId', the row's id", operation.as_str()),
        ));
    }
    let mut item = BTreeMap::new();
    if operation.takes_item() {
        if let Some(whole) = params.take("item") {
            let at = path.key("item");
            let Value::Object(columns) = whole else {
                return Err(DefinitionError::at(
                    &at,
                    "item must be an object of column values",
                ));
            };
            for (column, value) in columns {
                item.insert(column.clone(), templates.parse(value, &at.key(column))?);
            }
        }
        for (key, value) in params.take_matching(|key| key.starts_with("item/")) {
            let column = key.trim_start_matches("item/");
            if column.is_empty() || item.contains_key(column) {
                return Err(DefinitionError::at(
                    &path.key(key),
                    format!("the column '{column}' is empty or given twice"),
                ));
            }
            item.insert(column.to_owned(), templates.parse(value, &path.key(key))?);
        }
    }
    params.finish()?;
    Ok(DataverseAction {
        connection_name,
        operation,
        entity_name,
        record_id,
        item,
        filter,
        select,
        order_by,
        top,
        expand,
    })
}

fn read_desktop_flow(
    host: ConnectorHost,
    value: &Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
) -> Result<DesktopFlowRun, DefinitionError> {
    let mut params = Fields::of(value, path, "the desktop flow run's parameters")?;
    let ids: Vec<(&'static str, &Value)> = ["desktopFlowId", "uiFlowId", "workflowId"]
        .into_iter()
        .filter_map(|key| params.take(key).map(|value| (key, value)))
        .collect();
    let (id_key, id) = match ids.as_slice() {
        [one] => *one,
        [] => {
            return Err(DefinitionError::at(
                path,
                "a desktop flow run needs 'desktopFlowId', the desktop flow's id",
            ));
        }
        _ => {
            return Err(DefinitionError::at(
                path,
                "give the desktop flow's id once, as 'desktopFlowId'",
            ));
        }
    };
    let desktop_flow_id = templates.parse(id, &path.key(id_key))?;
    let run_mode = match params.take("runMode") {
        Some(value) => match choice(
            value,
            &path.key("runMode"),
            "runMode",
            &["attended", "unattended"],
        )? {
            0 => DesktopRunMode::Attended,
            _ => DesktopRunMode::Unattended,
        },
        None => {
            return Err(DefinitionError::at(
                path,
                "a desktop flow run needs 'runMode': attended or unattended",
            ));
        }
    };
    let run_priority = match params.take("runPriority") {
        Some(value) => match choice(
            value,
            &path.key("runPriority"),
            "runPriority",
            &["normal", "high"],
        )? {
            0 => DesktopRunPriority::Normal,
            _ => DesktopRunPriority::High,
        },
        None => DesktopRunPriority::Normal,
    };
    if let Some(value) = params.take("uiFlowType") {
        choice(
            value,
            &path.key("uiFlowType"),
            "uiFlowType",
            &["desktopFlow"],
        )?;
    }
    let timeout = match params.take("timeout") {
        Some(value) => Some(templates.parse(value, &path.key("timeout"))?),
        None => None,
    };
    let mut inputs = BTreeMap::new();
    for (key, value) in params.take_matching(|key| key.starts_with("item/")) {
        let name = key.trim_start_matches("item/");
        inputs.insert(name.to_owned(), templates.parse(value, &path.key(key))?);
    }
    params.finish()?;
    Ok(DesktopFlowRun {
        connection_name: host.connection_name,
        desktop_flow_id,
        run_mode,
        run_priority,
        timeout,
        inputs,
    })
}

fn read_http(
    value: &Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
) -> Result<HttpAction, DefinitionError> {
    let mut inputs = Fields::of(value, path, "an Http action's inputs")?;
    let method = HTTP_METHODS
        .get(choice(
            inputs.require("method")?,
            &inputs.path_of("method"),
            "HTTP method",
            &HTTP_METHODS,
        )?)
        .copied()
        .unwrap_or("GET")
        .to_owned();
    let uri = templates.parse(inputs.require("uri")?, &inputs.path_of("uri"))?;
    let mut map = |key: &'static str,
                   inputs: &mut Fields<'_>|
     -> Result<BTreeMap<String, Template>, DefinitionError> {
        let mut out = BTreeMap::new();
        if let Some(value) = inputs.take(key) {
            let at = inputs.path_of(key);
            let Value::Object(entries) = value else {
                return Err(DefinitionError::at(
                    &at,
                    format!("{key} must be an object of names and values"),
                ));
            };
            for (name, item) in entries {
                out.insert(name.clone(), templates.parse(item, &at.key(name))?);
            }
        }
        Ok(out)
    };
    let headers = map("headers", &mut inputs)?;
    let queries = map("queries", &mut inputs)?;
    if headers
        .keys()
        .any(|name| name.eq_ignore_ascii_case("authorization"))
    {
        return Err(DefinitionError::at(
            &inputs.path_of("headers"),
            "an Authorization header would put a secret in the definition: use authentication {\"type\": \"Connection\", \"connectionName\": …}",
        ));
    }
    let body = match inputs.take("body") {
        Some(value) => Some(templates.parse(value, &inputs.path_of("body"))?),
        None => None,
    };
    let authentication = match inputs.take("authentication") {
        Some(value) => read_http_authentication(value, &inputs.path_of("authentication"))?,
        None => None,
    };
    inputs.finish()?;
    Ok(HttpAction {
        method,
        uri,
        headers,
        queries,
        body,
        authentication,
    })
}

fn read_http_authentication(
    value: &Value,
    path: &JsonPath,
) -> Result<Option<HttpAuthentication>, DefinitionError> {
    let mut fields = Fields::of(value, path, "an Http action's authentication")?;
    let type_path = fields.path_of("type");
    let kind = fixed_string(
        fields.require("type")?,
        &type_path,
        "the authentication type",
    )?;
    if kind.eq_ignore_ascii_case("None") {
        fields.finish()?;
        return Ok(None);
    }
    if !kind.eq_ignore_ascii_case("Connection") {
        return Err(DefinitionError::at(
            &type_path,
            format!(
                "the authentication type '{kind}' would keep a secret in the definition: use {{\"type\": \"Connection\", \"connectionName\": \"<connection reference>\"}} so the token comes from a connection"
            ),
        ));
    }
    let connection_name = fixed_string(
        fields.require("connectionName")?,
        &fields.path_of("connectionName"),
        "connectionName",
    )?
    .to_owned();
    let audience = match fields.take("audience") {
        Some(value) => {
            Some(fixed_string(value, &fields.path_of("audience"), "audience")?.to_owned())
        }
        None => None,
    };
    fields.finish()?;
    Ok(Some(HttpAuthentication {
        connection_name,
        audience,
    }))
}

fn read_terminate(
    value: &Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
) -> Result<Terminate, DefinitionError> {
    let mut inputs = Fields::of(value, path, "a Terminate action's inputs")?;
    let status = match choice(
        inputs.require("runStatus")?,
        &inputs.path_of("runStatus"),
        "runStatus",
        &["Succeeded", "Failed", "Cancelled"],
    )? {
        0 => TerminateStatus::Succeeded,
        1 => TerminateStatus::Failed,
        _ => TerminateStatus::Cancelled,
    };
    let (mut code, mut message) = (None, None);
    if let Some(error) = inputs.take("runError") {
        let at = inputs.path_of("runError");
        if status != TerminateStatus::Failed {
            return Err(DefinitionError::at(
                &at,
                "runError goes with runStatus Failed only",
            ));
        }
        let mut error = Fields::of(error, &at, "a runError")?;
        if let Some(value) = error.take("code") {
            code = Some(templates.parse(value, &at.key("code"))?);
        }
        if let Some(value) = error.take("message") {
            message = Some(templates.parse(value, &at.key("message"))?);
        }
        error.finish()?;
    }
    inputs.finish()?;
    Ok(Terminate {
        status,
        code,
        message,
    })
}
