//! Solutions (seed 002's ALM): a named, versioned set of an environment's custom tables, security
//! roles, flows, connection references and environment variable definitions; exported as one
//! archive (`keyway-solution/1`) and imported into another environment with a deployment
//! settings file that binds each connection reference to that environment's connection and sets
//! its variables' values. A flow that was on in the source turns on only when every reference it
//! uses is bound; otherwise it stays off and the import lists what is missing.
//!
//! Callers are the flows API's (system users of the environment) holding System Customizer or
//! System Administrator rights (`prvCustomizeEntities`); each component is written with the
//! caller's own privileges, as the Web API would write it.

use keyway_core::connections::{Api, Role};
use keyway_core::dataverse::audit::AuditContext;
use keyway_core::dataverse::authz::{Denied, RowScope};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::{AttributeType, EntityDef};
use keyway_core::dataverse::privileges::{self, RoleChange};
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::dataverse::security::ACT_ON_BEHALF;
use keyway_core::dataverse::security::{self, ALL_ACCESS, Access, CUSTOMIZE, Depth, Privilege};
use keyway_core::flows::references::{
    ConnectionReferences, RuntimeSource, connector_id, connector_name,
};
use keyway_core::flows::{FlowDefinition, ParameterType, TriggerKind};
use keyway_core::solutions::{
    self as domain, Archive, ArchiveFlow, ArchivePrivilege, ArchiveReference, ArchiveRole,
    ArchiveSolution, ArchiveVariable, ComponentKind, DeploymentSettings, Version,
};
use keyway_core::wire::graph_time;
use keyway_store::{
    ComponentRow, ConnectionStore, EnvironmentStore, FlowStore, SecurityStore, SolutionRow,
    SolutionStore, StoreError,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ServiceError;
use super::flows::{self as flows_svc, FlowCaller, FlowError, FlowInput};
use super::webapi::WebApiCaller;
use crate::state::AppState;

/// Why a solutions request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SolutionError {
    /// Bad input (400) with a stable code: `InvalidSolution`, `InvalidSolutionFile`,
    /// `InvalidSettingsFile`, `InvalidComponent`, `ComponentMissing`.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// 404 `SolutionNotFound`.
    #[error("{0}")]
    NotFound(String),
    /// 409 `SolutionConflict`.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Flow(#[from] FlowError),
}

impl From<ServiceError> for SolutionError {
    fn from(e: ServiceError) -> Self {
        Self::Flow(FlowError::Service(e))
    }
}

impl From<StoreError> for SolutionError {
    fn from(e: StoreError) -> Self {
        Self::Flow(FlowError::from(e))
    }
}

impl From<DataverseError> for SolutionError {
    fn from(e: DataverseError) -> Self {
        Self::Flow(FlowError::from(e))
    }
}

pub type Result<T> = std::result::Result<T, SolutionError>;

fn invalid(code: &'static str) -> impl Fn(String) -> SolutionError {
    move |message| SolutionError::Invalid { code, message }
}

/// The caller must hold `privilege` (any depth).
fn require(c: &FlowCaller, privilege: &str) -> Result<()> {
    if c.principal.depth(privilege) == Depth::None {
        let d = Denied {
            user_id: c.principal.user_id,
            privilege: privilege.into(),
            role_count: c.role_count,
        };
        return Err(DataverseError::MissingPrivilege(d.message()).into());
    }
    Ok(())
}

/// The flows API's caller, if they may customize the environment.
pub async fn caller(state: &AppState, token: &str, env_ref: &str) -> Result<FlowCaller> {
    let c = flows_svc::caller(state, token, env_ref).await?;
    require(&c, CUSTOMIZE)?;
    Ok(c)
}

async fn web_caller(state: &AppState, c: &FlowCaller) -> Result<WebApiCaller> {
    Ok(WebApiCaller {
        env: c.env.clone(),
        tables: state.directory.tables(state, &c.env).await?,
        principal: c.principal.clone(),
        role_count: c.role_count,
        on_behalf_of: None,
    })
}

fn table<'a>(w: &'a WebApiCaller, name: &str) -> Result<&'a EntityDef> {
    w.tables
        .iter()
        .find(|e| e.logical_name == name && !e.is_custom)
        .ok_or_else(|| ServiceError::Internal(format!("built-in table {name} missing")).into())
}

/// Rows of a built-in table whose `column` is `value` (every row: the caller customizes the
/// environment and reads its setup at organization depth).
async fn rows_where(
    state: &AppState,
    w: &WebApiCaller,
    entity: &str,
    column: &str,
    value: &str,
) -> Result<Vec<Record>> {
    use keyway_core::odata::{CompareOp, Expr, Literal, Operand};
    // Lookups compare as GUIDs.
    let literal = match Uuid::parse_str(value) {
        Ok(id) if column.ends_with("_value") => Literal::Guid(id),
        _ => Literal::String(value.to_string()),
    };
    let filter = Expr::Compare {
        left: Operand::Property(vec![column.into()]),
        op: CompareOp::Eq,
        right: Operand::Literal(literal),
    };
    let (rows, _) = state
        .store
        .records_list(
            &w.env,
            keyway_store::RecordList {
                entity: table(w, entity)?,
                scope: &RowScope::All,
                filter: Some(&filter),
                orderby: &[],
                limit: 2,
                after: None,
                count: false,
            },
        )
        .await?;
    Ok(rows)
}

fn text(r: &Record, col: &str) -> Option<String> {
    match r.fields.get(col) {
        Some(FieldValue::Text(t)) if !t.is_empty() => Some(t.clone()),
        _ => None,
    }
}

fn opt_text(v: &Option<String>) -> FieldValue {
    v.clone().map_or(FieldValue::Null, FieldValue::Text)
}

fn time(t: &time::OffsetDateTime) -> Value {
    graph_time::format(t).into()
}

pub fn view(s: &SolutionRow, components: Option<&[ComponentRow]>) -> Value {
    let mut v = json!({
        "id": s.id,
        "uniqueName": s.unique_name,
        "friendlyName": s.friendly_name,
        "publisherPrefix": s.publisher_prefix,
        "version": s.version,
        "createdBy": s.created_by,
        "createdDateTime": time(&s.created_at),
        "lastModifiedDateTime": time(&s.modified_at),
    });
    if let Some(list) = components {
        v["components"] = list
            .iter()
            .map(|c| json!({"type": c.kind, "name": c.name}))
            .collect();
    }
    v
}

fn field<'a>(body: &'a Value, name: &str) -> Result<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => Ok(Some(s.trim())),
        Some(_) => Err(SolutionError::Invalid {
            code: "InvalidSolution",
            message: format!("'{name}' must be text of 1 to 200 characters."),
        }),
    }
}

/// `{"uniqueName", "friendlyName"?, "publisherPrefix", "version"?}`.
pub async fn create(state: &AppState, c: &FlowCaller, body: &Value) -> Result<Value> {
    let bad = invalid("InvalidSolution");
    let unique = field(body, "uniqueName")?
        .ok_or_else(|| bad("A solution needs its 'uniqueName', such as ContosoFlows.".into()))?;
    let unique = domain::validate_unique_name(unique).map_err(&bad)?;
    let prefix = field(body, "publisherPrefix")?.ok_or_else(|| {
        bad("A solution needs its publisher's 'publisherPrefix', such as contoso.".into())
    })?;
    let prefix = domain::validate_prefix(prefix).map_err(&bad)?;
    let version = match field(body, "version")? {
        Some(v) => Version::parse(v).map_err(&bad)?,
        None => Version::FIRST,
    };
    let now = state.clock.now();
    let row = SolutionRow {
        id: Uuid::now_v7(),
        environment_id: c.env.id,
        friendly_name: field(body, "friendlyName")?.unwrap_or(&unique).to_string(),
        unique_name: unique,
        publisher_prefix: prefix,
        version: version.to_string(),
        created_by: c.principal.user_id,
        created_at: now,
        modified_at: now,
    };
    state
        .store
        .solution_create(&row)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => SolutionError::Conflict(format!(
                "Environment '{}' already has a solution named '{}'.",
                c.env.name, row.unique_name
            )),
            other => other.into(),
        })?;
    Ok(view(&row, Some(&[])))
}

pub async fn list(state: &AppState, c: &FlowCaller) -> Result<Vec<Value>> {
    Ok(state
        .store
        .solution_list(c.env.id)
        .await?
        .iter()
        .map(|s| view(s, None))
        .collect())
}

async fn solution(state: &AppState, c: &FlowCaller, name: &str) -> Result<SolutionRow> {
    state
        .store
        .solution_get(c.env.id, name)
        .await?
        .ok_or_else(|| {
            SolutionError::NotFound(format!(
                "Environment '{}' has no solution named '{name}' (see keyway solution list {}).",
                c.env.name, c.env.name
            ))
        })
}

pub async fn get(state: &AppState, c: &FlowCaller, name: &str) -> Result<Value> {
    let s = solution(state, c, name).await?;
    let components = state.store.solution_components(s.id).await?;
    Ok(view(&s, Some(&components)))
}

/// Is there such a component in the environment? Its name as the solution keeps it.
async fn find_component(
    state: &AppState,
    c: &FlowCaller,
    w: &WebApiCaller,
    kind: ComponentKind,
    name: &str,
) -> Result<String> {
    let missing = |what: String| SolutionError::Invalid {
        code: "InvalidComponent",
        message: what,
    };
    let env = &c.env.name;
    match kind {
        ComponentKind::Table => {
            let logical = name.trim().to_ascii_lowercase();
            match w.tables.iter().find(|e| e.logical_name == logical) {
                Some(e) if e.is_custom => Ok(logical),
                Some(_) => Err(missing(format!(
                    "'{logical}' is a built-in table, which every environment has: a solution carries custom tables."
                ))),
                None => Err(missing(format!(
                    "Environment '{env}' has no table '{logical}'."
                ))),
            }
        }
        ComponentKind::Role => {
            let builtin = [
                security::SYSTEM_ADMINISTRATOR,
                security::SYSTEM_CUSTOMIZER,
                security::BASIC_USER,
                security::ENVIRONMENT_MAKER,
                security::DELEGATE,
            ];
            if builtin.iter().any(|b| b.eq_ignore_ascii_case(name)) {
                return Err(missing(format!(
                    "'{name}' is a built-in role, which every environment has: a solution carries the roles you made."
                )));
            }
            state
                .store
                .roles(&c.env)
                .await?
                .into_iter()
                .find(|(_, n)| n == name)
                .map(|(_, n)| n)
                .ok_or_else(|| missing(format!("Environment '{env}' has no role '{name}'.")))
        }
        // Only a flow the caller may read (their own, or every flow at Organization depth).
        ComponentKind::Flow => state
            .store
            .flow_list(c.env.id)
            .await?
            .into_iter()
            .find(|f| f.name == name && c.reaches(security::READ_WORKFLOW, f.owner_id))
            .map(|f| f.name)
            .ok_or_else(|| missing(format!("Environment '{env}' has no flow '{name}'."))),
        ComponentKind::ConnectionReference | ComponentKind::EnvironmentVariable => {
            let (entity, column, what, set) = match kind {
                ComponentKind::ConnectionReference => (
                    "connectionreference",
                    "connectionreferencelogicalname",
                    "connection reference",
                    "connectionreferences",
                ),
                _ => (
                    "environmentvariabledefinition",
                    "schemaname",
                    "environment variable",
                    "environmentvariabledefinitions",
                ),
            };
            if rows_where(state, w, entity, column, name).await?.is_empty() {
                return Err(missing(format!(
                    "Environment '{env}' has no {what} '{name}' (create it with POST {set})."
                )));
            }
            Ok(name.to_string())
        }
    }
}

fn component_of(body: &Value) -> Result<(ComponentKind, String)> {
    let bad = invalid("InvalidComponent");
    let kind = field(body, "type")?.ok_or_else(|| {
        bad("A component needs its 'type': table, role, flow, connectionreference or environmentvariable.".into())
    })?;
    let kind = ComponentKind::parse(kind).ok_or_else(|| {
        bad(format!(
            "'{kind}' is not a component type: use table, role, flow, connectionreference or environmentvariable."
        ))
    })?;
    let name = field(body, "name")?
        .ok_or_else(|| bad("A component needs its 'name'.".into()))?
        .to_string();
    Ok((kind, name))
}

/// Add a component (`{"type", "name"}`) the environment has.
pub async fn add_component(
    state: &AppState,
    c: &FlowCaller,
    name: &str,
    body: &Value,
) -> Result<Value> {
    let s = solution(state, c, name).await?;
    let (kind, cname) = component_of(body)?;
    let w = web_caller(state, c).await?;
    let cname = find_component(state, c, &w, kind, &cname).await?;
    state
        .store
        .solution_component_add(
            s.id,
            &ComponentRow {
                kind: kind.name().into(),
                name: cname,
            },
        )
        .await?;
    get(state, c, name).await
}

/// Take a component out of the solution (the component itself stays).
pub async fn remove_component(
    state: &AppState,
    c: &FlowCaller,
    name: &str,
    body: &Value,
) -> Result<Value> {
    let s = solution(state, c, name).await?;
    let (kind, cname) = component_of(body)?;
    let row = ComponentRow {
        kind: kind.name().into(),
        name: cname,
    };
    if !state.store.solution_component_remove(s.id, &row).await? {
        return Err(SolutionError::NotFound(format!(
            "The solution '{name}' has no {} '{}'.",
            row.kind, row.name
        )));
    }
    get(state, c, name).await
}

/// A custom table as `POST EntityDefinitions` takes it. Lookup columns are left out.
fn table_json(e: &EntityDef) -> Value {
    let attributes: Vec<Value> = e
        .attributes
        .iter()
        .filter(|a| !a.system && !a.kind.is_lookup())
        .filter(|a| {
            !matches!(
                a.kind,
                AttributeType::State | AttributeType::Status | AttributeType::Uniqueidentifier
            )
        })
        .map(|a| {
            let mut m = json!({
                "SchemaName": a.schema_name,
                "@odata.type": format!("Microsoft.Dynamics.CRM.{}AttributeMetadata", a.kind.name()),
                "RequiredLevel": {"Value": if a.required { "ApplicationRequired" } else { "None" }},
            });
            if a.logical_name == e.primary_name {
                m["IsPrimaryName"] = true.into();
            }
            if let Some(max) = a.max_length {
                m["MaxLength"] = max.into();
            }
            if !a.options.is_empty() {
                m["OptionSet"] = json!({"Options": a.options.iter().map(|o| json!({
                    "Value": o.value,
                    "Label": {"LocalizedLabels": [{"Label": o.label, "LanguageCode": 1033}]},
                })).collect::<Vec<_>>()});
            }
            m
        })
        .collect();
    json!({
        "SchemaName": e.schema_name,
        "OwnershipType": e.ownership.name(),
        "Attributes": attributes,
    })
}

/// Export: the solution's components as the environment has them now, at a new version (the
/// given one, or the next revision). Connection references its flows use come along.
pub async fn export(state: &AppState, c: &FlowCaller, name: &str, body: &Value) -> Result<Value> {
    let mut s = solution(state, c, name).await?;
    let current = Version::parse(&s.version).map_err(invalid("InvalidSolution"))?;
    let version = match field(body, "version")? {
        Some(v) => Version::parse(v).map_err(invalid("InvalidSolution"))?,
        None => current.bump(),
    };
    let w = web_caller(state, c).await?;
    let components = state.store.solution_components(s.id).await?;
    let gone = |kind: &str, n: &str| SolutionError::Invalid {
        code: "ComponentMissing",
        message: format!(
            "The solution's {kind} '{n}' no longer exists in environment '{}': remove it from the solution or make it again.",
            c.env.name
        ),
    };
    let mut archive = Archive {
        format: domain::FORMAT.into(),
        solution: ArchiveSolution {
            unique_name: s.unique_name.clone(),
            friendly_name: s.friendly_name.clone(),
            publisher_prefix: s.publisher_prefix.clone(),
            version: version.to_string(),
            exported_from: Some(c.env.name.clone()),
            exported_date_time: Some(graph_time::format(&state.clock.now())),
        },
        tables: Vec::new(),
        roles: Vec::new(),
        connection_references: Vec::new(),
        environment_variables: Vec::new(),
        flows: Vec::new(),
    };
    // A flow brings the connection references and environment variables it uses.
    let mut references: Vec<String> = Vec::new();
    let mut variables: Vec<String> = Vec::new();
    let roles = state.store.roles(&c.env).await?;
    let flows = state.store.flow_list(c.env.id).await?;
    for comp in &components {
        let n = comp.name.as_str();
        match ComponentKind::parse(&comp.kind) {
            Some(ComponentKind::Table) => {
                let e = w
                    .tables
                    .iter()
                    .find(|e| e.logical_name == n && e.is_custom)
                    .ok_or_else(|| gone("table", n))?;
                archive.tables.push(table_json(e));
            }
            Some(ComponentKind::Role) => {
                let (id, _) = roles
                    .iter()
                    .find(|(_, r)| r == n)
                    .ok_or_else(|| gone("role", n))?;
                let privileges = state.store.role_privileges(&c.env, *id).await?;
                archive.roles.push(ArchiveRole {
                    name: n.to_string(),
                    privileges: privileges
                        .iter()
                        .map(|p| ArchivePrivilege {
                            name: p.name.clone(),
                            depth: privileges::depth_wire_name(p.depth).into(),
                        })
                        .collect(),
                });
            }
            Some(ComponentKind::Flow) => {
                let f = flows
                    .iter()
                    .find(|f| f.name == n)
                    .ok_or_else(|| gone("flow", n))?;
                c.require_on(security::READ_WORKFLOW, f)?;
                let refs =
                    ConnectionReferences::parse(&f.connection_references).unwrap_or_default();
                references.extend(refs.logical_names().into_iter().map(str::to_string));
                if let Ok(def) = FlowDefinition::parse(&f.definition) {
                    variables.extend(
                        def.environment_variables()
                            .filter_map(|(_, p)| p.schema_name.clone()),
                    );
                    for k in def.connection_names() {
                        if refs.get(k).is_none()
                            && !rows_where(
                                state,
                                &w,
                                "connectionreference",
                                "connectionreferencelogicalname",
                                k,
                            )
                            .await?
                            .is_empty()
                        {
                            references.push(k.to_string());
                        }
                    }
                }
                archive.flows.push(ArchiveFlow {
                    name: f.name.clone(),
                    state: if f.on { "on" } else { "off" }.into(),
                    definition: f.definition.clone(),
                    connection_references: f.connection_references.clone(),
                });
            }
            Some(ComponentKind::ConnectionReference) => references.push(n.to_string()),
            Some(ComponentKind::EnvironmentVariable) => variables.push(n.to_string()),
            None => {}
        }
    }
    variables.sort();
    variables.dedup();
    for n in &variables {
        let row = rows_where(state, &w, "environmentvariabledefinition", "schemaname", n)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| gone("environment variable", n))?;
        let kind = match row.fields.get("type") {
            Some(FieldValue::Int(code)) => domain::variable_type_label(*code),
            _ => None,
        };
        archive.environment_variables.push(ArchiveVariable {
            schema_name: n.to_string(),
            display_name: text(&row, "displayname"),
            kind: kind.unwrap_or("String").into(),
            default_value: text(&row, "defaultvalue"),
            description: text(&row, "description"),
        });
    }
    references.sort();
    references.dedup();
    for n in &references {
        let row = rows_where(
            state,
            &w,
            "connectionreference",
            "connectionreferencelogicalname",
            n,
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| gone("connection reference", n))?;
        archive.connection_references.push(ArchiveReference {
            logical_name: n.clone(),
            display_name: text(&row, "connectionreferencedisplayname"),
            connector_id: connector_id(&text(&row, "connectorid").unwrap_or_default()),
            description: text(&row, "description"),
        });
    }
    s.version = version.to_string();
    s.modified_at = state.clock.now();
    state.store.solution_update(&s).await?;
    serde_json::to_value(&archive)
        .map_err(|e| ServiceError::Internal(format!("archive not serializable: {e}")).into())
}

/// One connection reference's binding in the target environment.
struct Binding<'a> {
    reference: &'a ArchiveReference,
    connection: Option<String>,
}

/// Everything import checks before it changes anything.
struct Plan<'a> {
    archive: &'a Archive,
    settings: DeploymentSettings,
    bindings: Vec<Binding<'a>>,
    flows: Vec<(FlowDefinition, Value)>,
}

async fn plan<'a>(
    state: &AppState,
    c: &FlowCaller,
    w: &WebApiCaller,
    archive: &'a Archive,
    settings: Option<&Value>,
) -> Result<Plan<'a>> {
    let settings = match settings {
        None | Some(Value::Null) => DeploymentSettings::default(),
        Some(v) => domain::parse_settings(v, archive).map_err(invalid("InvalidSettingsFile"))?,
    };
    if let Some(existing) = state
        .store
        .solution_get(c.env.id, &archive.solution.unique_name)
        .await?
        && let Ok(have) = Version::parse(&existing.version)
        && have
            > Version::parse(&archive.solution.version).map_err(invalid("InvalidSolutionFile"))?
    {
        return Err(SolutionError::Conflict(format!(
            "Environment '{}' has version {have} of {}, newer than this archive's {}: export a newer version.",
            c.env.name, archive.solution.unique_name, archive.solution.version
        )));
    }
    check_flow_names(state, c, archive).await?;
    // The importer writes each kind of component with their own privileges.
    let mut needed: Vec<String> = Vec::new();
    let mut need = |access: &[Access], table: &str, any: bool| {
        if any {
            needed.extend(access.iter().map(|a| a.privilege(table)));
        }
    };
    let cw = [Access::Create, Access::Write, Access::Read];
    need(&cw, "role", !archive.roles.is_empty());
    need(
        &cw,
        "connectionreference",
        !archive.connection_references.is_empty(),
    );
    need(
        &cw,
        "environmentvariabledefinition",
        !archive.environment_variables.is_empty(),
    );
    need(
        &cw,
        "environmentvariablevalue",
        settings
            .environment_variables
            .iter()
            .any(|v| !v.value.is_empty()),
    );
    for p in &needed {
        require(c, p)?;
    }
    // Rows the import updates must be within the importer's reach (a privilege held only at
    // user depth does not reach another's row), checked now rather than halfway through.
    for v in &archive.environment_variables {
        let defs = rows_where(
            state,
            w,
            "environmentvariabledefinition",
            "schemaname",
            &v.schema_name,
        )
        .await?;
        may_write(
            state,
            w,
            "environmentvariabledefinition",
            &v.schema_name,
            &defs,
        )
        .await?;
        let valued = settings
            .environment_variables
            .iter()
            .any(|s| s.schema_name == v.schema_name && !s.value.is_empty());
        if let Some(id) = defs
            .first()
            .and_then(|d| d.id("environmentvariabledefinitionid"))
            && valued
        {
            let values = rows_where(
                state,
                w,
                "environmentvariablevalue",
                "_environmentvariabledefinitionid_value",
                &id.to_string(),
            )
            .await?;
            may_write(
                state,
                w,
                "environmentvariablevalue",
                &v.schema_name,
                &values,
            )
            .await?;
        }
    }
    for r in &archive.connection_references {
        let rows = rows_where(
            state,
            w,
            "connectionreference",
            "connectionreferencelogicalname",
            &r.logical_name,
        )
        .await?;
        may_write(state, w, "connectionreference", &r.logical_name, &rows).await?;
    }
    let bad_file = invalid("InvalidSolutionFile");
    let mut new_tables: Vec<String> = Vec::new();
    // The tables the import makes, as it will make them (checked now: nothing is written yet).
    let mut new_defs: Vec<EntityDef> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for t in &archive.tables {
        let schema = t
            .get("SchemaName")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_file("Each table of the archive needs its SchemaName.".into()))?;
        let logical = schema.to_ascii_lowercase();
        if seen.contains(&logical) {
            return Err(bad_file(format!(
                "The table '{logical}' is in the archive twice."
            )));
        }
        seen.push(logical.clone());
        let unfit = |e: ServiceError| bad_file(format!("The archive's table '{logical}': {e}"));
        match w.tables.iter().find(|e| e.logical_name == logical) {
            Some(e) if !e.is_custom => {
                return Err(bad_file(format!(
                    "The archive's table '{logical}' is a built-in table of environment '{}'.",
                    c.env.name
                )));
            }
            Some(e) => {
                let mut added: Vec<String> = Vec::new();
                for a in t
                    .get("Attributes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = a
                        .get("SchemaName")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    let required = a.pointer("/RequiredLevel/Value").and_then(Value::as_str)
                        == Some("ApplicationRequired");
                    if e.attribute(&name).is_none() && required {
                        return Err(bad_file(format!(
                            "The archive adds the required column '{name}' to '{logical}', which already has rows in environment '{}': a required column cannot be added to an existing table.",
                            c.env.name
                        )));
                    }
                    if e.attribute(&name).is_none() {
                        let (column, primary) =
                            super::customization::attribute(a).map_err(&unfit)?;
                        if primary || added.contains(&column.logical_name) {
                            return Err(bad_file(format!(
                                "The archive's table '{logical}' gives the column '{name}' twice, or as a second primary name column."
                            )));
                        }
                        added.push(column.logical_name);
                    }
                }
            }
            None => {
                new_defs.push(super::customization::table_def(w, t).map_err(&unfit)?);
                new_tables.push(logical);
            }
        }
    }
    let catalog = privileges::catalog(c.env.id, &w.tables);
    for r in &archive.roles {
        let wanted = r
            .privileges
            .iter()
            .map(|p| {
                let known = catalog.iter().any(|i| i.name == p.name)
                    || new_tables
                        .iter()
                        .any(|t| ALL_ACCESS.iter().any(|a| a.privilege(t) == p.name));
                if !known {
                    return Err(bad_file(format!(
                        "The role '{}' grants '{}', which is not a privilege of environment '{}' nor of a table the solution brings.",
                        r.name, p.name, c.env.name
                    )));
                }
                let depth = privileges::parse_depth(&Value::String(p.depth.clone()))
                    .ok_or_else(|| {
                        bad_file(format!(
                            "The role '{}' grants '{}' at '{}': use Basic, Local, Deep or Global.",
                            r.name, p.name, p.depth
                        ))
                    })?;
                Ok(Privilege {
                    name: p.name.clone(),
                    depth,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(p) = privileges::exceeding(&wanted, |n| c.principal.depth(n)) {
            let d = Denied {
                user_id: c.principal.user_id,
                privilege: p.name.clone(),
                role_count: c.role_count,
            };
            return Err(DataverseError::MissingPrivilege(format!(
                "{} The role '{}' would grant {} at {} depth, beyond yours: a role may grant only what its importer holds.",
                d.message(),
                r.name,
                p.name,
                privileges::depth_wire_name(p.depth)
            ))
            .into());
        }
    }
    // Each ConnectionId must be a connection of this environment, of the reference's connector,
    // that the importer may use.
    let mut bindings = Vec::new();
    for r in &archive.connection_references {
        let given = settings
            .connection_references
            .iter()
            .find(|s| s.logical_name == r.logical_name)
            .map(|s| s.connection_id.trim())
            .filter(|id| !id.is_empty());
        let Some(id) = given else {
            bindings.push(Binding {
                reference: r,
                connection: None,
            });
            continue;
        };
        let bad = invalid("InvalidSettingsFile");
        let conn = state
            .store
            .connection_find(Api::PowerPlatform, &c.env.id.to_string(), id)
            .await?
            .ok_or_else(|| {
                bad(format!(
                    "The settings file binds '{}' to the connection '{id}', which is not a connection of environment '{}': give the name of one of its connections (keyway connection list {}).",
                    r.logical_name, c.env.name, c.env.name
                ))
            })?;
        if conn.connector != connector_name(&r.connector_id) {
            return Err(bad(format!(
                "The settings file binds '{}' to the connection '{id}', a {} connection; the reference needs a {} connection.",
                r.logical_name,
                conn.connector,
                connector_name(&r.connector_id)
            )));
        }
        let role = super::connections::role_of(state, &c.who, &conn).await?;
        if role.is_none_or(|r| r < Role::CanView) {
            return Err(bad(format!(
                "The settings file binds '{}' to the connection '{id}', which is neither yours nor shared with you: ask its owner to share it.",
                r.logical_name
            )));
        }
        bindings.push(Binding {
            reference: r,
            connection: Some(conn.name),
        });
    }
    let mut flows = Vec::new();
    for f in &archive.flows {
        let def = FlowDefinition::parse(&f.definition).map_err(FlowError::Definition)?;
        let refs = ConnectionReferences::normalize(&f.connection_references)
            .map_err(|e| bad_file(format!("The flow '{}': {e}", f.name)))?;
        for n in ConnectionReferences::parse(&refs)
            .unwrap_or_default()
            .logical_names()
        {
            if archive.reference(n).is_none()
                && rows_where(
                    state,
                    w,
                    "connectionreference",
                    "connectionreferencelogicalname",
                    n,
                )
                .await?
                .is_empty()
            {
                return Err(bad_file(format!(
                    "The flow '{}' uses the connection reference '{n}', which neither the solution nor environment '{}' has: add it to the solution in the source environment and export again.",
                    f.name, c.env.name
                )));
            }
        }
        for (p, schema) in def
            .environment_variables()
            .filter_map(|(p, v)| Some((p, v.schema_name.as_deref()?)))
        {
            let carried = archive
                .environment_variables
                .iter()
                .find(|v| v.schema_name == schema);
            if let Some(v) = carried
                && let Some(code) = domain::variable_type(&v.kind)
                && !keyway_core::flows::variables::fits(def.parameters[p].kind, i64::from(code))
            {
                return Err(bad_file(format!(
                    "The flow '{}' reads the environment variable '{schema}' as its {:?} parameter '{p}', but the solution's variable is a {} variable, which fits a {} parameter.",
                    f.name,
                    def.parameters[p].kind,
                    v.kind,
                    keyway_core::flows::variables::fitting_types(i64::from(code))
                )));
            }
            if carried.is_none()
                && rows_where(
                    state,
                    w,
                    "environmentvariabledefinition",
                    "schemaname",
                    schema,
                )
                .await?
                .is_empty()
            {
                return Err(bad_file(format!(
                    "The flow '{}' reads the environment variable '{schema}' (its parameter '{p}'), which neither the solution nor environment '{}' has: add it to the solution in the source environment and export again.",
                    f.name, c.env.name
                )));
            }
        }
        // A connection named directly (not through a reference) must exist here already.
        let parsed = ConnectionReferences::parse(&refs).unwrap_or_default();
        for k in def.connection_names() {
            let through_archive = parsed
                .get(k)
                .and_then(|e| e.logical_name.as_deref())
                .is_some_and(|l| archive.reference(l).is_some())
                || (parsed.get(k).is_none() && archive.reference(k).is_some());
            if through_archive {
                continue;
            }
            let found = flows_svc::find_connection(state, &c.env, &refs, k).await?;
            if let Err(u) = found.connection
                && u.reference.is_none()
            {
                return Err(bad_file(format!(
                    "The flow '{}' uses the connection '{k}', which environment '{}' does not have: name a connection reference in the flow (and add it to the solution), or make the connection there first.",
                    f.name, c.env.name
                )));
            }
        }
        check_flow(state, c, w, (archive, f), &def, &refs, &new_defs, &bindings).await?;
        flows.push((def, refs));
    }
    Ok(Plan {
        archive,
        settings,
        bindings,
        flows,
    })
}

/// The caller may write each of these rows (of `name`) of the built-in table `entity` (403
/// otherwise).
async fn may_write(
    state: &AppState,
    w: &WebApiCaller,
    entity: &str,
    name: &str,
    rows: &[Record],
) -> Result<()> {
    let t = table(w, entity)?;
    let scope = super::records::scope_for(state, w, Access::Write, t).await?;
    for row in rows {
        let Some(id) = row.id(&t.primary_id) else {
            continue;
        };
        let of = |col: &str| match row.fields.get(col) {
            Some(FieldValue::Id(u)) => Some(*u),
            _ => None,
        };
        let grants = super::sharing::grants(state, w, t, id).await?;
        if !scope.admits_row(of("ownerid"), of("owningbusinessunit"), &grants) {
            return Err(DataverseError::MissingPrivilege(format!(
                "The import would update the {entity} '{name}' of environment '{}', which is neither yours nor within your roles' depth of {}: ask its owner or a System Customizer to import the solution.",
                w.env.name,
                Access::Write.privilege(entity)
            ))
            .into());
        }
    }
    Ok(())
}

/// Import finds a flow by its name: it replaces only the solution's own flow of that name here
/// (one an earlier import of the solution made or that was added to it). Another flow of that
/// name is someone's own, which an import must not silently overwrite.
async fn check_flow_names(state: &AppState, c: &FlowCaller, archive: &Archive) -> Result<()> {
    let held: Vec<String> = match state
        .store
        .solution_get(c.env.id, &archive.solution.unique_name)
        .await?
    {
        Some(s) => state
            .store
            .solution_components(s.id)
            .await?
            .into_iter()
            .filter(|k| k.kind == ComponentKind::Flow.name())
            .map(|k| k.name)
            .collect(),
        None => Vec::new(),
    };
    let existing = state.store.flow_list(c.env.id).await?;
    for f in &archive.flows {
        let same: Vec<_> = existing.iter().filter(|x| x.name == f.name).collect();
        let why = match same.len() {
            0 => continue,
            // Overwriting it is changing it: the importer needs write on that flow.
            1 if held.contains(&f.name) => {
                c.require_on(security::WRITE_WORKFLOW, same[0])?;
                continue;
            }
            1 => "is not part of the solution there",
            _ => "is not the only flow of that name there",
        };
        return Err(SolutionError::Conflict(format!(
            "Environment '{}' already has a flow named '{}' that {why}: importing would overwrite it. Rename or delete that flow, or rename the solution's flow in the source environment and export again.",
            c.env.name, f.name
        )));
    }
    Ok(())
}

/// Everything saving the flow checks (`flows::check`), made against the environment as the
/// import will leave it, so that a flow the environment would refuse refuses the import before
/// any component is written.
#[allow(clippy::too_many_arguments)]
async fn check_flow(
    state: &AppState,
    c: &FlowCaller,
    w: &WebApiCaller,
    (archive, f): (&Archive, &ArchiveFlow),
    def: &FlowDefinition,
    refs: &Value,
    new_tables: &[EntityDef],
    bindings: &[Binding<'_>],
) -> Result<()> {
    let bad_file = invalid("InvalidSolutionFile");
    if f.state == "on" {
        flows_svc::check_can_turn_on(def)?;
    }
    super::recurrence::check(def).map_err(FlowError::Definition)?;
    if let TriggerKind::Dataverse(t) = &def.trigger.kind {
        if t.run_as.acts_on_behalf() {
            c.require(ACT_ON_BEHALF)?;
        }
        let table = w
            .tables
            .iter()
            .chain(new_tables)
            .find(|e| e.logical_name == t.entity_name)
            .ok_or_else(|| {
                bad_file(format!(
                    "The flow '{}' starts on rows of '{}', a table neither environment '{}' nor the solution has: add the table to the solution in the source environment and export again.",
                    f.name, t.entity_name, c.env.name
                ))
            })?;
        flows_svc::check_trigger_columns(
            table,
            &t.filtering_attributes,
            t.filter_expression.as_deref(),
        )?;
    }
    super::flow_run_only::check_save(c, def, refs)?;
    for (p, v) in def.environment_variables() {
        let schema = v.schema_name.as_deref().unwrap_or_default();
        let have = match variable_type(state, w, archive, schema).await? {
            _ if matches!(
                v.kind,
                ParameterType::SecureString | ParameterType::SecureObject
            ) =>
            {
                return Err(bad_file(format!(
                    "The flow '{}' reads the environment variable '{schema}' as its secret parameter '{p}': secret environment variables are not supported.",
                    f.name
                )));
            }
            have => have,
        };
        if let Some(code) = have
            && !keyway_core::flows::variables::fits(v.kind, code)
        {
            return Err(bad_file(format!(
                "The flow '{}' reads the environment variable '{schema}' as its {:?} parameter '{p}', but environment '{}' has it as a variable that fits a {} parameter.",
                f.name,
                v.kind,
                c.env.name,
                keyway_core::flows::variables::fitting_types(code)
            )));
        }
    }
    let parsed = ConnectionReferences::parse(refs).unwrap_or_default();
    for (k, want) in flows_svc::connector_uses(def) {
        let entry = parsed.get(&k);
        let carried = match entry {
            Some(e) => e.logical_name.as_deref(),
            None => Some(k.as_str()),
        }
        .and_then(|l| bindings.iter().find(|b| b.reference.logical_name == l));
        let conn = match carried {
            Some(Binding {
                connection: Some(name),
                ..
            }) => match state
                .store
                .connection_find(Api::PowerPlatform, &c.env.id.to_string(), name)
                .await?
            {
                Some(conn) => conn,
                None => continue,
            },
            Some(b)
                if flows_svc::reference_row(state, &c.env, &b.reference.logical_name)
                    .await?
                    .is_none() =>
            {
                // Made unbound by the import: the flow is saved off.
                continue;
            }
            _ => match flows_svc::find_connection(state, &c.env, refs, &k)
                .await?
                .connection
            {
                Ok(conn) => conn,
                Err(u) if u.code == "ConnectionReferenceNotBound" => continue,
                Err(u) if u.reference.is_some() => return Err(FlowError::Unresolved(u).into()),
                Err(_) => continue,
            },
        };
        let role = super::connections::role_of(state, &c.who, &conn).await?;
        if role.is_none_or(|r| r < Role::CanView) {
            return Err(bad_file(format!(
                "The flow '{}' uses the connection '{}', which is neither yours nor shared with you in environment '{}': ask its owner to share it, or bind the flow's connection reference to one of yours in the settings file.",
                f.name, conn.name, c.env.name
            )));
        }
        if let Some(want) = want
            && conn.connector != want
        {
            return Err(bad_file(format!(
                "The flow '{}' uses '{k}' as a {want} connection, but it finds the connection '{}', a {} connection.",
                f.name, conn.name, conn.connector
            )));
        }
        let source = entry.map_or(RuntimeSource::Embedded, |e| e.runtime_source);
        super::flow_run_only::check_target(state, c, &k, source, &conn)?;
    }
    Ok(())
}

/// The type code of the environment's variable `schema`, when the archive does not carry it
/// (a carried one gets the archive's type, checked with the archive).
async fn variable_type(
    state: &AppState,
    w: &WebApiCaller,
    archive: &Archive,
    schema: &str,
) -> Result<Option<i64>> {
    if archive.variable(schema).is_some() {
        return Ok(None);
    }
    let row = rows_where(
        state,
        w,
        "environmentvariabledefinition",
        "schemaname",
        schema,
    )
    .await?;
    Ok(row.first().and_then(|r| match r.fields.get("type") {
        Some(FieldValue::Int(code)) => Some(*code),
        _ => None,
    }))
}

fn audit_ctx(state: &AppState, w: &WebApiCaller) -> AuditContext {
    AuditContext {
        user_id: w.principal.user_id,
        calling_user_id: None,
        transaction_id: Uuid::new_v4(),
        at: state.clock.now(),
    }
}

/// Create the row or set these columns of the one found by `key`.
async fn upsert(
    state: &AppState,
    w: &WebApiCaller,
    entity: &str,
    key: (&str, &str),
    fields: Record,
) -> Result<Uuid> {
    let t = table(w, entity)?;
    let existing = rows_where(state, w, entity, key.0, key.1).await?;
    match existing.first().and_then(|r| r.id(&t.primary_id)) {
        Some(id) => {
            super::records::update(state, w, t, id, fields, None).await?;
            Ok(id)
        }
        None => Ok(super::records::create(state, w, t, fields).await?),
    }
}

/// Import an archive (`{"solution": archive, "settings"?: deployment settings}`). Every check
/// is made before anything changes; a bad archive or settings file changes nothing.
pub async fn import(state: &AppState, c: &FlowCaller, body: &Value) -> Result<Value> {
    let obj = body.as_object().ok_or_else(|| SolutionError::Invalid {
        code: "InvalidSolutionFile",
        message:
            "The body must be {\"solution\": <archive>, \"settings\"?: <deployment settings>}."
                .into(),
    })?;
    if let Some(k) = obj.keys().find(|k| *k != "solution" && *k != "settings") {
        return Err(SolutionError::Invalid {
            code: "InvalidSolutionFile",
            message: format!("Unknown property '{k}': an import has 'solution' and 'settings'."),
        });
    }
    let archive = Archive::parse(body.get("solution").unwrap_or(&Value::Null))
        .map_err(invalid("InvalidSolutionFile"))?;
    let mut w = web_caller(state, c).await?;
    let plan = plan(state, c, &w, &archive, body.get("settings")).await?;

    // 1. Tables, then their new columns (lookups are not carried).
    let mut tables = Vec::new();
    for t in &plan.archive.tables {
        let logical = t["SchemaName"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match w.tables.iter().find(|e| e.logical_name == logical).cloned() {
            None => {
                // Known to the next table made (its type code follows this one's).
                let made = super::customization::create_table(state, &w, t).await?;
                std::sync::Arc::make_mut(&mut w.tables).push(made);
            }
            Some(e) => {
                for a in t["Attributes"].as_array().into_iter().flatten() {
                    let name = a["SchemaName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if e.attribute(&name).is_none() {
                        super::customization::add_column(state, &w, &e, a).await?;
                    }
                }
            }
        }
        tables.push(logical);
    }
    if !tables.is_empty() {
        w = web_caller(state, c).await?;
    }
    // 2. Roles, granting exactly what the archive says.
    let catalog = privileges::catalog(c.env.id, &w.tables);
    let existing_roles = state.store.roles(&c.env).await?;
    for r in &plan.archive.roles {
        let wanted: Vec<Privilege> = r
            .privileges
            .iter()
            .filter_map(|p| {
                let info = catalog.iter().find(|i| i.name == p.name)?;
                let depth = privileges::parse_depth(&Value::String(p.depth.clone()))?;
                Some(Privilege {
                    name: p.name.clone(),
                    depth: info.clamp(depth),
                })
            })
            .collect();
        match existing_roles.iter().find(|(_, n)| *n == r.name) {
            Some((id, _)) => {
                state
                    .store
                    .role_privileges_change(
                        &c.env,
                        table(&w, "role")?,
                        *id,
                        &RoleChange::Replace(wanted),
                        &audit_ctx(state, &w),
                    )
                    .await?;
            }
            None => {
                let record = keyway_core::dataverse::seed::role(
                    &r.name,
                    Uuid::new_v4(),
                    w.principal.business_unit,
                    w.principal.user_id,
                    state.clock.now(),
                );
                state
                    .store
                    .role_create(
                        &c.env,
                        table(&w, "role")?,
                        &record,
                        &wanted,
                        &audit_ctx(state, &w),
                    )
                    .await?;
            }
        }
    }
    // 3. Variable definitions, and the values the settings file gives.
    let mut variables = Vec::new();
    for v in &plan.archive.environment_variables {
        let code = domain::variable_type(&v.kind)
            .unwrap_or(keyway_core::dataverse::system_tables::VARIABLE_STRING);
        let fields = Record::new("environmentvariabledefinition")
            .with("schemaname", FieldValue::Text(v.schema_name.clone()))
            .with("displayname", opt_text(&v.display_name))
            .with("type", FieldValue::Int(i64::from(code)))
            .with("defaultvalue", opt_text(&v.default_value))
            .with("description", opt_text(&v.description));
        let def = upsert(
            state,
            &w,
            "environmentvariabledefinition",
            ("schemaname", &v.schema_name),
            fields,
        )
        .await?;
        let value = plan
            .settings
            .environment_variables
            .iter()
            .find(|s| s.schema_name == v.schema_name && !s.value.is_empty());
        if let Some(s) = value {
            let fields = Record::new("environmentvariablevalue")
                .with("schemaname", FieldValue::Text(v.schema_name.clone()))
                .with("value", FieldValue::Text(s.value.clone()))
                .with("environmentvariabledefinitionid", FieldValue::Id(def));
            upsert(
                state,
                &w,
                "environmentvariablevalue",
                ("_environmentvariabledefinitionid_value", &def.to_string()),
                fields,
            )
            .await?;
        }
        variables.push(json!({"schemaName": v.schema_name, "valueSet": value.is_some()}));
    }
    // 4. Connection references, bound where the settings file says (else left as they are).
    let mut references = Vec::new();
    for b in &plan.bindings {
        let r = b.reference;
        let mut fields = Record::new("connectionreference")
            .with(
                "connectionreferencelogicalname",
                FieldValue::Text(r.logical_name.clone()),
            )
            .with("connectionreferencedisplayname", opt_text(&r.display_name))
            .with(
                "connectorid",
                FieldValue::Text(connector_id(&r.connector_id)),
            )
            .with("description", opt_text(&r.description));
        if let Some(conn) = &b.connection {
            fields
                .fields
                .insert("connectionid".into(), FieldValue::Text(conn.clone()));
        }
        let id = upsert(
            state,
            &w,
            "connectionreference",
            ("connectionreferencelogicalname", &r.logical_name),
            fields,
        )
        .await?;
        let row = state
            .store
            .record_get(&c.env, table(&w, "connectionreference")?, id)
            .await?;
        references.push(json!({
            "logicalName": r.logical_name,
            "connectionId": row.as_ref().and_then(|r| text(r, "connectionid")),
        }));
    }
    // 5. Flows, by name: on only when they were on and every reference they use is bound.
    let existing_flows = state.store.flow_list(c.env.id).await?;
    let mut flows = Vec::new();
    for (f, (def, refs)) in plan.archive.flows.iter().zip(&plan.flows) {
        let missing = flows_svc::missing_references(state, &c.env, def, refs).await?;
        let on = f.state == "on" && missing.is_empty();
        let input = FlowInput {
            name: Some(f.name.clone()),
            definition: Some(f.definition.clone()),
            on: Some(on),
            connection_references: Some(refs.clone()),
        };
        let saved = match existing_flows.iter().find(|x| x.name == f.name) {
            Some(old) => flows_svc::replace(state, c, old.id, input, None).await?,
            None => flows_svc::create(state, c, input).await?,
        };
        flows.push(json!({
            "name": f.name,
            "id": saved["id"],
            "state": saved["state"],
            "sourceState": f.state,
            "missingConnectionReferences": missing.iter().map(|m| json!({
                "logicalName": m.reference,
                "code": m.code,
                "message": m.message,
            })).collect::<Vec<_>>(),
        }));
    }
    // 6. The solution itself, at the archive's version, listing what it brought.
    let mut components: Vec<ComponentRow> = Vec::new();
    let mut add = |kind: ComponentKind, name: &str| {
        components.push(ComponentRow {
            kind: kind.name().into(),
            name: name.to_string(),
        })
    };
    for t in &tables {
        add(ComponentKind::Table, t);
    }
    for r in &plan.archive.roles {
        add(ComponentKind::Role, &r.name);
    }
    for v in &plan.archive.environment_variables {
        add(ComponentKind::EnvironmentVariable, &v.schema_name);
    }
    for r in &plan.archive.connection_references {
        add(ComponentKind::ConnectionReference, &r.logical_name);
    }
    for f in &plan.archive.flows {
        add(ComponentKind::Flow, &f.name);
    }
    let now = state.clock.now();
    let a = &plan.archive.solution;
    let row = SolutionRow {
        id: Uuid::now_v7(),
        environment_id: c.env.id,
        unique_name: a.unique_name.clone(),
        friendly_name: a.friendly_name.clone(),
        publisher_prefix: a.publisher_prefix.clone(),
        version: a.version.clone(),
        created_by: c.principal.user_id,
        created_at: now,
        modified_at: now,
    };
    state.store.solution_put(&row, &components).await?;
    let saved = solution(state, c, &a.unique_name).await?;
    tracing::info!(environment = %c.env.name, solution = %a.unique_name, version = %a.version, "solution imported");
    Ok(json!({
        "solution": view(&saved, Some(&state.store.solution_components(saved.id).await?)),
        "tables": tables,
        "roles": plan.archive.roles.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        "environmentVariables": variables,
        "connectionReferences": references,
        "flows": flows,
    }))
}
