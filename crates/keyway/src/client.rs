//! The CLI's HTTP client: reads the administrator profile, trusts Keyway's CA, gets a Graph
//! token, and turns Graph and Entra error bodies into plain messages.

use anyhow::{Context, bail};
use keyway_core::wire::{Profile, TokenResponse};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Global;

pub struct Client {
    pub http: reqwest::Client,
    pub profile: Profile,
    token: Option<String>,
}

pub fn load_profile(path: &std::path::Path) -> anyhow::Result<Profile> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the profile {}: start the server once (`keyway serve`) or pass --profile / KEYWAY_PROFILE",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a Keyway profile", path.display()))
}

pub fn http_client(ca_path: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30));
    if let Some(ca) = std::env::var("KEYWAY_CA")
        .ok()
        .or(ca_path.map(str::to_string))
    {
        let pem = std::fs::read(&ca).with_context(|| format!("reading the CA {ca}"))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{ca} is not a PEM certificate"))?;
        builder = builder.tls_certs_only([cert]);
    }
    builder.build().context("building the HTTP client")
}

/// A Web API answer that must be a success: its body text and its `OData-EntityId` header (what
/// a create made); else the error it carries.
pub async fn web_answer(resp: reqwest::Response) -> anyhow::Result<(String, Option<String>)> {
    let status = resp.status();
    let location = resp
        .headers()
        .get("OData-EntityId")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{}", error_message(status, &text));
    }
    Ok((text, location))
}

/// Read an error body as Graph or Entra shapes it.
pub fn error_message(status: StatusCode, body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(e) = v.get("error").and_then(|e| e.as_object()) {
        let code = e.get("code").and_then(|c| c.as_str()).unwrap_or_default();
        let msg = e
            .get("message")
            .and_then(|c| c.as_str())
            .unwrap_or_default();
        return format!("{msg} ({code}, HTTP {})", status.as_u16());
    }
    if let Some(desc) = v.get("error_description").and_then(|d| d.as_str()) {
        let first = desc.lines().next().unwrap_or(desc);
        return format!("{first} (HTTP {})", status.as_u16());
    }
    format!(
        "HTTP {}: {}",
        status.as_u16(),
        body.chars().take(300).collect::<String>()
    )
}

impl Client {
    pub fn new(global: &Global) -> anyhow::Result<Self> {
        let profile = load_profile(&global.profile)?;
        let http = http_client(profile.ca_path.as_deref())?;
        Ok(Self {
            http,
            profile,
            token: None,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.profile.base_url.trim_end_matches('/'), path)
    }

    pub async fn token_for(&self, form: &[(&str, &str)]) -> anyhow::Result<TokenResponse> {
        let url = self.url(&format!("/{}/oauth2/v2.0/token", self.profile.tenant_id));
        let resp = self
            .http
            .post(&url)
            .form(form)
            .send()
            .await
            .with_context(|| format!("cannot reach Keyway at {}", self.profile.base_url))?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("{}", error_message(status, &body));
        }
        serde_json::from_str(&body).context("the token response is not JSON")
    }

    async fn graph_token(&mut self) -> anyhow::Result<String> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let client_id = self.profile.client_id.to_string();
        let secret = self.profile.client_secret.clone();
        let t = self
            .token_for(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .await
            .context("signing in with the profile's credentials")?
            .access_token;
        self.token = Some(t.clone());
        Ok(t)
    }

    /// POST JSON to an environment's Web API as the profile's application (its token for that
    /// environment); returns the `OData-EntityId` of what was made.
    pub async fn web_api_post(
        &self,
        env_url: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<Option<String>> {
        let client_id = self.profile.client_id.to_string();
        let secret = self.profile.client_secret.clone();
        let scope = format!("{env_url}/.default");
        let token = self
            .token_for(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("scope", &scope),
            ])
            .await?
            .access_token;
        let resp = self
            .http
            .post(format!("{env_url}/api/data/v9.2/{path}"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {env_url}"))?;
        Ok(web_answer(resp).await?.1)
    }

    /// Call the management API; `None` for a 204.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<Option<T>> {
        let token = self.graph_token().await?;
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach Keyway at {}", self.profile.base_url))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{}", error_message(status, &text));
        }
        if status == StatusCode::NO_CONTENT || text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .context("the response is not the JSON expected")
    }

    pub async fn get<T: DeserializeOwned>(&mut self, path: &str) -> anyhow::Result<T> {
        self.call::<(), T>(Method::GET, path, None)
            .await?
            .context("an empty response")
    }

    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.call(method, path, Some(body))
            .await?
            .context("an empty response")
    }

    pub async fn send_empty<B: Serialize>(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<()> {
        self.call::<B, serde_json::Value>(method, path, body)
            .await
            .map(|_| ())
    }

    pub async fn list<T: DeserializeOwned>(&mut self, path: &str) -> anyhow::Result<Vec<T>> {
        let c: keyway_core::wire::Collection<T> = self.get(path).await?;
        Ok(c.value)
    }
}

impl Client {
    /// Call the Power Platform connectivity API as the profile's application (its token for
    /// `https://api.powerplatform.com`); `None` for an empty body.
    pub async fn platform(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let client_id = self.profile.client_id.to_string();
        let secret = self.profile.client_secret.clone();
        let token = self
            .token_for(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("scope", "https://api.powerplatform.com/.default"),
            ])
            .await?
            .access_token;
        let mut req = self
            .http
            .request(method, self.url(path_and_query))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach Keyway at {}", self.profile.base_url))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{}", error_message(status, &text));
        }
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .context("the response is not the JSON expected")
    }
}
