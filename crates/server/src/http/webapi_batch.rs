//! `$batch`: a multipart/mixed body of requests and changesets. Each request runs as if sent
//! alone; each changeset runs in one transaction (all or none), with `$n` naming rows created
//! earlier in it. Boundaries quoted or not, CRLF or LF, absolute, root-relative or `$n` URLs.

use axum::body::{Bytes, to_bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyway_core::dataverse::error::DataverseError;
use uuid::Uuid;

use super::context::RequestContext;
use super::error::DataverseWireError;
use super::webapi::handle;
use crate::services::ServiceError;
use crate::services::records::{self, Prepared};
use crate::services::webapi::{self as svc, WebApiCaller};
use crate::state::AppState;

const MAX_REQUESTS: usize = 1000;

struct Part {
    headers: Vec<(String, String)>,
    body: String,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct InnerRequest {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: String,
    content_id: Option<String>,
}

fn bad(msg: impl Into<String>) -> ServiceError {
    DataverseError::Syntax(msg.into()).into()
}

/// `boundary=…`, quoted or not, from a Content-Type.
fn boundary(content_type: &str) -> Option<String> {
    let i = content_type.to_ascii_lowercase().find("boundary=")?;
    let rest = &content_type[i + "boundary=".len()..];
    let b = rest.split(';').next()?.trim().trim_matches('"');
    (!b.is_empty()).then(|| b.to_string())
}

/// The parts between `--boundary` lines, up to `--boundary--`.
fn split(text: &str, boundary: &str) -> Result<Vec<Part>, ServiceError> {
    let (open, close) = (format!("--{boundary}"), format!("--{boundary}--"));
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let mut closed = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_end() == close {
            if let Some(lines) = current.take() {
                parts.push(part(&lines));
            }
            closed = true;
            break;
        }
        if line.trim_end() == open {
            if let Some(lines) = current.take() {
                parts.push(part(&lines));
            }
            current = Some(Vec::new());
            continue;
        }
        if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    if !closed {
        return Err(bad(format!("The batch is not closed by --{boundary}--.")));
    }
    Ok(parts)
}

fn part(lines: &[&str]) -> Part {
    let mut headers = Vec::new();
    let mut i = 0;
    while i < lines.len() && !lines[i].is_empty() {
        if let Some((k, v)) = lines[i].split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        i += 1;
    }
    let mut body: Vec<&str> = lines.get(i + 1..).unwrap_or_default().to_vec();
    while body.last().is_some_and(|l| l.is_empty()) {
        body.pop();
    }
    Part {
        headers,
        body: body.join("\r\n"),
    }
}

/// `METHOD URL HTTP/1.1`, headers, blank line, body: the URL may hold raw spaces.
fn inner(p: &Part) -> Result<InnerRequest, ServiceError> {
    let mut lines = p.body.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let (method, rest) = first
        .split_once(' ')
        .ok_or_else(|| bad(format!("'{first}' is not a request line.")))?;
    let (url, version) = rest
        .rsplit_once(' ')
        .ok_or_else(|| bad(format!("'{first}' is not a request line.")))?;
    if !version.starts_with("HTTP/") {
        return Err(bad(format!("'{first}' is not a request line.")));
    }
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| bad(format!("'{method}' is not a method.")))?;
    let mut headers = HeaderMap::new();
    let mut body_lines = Vec::new();
    let mut in_body = false;
    for line in lines {
        if in_body {
            body_lines.push(line);
        } else if line.is_empty() {
            in_body = true;
        } else if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }
    Ok(InnerRequest {
        method,
        url: url.trim().to_string(),
        headers,
        body: body_lines.join("\r\n"),
        content_id: p.header("Content-ID").map(str::to_string),
    })
}

/// The path after `/api/data/v9.2/` and the query, from an absolute, root-relative or relative URL.
fn path_and_query(url: &str) -> (String, Option<String>) {
    let tail = match url.find("/api/data/v9.2/") {
        Some(i) => &url[i + "/api/data/v9.2/".len()..],
        None => url.trim_start_matches('/'),
    };
    match tail.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (tail.to_string(), None),
    }
}

async fn serialize(resp: Response, content_id: Option<&str>) -> String {
    let (parts, body) = resp.into_parts();
    let body = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let mut out =
        String::from("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if let Some(id) = content_id {
        out.push_str(&format!("Content-ID: {id}\r\n"));
    }
    out.push_str(&format!(
        "\r\nHTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    ));
    for (k, v) in &parts.headers {
        if let Ok(v) = v.to_str() {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    out.push_str(&String::from_utf8_lossy(&body));
    out
}

pub async fn run(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    headers: &HeaderMap,
    body: &Bytes,
    ctx: &RequestContext,
) -> Result<Response, DataverseWireError> {
    let fail = |error: ServiceError| DataverseWireError {
        error,
        ctx: ctx.clone(),
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("multipart/mixed") {
        return Err(fail(bad(
            "A $batch body must be multipart/mixed with a boundary.",
        )));
    }
    let b = boundary(ct).ok_or_else(|| fail(bad("The Content-Type names no boundary.")))?;
    let text = std::str::from_utf8(body).map_err(|_| fail(bad("The batch body is not UTF-8.")))?;
    let parts = split(text, &b).map_err(fail)?;
    let mut requests = 0;
    let out_boundary = format!("batchresponse_{}", Uuid::new_v4());
    let mut out = String::new();
    for p in &parts {
        let pct = p.header("Content-Type").unwrap_or_default();
        out.push_str(&format!("--{out_boundary}\r\n"));
        if pct.to_ascii_lowercase().starts_with("multipart/mixed") {
            let cb = boundary(pct).ok_or_else(|| fail(bad("A changeset names no boundary.")))?;
            let inner_parts = split(&p.body, &cb).map_err(fail)?;
            requests += inner_parts.len();
            if requests > MAX_REQUESTS {
                return Err(fail(bad(format!(
                    "A batch holds at most {MAX_REQUESTS} requests."
                ))));
            }
            out.push_str(&changeset(state, c, base, &inner_parts, ctx).await);
        } else {
            requests += 1;
            if requests > MAX_REQUESTS {
                return Err(fail(bad(format!(
                    "A batch holds at most {MAX_REQUESTS} requests."
                ))));
            }
            let resp = match inner(p) {
                Ok(r) => {
                    let (path, query) = path_and_query(&r.url);
                    match handle(
                        state,
                        c,
                        base,
                        r.method,
                        &path,
                        query,
                        &r.headers,
                        Bytes::from(r.body.into_bytes()),
                        ctx,
                    )
                    .await
                    {
                        Ok(resp) => resp,
                        Err(e) => e.into_response(),
                    }
                }
                Err(e) => DataverseWireError {
                    error: e,
                    ctx: ctx.clone(),
                }
                .into_response(),
            };
            out.push_str(&serialize(resp, None).await);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("--{out_boundary}--\r\n"));
    let mut resp = (StatusCode::OK, out).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/mixed; boundary={out_boundary}")) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    Ok(resp)
}

/// Prepare every write of a changeset, run them in one transaction, and answer each (or the
/// one that failed, with nothing written).
async fn changeset(
    state: &AppState,
    c: &WebApiCaller,
    base: &str,
    parts: &[Part],
    ctx: &RequestContext,
) -> String {
    let cs = format!("changesetresponse_{}", Uuid::new_v4());
    let mut prepared: Vec<Prepared<'_>> = Vec::new();
    let mut answers: Vec<(Option<String>, Option<String>)> = Vec::new(); // (content id, entity id url)
    let mut created: Vec<(String, String, Uuid)> = Vec::new(); // (content id, set, id)
    let mut failure: Option<(Option<String>, ServiceError)> = None;
    for p in parts {
        let r = match inner(p) {
            Ok(r) => r,
            Err(e) => {
                failure = Some((None, e));
                break;
            }
        };
        match prepare(state, c, &r, &created).await {
            Ok((prep, set)) => {
                let location = format!("{base}/{set}({})", prep.id);
                if matches!(prep.op, keyway_store::RecordOp::Create { .. })
                    && let Some(cid) = &r.content_id
                {
                    created.push((cid.clone(), set.clone(), prep.id));
                }
                answers.push((r.content_id.clone(), Some(location)));
                prepared.push(prep);
            }
            Err(e) => {
                failure = Some((r.content_id.clone(), e));
                break;
            }
        }
    }
    if failure.is_none()
        && let Err((i, e)) = records::run_changeset(state, c, prepared).await
    {
        failure = Some((answers.get(i).and_then(|a| a.0.clone()), e));
    }
    let mut out = format!("Content-Type: multipart/mixed; boundary={cs}\r\n\r\n");
    match failure {
        Some((cid, e)) => {
            out.push_str(&format!("--{cs}\r\n"));
            out.push_str(
                &serialize(
                    DataverseWireError {
                        error: e,
                        ctx: ctx.clone(),
                    }
                    .into_response(),
                    cid.as_deref(),
                )
                .await,
            );
            out.push_str("\r\n");
        }
        None => {
            for (cid, location) in answers {
                out.push_str(&format!("--{cs}\r\n"));
                let mut resp = StatusCode::NO_CONTENT.into_response();
                resp.headers_mut()
                    .insert("OData-Version", HeaderValue::from_static("4.0"));
                if let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                    resp.headers_mut().insert("OData-EntityId", l);
                }
                out.push_str(&serialize(resp, cid.as_deref()).await);
                out.push_str("\r\n");
            }
        }
    }
    out.push_str(&format!("--{cs}--\r\n\r\n"));
    out
}

/// One changeset request as a prepared write, and the entity set it touches.
async fn prepare<'a>(
    state: &AppState,
    c: &'a WebApiCaller,
    r: &InnerRequest,
    created: &[(String, String, Uuid)],
) -> Result<(Prepared<'a>, String), ServiceError> {
    let (set, id) = if let Some(n) = r.url.strip_prefix('$') {
        let (_, set, id) = created.iter().find(|(cid, _, _)| cid == n).ok_or_else(|| {
            bad(format!(
                "${n} names no request created earlier in this changeset."
            ))
        })?;
        (set.clone(), Some(*id))
    } else {
        let (path, query) = path_and_query(&r.url);
        if query.is_some() {
            return Err(bad("A changeset request takes no query options."));
        }
        match path.split_once('(') {
            Some((set, key)) => {
                let id = Uuid::parse_str(key.trim_end_matches(')').trim_matches('\''))
                    .map_err(|_| bad(format!("'{key}' is not a valid key.")))?;
                (set.to_string(), Some(id))
            }
            None => (path, None),
        }
    };
    let entity = svc::entity_by_set(c, &set)?;
    let version = match r
        .headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("*") => None,
        Some(v) => Some(
            v.trim_start_matches("W/")
                .trim_matches('"')
                .parse::<i64>()
                .map_err(|_| bad(format!("If-Match '{v}' is not an etag this server issued.")))?,
        ),
    };
    let json = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body)
            .map_err(|e| bad(format!("The request body is not valid JSON: {e}.")))
    };
    let prepared = match (&r.method, id) {
        (&Method::POST, None) => {
            records::prepare_create(
                state,
                c,
                entity,
                records::fields_from_json(entity, &c.tables, &json(&r.body)?, true)?,
            )
            .await?
        }
        (&Method::PATCH, Some(id)) => {
            // In a changeset, PATCH updates (If-Match: * is what clients send); a missing row fails it.
            records::prepare_update(
                state,
                c,
                entity,
                id,
                records::fields_from_json(entity, &c.tables, &json(&r.body)?, false)?,
                version,
            )
            .await?
        }
        (&Method::DELETE, Some(id)) => {
            records::prepare_delete(state, c, entity, id, version).await?
        }
        (&Method::GET, _) => {
            return Err(bad(
                "A changeset cannot hold a GET: put it outside the changeset.",
            ));
        }
        (m, _) => {
            return Err(DataverseError::Unsupported(format!(
                "{m} {} is not supported in a changeset.",
                r.url
            ))
            .into());
        }
    };
    Ok((prepared, set))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_quoted_or_not() {
        assert_eq!(
            boundary("multipart/mixed; boundary=\"batch_1\"").as_deref(),
            Some("batch_1")
        );
        assert_eq!(
            boundary("multipart/mixed;boundary=batch_2").as_deref(),
            Some("batch_2")
        );
        assert_eq!(boundary("application/json"), None);
    }

    #[test]
    fn parts_and_request_lines_with_raw_spaces() {
        let body = "--b\r\nContent-Type: application/http\r\n\r\nGET https://h/env/dev/api/data/v9.2/accounts?$filter=name eq 'a b' HTTP/1.1\r\nPrefer: odata.maxpagesize=2\r\n\r\n--b--\r\n";
        let parts = split(body, "b").unwrap();
        assert_eq!(parts.len(), 1);
        let r = inner(&parts[0]).unwrap();
        assert_eq!(r.method, Method::GET);
        let (path, query) = path_and_query(&r.url);
        assert_eq!(path, "accounts");
        assert_eq!(query.as_deref(), Some("$filter=name eq 'a b'"));
        assert_eq!(r.headers["prefer"], "odata.maxpagesize=2");
        assert!(
            split(
                "--b\nContent-Type: application/http\n\nGET x HTTP/1.1\n",
                "b"
            )
            .is_err(),
            "unclosed"
        );
    }
}
