//! Environments made before a built-in table existed (connection references and environment
//! variables came later) get it when the server starts: its metadata, its SQL table and the
//! built-in roles' privileges on it, as a new environment has them. Idempotent: an environment
//! that has the table (or another node that just made it) is left alone.

use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::security::{self, ALL_ACCESS, Privilege};
use keyway_core::dataverse::system_tables::builtin_entities;
use keyway_store::{EnvironmentStore, SecurityStore, SolutionStore, SqlStore, StoreError};
use uuid::Uuid;

pub async fn ensure(store: &SqlStore) -> Result<(), StoreError> {
    let builtin = builtin_entities();
    for env in store.environments_all().await? {
        let have = store.environment_tables(env.id).await?;
        // In the built-in order, so a lookup's target is made before the lookup.
        let missing: Vec<EntityDef> = builtin
            .iter()
            .filter(|e| !have.iter().any(|h| h.logical_name == e.logical_name))
            .cloned()
            .collect();
        if missing.is_empty() {
            continue;
        }
        let roles = store.roles(&env).await?;
        let defs = security::builtin_roles(&missing);
        for table in &missing {
            let on_table: Vec<String> = ALL_ACCESS
                .iter()
                .map(|a| a.privilege(&table.logical_name))
                .collect();
            let grants: Vec<(Uuid, Privilege)> = defs
                .iter()
                .flat_map(|d| {
                    let held_by = roles.iter().filter(move |(_, n)| *n == d.name);
                    held_by.flat_map(|(id, _)| {
                        d.privileges
                            .iter()
                            .filter(|p| on_table.contains(&p.name))
                            .map(move |p| (*id, p.clone()))
                    })
                })
                .collect();
            match store.table_create(&env, table, &grants).await {
                Ok(()) => {
                    tracing::info!(environment = %env.name, table = %table.logical_name, "built-in table added")
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
