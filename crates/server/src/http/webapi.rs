//! The Dataverse Web API at `{envUrl}/api/data/v9.2/`: one entry point that reads the OData path
//! and calls the use case. What is not built yet answers a clear 400 naming it.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::{FieldValue, Record};
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::context::{RequestContext, origin};
use super::error::DataverseWireError;
use crate::services::ServiceError;
use crate::services::records;
use crate::services::webapi::{self as svc, WebApiCaller};
use crate::state::AppState;

type WebResult = Result<Response, DataverseWireError>;

pub(crate) fn odata(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("OData-Version", HeaderValue::from_static("4.0"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; odata.metadata=minimal"),
    );
    resp
}

async fn caller(
    state: &AppState,
    env: &str,
    headers: &HeaderMap,
    ctx: &RequestContext,
) -> Result<WebApiCaller, DataverseWireError> {
    let fail = |error: ServiceError| DataverseWireError {
        error,
        ctx: ctx.clone(),
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            fail(
                DataverseError::Unauthenticated(
                    "Send Authorization: Bearer <token> for scope {environment url}/.default."
                        .into(),
                )
                .into(),
            )
        })?;
    let header_id = |name: &str| -> Result<Option<Uuid>, DataverseWireError> {
        match headers.get(name).and_then(|v| v.to_str().ok()) {
            None => Ok(None),
            Some(v) => Uuid::parse_str(v.trim()).map(Some).map_err(|_| {
                fail(DataverseError::Syntax(format!("The {name} header must be a GUID.")).into())
            }),
        }
    };
    let impersonate = match (header_id("CallerObjectId")?, header_id("MSCRMCallerID")?) {
        (Some(oid), None) => Some(svc::Impersonation::ObjectId(oid)),
        (None, Some(id)) => Some(svc::Impersonation::SystemUserId(id)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(fail(
                DataverseError::Syntax("Send CallerObjectId or MSCRMCallerID, not both.".into())
                    .into(),
            ));
        }
    };
    svc::authenticate(state, env, token, impersonate)
        .await
        .map_err(fail)
}

fn base(state: &AppState, headers: &HeaderMap, env: &str) -> String {
    format!("{}/env/{env}/api/data/v9.2", origin(state, headers))
}

/// `GET {envUrl}/api/data/v9.2/`: the service document.
pub async fn service_document_get(
    State(state): State<AppState>,
    Path(env): Path<String>,
    headers: HeaderMap,
    ctx: RequestContext,
) -> WebResult {
    let c = caller(&state, &env, &headers, &ctx).await?;
    let sets: Vec<Value> = c
        .tables
        .iter()
        .map(|e| json!({"name": e.entity_set_name, "kind": "EntitySet", "url": e.entity_set_name}))
        .collect();
    Ok(odata(Json(json!({"@odata.context": format!("{}/$metadata", base(&state, &headers, &env)), "value": sets})).into_response()))
}

/// Everything under `{envUrl}/api/data/v9.2/…`.
pub async fn webapi_dispatch(
    State(state): State<AppState>,
    Path((env, path)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    ctx: RequestContext,
    body: axum::body::Bytes,
) -> WebResult {
    let c = caller(&state, &env, &headers, &ctx).await?;
    let base = base(&state, &headers, &env);
    if path.trim_end_matches('/') == "$batch" {
        if method != Method::POST {
            return Err(DataverseWireError {
                error: DataverseError::Syntax("$batch takes POST.".into()).into(),
                ctx,
            });
        }
        return super::webapi_batch::run(&state, &c, &base, &headers, &body, &ctx).await;
    }
    handle(
        &state, &c, &base, method, &path, query, &headers, body, &ctx,
    )
    .await
}

/// One Web API request from a known caller (also each part of a `$batch`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn handle(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    method: Method,
    path: &str,
    query: Option<String>,
    headers: &HeaderMap,
    body: axum::body::Bytes,
    ctx: &RequestContext,
) -> WebResult {
    let fail = |error: ServiceError| DataverseWireError {
        error,
        ctx: ctx.clone(),
    };
    let (state, c, headers, base) = (state.clone(), c, headers.clone(), base.to_string());
    let path = path.trim_end_matches('/');
    if path == "WhoAmI" || path == "WhoAmI()" {
        if method != Method::GET {
            return Err(fail(
                DataverseError::Syntax("WhoAmI is a function: call it with GET.".into()).into(),
            ));
        }
        let w = svc::who_am_i(c);
        return Ok(odata(
            Json(json!({
                "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"),
                "BusinessUnitId": w.business_unit_id, "UserId": w.user_id, "OrganizationId": w.organization_id,
            }))
            .into_response(),
        ));
    }
    if path == "RetrieveAvailableLanguages" || path == "RetrieveAvailableLanguages()" {
        return Ok(odata(Json(json!({"@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.RetrieveAvailableLanguagesResponse"), "LocaleIds": [1033]})).into_response()));
    }
    if let Some(out) =
        super::webapi_sharing::route(&state, c, &base, &method, path, query.as_deref(), &body).await
    {
        return out.map_err(fail);
    }
    if path == "audits" || path.starts_with("RetrieveRecordChangeHistory(") {
        if method != Method::GET {
            return Err(fail(
                DataverseError::Syntax("The audit history is read-only.".into()).into(),
            ));
        }
        let options = keyway_core::odata::QueryOptions::parse(query.as_deref().unwrap_or_default())
            .map_err(|e| fail(DataverseError::Syntax(e.message).into()))?;
        if path == "audits" {
            let rows = crate::services::audit_read::list(&state, c, &options)
                .await
                .map_err(fail)?;
            return Ok(odata(
                Json(json!({"@odata.context": format!("{base}/$metadata#audits"), "value": rows}))
                    .into_response(),
            ));
        }
        let v = crate::services::audit_read::record_change_history(&state, c, &options)
            .await
            .map_err(fail)?;
        return Ok(odata(Json(v).into_response()));
    }
    if let Some(out) =
        super::webapi_metadata::route(&state, c, &base, &method, path, query.as_deref(), &body)
            .await
    {
        return out.map_err(fail);
    }
    if let Some(out) =
        super::webapi_roles::route(&state, c, &base, &method, path, query.as_deref(), &body).await
    {
        return out.map_err(fail);
    }
    if path == "EntityDefinitions" || path.starts_with("EntityDefinitions(") {
        if method == Method::POST {
            return customize(&state, c, path, &body, &base).await.map_err(fail);
        }
        if method != Method::GET {
            return Err(fail(
                DataverseError::Unsupported(format!(
                    "{method} on EntityDefinitions is not supported."
                ))
                .into(),
            ));
        }
        return entity_definitions(c, path, query.as_deref(), &base).map_err(fail);
    }
    if let Some((set, action)) = path.split_once('/')
        && (action == "Microsoft.Dynamics.CRM.UpdateMultiple"
            || action == "Microsoft.Dynamics.CRM.UpsertMultiple")
    {
        let entity = svc::entity_by_set(c, set).map_err(fail)?;
        if method != Method::POST {
            return Err(fail(
                DataverseError::Syntax(format!("{action} is an action: call it with POST.")).into(),
            ));
        }
        let body = json_body(&body).map_err(fail)?;
        let targets = body
            .get("Targets")
            .and_then(|t| t.as_array())
            .filter(|t| !t.is_empty() && t.len() <= 1000)
            .ok_or_else(|| {
                fail(
                    DataverseError::Syntax(format!(
                        "{action} needs {{\"Targets\": [ … ]}} with 1 to 1000 rows."
                    ))
                    .into(),
                )
            })?;
        records::update_or_upsert_many(
            &state,
            c,
            entity,
            targets,
            action.ends_with("UpsertMultiple"),
        )
        .await
        .map_err(fail)?;
        let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
        r.headers_mut()
            .insert("OData-Version", HeaderValue::from_static("4.0"));
        return Ok(r);
    }
    if let Some((set, action)) = path.split_once('/')
        && action == "Microsoft.Dynamics.CRM.CreateMultiple"
    {
        let entity = svc::entity_by_set(c, set).map_err(fail)?;
        if method != Method::POST {
            return Err(fail(
                DataverseError::Syntax("CreateMultiple is an action: call it with POST.".into())
                    .into(),
            ));
        }
        let body = json_body(&body).map_err(fail)?;
        let targets = body
            .get("Targets")
            .and_then(|t| t.as_array())
            .ok_or_else(|| {
                fail(
                    DataverseError::Syntax("CreateMultiple needs {\"Targets\": [ … ]}.".into())
                        .into(),
                )
            })?;
        if targets.is_empty() || targets.len() > 1000 {
            return Err(fail(
                DataverseError::Syntax("CreateMultiple takes 1 to 1000 Targets.".into()).into(),
            ));
        }
        let rows = targets
            .iter()
            .map(|t| records::fields_from_json(entity, &c.tables, t, true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let ids = records::create_many(&state, c, entity, rows)
            .await
            .map_err(fail)?;
        return Ok(odata(Json(json!({"@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"), "Ids": ids})).into_response()));
    }
    // `{set}({id})`
    if let Some((set, rest)) = path.split_once('(')
        && let Some(key) = rest.strip_suffix(')')
    {
        let entity = svc::entity_by_set(c, set).map_err(fail)?;
        let id = Uuid::parse_str(key.trim_matches('\'')).map_err(|_| {
            fail(
                DataverseError::Syntax(format!(
                    "'{key}' is not a valid key for {set}: use the record's GUID."
                ))
                .into(),
            )
        })?;
        if method == Method::PATCH || method == Method::DELETE {
            return write_one(&state, c, entity, id, &method, &headers, &body, &base, set)
                .await
                .map_err(fail);
        }
        if method != Method::GET {
            return Err(fail(
                DataverseError::Unsupported(format!(
                    "{method} on a single record is not supported."
                ))
                .into(),
            ));
        }
        let options = svc::parse_query(query.as_deref(), entity).map_err(fail)?;
        if options.filter.is_some()
            || !options.orderby.is_empty()
            || options.top.is_some()
            || options.count
            || options.skiptoken.is_some()
        {
            return Err(fail(
                DataverseError::Unsupported(
                    "A single record takes only $select and $expand.".into(),
                )
                .into(),
            ));
        }
        let record = svc::retrieve(&state, c, entity, id).await.map_err(fail)?;
        let expanded = svc::expand(
            &state,
            c,
            entity,
            std::slice::from_ref(&record),
            &options.expand,
        )
        .await
        .map_err(fail)?;
        let mut body = render(entity, &record, options.select.as_deref());
        if super::webapi_annotations::wanted(&headers) {
            super::webapi_annotations::formatted_values(entity, &record, &mut body);
        }
        attach(&mut body, &record, &expanded);
        body.insert(
            "@odata.context".into(),
            format!("{base}/$metadata#{set}/$entity").into(),
        );
        return Ok(odata(Json(Value::Object(body)).into_response()));
    }
    let segment = path.split('/').next().unwrap_or_default();
    if segment == path
        && let Some(entity) = c.tables.iter().find(|e| e.entity_set_name == segment)
    {
        if method == Method::POST {
            let record = records::fields_from_json(
                entity,
                &c.tables,
                &json_body(&body).map_err(fail)?,
                true,
            )
            .map_err(fail)?;
            let id = records::create(&state, c, entity, record)
                .await
                .map_err(fail)?;
            return created(&state, c, entity, id, &headers, &base, segment)
                .await
                .map_err(fail);
        }
        if method != Method::GET {
            return Err(fail(
                DataverseError::Unsupported(format!(
                    "{method} on the collection '{segment}' is not supported."
                ))
                .into(),
            ));
        }
        let options = svc::parse_query(query.as_deref(), entity).map_err(fail)?;
        let page_size = max_page_size(&headers);
        let page = svc::list(
            &state,
            c,
            entity,
            &options,
            page_size.unwrap_or(DEFAULT_PAGE_SIZE),
        )
        .await
        .map_err(fail)?;
        let expanded = svc::expand(&state, c, entity, &page.records, &options.expand)
            .await
            .map_err(fail)?;
        let formatted = super::webapi_annotations::wanted(&headers);
        let values: Vec<Value> = page
            .records
            .iter()
            .map(|r| {
                let mut m = render(entity, r, options.select.as_deref());
                if formatted {
                    super::webapi_annotations::formatted_values(entity, r, &mut m);
                }
                attach(&mut m, r, &expanded);
                Value::Object(m)
            })
            .collect();
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            format!("{base}/$metadata#{segment}").into(),
        );
        if let Some(n) = page.count {
            body.insert("@odata.count".into(), n.into());
        }
        body.insert("value".into(), values.into());
        if let Some(next) = page.next_skiptoken {
            let mut o = options.clone();
            o.skiptoken = Some(next);
            body.insert(
                "@odata.nextLink".into(),
                format!("{base}/{segment}?{}", o.to_query_string()).into(),
            );
        }
        let mut resp = odata(Json(Value::Object(body)).into_response());
        if let Some(n) = page_size
            && let Ok(v) = HeaderValue::from_str(&format!("odata.maxpagesize={n}"))
        {
            resp.headers_mut().insert("Preference-Applied", v);
        }
        return Ok(resp);
    }
    if c.tables.iter().any(|e| e.entity_set_name == segment) {
        return Err(fail(
            DataverseError::Unsupported(format!("The path '{path}' is not supported yet.")).into(),
        ));
    }
    Err(fail(
        DataverseError::UnknownSegment(segment.to_string()).into(),
    ))
}

const DEFAULT_PAGE_SIZE: u64 = 5000;

/// `POST EntityDefinitions` (a table) and `POST EntityDefinitions(<key>)/Attributes` (a column):
/// 204 with the new definition's OData-EntityId.
async fn customize(
    state: &AppState,
    c: &WebApiCaller,
    path: &str,
    body: &[u8],
    base: &str,
) -> Result<Response, ServiceError> {
    use crate::services::customization;
    let json = json_body(body)?;
    let location = if path == "EntityDefinitions" {
        let e = customization::create_table(state, c, &json).await?;
        format!("{base}/EntityDefinitions({})", e.metadata_id)
    } else {
        let rest = &path["EntityDefinitions(".len()..];
        let (key, tail) = rest
            .split_once(')')
            .ok_or_else(|| DataverseError::Syntax(format!("'{path}' is not a metadata path.")))?;
        if tail != "/Attributes" {
            return Err(
                DataverseError::Unsupported(format!("POST {path} is not supported.")).into(),
            );
        }
        let entity = crate::services::metadata::find_entity(&c.tables, key)?;
        let a = customization::add_column(state, c, entity, &json).await?;
        format!(
            "{base}/EntityDefinitions({})/Attributes({})",
            entity.metadata_id, a.metadata_id
        )
    };
    let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert("OData-EntityId", v);
    }
    Ok(r)
}

/// `EntityDefinitions`, `EntityDefinitions(<key>)`, `…/Attributes`, `…/Attributes/<cast>`,
/// `…/Attributes(LogicalName='x')`.
fn entity_definitions(
    c: &WebApiCaller,
    path: &str,
    query: Option<&str>,
    base: &str,
) -> Result<Response, ServiceError> {
    use crate::services::metadata as md;
    let options = keyway_core::odata::QueryOptions::parse(query.unwrap_or_default())
        .map_err(|e| DataverseError::Syntax(e.message))?;
    let with_attributes =
        |e: &EntityDef, mut m: Map<String, Value>| -> Result<Map<String, Value>, ServiceError> {
            if let Some(x) = options.expand.iter().find(|x| x.navigation == "Attributes") {
                let sub = keyway_core::odata::QueryOptions {
                    select: x.select.clone(),
                    ..Default::default()
                };
                let attrs = e
                    .attributes
                    .iter()
                    .map(|a| md::attribute_json(e, a))
                    .collect();
                m.insert(
                    "Attributes".into(),
                    md::query(attrs, &sub, "AttributeMetadata")?.into(),
                );
            } else if let Some(x) = options.expand.first() {
                return Err(DataverseError::Unsupported(format!(
                    "$expand={} is not supported on EntityDefinitions.",
                    x.navigation
                ))
                .into());
            }
            Ok(m)
        };
    let collection = |set: &str, value: Vec<Value>| {
        odata(
            Json(json!({"@odata.context": format!("{base}/$metadata#{set}"), "value": value}))
                .into_response(),
        )
    };
    if path == "EntityDefinitions" {
        let items = c
            .tables
            .iter()
            .map(|e| with_attributes(e, md::entity_json(e)))
            .collect::<Result<Vec<_>, _>>()?;
        let plain = keyway_core::odata::QueryOptions {
            expand: vec![],
            ..options.clone()
        };
        return Ok(collection(
            "EntityDefinitions",
            md::query(items, &plain, "EntityMetadata")?,
        ));
    }
    let rest = &path["EntityDefinitions(".len()..];
    let (key, tail) = rest
        .split_once(')')
        .ok_or_else(|| DataverseError::Syntax(format!("'{path}' is not a valid metadata path.")))?;
    let entity = md::find_entity(&c.tables, key)?;
    match tail.trim_start_matches('/') {
        "" => {
            let m = with_attributes(entity, md::entity_json(entity))?;
            let plain = keyway_core::odata::QueryOptions {
                expand: vec![],
                filter: None,
                ..options.clone()
            };
            let mut one = md::query(vec![m], &plain, "EntityMetadata")?;
            let mut v = one.pop().unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "@odata.context".into(),
                    format!("{base}/$metadata#EntityDefinitions/$entity").into(),
                );
            }
            Ok(odata(Json(v).into_response()))
        }
        "Attributes" => {
            let attrs = entity
                .attributes
                .iter()
                .map(|a| md::attribute_json(entity, a))
                .collect();
            Ok(collection(
                "EntityDefinitions(…)/Attributes",
                md::query(attrs, &options, "AttributeMetadata")?,
            ))
        }
        other => {
            if let Some(cast) = other
                .strip_prefix("Attributes/Microsoft.Dynamics.CRM.")
                .and_then(|c| c.strip_suffix("AttributeMetadata"))
            {
                return Ok(collection(
                    "EntityDefinitions(…)/Attributes",
                    md::cast_attributes(entity, cast, &options)?,
                ));
            }
            if let Some(name) = other
                .strip_prefix("Attributes(LogicalName='")
                .and_then(|n| n.strip_suffix("')"))
            {
                let a = entity
                    .attribute(name)
                    .ok_or_else(|| DataverseError::RecordNotFound {
                        entity: "AttributeMetadata".into(),
                        id: name.to_string(),
                    })?;
                return Ok(odata(
                    Json(Value::Object(md::attribute_json(entity, a))).into_response(),
                ));
            }
            Err(DataverseError::Unsupported(format!(
                "The metadata path '{path}' is not supported."
            ))
            .into())
        }
    }
}

pub(crate) fn json_body(body: &[u8]) -> Result<Value, ServiceError> {
    serde_json::from_slice(body).map_err(|e| {
        DataverseError::Syntax(format!("The request body is not valid JSON: {e}.")).into()
    })
}

fn wants_representation(headers: &HeaderMap) -> bool {
    headers
        .get_all("Prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "return=representation")
}

/// `If-Match: *` means "must exist"; `If-Match: W/"7"` also "at version 7". `If-None-Match: null`
/// (which some clients always send) means nothing.
enum Precondition {
    None,
    MustExist(Option<i64>),
    MustNotExist,
}

fn precondition(headers: &HeaderMap) -> Result<Precondition, ServiceError> {
    if let Some(v) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v == "*" {
            return Ok(Precondition::MustExist(None));
        }
        let n = v
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse::<i64>()
            .map_err(|_| {
                DataverseError::Syntax(format!("If-Match '{v}' is not an etag this server issued."))
            })?;
        return Ok(Precondition::MustExist(Some(n)));
    }
    match headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        Some("*") => Ok(Precondition::MustNotExist),
        _ => Ok(Precondition::None),
    }
}

/// 204 with `OData-EntityId`, or 201 with the row when `return=representation` was asked.
async fn created(
    state: &AppState,
    c: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
    headers: &HeaderMap,
    base: &str,
    set: &str,
) -> Result<Response, ServiceError> {
    let location = format!("{base}/{set}({id})");
    let mut resp = if wants_representation(headers) {
        let record = svc::retrieve(state, c, entity, id).await?;
        let mut body = render(entity, &record, None);
        if super::webapi_annotations::wanted(headers) {
            super::webapi_annotations::formatted_values(entity, &record, &mut body);
        }
        body.insert(
            "@odata.context".into(),
            format!("{base}/$metadata#{set}/$entity").into(),
        );
        let mut r = odata(Json(Value::Object(body)).into_response());
        *r.status_mut() = axum::http::StatusCode::CREATED;
        r.headers_mut().insert(
            "Preference-Applied",
            HeaderValue::from_static("return=representation"),
        );
        r
    } else {
        let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
        r.headers_mut()
            .insert("OData-Version", HeaderValue::from_static("4.0"));
        r
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert("OData-EntityId", v.clone());
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// PATCH (update or upsert) and DELETE of one row.
#[allow(clippy::too_many_arguments)]
async fn write_one(
    state: &AppState,
    c: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    base: &str,
    set: &str,
) -> Result<Response, ServiceError> {
    let pre = precondition(headers)?;
    if *method == Method::DELETE {
        let version = match pre {
            Precondition::MustExist(v) => v,
            _ => None,
        };
        records::delete(state, c, entity, id, version).await?;
        let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
        r.headers_mut()
            .insert("OData-Version", HeaderValue::from_static("4.0"));
        return Ok(r);
    }
    let json = json_body(body)?;
    let exists = records::exists(state, c, entity, id).await?;
    let create = match (&pre, exists) {
        (Precondition::MustExist(_), false) => {
            return Err(DataverseError::RecordNotFound {
                entity: entity.logical_name.clone(),
                id: id.to_string(),
            }
            .into());
        }
        (Precondition::MustNotExist, true) => return Err(DataverseError::Duplicate.into()),
        (_, false) => true,
        (_, true) => false,
    };
    if create {
        let mut record = records::fields_from_json(entity, &c.tables, &json, true)?;
        record.fields.insert(
            entity.primary_id.clone(),
            keyway_core::dataverse::record::FieldValue::Id(id),
        );
        let id = records::create(state, c, entity, record).await?;
        return created(state, c, entity, id, headers, base, set).await;
    }
    let fields = records::fields_from_json(entity, &c.tables, &json, false)?;
    let version = match pre {
        Precondition::MustExist(v) => v,
        _ => None,
    };
    let row = records::update(state, c, entity, id, fields, version).await?;
    if wants_representation(headers) {
        let mut body = render(entity, &row, None);
        if super::webapi_annotations::wanted(headers) {
            super::webapi_annotations::formatted_values(entity, &row, &mut body);
        }
        body.insert(
            "@odata.context".into(),
            format!("{base}/$metadata#{set}/$entity").into(),
        );
        let mut r = odata(Json(Value::Object(body)).into_response());
        r.headers_mut().insert(
            "Preference-Applied",
            HeaderValue::from_static("return=representation"),
        );
        return Ok(r);
    }
    let mut r = axum::http::StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/{set}({id})")) {
        r.headers_mut().insert("OData-EntityId", v);
    }
    Ok(r)
}

/// `Prefer: odata.maxpagesize=N` (among other preferences), if sane.
fn max_page_size(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("Prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .find(|n| (1..=DEFAULT_PAGE_SIZE).contains(n))
}

/// Put each expanded row (or null, when absent or not readable) under its navigation name.
fn attach(body: &mut Map<String, Value>, record: &Record, expanded: &[svc::Expanded<'_>]) {
    for x in expanded {
        let id = match record.fields.get(&x.navigation) {
            Some(FieldValue::Id(id)) => Some(*id),
            _ => None,
        };
        let value = id
            .and_then(|id| {
                x.rows
                    .iter()
                    .find_map(|(target, rows)| rows.get(&id).map(|r| (*target, r)))
            })
            .map(|(target, r)| {
                let mut m = render(target, r, x.select.as_deref());
                m.remove("@odata.etag");
                Value::Object(m)
            })
            .unwrap_or(Value::Null);
        body.insert(x.navigation.clone(), value);
    }
}

/// A row as Dataverse returns it: lookups as `_name_value`, the etag from the version number.
pub fn render(
    entity: &EntityDef,
    record: &Record,
    select: Option<&[String]>,
) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(FieldValue::Int(v)) = record.fields.get("versionnumber") {
        out.insert("@odata.etag".into(), format!("W/\"{v}\"").into());
    }
    for a in &entity.attributes {
        let wire = if a.kind.is_lookup() {
            format!("_{}_value", a.logical_name)
        } else {
            a.logical_name.clone()
        };
        let wanted = a.logical_name == entity.primary_id
            || select.is_none_or(|s| s.iter().any(|c| c == &wire || c == &a.logical_name));
        if !wanted {
            continue;
        }
        let v = match record.fields.get(&a.logical_name) {
            None | Some(FieldValue::Null) => Value::Null,
            Some(FieldValue::Text(s)) => s.clone().into(),
            Some(FieldValue::Int(n)) => (*n).into(),
            Some(FieldValue::Real(x)) => json!(x),
            Some(FieldValue::Bool(b)) => (*b).into(),
            Some(FieldValue::Id(u)) => u.to_string().into(),
            Some(FieldValue::Instant(t)) => t
                .replace_nanosecond(0)
                .unwrap_or(*t)
                .format(&Rfc3339)
                .unwrap_or_default()
                .into(),
        };
        out.insert(wire, v);
    }
    out
}
