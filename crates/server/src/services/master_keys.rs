//! Master key status and rotation, for the system tenant's administrators. A rotation makes a
//! new master key (file keys) or adopts the operator's new `KEYWAY_MASTER_KEY`, seals every
//! value held directly under the ring (wrapped data keys, signing keys, server secrets) again
//! under it, one transaction per table, and only then forgets retired keys nothing is sealed
//! under any more. Secrets sealed under data keys are never touched, and every key stays
//! readable throughout, so nothing waits and nothing is lost if the process dies midway.

use std::collections::BTreeMap;
use std::time::Duration;

use keyway_core::graph_roles::Permission;
use keyway_core::wire::{DataKeyView, KeyRotation, KeyStatus, MasterKeyView, ResealCounts};
use keyway_crypto::envelope;
use keyway_crypto::seal::KeyRing;
use keyway_store::{DataKeyStore, DirectoryStore, MasterSealed, Reseal};

use super::caller::Caller;
use super::{Result, ServiceError};
use crate::keys::{KeySource, server_secret_aad};
use crate::state::AppState;

/// After the ring is swapped, a write that sealed under the old key just before may still be
/// committing; waiting this long lets it land before the re-seal reads the tables.
const SETTLE: Duration = Duration::from_secs(1);

async fn require_system_admin(state: &AppState, caller: &Caller) -> Result<()> {
    caller.require(Permission::ManageTenants)?;
    let system = state
        .store
        .tenant_system()
        .await?
        .ok_or_else(|| ServiceError::Internal("no system tenant".into()))?;
    if caller.tenant_id != system.id {
        return Err(ServiceError::Forbidden(
            "Only administrators of the system tenant manage master keys.".into(),
        ));
    }
    Ok(())
}

fn aad_of(table: MasterSealed, key: &str) -> Vec<u8> {
    match table {
        MasterSealed::DataKeys => envelope::wrap_aad(key),
        MasterSealed::SigningKeys => super::signing::seal_aad(key),
        MasterSealed::ServerSecrets => server_secret_aad(key),
    }
}

fn slot(c: &mut ResealCounts, table: MasterSealed) -> &mut u64 {
    match table {
        MasterSealed::DataKeys => &mut c.data_keys,
        MasterSealed::SigningKeys => &mut c.signing_keys,
        MasterSealed::ServerSecrets => &mut c.server_secrets,
    }
}

/// What is sealed under each master key, by kind.
async fn master_counts(state: &AppState) -> Result<BTreeMap<String, ResealCounts>> {
    let mut out: BTreeMap<String, ResealCounts> = BTreeMap::new();
    for table in MasterSealed::ALL {
        for (_, sealed) in state.store.master_sealed(table).await? {
            let kid = KeyRing::key_id_of(&sealed).unwrap_or("(unreadable)");
            *slot(out.entry(kid.to_string()).or_default(), table) += 1;
        }
    }
    Ok(out)
}

fn master_views(held: &[String], counts: &BTreeMap<String, ResealCounts>) -> Vec<MasterKeyView> {
    let view = |id: &str, held: bool, current: bool| {
        let c = counts.get(id).cloned().unwrap_or_default();
        MasterKeyView {
            id: id.to_string(),
            current,
            held,
            data_keys: c.data_keys,
            signing_keys: c.signing_keys,
            server_secrets: c.server_secrets,
        }
    };
    // The held keys, current first; then any key something is sealed under that this server
    // does not hold, so it is noticed.
    let mut out: Vec<MasterKeyView> = held
        .iter()
        .enumerate()
        .map(|(i, id)| view(id, true, i == 0))
        .collect();
    out.extend(
        counts
            .keys()
            .filter(|id| !held.contains(id))
            .map(|id| view(id, false, false)),
    );
    out
}

pub async fn status(state: &AppState, caller: &Caller) -> Result<KeyStatus> {
    require_system_admin(state, caller).await?;
    let counts = master_counts(state).await?;
    let mut secrets: BTreeMap<String, u64> = BTreeMap::new();
    for header in state.store.vault_sealed_headers().await? {
        let kid = KeyRing::key_id_of(&header).unwrap_or("(unreadable)");
        *secrets.entry(kid.to_string()).or_default() += 1;
    }
    let current_data_key = state.vault.current_id();
    let data_keys = state
        .store
        .data_keys()
        .await?
        .into_iter()
        .map(|k| DataKeyView {
            current: current_data_key.as_deref() == Some(k.id.as_str()),
            wrapped_by: KeyRing::key_id_of(&k.wrapped)
                .unwrap_or("(unreadable)")
                .to_string(),
            secrets: secrets.get(&k.id).copied().unwrap_or(0),
            created_date_time: k.created_at,
            id: k.id,
        })
        .collect();
    Ok(KeyStatus {
        current_master_key_id: state.key_ring.current_id(),
        source: source_name(state.key_ring.source()).into(),
        master_keys: master_views(&state.key_ring.ids(), &counts),
        data_keys,
    })
}

fn source_name(s: &KeySource) -> &'static str {
    match s {
        KeySource::File(_) => "file",
        KeySource::Environment => "environment",
    }
}

pub async fn rotate(state: &AppState, caller: &Caller) -> Result<KeyRotation> {
    require_system_admin(state, caller).await?;
    rotate_now(state).await
}

/// The rotation itself (also run by tests that hold the state).
pub async fn rotate_now(state: &AppState) -> Result<KeyRotation> {
    let _one_at_a_time = state.key_ring.rotation.lock().await;
    let previous = state.key_ring.current_id();
    if matches!(state.key_ring.source(), KeySource::File(_)) {
        // Written to master.key (old keys kept) before anything in the database changes.
        state
            .key_ring
            .add_new_current()
            .map_err(|e| ServiceError::Internal(format!("writing a new master key: {e:#}")))?;
        tokio::time::sleep(SETTLE).await;
    }
    let ring = state.key_ring.ring();
    let mut rewrapped = ResealCounts::default();
    for table in MasterSealed::ALL {
        let mut changes = Vec::new();
        for (key, sealed) in state.store.master_sealed(table).await? {
            match envelope::reseal(&ring, &sealed, &aad_of(table, &key)) {
                Ok(Some(new)) => changes.push(Reseal {
                    key,
                    old: sealed,
                    new,
                }),
                Ok(None) => {}
                // Left under its key, which the counts below then keep.
                Err(e) => {
                    tracing::warn!(table = ?table, row = %key, error = %e, "a sealed value could not be opened; left as it is")
                }
            }
        }
        *slot(&mut rewrapped, table) = state.store.master_sealed_replace(table, &changes).await?;
    }

    let counts = master_counts(state).await?;
    let removable: Vec<String> = state
        .key_ring
        .ids()
        .into_iter()
        .skip(1)
        .filter(|id| {
            counts
                .get(id)
                .is_none_or(|c| c.data_keys + c.signing_keys + c.server_secrets == 0)
        })
        .collect();
    let removed = match state.key_ring.source() {
        KeySource::File(_) if !removable.is_empty() => {
            state.key_ring.remove(&removable).map_err(|e| {
                ServiceError::Internal(format!("removing retired master keys: {e:#}"))
            })?;
            removable
        }
        // Environment keys are the operator's to drop (KEYWAY_MASTER_KEY_PREVIOUS).
        _ => Vec::new(),
    };
    let current = state.key_ring.current_id();
    tracing::info!(
        previous = %previous,
        current = %current,
        data_keys = rewrapped.data_keys,
        signing_keys = rewrapped.signing_keys,
        server_secrets = rewrapped.server_secrets,
        removed = ?removed,
        "master key rotated"
    );
    Ok(KeyRotation {
        previous_master_key_id: previous,
        current_master_key_id: current,
        rewrapped,
        removed_master_keys: removed,
        master_keys: master_views(&state.key_ring.ids(), &counts),
    })
}
