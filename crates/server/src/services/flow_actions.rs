//! The actions of a run that reach out: Dataverse operations and HTTP calls. A Dataverse action
//! acts as its connection's identity by calling the environment's Web API over HTTP with a
//! token from the connection, so the environment enforces its security exactly as for any
//! client; run-as impersonates (`MSCRMCallerID`), which the identity needs Delegate for. What
//! is recorded is redacted: never a token or a secret.

use keyway_core::connections::{Connection, Status};
use keyway_core::environment::Environment;
use keyway_core::flows::references::RuntimeSource;
use keyway_core::flows::{
    DataverseAction, DataverseOperation, FlowContext, HttpAction, RecordedRun, RunStatus, Template,
};
use keyway_store::{ConnectionStore, FlowRow, RunRow, SystemUserKey};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{connection_auth, connection_identity};
use crate::state::AppState;

/// What an action did, ready to record.
#[derive(Debug, Clone)]
pub struct Done {
    pub status: RunStatus,
    pub inputs: Value,
    pub outputs: Value,
    pub error: Option<(String, String)>,
    pub connection_id: Option<Uuid>,
    /// The system user the action acted as.
    pub identity: Option<String>,
}

impl Done {
    pub fn ok(inputs: Value, outputs: Value) -> Self {
        Done {
            status: RunStatus::Succeeded,
            inputs,
            outputs,
            error: None,
            connection_id: None,
            identity: None,
        }
    }

    pub fn failed(inputs: Value, code: impl Into<String>, message: impl Into<String>) -> Self {
        Done {
            status: RunStatus::Failed,
            inputs,
            outputs: Value::Null,
            error: Some((code.into(), message.into())),
            connection_id: None,
            identity: None,
        }
    }
}

/// An action's outcome: finished (either way), or a transient failure worth retrying the run.
pub enum Step {
    Done(Box<Done>),
    Transient(String, String),
}

/// What the actions of one run share.
pub struct ActionEnv<'a> {
    pub state: &'a AppState,
    pub env: &'a Environment,
    pub flow: &'a FlowRow,
    pub run: &'a RunRow,
    /// The system user Dataverse actions impersonate (run-as), if any.
    pub run_as: Option<Uuid>,
}

const SECRET_WORDS: [&str; 8] = [
    "authorization",
    "password",
    "secret",
    "token",
    "cookie",
    "apikey",
    "api-key",
    "x-api-key",
];

/// The start of a busy target's answer, kept as the run's error when retries run out: redacted
/// like the outputs when it is JSON.
fn excerpt(text: String) -> String {
    let text = match serde_json::from_str::<Value>(&text) {
        Ok(v) => redact(&v).to_string(),
        Err(_) => text,
    };
    text.chars().take(300).collect()
}

/// Hide values under names that carry credentials, at any depth.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let lower = k.to_ascii_lowercase();
                    if SECRET_WORDS.iter().any(|w| lower.contains(w)) && !x.is_null() {
                        (k.clone(), Value::String("*** redacted ***".into()))
                    } else {
                        (k.clone(), redact(x))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn eval(t: &Option<Template>, ctx: &dyn FlowContext) -> Result<Option<Value>, String> {
    t.as_ref()
        .map(|t| t.evaluate(ctx).map_err(|e| e.to_string()))
        .transpose()
}

fn text_of(v: &Value) -> String {
    keyway_core::flows::to_text(v)
}

/// The environment a Web API URL points into, when it is one of this server's.
async fn environment_of(state: &AppState, url: &str) -> Option<Environment> {
    let name = keyway_core::environment::environment_in_url(
        url,
        |h| state.is_our_host(h),
        state.config.environment_domain.as_deref(),
    )?;
    state
        .directory
        .environment(state, &name)
        .await
        .ok()
        .flatten()
}

/// The system user a token names in `env` (its application user, or the person's user).
async fn identity_of(state: &AppState, env: &Environment, token: &str) -> Option<Uuid> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: keyway_core::token::AccessTokenClaims = serde_json::from_slice(&bytes).ok()?;
    let key = if claims.is_app() {
        SystemUserKey::ApplicationId(Uuid::parse_str(&claims.appid).ok()?)
    } else {
        SystemUserKey::ObjectId(Uuid::parse_str(&claims.oid).ok()?)
    };
    state
        .directory
        .system_user(state, env, key)
        .await
        .ok()
        .flatten()
        .map(|u| u.id)
}

/// A token from the connection for `resource`; the authority's refusal fails the action.
async fn token(
    a: &ActionEnv<'_>,
    conn: &Connection,
    resource: &str,
) -> Result<zeroize::Zeroizing<String>, Step> {
    let caller = format!("flow {}", a.flow.id);
    let purpose = format!("flow run {}", a.run.id);
    match connection_auth::token_for(a.state, conn, resource, &caller, &purpose).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(Status::Error { code, message })) => Err(Step::Done(Box::new(Done {
            connection_id: Some(conn.id),
            ..Done::failed(Value::Null, code, message)
        }))),
        Ok(Err(other)) => Err(Step::Done(Box::new(Done {
            connection_id: Some(conn.id),
            ..Done::failed(
                Value::Null,
                "ConnectionNotUsable",
                format!(
                    "The connection '{}' gave no token ({}).",
                    conn.name,
                    other.name()
                ),
            )
        }))),
        Err(e) => Err(Step::Transient(
            "ConnectionUnavailable".into(),
            format!("The connection '{}' could not be used: {e}", conn.name),
        )),
    }
}

/// The connection a run uses for the flow's connection name: for a `runtimeSource: invoker`
/// name, the one whoever started the run chose (checked then); else the flow's own. `true` when
/// it is the invoker's; `Err` with a code and message when there is none to use.
async fn resolve(
    a: &ActionEnv<'_>,
    name: &str,
) -> Result<Result<(Connection, bool), (String, String)>, super::ServiceError> {
    let r =
        super::flows::find_connection(a.state, a.env, &a.flow.connection_references, name).await?;
    if r.runtime_source != RuntimeSource::Invoker {
        return Ok(r
            .connection
            .map(|c| (c, false))
            .map_err(|u| (u.code.to_string(), u.message)));
    }
    let chosen = a.run.trigger_outputs["keyway"]["invokerConnections"][name]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok());
    let Some(id) = chosen else {
        return Ok(Err((
            "InvokerConnectionMissing".into(),
            format!(
                "'{name}' runs with the connection of whoever starts the run, and this run was started without one."
            ),
        )));
    };
    Ok(match a.state.store.connection_get(id).await? {
        Some(c) => Ok((c, true)),
        None => Err((
            "ConnectionNotFound".into(),
            format!("The connection this run was started with for '{name}' no longer exists."),
        )),
    })
}

/// Whether an action failed because its connection's credential lapsed.
fn lapsed(d: &Done) -> bool {
    d.error
        .as_ref()
        .is_some_and(|(code, _)| connection_identity::credential_lapsed(code))
}

/// A token minted for the identity the connection proved. `Err(None)`: none is proven or known
/// (the connection's own error stands); `Err(Some(step))`: it is disabled, or the store failed.
async fn as_identity(
    a: &ActionEnv<'_>,
    conn: &Connection,
    resource: &str,
) -> Result<zeroize::Zeroizing<String>, Option<Step>> {
    let caller = format!("flow {}", a.flow.id);
    let purpose = format!(
        "flow run {}: whom the lapsed credential signed in as",
        a.run.id
    );
    let unavailable =
        |e: super::ServiceError| Some(Step::Transient("StoreUnavailable".into(), e.to_string()));
    let who = connection_identity::proven(a.state, a.env, conn, &caller, &purpose)
        .await
        .map_err(unavailable)?
        .ok_or(None)?;
    match connection_identity::mint(a.state, a.env, &who, resource).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(Status::Error { code, message })) => Err(Some(Step::Done(Box::new(Done {
            connection_id: Some(conn.id),
            ..Done::failed(Value::Null, code, message)
        })))),
        Ok(Err(_)) => Err(None),
        Err(e) => Err(unavailable(e)),
    }
}

fn with_inputs(step: Step, inputs: &Value) -> Step {
    match step {
        Step::Done(mut d) => {
            d.inputs = inputs.clone();
            Step::Done(d)
        }
        t => t,
    }
}

/// The evaluated parameters of a Dataverse operation, as the run history shows them.
fn dataverse_parameters(
    op: &DataverseAction,
    ctx: &dyn FlowContext,
) -> Result<Map<String, Value>, String> {
    let mut p = Map::new();
    p.insert("entityName".into(), op.entity_name.clone().into());
    if let Some(id) = eval(&op.record_id, ctx)? {
        p.insert("recordId".into(), id);
    }
    if op.operation == DataverseOperation::CreateRecord
        || op.operation == DataverseOperation::UpdateRecord
    {
        let mut item = Map::new();
        for (column, t) in &op.item {
            item.insert(column.clone(), t.evaluate(ctx).map_err(|e| e.to_string())?);
        }
        p.insert("item".into(), Value::Object(item));
    }
    for (key, t) in [
        ("$filter", &op.filter),
        ("$select", &op.select),
        ("$orderby", &op.order_by),
        ("$top", &op.top),
        ("$expand", &op.expand),
    ] {
        if let Some(v) = eval(t, ctx)? {
            p.insert(key.into(), v);
        }
    }
    Ok(p)
}

/// A Dataverse operation through the connection named in the action.
pub async fn dataverse(
    a: &ActionEnv<'_>,
    ctx: &RecordedRun,
    name: &str,
    op: &DataverseAction,
) -> Step {
    let mut host =
        json!({"connectionName": op.connection_name, "operationId": op.operation.as_str()});
    let params = match dataverse_parameters(op, ctx) {
        Ok(p) => p,
        Err(e) => {
            return Step::Done(Box::new(Done::failed(
                json!({"host": host}),
                "InvalidTemplate",
                e,
            )));
        }
    };
    let (conn, invoker) = match resolve(a, &op.connection_name).await {
        Ok(Ok(found)) => found,
        Ok(Err((code, message))) => {
            return Step::Done(Box::new(Done::failed(
                json!({"host": host, "parameters": redact(&Value::Object(params))}),
                code,
                message,
            )));
        }
        Err(e) => return Step::Transient("StoreUnavailable".into(), e.to_string()),
    };
    host["connectionId"] = conn.name.clone().into();
    if invoker {
        host["runtimeSource"] = "invoker".into();
    }
    let Some(target) = connection_auth::target_url(a.state, &conn, Some(a.env)) else {
        return Step::Done(Box::new(Done::failed(
            json!({"host": host}),
            "NoTarget",
            "The connection names no environment to act in.",
        )));
    };
    let target_env = environment_of(a.state, &target).await;
    let same_env = target_env.as_ref().is_some_and(|e| e.id == a.env.id);
    if invoker && !same_env {
        return Step::Done(Box::new(Done {
            connection_id: Some(conn.id),
            ..Done::failed(
                json!({"host": host}),
                "InvokerConnectionNotSupported",
                format!(
                    "Actions against another environment do not support connections provided by run-only users: '{}' acts in {target}. Make '{}' an 'embedded' connection of the flow, or use a connection to environment '{}'.",
                    conn.name, op.connection_name, a.env.name
                ),
            )
        }));
    }
    if a.run_as.is_some() && !same_env {
        return Step::Done(Box::new(Done::failed(
            json!({"host": host}),
            "RunAsNotSupported",
            "Actions against another environment do not support the trigger's run-as option: run the flow as its owner, or use a connection to this environment.",
        )));
    }
    if let Some(u) = a.run_as {
        host["runAs"] = u.to_string().into();
    }
    let mut inputs = json!({"host": host, "parameters": redact(&Value::Object(params.clone()))});
    let token = match token(a, &conn, &target).await {
        Ok(t) => t,
        Err(Step::Done(failed)) if same_env && lapsed(&failed) => {
            // Seed 004: in its own environment the action runs on as the connection's identity.
            match as_identity(a, &conn, &target).await {
                Ok(t) => {
                    inputs["host"]["credential"] = "expired".into();
                    if let Some((code, _)) = &failed.error {
                        inputs["host"]["credentialError"] = code.clone().into();
                    }
                    t
                }
                Err(None) => return with_inputs(Step::Done(failed), &inputs),
                Err(Some(step)) => return with_inputs(step, &inputs),
            }
        }
        Err(step) => return with_inputs(step, &inputs),
    };
    let acting = match &target_env {
        Some(env) => identity_of(a.state, env, &token).await,
        None => None,
    };
    // Acting as oneself is no impersonation (and needs no Delegate).
    let impersonate = a.run_as.filter(|u| Some(*u) != acting);
    let identity = a.run_as.or(acting).map(|u| u.to_string());
    let base = format!("{}/api/data/v9.2", target.trim_end_matches('/'));
    let set = &op.entity_name;
    let record_id = params.get("recordId").map(text_of).unwrap_or_default();
    let mut query: Vec<(String, String)> = ["$filter", "$select", "$orderby", "$top", "$expand"]
        .iter()
        .filter_map(|k| params.get(*k).map(|v| (k.to_string(), text_of(v))))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let mut item = params.get("item").cloned().unwrap_or(json!({}));
    // A create names its row's id, derived from the run and the action: a run resumed after a
    // crash that repeats the call finds the row it made instead of making a second.
    let mut created_id = None;
    if op.operation == DataverseOperation::CreateRecord
        && let Some(env) = &target_env
        && let Ok(tables) = a.state.directory.tables(a.state, env).await
        && let Some(table) = tables.iter().find(|t| &t.entity_set_name == set)
        && item.get(&table.primary_id).is_none()
    {
        let id = Uuid::new_v5(&a.run.id, name.as_bytes());
        item[&table.primary_id] = id.to_string().into();
        created_id = Some(id);
    }
    let (method, url, body) = match op.operation {
        DataverseOperation::CreateRecord => {
            (reqwest::Method::POST, format!("{base}/{set}"), Some(item))
        }
        DataverseOperation::UpdateRecord => (
            reqwest::Method::PATCH,
            format!("{base}/{set}({record_id})"),
            Some(item),
        ),
        DataverseOperation::DeleteRecord => (
            reqwest::Method::DELETE,
            format!("{base}/{set}({record_id})"),
            None,
        ),
        DataverseOperation::GetItem => {
            query.retain(|(k, _)| k == "$select" || k == "$expand");
            (
                reqwest::Method::GET,
                format!("{base}/{set}({record_id})"),
                None,
            )
        }
        DataverseOperation::ListRecords => (reqwest::Method::GET, format!("{base}/{set}"), None),
    };
    let send = |method: reqwest::Method, url: String, body: Option<Value>| {
        let mut req = a
            .state
            .outbound
            .request(a.state, method, &url)
            .bearer_auth(token.as_str())
            .header("Prefer", "return=representation")
            .query(&query);
        if let Some(u) = impersonate {
            req = req.header("MSCRMCallerID", u.to_string());
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        a.state.outbound.send(a.state, req)
    };
    let done = |status, outputs, error| {
        Step::Done(Box::new(Done {
            status,
            inputs: inputs.clone(),
            outputs,
            error,
            connection_id: Some(conn.id),
            identity: identity.clone(),
        }))
    };
    let resp = match send(method, url, body).await {
        Ok(r) => r,
        Err(e) => {
            return Step::Transient(
                "TargetUnreachable".into(),
                format!("{target} could not be reached: {e}"),
            );
        }
    };
    let code = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if code.is_success() {
        return done(
            RunStatus::Succeeded,
            redact(&json!({"statusCode": code.as_u16(), "body": body})),
            None,
        );
    }
    if code.as_u16() == 429 || code.is_server_error() {
        return Step::Transient(
            format!("HTTP{}", code.as_u16()),
            body["error"]["message"]
                .as_str()
                .unwrap_or("The environment is busy.")
                .to_string(),
        );
    }
    let err_code = body["error"]["code"]
        .as_str()
        .map_or_else(|| format!("HTTP{}", code.as_u16()), str::to_string);
    // The row this action names already exists: an earlier attempt of this run made it.
    if let Some(id) = created_id
        && err_code == "0x80040237"
        && let Ok(r) = send(reqwest::Method::GET, format!("{base}/{set}({id})"), None).await
        && r.status().is_success()
    {
        let row: Value = r.json().await.unwrap_or(Value::Null);
        return done(
            RunStatus::Succeeded,
            redact(&json!({"statusCode": 201, "body": row})),
            None,
        );
    }
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("The environment refused the call.")
        .to_string();
    done(
        RunStatus::Failed,
        redact(&json!({"statusCode": code.as_u16(), "body": body})),
        Some((err_code, message)),
    )
}

/// An Http action's evaluated uri, headers, queries and body.
type HttpParts = (
    String,
    Map<String, Value>,
    Map<String, Value>,
    Option<Value>,
);

/// An HTTP call, its bearer token from a connection when the action names one.
/// A connection's token goes only where it is valid: to its resource's own origin, or to this
/// server (which takes the tokens of its own resources). Else a flow's author could send the
/// token of a connection merely shared with them, or a run-only user's, to any host.
fn token_may_go(state: &AppState, resource: &str, url: &reqwest::Url) -> Result<(), String> {
    let origin = |u: &reqwest::Url| u.origin().ascii_serialization();
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let ours = reqwest::Url::parse(&state.base_url).is_ok_and(|b| origin(&b) == origin(url))
        || state
            .config
            .hostnames
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&host))
        || state
            .config
            .environment_domain
            .as_deref()
            .is_some_and(|d| host.ends_with(&format!(".{}", d.to_ascii_lowercase())));
    match reqwest::Url::parse(resource) {
        _ if ours => Ok(()),
        Ok(r) if matches!(r.scheme(), "https" | "http") && origin(&r) == origin(url) => Ok(()),
        // An application ID URI (api://…) names no host: the API it stands for is anywhere.
        Ok(r) if r.scheme() == "api" => Ok(()),
        _ => Err(format!(
            "The connection's token is for '{resource}', and this action calls {}: a connection's token is sent only to its resource's own host or to this server. Call the resource itself, or set authentication.audience to the API you call.",
            origin(url)
        )),
    }
}

pub async fn http(a: &ActionEnv<'_>, ctx: &RecordedRun, h: &HttpAction) -> Step {
    let evaluated = (|| -> Result<HttpParts, String> {
        let uri = text_of(&h.uri.evaluate(ctx).map_err(|e| e.to_string())?);
        let mut headers = Map::new();
        for (k, t) in &h.headers {
            headers.insert(k.clone(), t.evaluate(ctx).map_err(|e| e.to_string())?);
        }
        let mut queries = Map::new();
        for (k, t) in &h.queries {
            queries.insert(k.clone(), t.evaluate(ctx).map_err(|e| e.to_string())?);
        }
        Ok((uri, headers, queries, eval(&h.body, ctx)?))
    })();
    let (uri, headers, queries, body) = match evaluated {
        Ok(x) => x,
        Err(e) => return Step::Done(Box::new(Done::failed(Value::Null, "InvalidTemplate", e))),
    };
    let mut inputs = json!({"method": h.method, "uri": uri, "headers": headers, "queries": queries, "body": body});
    let url = match super::outbound::check_target(a.state, "uri", &uri) {
        Ok(u) => u,
        Err(e) => {
            return Step::Done(Box::new(Done::failed(
                redact(&inputs),
                "InvalidUri",
                e.to_string(),
            )));
        }
    };
    let method = reqwest::Method::from_bytes(h.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = a.state.outbound.request(a.state, method, url.as_str());
    for (k, v) in &headers {
        req = req.header(k.as_str(), text_of(v));
    }
    let q: Vec<(String, String)> = queries
        .iter()
        .map(|(k, v)| (k.clone(), text_of(v)))
        .collect();
    req = req.query(&q);
    if let Some(b) = &body {
        req = match b {
            Value::String(s) => req.body(s.clone()),
            other => req.json(other),
        };
    }
    let mut connection_id = None;
    if let Some(auth) = &h.authentication {
        inputs["authentication"] =
            json!({"type": "Connection", "connectionName": auth.connection_name});
        let conn = match resolve(a, &auth.connection_name).await {
            Ok(Ok((c, invoker))) => {
                if invoker {
                    inputs["authentication"]["runtimeSource"] = "invoker".into();
                }
                c
            }
            Ok(Err((code, message))) => {
                return Step::Done(Box::new(Done::failed(redact(&inputs), code, message)));
            }
            Err(e) => return Step::Transient("StoreUnavailable".into(), e.to_string()),
        };
        let resource = auth
            .audience
            .clone()
            .or_else(|| connection_auth::target_url(a.state, &conn, Some(a.env)))
            .unwrap_or_else(|| uri.clone());
        if let Err(message) = token_may_go(a.state, &resource, &url) {
            return Step::Done(Box::new(Done::failed(
                redact(&inputs),
                "TokenAudienceMismatch",
                message,
            )));
        }
        let t = match token(a, &conn, &resource).await {
            Ok(t) => t,
            Err(step) => return with_inputs(step, &redact(&inputs)),
        };
        connection_id = Some(conn.id);
        req = req.bearer_auth(t.as_str());
    }
    let inputs = redact(&inputs);
    let resp = match a.state.outbound.send(a.state, req).await {
        Ok(r) => r,
        Err(e) => return Step::Transient("TargetUnreachable".into(), format!("{uri}: {e}")),
    };
    let code = resp.status();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.unwrap_or_default();
    if code.as_u16() == 429 || code.is_server_error() {
        return Step::Transient(format!("HTTP{}", code.as_u16()), excerpt(text));
    }
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let outputs = redact(
        &json!({"statusCode": code.as_u16(), "headers": {"Content-Type": content_type}, "body": body}),
    );
    let (status, error) = if code.is_success() {
        (RunStatus::Succeeded, None)
    } else {
        (
            RunStatus::Failed,
            Some((
                format!("HTTP{}", code.as_u16()),
                format!("{uri} answered {code}."),
            )),
        )
    };
    Step::Done(Box::new(Done {
        status,
        inputs,
        outputs,
        error,
        connection_id,
        identity: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_answer_kept_as_an_error_is_redacted() {
        let e = excerpt(r#"{"error": "busy", "access_token": "eyJsecret"}"#.into());
        assert!(!e.contains("eyJsecret"), "{e}");
        assert!(e.contains("busy"), "{e}");
        assert_eq!(excerpt("x".repeat(400)).len(), 300);
    }

    #[test]
    fn credentials_are_redacted_at_any_depth() {
        let v = json!({
            "headers": {"Authorization": "Bearer eyJ", "Content-Type": "application/json"},
            "body": {"items": [{"client_secret": "s3cret", "name": "x", "refreshToken": null}]},
            "apiKey": "k",
        });
        let r = redact(&v);
        assert_eq!(r["headers"]["Authorization"], "*** redacted ***");
        assert_eq!(r["headers"]["Content-Type"], "application/json");
        assert_eq!(r["body"]["items"][0]["client_secret"], "*** redacted ***");
        assert_eq!(r["body"]["items"][0]["name"], "x");
        assert_eq!(r["body"]["items"][0]["refreshToken"], Value::Null);
        assert_eq!(r["apiKey"], "*** redacted ***");
        assert!(!r.to_string().contains("s3cret") && !r.to_string().contains("eyJ"));
    }
}
