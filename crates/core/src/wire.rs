//! JSON shapes shared by the server and the CLI: Microsoft Graph v1.0 objects for the directory,
//! Entra's token response, and Keyway's own tenant and profile documents.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub mod graph_time {
    //! Graph writes instants as `2026-05-22T18:24:41Z`, seconds precision.
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub fn format(t: &OffsetDateTime) -> String {
        let t = t.replace_nanosecond(0).unwrap_or(*t);
        t.format(&Rfc3339).unwrap_or_default()
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// `{"@odata.context": …, "value": […]}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collection<T> {
    #[serde(
        rename = "@odata.context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<String>,
    pub value: Vec<T>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationView {
    pub id: Uuid,
    pub app_id: Uuid,
    pub display_name: String,
    #[serde(with = "graph_time")]
    pub created_date_time: OffsetDateTime,
    pub sign_in_audience: String,
    pub identifier_uris: Vec<String>,
    pub is_fallback_public_client: bool,
    pub publisher_domain: Option<String>,
    pub password_credentials: Vec<PasswordCredentialView>,
    pub key_credentials: Vec<KeyCredentialView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredentialView {
    pub custom_key_identifier: Option<String>,
    pub display_name: Option<String>,
    #[serde(with = "graph_time")]
    pub end_date_time: OffsetDateTime,
    pub hint: String,
    pub key_id: Uuid,
    /// Present only in the response to addPassword.
    pub secret_text: Option<String>,
    #[serde(with = "graph_time")]
    pub start_date_time: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyCredentialView {
    /// The certificate's SHA-1 thumbprint, upper-case hex.
    pub custom_key_identifier: Option<String>,
    pub display_name: Option<String>,
    #[serde(with = "graph_time")]
    pub end_date_time: OffsetDateTime,
    /// Base64 DER; only with `$select=keyCredentials` on one application.
    pub key: Option<String>,
    pub key_id: Uuid,
    #[serde(with = "graph_time")]
    pub start_date_time: OffsetDateTime,
    #[serde(rename = "type")]
    pub key_type: String,
    pub usage: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationInput {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    pub display_name: Option<String>,
    pub identifier_uris: Option<Vec<String>>,
    pub sign_in_audience: Option<String>,
    pub is_fallback_public_client: Option<bool>,
    pub key_credentials: Option<Vec<KeyCredentialInput>>,
    /// Refused: secrets are added with addPassword only, so they can be shown once.
    pub password_credentials: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KeyCredentialInput {
    pub key_id: Option<Uuid>,
    #[serde(rename = "type")]
    pub key_type: Option<String>,
    pub usage: Option<String>,
    /// Base64 DER (or PEM) of the certificate; absent for a credential that is kept as it is.
    pub key: Option<String>,
    pub display_name: Option<String>,
    pub custom_key_identifier: Option<String>,
    #[serde(default, with = "graph_time::option")]
    pub start_date_time: Option<OffsetDateTime>,
    #[serde(default, with = "graph_time::option")]
    pub end_date_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AddPasswordRequest {
    pub password_credential: Option<PasswordCredentialInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredentialInput {
    pub display_name: Option<String>,
    #[serde(default, with = "graph_time::option")]
    pub start_date_time: Option<OffsetDateTime>,
    #[serde(default, with = "graph_time::option")]
    pub end_date_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovePasswordRequest {
    pub key_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalView {
    pub id: Uuid,
    pub app_id: Uuid,
    pub display_name: String,
    pub account_enabled: bool,
    pub service_principal_type: String,
    pub app_owner_organization_id: Option<Uuid>,
    #[serde(with = "graph_time")]
    pub created_date_time: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalInput {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    pub app_id: Option<Uuid>,
    pub account_enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
    pub mail_nickname: String,
    pub account_enabled: bool,
    #[serde(with = "graph_time")]
    pub created_date_time: OffsetDateTime,
    /// "Member" or "Guest".
    #[serde(default)]
    pub user_type: String,
    /// A guest's invited address; null for members.
    #[serde(default)]
    pub mail: Option<String>,
    /// "Invitation" for guests; null for members.
    #[serde(default)]
    pub creation_type: Option<String>,
    /// "Accepted" for guests (redeemed at once: Keyway sends no mail); null for members.
    #[serde(default)]
    pub external_user_state: Option<String>,
}

/// `POST /v1.0/invitations`: invite a user of another tenant as a guest (Entra B2B).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvitationInput {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    pub invited_user_email_address: Option<String>,
    pub invite_redirect_url: Option<String>,
    pub send_invitation_message: Option<bool>,
    pub invited_user_display_name: Option<String>,
    pub invited_user_type: Option<String>,
    pub invited_user_message_info: Option<serde_json::Value>,
    pub reset_redemption: Option<bool>,
}

/// The id of the guest user an invitation made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InvitedUserRef {
    pub id: Uuid,
}

/// Graph's invitation, as `POST /v1.0/invitations` answers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    pub id: Uuid,
    pub invited_user_display_name: Option<String>,
    pub invited_user_type: String,
    pub invited_user_email_address: String,
    pub send_invitation_message: bool,
    pub reset_redemption: bool,
    pub invite_redirect_url: String,
    pub invite_redeem_url: String,
    pub status: String,
    pub invited_user: InvitedUserRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserInput {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    pub account_enabled: Option<bool>,
    pub display_name: Option<String>,
    pub mail_nickname: Option<String>,
    pub user_principal_name: Option<String>,
    pub password_profile: Option<PasswordProfile>,
}

#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PasswordProfile {
    pub password: Option<String>,
    pub force_change_password_next_sign_in: Option<bool>,
}

impl std::fmt::Debug for PasswordProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordProfile { .. }")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignmentView {
    pub id: Uuid,
    pub app_role_id: Uuid,
    pub principal_id: Uuid,
    pub principal_display_name: String,
    pub principal_type: String,
    pub resource_id: Uuid,
    pub resource_display_name: String,
    #[serde(with = "graph_time")]
    pub created_date_time: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignmentInput {
    pub principal_id: Uuid,
    pub resource_id: Uuid,
    pub app_role_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    pub id: Uuid,
    pub display_name: String,
    pub domains: Vec<String>,
    pub is_system: bool,
    #[serde(with = "graph_time")]
    pub created_date_time: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantInput {
    pub display_name: String,
    #[serde(default)]
    pub domains: Vec<String>,
}

/// A new tenant and the administrator application made in it; the secret is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantCreated {
    pub tenant: TenantView,
    pub administrator: AdminCredentials,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminCredentials {
    pub client_id: Uuid,
    pub client_secret: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// `admin.json`: what the CLI needs to act as an administrator.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    pub client_secret: String,
    pub base_url: String,
    pub ca_path: Option<String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Entra's token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token_type: String,
    pub expires_in: i64,
    pub ext_expires_in: i64,
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_in: Option<i64>,
    /// When the scope held `offline_access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the scope held `openid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// When the request sent `client_info=1` (msal does): base64url `{"uid","utid"}` of the
    /// signed-in account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<String>,
}

/// An environment as the admin API and the CLI show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    pub id: Uuid,
    pub name: String,
    pub tenant_id: Uuid,
    /// Where clients point their base URL; the Web API is at `{url}/api/data/v9.2/`.
    pub url: String,
    pub created_by: Uuid,
    #[serde(with = "graph_time")]
    pub created_date_time: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentInput {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyView {
    pub kid: String,
    pub alg: String,
    pub status: String,
    #[serde(with = "graph_time")]
    pub created_date_time: OffsetDateTime,
}

/// A master key and what is sealed directly under it (never key material).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MasterKeyView {
    pub id: String,
    pub current: bool,
    /// Whether this server holds the key (a value sealed under a key it lacks cannot open).
    pub held: bool,
    pub data_keys: u64,
    pub signing_keys: u64,
    pub server_secrets: u64,
}

/// A data key: which master key wraps it and how many secrets it seals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DataKeyView {
    pub id: String,
    pub current: bool,
    pub wrapped_by: String,
    pub secrets: u64,
    #[serde(with = "graph_time")]
    pub created_date_time: OffsetDateTime,
}

/// `GET /v1.0/keys`: the master and data keys, by id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    pub current_master_key_id: String,
    /// `file` (master.key) or `environment` (KEYWAY_MASTER_KEY).
    pub source: String,
    pub master_keys: Vec<MasterKeyView>,
    pub data_keys: Vec<DataKeyView>,
}

/// How many values a rotation sealed again under the new master key, by kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResealCounts {
    pub data_keys: u64,
    pub signing_keys: u64,
    pub server_secrets: u64,
}

/// `POST /v1.0/keys/rotate`: the outcome of a master key rotation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyRotation {
    pub previous_master_key_id: String,
    pub current_master_key_id: String,
    pub rewrapped: ResealCounts,
    /// Retired master keys removed from master.key: nothing was sealed under them any more.
    pub removed_master_keys: Vec<String>,
    /// The master keys after the rotation, with what each still seals.
    pub master_keys: Vec<MasterKeyView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_time_has_seconds_precision() {
        let t = time::macros::datetime!(2026-05-22 18:24:41.5 UTC);
        assert_eq!(graph_time::format(&t), "2026-05-22T18:24:41Z");
    }

    #[test]
    fn unknown_properties_are_refused() {
        let r: Result<ApplicationInput, _> =
            serde_json::from_str(r#"{"displayName":"a","bogus":1}"#);
        assert!(r.is_err());
    }
}

/// `POST /v1.0/environments/{id}/addAppUser`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppUserInput {
    pub service_principal_app_id: Uuid,
    /// Default: the environment's root business unit.
    pub business_unit_id: Option<Uuid>,
    /// Role names, e.g. "Basic User" or a custom role.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A system user as the admin API shows it (Dataverse's column names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SystemUserView {
    pub systemuserid: Uuid,
    pub applicationid: Option<Uuid>,
    pub businessunitid: Uuid,
    pub fullname: String,
    pub roles: Vec<String>,
    /// A guest from another tenant.
    #[serde(default)]
    pub isguest: bool,
    /// People need a license to call the environment; guests start without one.
    #[serde(default)]
    pub islicensed: bool,
}

/// `POST /v1.0/environments/{id}/roles`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleInput {
    pub name: String,
    pub business_unit_id: Option<Uuid>,
    /// `prvReadaccount:BusinessUnit` (depths: None, User, BusinessUnit, ParentChildBusinessUnits,
    /// Organization; or Basic, Local, Deep, Global).
    #[serde(default)]
    pub privileges: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    pub roleid: Uuid,
    pub name: String,
}

/// `POST /v1.0/environments/{id}/roles/{roleId}/assign`: by system user or by application.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignInput {
    pub system_user_id: Option<Uuid>,
    pub application_id: Option<Uuid>,
}

/// The result of walking an environment's audit chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    pub environment: String,
    pub rows: i64,
    pub intact: bool,
    /// The first row (by sequence) whose hash or place does not hold.
    pub first_broken_row: Option<i64>,
}

/// `POST /v1.0/environments/{id}/addUser`: a person of the tenant (a member or a guest) as a
/// system user, named by user principal name or by object id.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvUserInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    pub business_unit_id: Option<Uuid>,
    #[serde(default)]
    pub roles: Vec<String>,
}
