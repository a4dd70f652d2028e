//! Calls Keyway makes to other servers on a connection's behalf (token endpoints, Web APIs):
//! no redirects, short timeouts, this server's own CA trusted beside the system's, and a guard
//! against user-given URLs that point into private networks.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use super::{Result, ServiceError};
use crate::state::AppState;

/// How long a call may take, to another server or (in process) to this one.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Why a call got no response.
pub type SendError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct Outbound {
    pub client: reqwest::Client,
    /// This server's own router while it serves (weak: the router holds the state that holds
    /// this), so calls to itself skip the TCP/TLS round trip.
    local: Arc<OnceLock<Weak<axum::Router>>>,
    /// Calls that went through the router in process (tests read it: the fast path is taken).
    in_process: Arc<AtomicU64>,
}

impl Outbound {
    /// A client that also trusts `ca_pem` (Keyway's local CA, so it can reach itself over TLS).
    pub fn new(ca_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(TIMEOUT)
            .user_agent(concat!("keyway/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            b = b.tls_certs_merge([reqwest::Certificate::from_pem(pem)?]);
        }
        Ok(Self {
            client: b.build()?,
            local: Default::default(),
            in_process: Default::default(),
        })
    }

    /// How many calls went to this server through its router in process.
    pub fn in_process_calls(&self) -> u64 {
        self.in_process.load(Ordering::Relaxed)
    }

    /// Calls to this server go into `router` while it lives (set once, when serving starts).
    pub fn serve_locally(&self, router: &Arc<axum::Router>) {
        let _ = self.local.set(Arc::downgrade(router));
    }
}

impl Outbound {
    /// A request to `url`. A URL on one of this server's environment host names
    /// (`<name>.<environment domain>`) goes to this server's own URL with that Host header, so
    /// environment domains work without DNS on the machine itself (and skip a detour through DNS
    /// and the load balancer when they have it).
    pub fn request(
        &self,
        state: &AppState,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        if let Some((rewritten, host)) = self_route(state, url) {
            return self
                .client
                .request(method, rewritten)
                .header(reqwest::header::HOST, host);
        }
        self.client.request(method, url)
    }

    /// Send `req`. One addressed to this server goes, as the very same HTTP request (method,
    /// path, query, headers with the bearer token, body), through this server's own router, so
    /// authentication, authorization, audit and every middleware apply as for any client, without
    /// the round trip over TCP and TLS to itself; others go over the network.
    pub async fn send(
        &self,
        state: &AppState,
        req: reqwest::RequestBuilder,
    ) -> std::result::Result<reqwest::Response, SendError> {
        let req = req.build()?;
        match self.local_router(state, req.url()) {
            Some(router) => {
                self.in_process.fetch_add(1, Ordering::Relaxed);
                tokio::time::timeout(TIMEOUT, in_process(state, &router, req))
                    .await
                    .map_err(|_| "the request to this server timed out")?
            }
            // Without the URL: its query may carry a key, and these errors reach run histories.
            None => Ok(self
                .client
                .execute(req)
                .await
                .map_err(|e| e.without_url())?),
        }
    }

    /// This server's router, when `url` is this server (its own origin, or one of its host
    /// names on its port) and it is serving.
    fn local_router(&self, state: &AppState, url: &reqwest::Url) -> Option<Arc<axum::Router>> {
        let router = self.local.get()?.upgrade()?;
        let base = reqwest::Url::parse(&state.base_url).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let ours = url.scheme() == base.scheme()
            && url.port_or_known_default() == base.port_or_known_default()
            && (url.host_str() == base.host_str() || state.is_our_host(host));
        ours.then_some(router)
    }
}

/// `req` through `router`, as the server would receive it from a client on this machine.
async fn in_process(
    state: &AppState,
    router: &axum::Router,
    req: reqwest::Request,
) -> std::result::Result<reqwest::Response, SendError> {
    use axum::http::header;
    let authority = match (req.url().host_str(), req.url().port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => String::new(),
    };
    let (mut parts, body) = axum::http::Request::<reqwest::Body>::try_from(req)?.into_parts();
    let body = body.as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
    // What the client would add on the wire.
    let headers = &mut parts.headers;
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, authority.parse()?);
    }
    if !headers.contains_key(header::USER_AGENT) {
        headers.insert(
            header::USER_AGENT,
            header::HeaderValue::from_static(concat!("keyway/", env!("CARGO_PKG_VERSION"))),
        );
    }
    if !body.is_empty() {
        headers.insert(header::CONTENT_LENGTH, body.len().into());
    }
    // Only the path and query reach a server (an origin-form request target).
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()?;
    parts.uri = target;
    parts
        .extensions
        .insert(axum::extract::ConnectInfo(SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))));
    let req = axum::http::Request::from_parts(parts, axum::body::Body::from(body));
    let req = crate::http::route_by_host(state.config.environment_domain.clone())(req);
    let resp = tower::ServiceExt::oneshot(router.clone(), req).await?;
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await?;
    Ok(reqwest::Response::from(axum::http::Response::from_parts(
        parts, bytes,
    )))
}

/// `https://dev.crm.example.com:8443/x` → (this server's URL + `/x`, `dev.crm.example.com:8443`).
fn self_route(state: &AppState, url: &str) -> Option<(reqwest::Url, String)> {
    let domain = state.config.environment_domain.as_deref()?;
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    if !host.ends_with(&format!(".{domain}")) {
        return None;
    }
    let base = reqwest::Url::parse(&state.base_url).ok()?;
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let mut rewritten = parsed;
    rewritten.set_scheme(base.scheme()).ok()?;
    rewritten.set_host(base.host_str()).ok()?;
    rewritten.set_port(base.port()).ok()?;
    Some((rewritten, authority))
}

/// Why a target URL is refused (a 400 naming the parameter).
fn refuse(what: &str, url: &str, why: &str) -> ServiceError {
    keyway_core::connections::ConnectionError::InvalidParameter {
        field: what.to_string(),
        message: format!("'{what}' ({url}) cannot be used: {why}."),
    }
    .into()
}

fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A user-given URL Keyway may call: this server itself, or an HTTPS host that is not an
/// address in a private, loopback or link-local range. (Names are not resolved here: an operator
/// who lets users point connections at internal names should put Keyway behind an egress proxy.)
pub fn check_target(state: &AppState, what: &str, url: &str) -> Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(url).map_err(|_| refuse(what, url, "not a URL"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| refuse(what, url, "no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if state.is_our_host(&host) {
        return Ok(parsed);
    }
    if parsed.scheme() != "https" {
        return Err(refuse(what, url, "only https is allowed for other servers"));
    }
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return Err(refuse(what, url, "it names this machine"));
    }
    if let Ok(ip) = host.parse::<IpAddr>()
        && private(ip)
    {
        return Err(refuse(what, url, "it is a private or local address"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_private() {
        for a in [
            "10.1.2.3",
            "192.168.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(private(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "2606:4700::1111"] {
            assert!(!private(a.parse().unwrap()), "{a}");
        }
    }
}
