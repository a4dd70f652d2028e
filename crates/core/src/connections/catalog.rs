//! The connectors Keyway knows and their parameter sets. Each set is a JSON Schema (draft-07)
//! whose secret fields carry `"format": "password"`, as Adobe's connection specs mark them; the
//! schema is what clients read and what values are checked against.

use std::sync::LazyLock;

use serde_json::{Value, json};

pub const DATAVERSE: &str = "shared_commondataserviceforapps";
pub const DESKTOP_FLOWS: &str = "shared_uiflow";
/// The Flow Service's Dynamics connection spec (seed 003).
pub const DYNAMICS_SPEC: &str = "38ad80fe-8b06-4938-94f4-d4ee80266b07";

/// How a parameter set proves who it is: what testing and using the connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// client_credentials with a client secret.
    ClientSecret,
    /// client_credentials with a certificate assertion (PFX or PEM).
    ClientCertificate,
    /// A person's username and password (the password grant).
    UsernamePassword,
    /// A person's refresh token from a delegated sign-in (the refresh_token grant); it rotates
    /// at every use, so the new one is stored back.
    RefreshToken,
    /// A machine account for desktop flows (the machines issue runs these).
    MachineAccount,
}

/// Who a connection may be shared with, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharingPolicy {
    /// Can use, Can edit and Can share may be granted to users, groups and service principals.
    Standard,
    /// Desktop-flow connections: shareable only once an explicit run owner is set, only with
    /// service principals, and only as Can use or Can edit.
    RunOwnerOnly,
}

#[derive(Debug, Clone)]
pub struct ParameterSet {
    pub name: &'static str,
    pub display_name: &'static str,
    pub auth: AuthKind,
    /// JSON Schema draft-07 of the values.
    pub schema: Value,
}

impl ParameterSet {
    /// Names of the fields whose values are secret.
    pub fn secret_fields(&self) -> Vec<&str> {
        self.schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, p)| p["format"] == "password")
            .map(|(k, _)| k.as_str())
            .collect()
    }

    pub fn is_secret(&self, field: &str) -> bool {
        self.schema["properties"][field]["format"] == "password"
    }
}

#[derive(Debug, Clone)]
pub struct Connector {
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub parameter_sets: Vec<ParameterSet>,
    pub sharing: SharingPolicy,
}

impl Connector {
    pub fn parameter_set(&self, name: &str) -> Option<&ParameterSet> {
        self.parameter_sets.iter().find(|p| p.name == name)
    }

    /// `/providers/Microsoft.PowerApps/apis/<id>`, as connection references name connectors.
    pub fn api_id(&self) -> String {
        format!("/providers/Microsoft.PowerApps/apis/{}", self.id)
    }
}

fn text(title: &str, description: &str) -> Value {
    json!({"type": "string", "title": title, "description": description, "minLength": 1})
}

fn secret(title: &str, description: &str) -> Value {
    json!({"type": "string", "title": title, "description": description, "format": "password", "minLength": 1})
}

fn uri(title: &str, description: &str) -> Value {
    json!({"type": "string", "title": title, "description": description, "format": "uri", "pattern": "^https?://"})
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// Where a Dataverse connection points when it does not say: the environment's own URL and this
/// server's authority.
fn dataverse_targets() -> Vec<(&'static str, Value)> {
    vec![
        (
            "environmentUrl",
            uri(
                "Environment URL",
                "The Dataverse-compatible environment to act in; defaults to the connection's environment on this server.",
            ),
        ),
        (
            "token:authority",
            uri(
                "Authority",
                "The Entra-compatible authority that issues tokens (https://host/{tenant}); defaults to this server.",
            ),
        ),
    ]
}

fn with_targets(mut props: serde_json::Map<String, Value>) -> Value {
    for (k, v) in dataverse_targets() {
        props.insert(k.into(), v);
    }
    Value::Object(props)
}

fn dataverse() -> Connector {
    let sp = with_targets(
        json!({
            "token:clientId": text("Client ID", "The application (client) id of the service principal."),
            "token:clientSecret": secret("Client secret", "A client secret of that application."),
            "token:TenantId": text("Tenant", "The tenant id (or domain) the application lives in."),
            "token:grantType": {"type": "string", "enum": ["client_credentials"], "default": "client_credentials"},
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    let cert = with_targets(
        json!({
            "token:clientId": text("Client ID", "The application (client) id of the service principal."),
            "token:TenantId": text("Tenant", "The tenant id (or domain) the application lives in."),
            "token:clientCertificate": secret("Certificate", "The certificate with its private key: PFX (base64) or PEM."),
            "token:clientCertificatePassword": {"type": "string", "title": "Certificate password", "format": "password"},
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    let user = with_targets(
        json!({
            "token:username": text("Username", "The user's sign-in name."),
            "token:password": secret("Password", "The user's password."),
            "token:TenantId": text("Tenant", "The tenant id (or domain) the user signs in to."),
            "token:clientId": text("Client ID", "The public client application the sign-in goes through."),
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    let delegated = with_targets(
        json!({
            "token:refreshToken": secret("Refresh token", "The user's refresh token from a sign-in with offline_access (keyway connection create --sign-in gets one). It rotates at every use; Keyway stores each new one."),
            "token:clientId": text("Client ID", "The public client application the refresh token was issued to."),
            "token:TenantId": text("Tenant", "The tenant id (or domain) the user signed in to."),
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    Connector {
        id: DATAVERSE,
        display_name: "Microsoft Dataverse",
        description: "Rows of a Dataverse-compatible environment, as the connection's identity.",
        parameter_sets: vec![
            ParameterSet {
                name: "ServicePrincipalOauth",
                display_name: "Service principal (client secret)",
                auth: AuthKind::ClientSecret,
                schema: object(
                    sp,
                    &["token:clientId", "token:clientSecret", "token:TenantId"],
                ),
            },
            ParameterSet {
                name: "CertOauth",
                display_name: "Service principal (client certificate)",
                auth: AuthKind::ClientCertificate,
                schema: object(
                    cert,
                    &[
                        "token:clientId",
                        "token:clientCertificate",
                        "token:TenantId",
                    ],
                ),
            },
            ParameterSet {
                name: "UsernamePassword",
                display_name: "Username and password",
                auth: AuthKind::UsernamePassword,
                schema: object(
                    user,
                    &[
                        "token:username",
                        "token:password",
                        "token:TenantId",
                        "token:clientId",
                    ],
                ),
            },
            ParameterSet {
                name: "OAuthSignIn",
                display_name: "Sign in (delegated)",
                auth: AuthKind::RefreshToken,
                schema: object(
                    delegated,
                    &["token:refreshToken", "token:clientId", "token:TenantId"],
                ),
            },
        ],
        sharing: SharingPolicy::Standard,
    }
}

fn desktop_flows() -> Connector {
    let relay = json!({
        "username": text("Machine account", "The account the desktop flow runs as on the machine."),
        "password": secret("Password", "That account's password."),
        "targetId": text("Machine or group", "The id of the machine or machine group."),
    });
    let mut run_owner = relay.as_object().cloned().unwrap_or_default();
    run_owner.insert(
        "tokenRunOwnerCert:clientId".into(),
        text(
            "Run owner",
            "The client id of the service principal that owns the runs.",
        ),
    );
    run_owner.insert(
        "tokenRunOwnerCert:clientCertificateSecret".into(),
        secret(
            "Run owner certificate",
            "The run owner's certificate with its private key (PFX base64).",
        ),
    );
    run_owner.insert(
        "credentialId".into(),
        text(
            "Credential",
            "A stored credential to take the machine account from.",
        ),
    );
    Connector {
        id: DESKTOP_FLOWS,
        display_name: "Desktop flows",
        description: "Runs desktop flows on a machine under a machine account.",
        parameter_sets: vec![
            ParameterSet {
                name: "azureRelay",
                display_name: "Username and password",
                auth: AuthKind::MachineAccount,
                schema: object(relay, &["username", "password", "targetId"]),
            },
            ParameterSet {
                name: "azureRelayRunOwner",
                display_name: "Username and password, with a run owner",
                auth: AuthKind::MachineAccount,
                schema: object(
                    Value::Object(run_owner),
                    &[
                        "username",
                        "password",
                        "targetId",
                        "tokenRunOwnerCert:clientId",
                        "tokenRunOwnerCert:clientCertificateSecret",
                    ],
                ),
            },
        ],
        sharing: SharingPolicy::RunOwnerOnly,
    }
}

fn dynamics() -> Connector {
    let service_uri = uri(
        "Service URI",
        "The Dynamics (Dataverse-compatible) environment URL.",
    );
    Connector {
        id: DYNAMICS_SPEC,
        display_name: "Dynamics",
        description: "Microsoft Dynamics through the Flow Service.",
        parameter_sets: vec![
            ParameterSet {
                name: "Basic Authentication for Dynamics-Online",
                display_name: "Basic Authentication for Dynamics-Online",
                auth: AuthKind::UsernamePassword,
                schema: object(
                    json!({
                        "serviceUri": service_uri,
                        "username": text("Username", "The Dynamics user's sign-in name."),
                        "password": secret("Password", "The Dynamics user's password."),
                    }),
                    &["serviceUri", "username", "password"],
                ),
            },
            ParameterSet {
                name: "Service Principal Key Based Authentication",
                display_name: "Service Principal Key Based Authentication",
                auth: AuthKind::ClientSecret,
                schema: object(
                    json!({
                        "serviceUri": service_uri,
                        "servicePrincipalId": text("Service principal id", "The client id of the application."),
                        "servicePrincipalKey": secret("Service principal key", "A client secret of that application."),
                    }),
                    &["serviceUri", "servicePrincipalId", "servicePrincipalKey"],
                ),
            },
        ],
        sharing: SharingPolicy::Standard,
    }
}

static CATALOG: LazyLock<Vec<Connector>> =
    LazyLock::new(|| vec![dataverse(), desktop_flows(), dynamics()]);

/// Every connector.
pub fn connectors() -> &'static [Connector] {
    &CATALOG
}

/// A connector by its id (`shared_commondataserviceforapps`, or the Flow Service spec id).
pub fn connector(id: &str) -> Option<&'static Connector> {
    CATALOG.iter().find(|c| c.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_compiles_and_marks_its_secrets() {
        for c in connectors() {
            for p in &c.parameter_sets {
                assert!(
                    jsonschema::draft7::new(&p.schema).is_ok(),
                    "{} / {}",
                    c.id,
                    p.name
                );
                assert!(!p.secret_fields().is_empty(), "{} has secrets", p.name);
            }
        }
        let sp = connector(DATAVERSE)
            .unwrap()
            .parameter_set("ServicePrincipalOauth")
            .unwrap();
        assert_eq!(sp.secret_fields(), vec!["token:clientSecret"]);
        assert!(sp.is_secret("token:clientSecret") && !sp.is_secret("token:clientId"));
        assert_eq!(
            connector("SHARED_COMMONDATASERVICEFORAPPS")
                .unwrap()
                .api_id(),
            "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"
        );
        let signin = connector(DATAVERSE)
            .unwrap()
            .parameter_set("OAuthSignIn")
            .unwrap();
        assert_eq!(signin.auth, AuthKind::RefreshToken);
        assert_eq!(signin.secret_fields(), vec!["token:refreshToken"]);
        assert_eq!(
            connector(DESKTOP_FLOWS).unwrap().sharing,
            SharingPolicy::RunOwnerOnly
        );
    }
}
