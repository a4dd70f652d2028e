//! A flow's one trigger: Dataverse's "When a row is added, modified or deleted"
//! (`OpenApiConnectionWebhook` / `SubscribeWebhookTrigger`), an HTTP or manual `Request`, or a
//! `Recurrence` schedule, read from the shapes Power Automate exports.

use serde_json::Value;
use time::Weekday;

use super::action::{Condition, read_connector_host};
use super::datetime::parse_timestamp;
use super::error::{DefinitionError, JsonPath};
use super::read::{Fields, Read, Templates, choice, code, fixed_string, string};

/// The Dataverse connector's API name, as `host.apiId` ends and connection references name it.
pub const DATAVERSE_API: &str = "shared_commondataserviceforapps";

#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub name: String,
    pub kind: TriggerKind,
    /// Trigger conditions (`conditions: [{"expression": "@…"}]`): all must be true for a run.
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TriggerKind {
    Dataverse(DataverseTrigger),
    Request(RequestTrigger),
    Recurrence(Recurrence),
}

impl TriggerKind {
    /// The trigger's kind as the store files it: `dataverse`, `manual` (any Request) or
    /// `recurrence`.
    pub fn name(&self) -> &'static str {
        match self {
            TriggerKind::Dataverse(_) => "dataverse",
            TriggerKind::Request(_) => "manual",
            TriggerKind::Recurrence(_) => "recurrence",
        }
    }
}

/// "When a row is added, modified or deleted": a callback registration on a table.
#[derive(Clone, Debug, PartialEq)]
pub struct DataverseTrigger {
    /// The key of the connection reference the flow uses (`host.connectionName`).
    pub connection_name: String,
    pub message: TriggerMessage,
    /// The table's logical name (`subscriptionRequest/entityname`).
    pub entity_name: String,
    pub scope: TriggerScope,
    pub run_as: RunAs,
    /// Only changes to these columns fire it (empty: any change).
    pub filtering_attributes: Vec<String>,
    /// An OData `$filter` the row must match; the server compiles it against the table.
    pub filter_expression: Option<String>,
    /// `subscriptionRequest/postponeuntil`: a timestamp before which runs wait.
    pub postpone_until: Option<super::expression::Template>,
}

/// `subscriptionRequest/message`: which changes fire the trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerMessage {
    Added = 1,
    Deleted = 2,
    Modified = 3,
    AddedOrModified = 4,
    AddedOrDeleted = 5,
    ModifiedOrDeleted = 6,
    All = 7,
}

/// A change to a row, as the trigger sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowChange {
    Added,
    Modified,
    Deleted,
}

impl TriggerMessage {
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Self::Added,
            2 => Self::Deleted,
            3 => Self::Modified,
            4 => Self::AddedOrModified,
            5 => Self::AddedOrDeleted,
            6 => Self::ModifiedOrDeleted,
            7 => Self::All,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn fires_on(self, change: RowChange) -> bool {
        use RowChange::{Added, Deleted, Modified};
        match self {
            Self::Added => change == Added,
            Self::Deleted => change == Deleted,
            Self::Modified => change == Modified,
            Self::AddedOrModified => change != Deleted,
            Self::AddedOrDeleted => change != Modified,
            Self::ModifiedOrDeleted => change != Added,
            Self::All => true,
        }
    }
}

/// `subscriptionRequest/scope`: whose rows fire it, relative to the flow owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerScope {
    User = 1,
    BusinessUnit = 2,
    ParentChildBusinessUnit = 3,
    Organization = 4,
}

impl TriggerScope {
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Self::User,
            2 => Self::BusinessUnit,
            3 => Self::ParentChildBusinessUnit,
            4 => Self::Organization,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// `subscriptionRequest/runas`: whose identity the flow's Dataverse actions use. Absent means
/// the flow owner, as the designer's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunAs {
    ModifyingUser = 1,
    RowOwner = 2,
    FlowOwner = 3,
}

impl RunAs {
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Self::ModifyingUser,
            2 => Self::RowOwner,
            3 => Self::FlowOwner,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// Saving a flow that acts as someone else needs `prvActOnBehalfOfAnotherUser`.
    pub fn acts_on_behalf(self) -> bool {
        self != Self::FlowOwner
    }
}

/// `Request`: started by an HTTP call (`Http`), the flow button (`Button`) or Power Apps.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestTrigger {
    pub kind: RequestKind,
    pub method: Option<String>,
    /// The JSON Schema the request body is described with.
    pub schema: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Http,
    Button,
    PowerAppV2,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Recurrence {
    pub frequency: Frequency,
    pub interval: u32,
    /// As written: local to `time_zone` when one is given, else UTC.
    pub start_time: Option<String>,
    pub time_zone: Option<String>,
    pub schedule: Option<Schedule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frequency {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

const FREQUENCIES: [&str; 6] = ["Second", "Minute", "Hour", "Day", "Week", "Month"];

/// `recurrence.schedule`: the hours, minutes and week days runs happen at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    pub hours: Vec<u8>,
    pub minutes: Vec<u8>,
    pub week_days: Vec<Weekday>,
}

/// The week's days in the order `weekDays` names them (Monday first).
pub(crate) const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

const TRIGGER_TYPES: [&str; 3] = ["OpenApiConnectionWebhook", "Request", "Recurrence"];

/// Reads `triggers`: exactly one.
pub(super) fn read_triggers(
    value: &Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
) -> Result<(Trigger, Vec<Read>), DefinitionError> {
    let Value::Object(map) = value else {
        return Err(DefinitionError::at(
            path,
            "'triggers' must be an object of one named trigger",
        ));
    };
    let mut entries = map.iter();
    let (Some((name, body)), None) = (entries.next(), entries.next()) else {
        let names: Vec<&str> = map.keys().map(String::as_str).collect();
        return Err(DefinitionError::at(
            path,
            if names.is_empty() {
                "a flow needs a trigger".to_owned()
            } else {
                format!(
                    "a flow has exactly one trigger, this one has {}: {}",
                    names.len(),
                    names.join(", ")
                )
            },
        ));
    };
    let path = path.key(name);
    let mut fields = Fields::of(body, &path, "a trigger")?;
    let kind_index = choice(
        fields.require("type")?,
        &fields.path_of("type"),
        "trigger type",
        &TRIGGER_TYPES,
    )?;
    fields.take("metadata");
    fields.take("description");
    let kind = match kind_index {
        0 => TriggerKind::Dataverse(read_dataverse_trigger(
            fields.require("inputs")?,
            &fields.path_of("inputs"),
            templates,
        )?),
        1 => TriggerKind::Request(read_request(&mut fields)?),
        _ => TriggerKind::Recurrence(read_recurrence(
            fields.require("recurrence")?,
            &fields.path_of("recurrence"),
        )?),
    };
    let mut conditions = Vec::new();
    if let Some(list) = fields.take("conditions") {
        let list_path = fields.path_of("conditions");
        let Value::Array(items) = list else {
            return Err(DefinitionError::at(
                &list_path,
                "'conditions' must be an array of {\"expression\": \"@…\"}",
            ));
        };
        for (n, item) in items.iter().enumerate() {
            let item_path = list_path.index(n);
            let mut condition = Fields::of(item, &item_path, "a trigger condition")?;
            let expression = condition.require("expression")?;
            conditions.push(Condition::read(
                expression,
                &condition.path_of("expression"),
                templates,
            )?);
            condition.finish()?;
        }
    }
    fields.finish()?;
    let reads = templates.take_reads();
    Ok((
        Trigger {
            name: name.clone(),
            kind,
            conditions,
        },
        reads,
    ))
}

fn read_dataverse_trigger<'v>(
    value: &'v Value,
    path: &JsonPath,
    templates: &mut Templates<'_>,
) -> Result<DataverseTrigger, DefinitionError> {
    let mut inputs = Fields::of(value, path, "the trigger's inputs")?;
    let host = read_connector_host(inputs.require("host")?, &inputs.path_of("host"), None)?;
    if host.operation_id != "SubscribeWebhookTrigger" || !host.api_is(DATAVERSE_API) {
        return Err(DefinitionError::at(
            &inputs.path_of("host").key("operationId"),
            format!(
                "'{}' is not a trigger Keyway runs: use the Dataverse trigger (apiId …/{DATAVERSE_API}, operationId 'SubscribeWebhookTrigger'), a Request or a Recurrence",
                host.operation_id
            ),
        ));
    }
    if let Some(authentication) = inputs.take("authentication") {
        templates.parse(authentication, &inputs.path_of("authentication"))?;
    }
    let params_path = inputs.path_of("parameters");
    let mut params = Fields::of(
        inputs.require("parameters")?,
        &params_path,
        "the Dataverse trigger's parameters",
    )?;
    inputs.finish()?;

    // Exports write `subscriptionRequest/message`; the bare name is accepted too.
    let mut get = |key: &'static str,
                   long: &'static str|
     -> Result<Option<(&'v Value, JsonPath)>, DefinitionError> {
        match (params.take(long), params.take(key)) {
            (Some(_), Some(_)) => Err(DefinitionError::at(
                &params_path.key(key),
                format!("'{key}' is given twice, as '{long}' and '{key}'"),
            )),
            (Some(value), None) => Ok(Some((value, params_path.key(long)))),
            (None, Some(value)) => Ok(Some((value, params_path.key(key)))),
            (None, None) => Ok(None),
        }
    };
    let required = |found: Option<(&'v Value, JsonPath)>, long: &str| {
        found.ok_or_else(|| {
            DefinitionError::at(
                &params_path,
                format!("the Dataverse trigger needs '{long}'"),
            )
        })
    };
    let (message, message_path) = required(
        get("message", "subscriptionRequest/message")?,
        "subscriptionRequest/message",
    )?;
    let message = TriggerMessage::from_code(code(message, &message_path, "message (1 added, 2 deleted, 3 modified, 4 added or modified, 5 added or deleted, 6 modified or deleted, 7 all)", 1..=7)?)
        .unwrap_or(TriggerMessage::All);
    let (entity, entity_path) = required(
        get("entityname", "subscriptionRequest/entityname")?,
        "subscriptionRequest/entityname",
    )?;
    let entity_name = fixed_string(entity, &entity_path, "the table name (entityname)")?.to_owned();
    let (scope, scope_path) = required(
        get("scope", "subscriptionRequest/scope")?,
        "subscriptionRequest/scope",
    )?;
    let scope = TriggerScope::from_code(code(
        scope,
        &scope_path,
        "scope (1 user, 2 business unit, 3 parent: child business units, 4 organization)",
        1..=4,
    )?)
    .unwrap_or(TriggerScope::Organization);
    let run_as = match get("runas", "subscriptionRequest/runas")? {
        Some((value, at)) => RunAs::from_code(code(
            value,
            &at,
            "runas (1 modifying user, 2 row owner, 3 flow owner)",
            1..=3,
        )?)
        .unwrap_or(RunAs::FlowOwner),
        None => RunAs::FlowOwner,
    };
    let filtering_attributes = match get(
        "filteringattributes",
        "subscriptionRequest/filteringattributes",
    )? {
        Some((value, at)) => fixed_string(value, &at, "filteringattributes")?
            .split(',')
            .map(str::trim)
            .filter(|column| !column.is_empty())
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    let filter_expression = match get("filterexpression", "subscriptionRequest/filterexpression")? {
        Some((value, at)) => Some(fixed_string(value, &at, "filterexpression")?.to_owned()),
        None => None,
    };
    let postpone_until = match get("postponeuntil", "subscriptionRequest/postponeuntil")? {
        Some((value, at)) => Some(templates.parse(value, &at)?),
        None => None,
    };
    params.finish()?;
    Ok(DataverseTrigger {
        connection_name: host.connection_name,
        message,
        entity_name,
        scope,
        run_as,
        filtering_attributes,
        filter_expression,
        postpone_until,
    })
}

fn read_request(fields: &mut Fields<'_>) -> Result<RequestTrigger, DefinitionError> {
    let kind = match fields.take("kind") {
        Some(value) => match choice(
            value,
            &fields.path_of("kind"),
            "Request kind",
            &["Http", "Button", "PowerAppV2"],
        )? {
            0 => RequestKind::Http,
            1 => RequestKind::Button,
            _ => RequestKind::PowerAppV2,
        },
        None => RequestKind::Http,
    };
    let (mut method, mut schema) = (None, None);
    if let Some(inputs) = fields.take("inputs") {
        let mut inputs = Fields::of(
            inputs,
            &fields.path_of("inputs"),
            "the Request trigger's inputs",
        )?;
        if let Some(value) = inputs.take("method") {
            let index = choice(
                value,
                &inputs.path_of("method"),
                "HTTP method",
                &["GET", "POST", "PUT", "PATCH", "DELETE"],
            )?;
            method = ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .get(index)
                .map(|m| (*m).to_owned());
        }
        if let Some(value) = inputs.take("schema") {
            if !value.is_object() {
                return Err(DefinitionError::at(
                    &inputs.path_of("schema"),
                    "the schema must be a JSON Schema object",
                ));
            }
            schema = Some(value.clone());
        }
        inputs.finish()?;
    }
    Ok(RequestTrigger {
        kind,
        method,
        schema,
    })
}

fn read_recurrence(value: &Value, path: &JsonPath) -> Result<Recurrence, DefinitionError> {
    let mut fields = Fields::of(value, path, "a recurrence")?;
    let frequency = match choice(
        fields.require("frequency")?,
        &fields.path_of("frequency"),
        "frequency",
        &FREQUENCIES,
    )? {
        0 => Frequency::Second,
        1 => Frequency::Minute,
        2 => Frequency::Hour,
        3 => Frequency::Day,
        4 => Frequency::Week,
        _ => Frequency::Month,
    };
    let interval = code(
        fields.require("interval")?,
        &fields.path_of("interval"),
        "interval",
        1..=1000,
    )?;
    let start_time = match fields.take("startTime") {
        Some(value) => {
            let text = string(value, &fields.path_of("startTime"), "startTime")?;
            if parse_timestamp(text).is_none() {
                return Err(DefinitionError::at(
                    &fields.path_of("startTime"),
                    format!("'{text}' is not an ISO 8601 timestamp such as 2025-01-31T09:00:00Z"),
                ));
            }
            Some(text.to_owned())
        }
        None => None,
    };
    let time_zone = match fields.take("timeZone") {
        Some(value) => {
            Some(fixed_string(value, &fields.path_of("timeZone"), "timeZone")?.to_owned())
        }
        None => None,
    };
    let schedule = match fields.take("schedule") {
        Some(value) => Some(read_schedule(value, &fields.path_of("schedule"))?),
        None => None,
    };
    fields.finish()?;
    Ok(Recurrence {
        frequency,
        interval: u32::try_from(interval).unwrap_or(1),
        start_time,
        time_zone,
        schedule,
    })
}

fn read_schedule(value: &Value, path: &JsonPath) -> Result<Schedule, DefinitionError> {
    let mut fields = Fields::of(value, path, "a recurrence schedule")?;
    let numbers = |value: &Value,
                   path: &JsonPath,
                   what: &str,
                   most: u64|
     -> Result<Vec<u8>, DefinitionError> {
        let Value::Array(items) = value else {
            return Err(DefinitionError::at(
                path,
                format!("{what} must be an array"),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(n, item)| {
                code(item, &path.index(n), what, 0..=most).map(|v| u8::try_from(v).unwrap_or(0))
            })
            .collect()
    };
    let mut schedule = Schedule::default();
    if let Some(value) = fields.take("hours") {
        schedule.hours = numbers(value, &fields.path_of("hours"), "hours", 23)?;
    }
    if let Some(value) = fields.take("minutes") {
        schedule.minutes = numbers(value, &fields.path_of("minutes"), "minutes", 59)?;
    }
    if let Some(value) = fields.take("weekDays") {
        let at = fields.path_of("weekDays");
        let Value::Array(items) = value else {
            return Err(DefinitionError::at(
                &at,
                "weekDays must be an array of day names",
            ));
        };
        const DAYS: [&str; 7] = [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        for (n, item) in items.iter().enumerate() {
            let index = choice(item, &at.index(n), "week day", &DAYS)?;
            schedule
                .week_days
                .push(WEEKDAYS.get(index).copied().unwrap_or(Weekday::Monday));
        }
    }
    fields.finish()?;
    Ok(schedule)
}
