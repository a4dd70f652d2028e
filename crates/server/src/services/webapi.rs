//! The Dataverse Web API's use cases: who is calling an environment, and what they may read.

use std::sync::Arc;

use keyway_core::dataverse::authz::{self, BusinessUnits, Principal};
use keyway_core::dataverse::error::DataverseError;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::dataverse::security::Access;
use keyway_core::environment::Environment;
use keyway_core::token::CLOCK_SKEW;
use keyway_store::{EnvironmentStore, SystemUserKey};
use uuid::Uuid;

use super::{Result, ServiceError};
use crate::state::AppState;

/// A verified caller of one environment's Web API.
pub struct WebApiCaller {
    pub env: Environment,
    pub tables: Arc<Vec<EntityDef>>,
    /// Whom the request acts as (the impersonated user when impersonating).
    pub principal: Principal,
    pub role_count: usize,
    /// The real caller's system user id when impersonating.
    pub on_behalf_of: Option<Uuid>,
}

/// Who a request asks to act as: `CallerObjectId` (a directory object id) or `MSCRMCallerID`
/// (a system user id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impersonation {
    ObjectId(Uuid),
    SystemUserId(Uuid),
}

fn unauthenticated(why: impl Into<String>) -> ServiceError {
    DataverseError::Unauthenticated(why.into()).into()
}

/// Verify the bearer token for environment `env_name` and find the system user it names.
pub async fn authenticate(
    state: &AppState,
    env_name: &str,
    token: &str,
    impersonate: Option<Impersonation>,
) -> Result<WebApiCaller> {
    let env = state
        .directory
        .environment(state, env_name)
        .await?
        .ok_or_else(|| DataverseError::UnknownSegment(format!("env/{env_name}")))?;
    let claims = state
        .directory
        .verified_token(state, token)
        .await
        .map_err(|_| {
            unauthenticated("The access token is invalid (bad signature or unknown key).")
        })?;
    let now = state.clock.now().unix_timestamp();
    if claims.exp + CLOCK_SKEW.whole_seconds() <= now {
        return Err(unauthenticated("The access token has expired."));
    }
    // The tenant first: a token from another tenant (a guest's home tenant, say) names the
    // mismatch rather than a puzzling audience.
    if claims.tid != env.tenant_id.to_string() {
        return Err(unauthenticated(format!(
            "The access token was issued by tenant {}, but environment '{}' belongs to tenant {}: ask for the token at {}/{}/oauth2/v2.0/token (a guest signs in there with their home account).",
            claims.tid, env.name, env.tenant_id, state.base_url, env.tenant_id
        )));
    }
    let named = keyway_core::environment::environment_in_url(
        &claims.aud,
        |h| state.is_our_host(h),
        state.config.environment_domain.as_deref(),
    );
    if named.as_deref() != Some(env.name.as_str()) {
        return Err(unauthenticated(format!(
            "The access token's audience '{}' is not this environment: ask for scope {}/.default.",
            claims.aud,
            super::environments::url(state, &env)
        )));
    }
    let parse = |s: &str| {
        Uuid::parse_str(s)
            .map_err(|_| unauthenticated("The access token names no valid principal."))
    };
    let key = if claims.is_app() {
        SystemUserKey::ApplicationId(parse(&claims.appid)?)
    } else {
        SystemUserKey::ObjectId(parse(&claims.oid)?)
    };
    let user = state.directory.system_user(state, &env, key).await?.ok_or_else(|| {
        DataverseError::NotAMember(if claims.is_app() {
            format!("The application {} has no application user in environment '{}'. Add one with `keyway env app-user add`.", claims.appid, env.name)
        } else {
            format!("The user {} is not a member of environment '{}'.", claims.oid, env.name)
        })
    })?;
    if user.disabled {
        return Err(DataverseError::UserDisabled(user.id.to_string()).into());
    }
    admit_person(&user, &env)?;
    let tables = state.directory.tables(state, &env).await?;
    let caller = Principal {
        user_id: user.id,
        business_unit: user.business_unit,
        privileges: user.privileges,
        teams: user.teams,
    };
    let Some(target) = impersonate else {
        return Ok(WebApiCaller {
            env,
            tables,
            role_count: user.role_count,
            principal: caller,
            on_behalf_of: None,
        });
    };
    // Acting for someone else needs prvActOnBehalfOfAnotherUser; the rights are then the
    // intersection of both: the impersonated user's privileges, no deeper than the caller's.
    if caller.depth(keyway_core::dataverse::security::ACT_ON_BEHALF)
        == keyway_core::dataverse::security::Depth::None
    {
        let d = authz::Denied {
            user_id: caller.user_id,
            privilege: keyway_core::dataverse::security::ACT_ON_BEHALF.into(),
            role_count: user.role_count,
        };
        return Err(DataverseError::MissingPrivilege(d.message()).into());
    }
    let key = match target {
        Impersonation::ObjectId(id) => SystemUserKey::ObjectId(id),
        Impersonation::SystemUserId(id) => SystemUserKey::Id(id),
    };
    let other = state
        .store
        .dataverse_user(&env, key)
        .await?
        .ok_or_else(|| {
            DataverseError::NotAMember(
                "The user to impersonate is not a user of this environment.".into(),
            )
        })?;
    if other.disabled {
        return Err(DataverseError::UserDisabled(other.id.to_string()).into());
    }
    admit_person(&other, &env)?;
    let privileges = other
        .privileges
        .iter()
        .map(|p| keyway_core::dataverse::security::Privilege {
            name: p.name.clone(),
            depth: p.depth.min(caller.depth(&p.name)),
        })
        .collect();
    Ok(WebApiCaller {
        env,
        tables,
        role_count: other.role_count,
        principal: Principal {
            user_id: other.id,
            business_unit: other.business_unit,
            privileges,
            teams: other.teams,
        },
        on_behalf_of: Some(caller.user_id),
    })
}

/// People (members and guests) act only with a license and at least one role; application
/// users need neither a license nor, to call WhoAmI, a role.
fn admit_person(user: &keyway_store::SystemUserAccess, env: &Environment) -> Result<()> {
    if user.application_id.is_some() {
        return Ok(());
    }
    if !user.licensed {
        let who = if user.guest { "guest user" } else { "user" };
        return Err(DataverseError::Unlicensed(format!(
            "the {who} {} has no license in environment '{}'. A System Administrator can give one with `keyway env user license {} {}` (or PATCH systemusers({}) {{\"islicensed\": true}}).",
            user.id, env.name, env.name, user.id, user.id
        ))
        .into());
    }
    if user.role_count == 0 {
        return Err(DataverseError::MissingPrivilege(format!(
            "Principal user (Id={}, type=8, roleCount=0) is missing prvReadOrganization privilege: it holds no security role in environment '{}'. Give it one (e.g. Basic User) with `keyway env role assign {} \"Basic User\" --system-user {}`.",
            user.id, env.name, env.name, user.id
        ))
        .into());
    }
    Ok(())
}

pub struct WhoAmI {
    pub user_id: Uuid,
    pub business_unit_id: Uuid,
    pub organization_id: Uuid,
}

pub fn who_am_i(caller: &WebApiCaller) -> WhoAmI {
    WhoAmI {
        user_id: caller.principal.user_id,
        business_unit_id: caller.principal.business_unit,
        organization_id: caller.env.id,
    }
}

/// The table an entity set names.
pub fn entity_by_set<'a>(caller: &'a WebApiCaller, set: &str) -> Result<&'a EntityDef> {
    caller
        .tables
        .iter()
        .find(|e| e.entity_set_name == set)
        .ok_or_else(|| DataverseError::UnknownSegment(set.to_string()).into())
}

fn as_id(v: Option<&FieldValue>) -> Option<Uuid> {
    match v {
        Some(FieldValue::Id(u)) => Some(*u),
        _ => None,
    }
}

/// One row, if the caller's Read privilege reaches it.
pub async fn retrieve(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    id: Uuid,
) -> Result<Record> {
    let record = state
        .store
        .record_get(&caller.env, entity, id)
        .await?
        .ok_or_else(|| DataverseError::RecordNotFound {
            entity: entity.logical_name.clone(),
            id: id.to_string(),
        })?;
    let units = BusinessUnits::new(
        state
            .directory
            .business_units(state, &caller.env)
            .await?
            .iter()
            .copied(),
    );
    let (owner, unit) = (
        as_id(record.fields.get("ownerid")),
        as_id(record.fields.get("owningbusinessunit")),
    );
    let scope = authz::scope(
        &caller.principal,
        &units,
        &Access::Read.privilege(&entity.logical_name),
        entity.ownership,
        caller.role_count,
    )
    .map_err(|d| DataverseError::MissingPrivilege(d.message()))?;
    // Shares are looked up only when ownership alone does not admit the row.
    let grants = if scope.admits(owner, unit) || scope.shared().is_none() {
        Vec::new()
    } else {
        super::sharing::grants(state, caller, entity, id).await?
    };
    if !scope.admits_row(owner, unit, &grants) {
        let d = authz::Denied {
            user_id: caller.principal.user_id,
            privilege: Access::Read.privilege(&entity.logical_name),
            role_count: caller.role_count,
        };
        return Err(DataverseError::MissingPrivilege(d.message()).into());
    }
    Ok(record)
}

/// A page of a collection.
pub struct Page {
    pub records: Vec<Record>,
    pub count: Option<i64>,
    /// The `$skiptoken` of the next page, when there is one.
    pub next_skiptoken: Option<String>,
}

/// What a `$skiptoken` is sealed to: the environment, table, filter and order it pages through,
/// so a token pasted onto another query is refused rather than silently misread.
fn skiptoken_aad(
    caller: &WebApiCaller,
    entity: &EntityDef,
    options: &keyway_core::odata::QueryOptions,
) -> Vec<u8> {
    let order: Vec<String> = options
        .orderby
        .iter()
        .map(|o| format!("{} {}", o.property, o.descending))
        .collect();
    let filter = options.filter.as_ref().map(ToString::to_string);
    format!(
        "keyway-skiptoken\0{}\0{}\0{}\0{}",
        caller.env.id,
        entity.logical_name,
        filter.unwrap_or_default(),
        order.join(",")
    )
    .into_bytes()
}

/// The next page's token: the last row's sort key and the rows served so far (for `$top`),
/// sealed so it is opaque and any change to it is detected.
fn seal_skiptoken(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    options: &keyway_core::odata::QueryOptions,
    last: &Record,
    served: u64,
) -> Result<String> {
    use base64::Engine;
    let key = keyway_store::sql::query::page_key(entity, &options.orderby, last)
        .map_err(|e| ServiceError::Internal(format!("page key: {e:?}")))?;
    let body = serde_json::json!({
        "k": keyway_store::sql::query::page_key_json(&key),
        "n": served,
    });
    let sealed = state
        .key_ring
        .seal(
            body.to_string().as_bytes(),
            &skiptoken_aad(caller, entity, options),
        )
        .map_err(|e| ServiceError::Internal(format!("sealing a skiptoken: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
}

/// A `$skiptoken` back: the sort key to start after and the rows served before it.
fn open_skiptoken(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    options: &keyway_core::odata::QueryOptions,
    token: &str,
) -> Result<(Vec<FieldValue>, u64)> {
    use base64::Engine;
    let refused = || {
        ServiceError::from(DataverseError::Syntax(
            "The $skiptoken is not one this server issued for this query.".into(),
        ))
    };
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| refused())?;
    let body = state
        .key_ring
        .open(&sealed, &skiptoken_aad(caller, entity, options))
        .map_err(|_| refused())?;
    let body: serde_json::Value = serde_json::from_slice(&body).map_err(|_| refused())?;
    let key = keyway_store::sql::query::page_key_from_json(
        entity,
        &options.orderby,
        body.get("k").ok_or_else(refused)?,
    )
    .map_err(|_| refused())?;
    let served = body.get("n").and_then(|n| n.as_u64()).ok_or_else(refused)?;
    Ok((key, served))
}

fn odata_error(e: keyway_core::odata::ODataError) -> ServiceError {
    match e.kind {
        keyway_core::odata::ODataErrorKind::Syntax => DataverseError::Syntax(e.message).into(),
        keyway_core::odata::ODataErrorKind::Unsupported => {
            DataverseError::Unsupported(e.message).into()
        }
    }
}

/// The query options of a collection request, checked against the table.
pub fn parse_query(
    raw: Option<&str>,
    entity: &EntityDef,
) -> Result<keyway_core::odata::QueryOptions> {
    let options =
        keyway_core::odata::QueryOptions::parse(raw.unwrap_or_default()).map_err(odata_error)?;
    for col in options.select.iter().flatten() {
        let bare = col
            .strip_prefix('_')
            .and_then(|c| c.strip_suffix("_value"))
            .unwrap_or(col);
        if entity.attribute(bare).is_none() {
            return Err(DataverseError::Syntax(format!(
                "Could not find a property named '{col}' on type 'Microsoft.Dynamics.CRM.{}'.",
                entity.logical_name
            ))
            .into());
        }
    }
    Ok(options)
}

/// Rows of a table the caller may read, filtered, ordered and paged in the database.
pub async fn list(
    state: &AppState,
    caller: &WebApiCaller,
    entity: &EntityDef,
    options: &keyway_core::odata::QueryOptions,
    page_size: u64,
) -> Result<Page> {
    let units = BusinessUnits::new(
        state
            .directory
            .business_units(state, &caller.env)
            .await?
            .iter()
            .copied(),
    );
    let scope = authz::scope(
        &caller.principal,
        &units,
        &Access::Read.privilege(&entity.logical_name),
        entity.ownership,
        caller.role_count,
    )
    .map_err(|d| DataverseError::MissingPrivilege(d.message()))?;
    let (after, served) = match &options.skiptoken {
        Some(t) => {
            let (key, served) = open_skiptoken(state, caller, entity, options, t)?;
            (Some(key), served)
        }
        None => (None, 0),
    };
    let top = options.top.map(|t| u64::from(t.get()));
    let remaining = top.map(|t| t.saturating_sub(served));
    let want = remaining.map_or(page_size, |r| r.min(page_size));
    let (mut records, count) = state
        .store
        .records_list(
            &caller.env,
            keyway_store::RecordList {
                entity,
                scope: &scope,
                filter: options.filter.as_ref(),
                orderby: &options.orderby,
                limit: want + 1,
                after: after.as_deref(),
                count: options.count,
            },
        )
        .await
        .map_err(|e| match e {
            keyway_store::StoreError::InvalidQuery {
                message,
                unsupported: false,
            } => DataverseError::Syntax(message).into(),
            keyway_store::StoreError::InvalidQuery {
                message,
                unsupported: true,
            } => DataverseError::Unsupported(message).into(),
            other => ServiceError::from(other),
        })?;
    let more = records.len() as u64 > want;
    records.truncate(want as usize);
    let next_skiptoken = match records.last() {
        Some(last) if more && remaining.is_none_or(|r| r > want) => Some(seal_skiptoken(
            state,
            caller,
            entity,
            options,
            last,
            served + want,
        )?),
        _ => None,
    };
    Ok(Page {
        records,
        count,
        next_skiptoken,
    })
}

/// The rows one `$expand` brings: by id, from each table the lookup may point at.
pub struct Expanded<'a> {
    pub navigation: String,
    pub select: Option<Vec<String>>,
    pub rows: Vec<(&'a EntityDef, std::collections::HashMap<Uuid, Record>)>,
}

/// Fetch what `$expand` of single-valued lookups asks for, one query per expanded table; rows the
/// caller may not read stay out (and render as null).
pub async fn expand<'a>(
    state: &AppState,
    caller: &'a WebApiCaller,
    entity: &EntityDef,
    records: &[Record],
    expands: &[keyway_core::odata::Expand],
) -> Result<Vec<Expanded<'a>>> {
    use keyway_core::dataverse::metadata::AttributeType;
    let units = BusinessUnits::new(
        state
            .directory
            .business_units(state, &caller.env)
            .await?
            .iter()
            .copied(),
    );
    let mut out = Vec::new();
    for x in expands {
        let a = entity.lookup_by_navigation(&x.navigation).ok_or_else(|| {
            DataverseError::Syntax(format!(
                "Could not find a navigation property named '{}' on type 'Microsoft.Dynamics.CRM.{}'.",
                x.navigation, entity.logical_name
            ))
        })?;
        let targets: Vec<&str> = match a.kind {
            AttributeType::Customer => vec!["account", "contact"],
            _ => a.target.as_deref().into_iter().collect(),
        };
        let ids: Vec<Uuid> = records
            .iter()
            .filter_map(|r| as_id(r.fields.get(&a.logical_name)))
            .collect();
        let mut rows = Vec::new();
        for t in targets {
            let target = caller
                .tables
                .iter()
                .find(|e| e.logical_name == t)
                .ok_or_else(|| ServiceError::Internal(format!("table {t} missing")))?;
            for col in x.select.iter().flatten() {
                if target
                    .attribute(
                        col.strip_prefix('_')
                            .and_then(|c| c.strip_suffix("_value"))
                            .unwrap_or(col),
                    )
                    .is_none()
                {
                    return Err(DataverseError::Syntax(format!("Could not find a property named '{col}' on type 'Microsoft.Dynamics.CRM.{t}'.")).into());
                }
            }
            let found = match authz::scope(
                &caller.principal,
                &units,
                &Access::Read.privilege(t),
                target.ownership,
                caller.role_count,
            ) {
                Ok(scope) if !ids.is_empty() => {
                    state
                        .store
                        .records_by_ids(&caller.env, target, &ids, &scope)
                        .await?
                }
                _ => Vec::new(),
            };
            let map = found
                .into_iter()
                .filter_map(|r| r.id(&target.primary_id).map(|id| (id, r)))
                .collect();
            rows.push((target, map));
        }
        out.push(Expanded {
            navigation: a.logical_name.clone(),
            select: x.select.clone(),
            rows,
        });
    }
    Ok(out)
}
