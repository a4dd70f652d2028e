//! Environments made before a built-in table existed (connection references and environment
//! variables came later) get it when the server starts: its metadata, its SQL table and the
//! built-in roles' privileges on it, as a new environment has them. Idempotent: an environment
//! that has the table (or another node that just made it) is left alone.
//!
//! Likewise the flow privileges (`prvReadWorkflow`, …) came later: a built-in role holding none
//! of them gets them at its built-in depth (one that holds any is left as its administrator
//! set it).

use keyway_core::dataverse::audit::AuditContext;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::privileges::RoleChange;
use keyway_core::dataverse::security::{self, ALL_ACCESS, Privilege};
use keyway_core::dataverse::system_tables::builtin_entities;
use keyway_core::environment::Environment;
use keyway_store::{EnvironmentStore, SecurityStore, SolutionStore, SqlStore, StoreError};
use uuid::Uuid;

pub async fn ensure(store: &SqlStore, now: time::OffsetDateTime) -> Result<(), StoreError> {
    let builtin = builtin_entities();
    for env in store.environments_all().await? {
        let have = store.environment_tables(env.id).await?;
        ensure_workflow_privileges(store, &env, &have, now).await?;
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

/// Give the built-in roles of an environment made before flow privileges existed their flow
/// privileges (audited as a change of the role by the nil user, the server itself).
async fn ensure_workflow_privileges(
    store: &SqlStore,
    env: &Environment,
    tables: &[EntityDef],
    now: time::OffsetDateTime,
) -> Result<(), StoreError> {
    let Some(role_table) = tables.iter().find(|t| t.logical_name == "role") else {
        return Ok(());
    };
    for (id, name) in store.roles(env).await? {
        let Some(depth) = security::builtin_workflow_depth(&name) else {
            continue;
        };
        let held = store.role_privileges(env, id).await?;
        if held
            .iter()
            .any(|p| security::WORKFLOW.contains(&p.name.as_str()))
        {
            continue;
        }
        let add = security::WORKFLOW
            .iter()
            .map(|n| Privilege {
                name: n.to_string(),
                depth,
            })
            .collect();
        let ctx = AuditContext {
            user_id: Uuid::nil(),
            calling_user_id: None,
            transaction_id: Uuid::new_v4(),
            at: now,
        };
        store
            .role_privileges_change(env, role_table, id, &RoleChange::Add(add), &ctx)
            .await?;
        tracing::info!(environment = %env.name, role = %name, "flow privileges added");
    }
    Ok(())
}
