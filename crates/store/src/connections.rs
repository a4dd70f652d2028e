//! Connections, their sealed secrets, who they are shared with, and the events of their use —
//! each change one transaction.

use keyway_core::connections::{Api, Connection, Identity, Proof, Status};
use serde_json::{Value as Json, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::sql::{Row, Value};
use crate::{SqlStore, StoreError};

/// One sealed secret value of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    pub field: String,
    pub sealed: Vec<u8>,
}

/// A grant of a connection to someone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPermission {
    pub id: Uuid,
    pub principal_id: Uuid,
    pub principal_type: String,
    pub role: String,
    pub created_at: OffsetDateTime,
}

/// Something that happened to a connection, for its history: a secret decrypted (and why), a
/// test, a change, a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEvent {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub at: OffsetDateTime,
    pub kind: String,
    /// Who asked (an object id, or `system` for Keyway's own workers).
    pub caller: String,
    /// The identity the connection acts as, when known.
    pub acting_as: Option<String>,
    pub purpose: String,
}

/// A change to a connection's secrets: new sealed values, and fields no longer stored.
#[derive(Debug, Clone, Default)]
pub struct SecretChanges {
    pub set: Vec<SealedField>,
    pub remove: Vec<String>,
}

#[async_trait::async_trait]
pub trait ConnectionStore: Send + Sync {
    /// A new connection with its sealed secrets; `Conflict` when its name is taken in its scope.
    async fn connection_create(
        &self,
        c: &Connection,
        secrets: &[SealedField],
        event: &ConnectionEvent,
    ) -> Result<(), StoreError>;
    async fn connection_get(&self, id: Uuid) -> Result<Option<Connection>, StoreError>;
    async fn connection_find(
        &self,
        api: Api,
        scope: &str,
        name: &str,
    ) -> Result<Option<Connection>, StoreError>;
    /// Every connection of an API in one scope (or in every scope of a tenant when `scope` is
    /// `None`), newest first.
    async fn connection_list(
        &self,
        api: Api,
        tenant_id: Uuid,
        scope: Option<&str>,
    ) -> Result<Vec<Connection>, StoreError>;
    /// Write `c` (its version bumped by the caller) if the stored version is `expected_version`;
    /// else `VersionMismatch`.
    async fn connection_update(
        &self,
        c: &Connection,
        expected_version: i64,
        secrets: &SecretChanges,
        event: &ConnectionEvent,
    ) -> Result<(), StoreError>;
    /// Record a test's outcome (no version bump: nobody edited the connection).
    async fn connection_status_set(
        &self,
        id: Uuid,
        status: &Status,
        tested_at: OffsetDateTime,
        event: &ConnectionEvent,
    ) -> Result<(), StoreError>;
    async fn connection_delete(&self, id: Uuid, event: &ConnectionEvent) -> Result<(), StoreError>;
    /// Record that the connection's credential, as of `version`, signed in as `proof.identity`
    /// (no version bump). `false` when the connection changed meanwhile: a credential edited
    /// since must prove itself again.
    async fn connection_prove(
        &self,
        id: Uuid,
        version: i64,
        proof: &Proof,
    ) -> Result<bool, StoreError>;
    /// Replace one sealed secret if it still holds `expected_old` (a credential the authority
    /// rotated, such as a refresh token), with `event`; no version bump: nobody edited the
    /// connection. `false` when another writer replaced it first.
    async fn connection_secret_replace(
        &self,
        id: Uuid,
        field: &str,
        sealed: &[u8],
        expected_old: &[u8],
        expires_at: Option<OffsetDateTime>,
        event: &ConnectionEvent,
    ) -> Result<bool, StoreError>;
    /// The sealed secrets, with the event that says who opens them and why (written first: no
    /// secret leaves the store unrecorded).
    async fn connection_secrets(
        &self,
        id: Uuid,
        event: &ConnectionEvent,
    ) -> Result<Vec<SealedField>, StoreError>;
    async fn connection_permissions(
        &self,
        id: Uuid,
    ) -> Result<Vec<ConnectionPermission>, StoreError>;
    /// Add or replace (by principal) grants and remove others, in one transaction.
    async fn connection_permissions_change(
        &self,
        id: Uuid,
        put: &[ConnectionPermission],
        delete: &[Uuid],
        event: &ConnectionEvent,
    ) -> Result<(), StoreError>;
    /// Connections shared with any of `principals`, by role.
    async fn connections_shared_with(
        &self,
        principals: &[Uuid],
    ) -> Result<Vec<(Uuid, String)>, StoreError>;
    async fn connection_events(&self, id: Uuid) -> Result<Vec<ConnectionEvent>, StoreError>;
    /// Connections (of every tenant) whose credential expires before `horizon`, soonest first.
    async fn connections_expiring(
        &self,
        horizon: OffsetDateTime,
    ) -> Result<Vec<Connection>, StoreError>;
}

const COLS: &str = "id, api, scope, name, tenant_id, environment_id, connector, parameter_set, display_name, description, public_values, created_by, modified_by, run_owner, status, status_code, status_message, tested_at, expires_at, created_at, modified_at, version, proven_identity, proven_at";

fn identity_json(i: &Identity) -> String {
    json!({"id": i.id, "kind": i.kind, "displayName": i.display_name, "tenantId": i.tenant_id})
        .to_string()
}

fn identity_from(s: &str) -> Result<Identity, StoreError> {
    let v: Json = serde_json::from_str(s)
        .map_err(|e| StoreError::Database(format!("bad identity json: {e}")))?;
    let id = |k: &str| {
        v[k].as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| StoreError::Database(format!("identity without {k}")))
    };
    Ok(Identity {
        id: id("id")?,
        kind: v["kind"].as_str().unwrap_or_default().to_string(),
        display_name: v["displayName"].as_str().unwrap_or_default().to_string(),
        tenant_id: id("tenantId")?,
    })
}

fn status_parts(s: &Status) -> (String, Option<String>, Option<String>) {
    match s {
        Status::Error { code, message } => (
            s.name().to_string(),
            Some(code.clone()),
            Some(message.clone()),
        ),
        other => (other.name().to_string(), None, None),
    }
}

fn row_to(r: &Row) -> Result<Connection, StoreError> {
    let api = r.text(1)?;
    let status = match r.text(14)?.as_str() {
        "Connected" => Status::Connected,
        "Error" => Status::Error {
            code: r.opt_text(15)?.unwrap_or_default(),
            message: r.opt_text(16)?.unwrap_or_default(),
        },
        _ => Status::Unknown,
    };
    let public: Json = serde_json::from_str(&r.text(10)?)
        .map_err(|e| StoreError::Database(format!("bad connection values: {e}")))?;
    Ok(Connection {
        id: r.uuid(0)?,
        api: Api::parse(&api)
            .ok_or_else(|| StoreError::Database(format!("unknown connection api {api}")))?,
        scope: r.text(2)?,
        name: r.text(3)?,
        tenant_id: r.uuid(4)?,
        connector: r.text(6)?,
        parameter_set: r.text(7)?,
        display_name: r.text(8)?,
        description: r.text(9)?,
        public_values: public["values"].as_object().cloned().unwrap_or_default(),
        secret_fields: public["secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        created_by: identity_from(&r.text(11)?)?,
        modified_by: identity_from(&r.text(12)?)?,
        run_owner: r.opt_uuid(13)?,
        status,
        tested_at: r.opt_time(17)?,
        expires_at: r.opt_time(18)?,
        created_at: r.time(19)?,
        modified_at: r.time(20)?,
        version: r.int(21)?,
        proof: match (r.opt_uuid(22)?, r.opt_time(23)?) {
            (Some(identity), Some(at)) => Some(Proof { identity, at }),
            _ => None,
        },
    })
}

fn values_json(c: &Connection) -> String {
    json!({"values": c.public_values, "secrets": c.secret_fields}).to_string()
}

fn environment_of(c: &Connection) -> Option<Uuid> {
    match c.api {
        Api::PowerPlatform => Uuid::parse_str(&c.scope).ok(),
        Api::FlowService => None,
    }
}

async fn append_event(tx: &mut dyn crate::sql::Tx, e: &ConnectionEvent) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO connection_events (id, connection_id, at, kind, caller, acting_as, purpose) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            e.id.into(),
            e.connection_id.into(),
            e.at.into(),
            e.kind.clone().into(),
            e.caller.clone().into(),
            e.acting_as.clone().into(),
            e.purpose.clone().into(),
        ],
    )
    .await
    .map(|_| ())
}

async fn put_secrets(
    tx: &mut dyn crate::sql::Tx,
    id: Uuid,
    secrets: &[SealedField],
) -> Result<(), StoreError> {
    for s in secrets {
        tx.execute(
            "DELETE FROM connection_secrets WHERE connection_id = $1 AND field = $2",
            vec![id.into(), s.field.clone().into()],
        )
        .await?;
        tx.execute(
            "INSERT INTO connection_secrets (connection_id, field, sealed) VALUES ($1, $2, $3)",
            vec![id.into(), s.field.clone().into(), s.sealed.clone().into()],
        )
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl ConnectionStore for SqlStore {
    async fn connection_create(
        &self,
        c: &Connection,
        secrets: &[SealedField],
        event: &ConnectionEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let (status, code, message) = status_parts(&c.status);
        let taken = tx
            .fetch(
                "SELECT id FROM connections WHERE api = $1 AND scope = $2 AND name = $3",
                vec![
                    c.api.name().into(),
                    c.scope.clone().into(),
                    c.name.clone().into(),
                ],
            )
            .await?;
        if !taken.is_empty() {
            return Err(StoreError::Conflict(format!(
                "a connection named {} exists",
                c.name
            )));
        }
        tx.execute(
            &format!("INSERT INTO connections ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)"),
            vec![
                c.id.into(),
                c.api.name().into(),
                c.scope.clone().into(),
                c.name.clone().into(),
                c.tenant_id.into(),
                environment_of(c).into(),
                c.connector.clone().into(),
                c.parameter_set.clone().into(),
                c.display_name.clone().into(),
                c.description.clone().into(),
                values_json(c).into(),
                identity_json(&c.created_by).into(),
                identity_json(&c.modified_by).into(),
                c.run_owner.into(),
                status.into(),
                code.into(),
                message.into(),
                c.tested_at.into(),
                c.expires_at.into(),
                c.created_at.into(),
                c.modified_at.into(),
                c.version.into(),
                c.proof.map(|p| p.identity).into(),
                c.proof.map(|p| p.at).into(),
            ],
        )
        .await?;
        put_secrets(&mut *tx, c.id, secrets).await?;
        append_event(&mut *tx, event).await?;
        tx.commit().await
    }

    async fn connection_get(&self, id: Uuid) -> Result<Option<Connection>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM connections WHERE id = $1"),
                vec![id.into()],
            )
            .await?
            .first()
            .map(row_to)
            .transpose()
    }

    async fn connection_find(
        &self,
        api: Api,
        scope: &str,
        name: &str,
    ) -> Result<Option<Connection>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT {COLS} FROM connections WHERE api = $1 AND scope = $2 AND name = $3"
                ),
                vec![api.name().into(), scope.into(), name.into()],
            )
            .await?
            .first()
            .map(row_to)
            .transpose()
    }

    async fn connection_list(
        &self,
        api: Api,
        tenant_id: Uuid,
        scope: Option<&str>,
    ) -> Result<Vec<Connection>, StoreError> {
        let (sql, args): (String, Vec<Value>) = match scope {
            Some(s) => (
                format!(
                    "SELECT {COLS} FROM connections WHERE api = $1 AND tenant_id = $2 AND scope = $3 ORDER BY created_at DESC, id"
                ),
                vec![api.name().into(), tenant_id.into(), s.into()],
            ),
            None => (
                format!(
                    "SELECT {COLS} FROM connections WHERE api = $1 AND tenant_id = $2 ORDER BY created_at DESC, id"
                ),
                vec![api.name().into(), tenant_id.into()],
            ),
        };
        self.db
            .fetch(&sql, args)
            .await?
            .iter()
            .map(row_to)
            .collect()
    }

    async fn connection_update(
        &self,
        c: &Connection,
        expected_version: i64,
        secrets: &SecretChanges,
        event: &ConnectionEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let (status, code, message) = status_parts(&c.status);
        let n = tx
            .execute(
                "UPDATE connections SET display_name = $1, description = $2, public_values = $3, modified_by = $4, run_owner = $5, status = $6, status_code = $7, status_message = $8, tested_at = $9, expires_at = $10, modified_at = $11, version = $12, parameter_set = $13, proven_identity = $14, proven_at = $15 WHERE id = $16 AND version = $17",
                vec![
                    c.display_name.clone().into(),
                    c.description.clone().into(),
                    values_json(c).into(),
                    identity_json(&c.modified_by).into(),
                    c.run_owner.into(),
                    status.into(),
                    code.into(),
                    message.into(),
                    c.tested_at.into(),
                    c.expires_at.into(),
                    c.modified_at.into(),
                    c.version.into(),
                    c.parameter_set.clone().into(),
                    c.proof.map(|p| p.identity).into(),
                    c.proof.map(|p| p.at).into(),
                    c.id.into(),
                    expected_version.into(),
                ],
            )
            .await?;
        if n == 0 {
            let exists = !tx
                .fetch("SELECT 1 FROM connections WHERE id = $1", vec![c.id.into()])
                .await?
                .is_empty();
            return Err(if exists {
                StoreError::VersionMismatch
            } else {
                StoreError::RowMissing
            });
        }
        for f in &secrets.remove {
            tx.execute(
                "DELETE FROM connection_secrets WHERE connection_id = $1 AND field = $2",
                vec![c.id.into(), f.clone().into()],
            )
            .await?;
        }
        put_secrets(&mut *tx, c.id, &secrets.set).await?;
        append_event(&mut *tx, event).await?;
        tx.commit().await
    }

    async fn connection_status_set(
        &self,
        id: Uuid,
        status: &Status,
        tested_at: OffsetDateTime,
        event: &ConnectionEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let (s, code, message) = status_parts(status);
        tx.execute(
            "UPDATE connections SET status = $1, status_code = $2, status_message = $3, tested_at = $4 WHERE id = $5",
            vec![s.into(), code.into(), message.into(), tested_at.into(), id.into()],
        )
        .await?;
        append_event(&mut *tx, event).await?;
        tx.commit().await
    }

    async fn connection_delete(&self, id: Uuid, event: &ConnectionEvent) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute("DELETE FROM connections WHERE id = $1", vec![id.into()])
            .await?;
        if n == 0 {
            return Err(StoreError::RowMissing);
        }
        append_event(&mut *tx, event).await?;
        tx.commit().await
    }

    async fn connection_prove(
        &self,
        id: Uuid,
        version: i64,
        proof: &Proof,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE connections SET proven_identity = $1, proven_at = $2 WHERE id = $3 AND version = $4",
                vec![
                    proof.identity.into(),
                    proof.at.into(),
                    id.into(),
                    version.into(),
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn connection_secret_replace(
        &self,
        id: Uuid,
        field: &str,
        sealed: &[u8],
        expected_old: &[u8],
        expires_at: Option<OffsetDateTime>,
        event: &ConnectionEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                "UPDATE connection_secrets SET sealed = $1 WHERE connection_id = $2 AND field = $3 AND sealed = $4",
                vec![sealed.into(), id.into(), field.into(), expected_old.into()],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        if expires_at.is_some() {
            tx.execute(
                "UPDATE connections SET expires_at = $1 WHERE id = $2",
                vec![expires_at.into(), id.into()],
            )
            .await?;
        }
        append_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn connection_secrets(
        &self,
        id: Uuid,
        event: &ConnectionEvent,
    ) -> Result<Vec<SealedField>, StoreError> {
        let mut tx = self.db.begin().await?;
        append_event(&mut *tx, event).await?;
        let rows = tx
            .fetch(
                "SELECT field, sealed FROM connection_secrets WHERE connection_id = $1 ORDER BY field",
                vec![id.into()],
            )
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(SealedField {
                    field: r.text(0)?,
                    sealed: r.blob(1)?,
                })
            })
            .collect()
    }

    async fn connection_permissions(
        &self,
        id: Uuid,
    ) -> Result<Vec<ConnectionPermission>, StoreError> {
        self.db
            .fetch(
                "SELECT id, principal_id, principal_type, role, created_at FROM connection_permissions WHERE connection_id = $1 ORDER BY created_at, id",
                vec![id.into()],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ConnectionPermission {
                    id: r.uuid(0)?,
                    principal_id: r.uuid(1)?,
                    principal_type: r.text(2)?,
                    role: r.text(3)?,
                    created_at: r.time(4)?,
                })
            })
            .collect()
    }

    async fn connection_permissions_change(
        &self,
        id: Uuid,
        put: &[ConnectionPermission],
        delete: &[Uuid],
        event: &ConnectionEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for d in delete {
            let n = tx
                .execute(
                    "DELETE FROM connection_permissions WHERE connection_id = $1 AND id = $2",
                    vec![id.into(), (*d).into()],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::RowMissing);
            }
        }
        for p in put {
            tx.execute(
                "DELETE FROM connection_permissions WHERE connection_id = $1 AND principal_id = $2",
                vec![id.into(), p.principal_id.into()],
            )
            .await?;
            tx.execute(
                "INSERT INTO connection_permissions (id, connection_id, principal_id, principal_type, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    p.id.into(),
                    id.into(),
                    p.principal_id.into(),
                    p.principal_type.clone().into(),
                    p.role.clone().into(),
                    p.created_at.into(),
                ],
            )
            .await?;
        }
        append_event(&mut *tx, event).await?;
        tx.commit().await
    }

    async fn connections_shared_with(
        &self,
        principals: &[Uuid],
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        if principals.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=principals.len()).map(|i| format!("${i}")).collect();
        self.db
            .fetch(
                &format!(
                    "SELECT connection_id, role FROM connection_permissions WHERE principal_id IN ({})",
                    marks.join(", ")
                ),
                principals.iter().map(|p| (*p).into()).collect(),
            )
            .await?
            .iter()
            .map(|r| Ok((r.uuid(0)?, r.text(1)?)))
            .collect()
    }

    async fn connections_expiring(
        &self,
        horizon: OffsetDateTime,
    ) -> Result<Vec<Connection>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM connections WHERE expires_at IS NOT NULL AND expires_at < $1 ORDER BY expires_at, id"),
                vec![horizon.into()],
            )
            .await?
            .iter()
            .map(row_to)
            .collect()
    }

    async fn connection_events(&self, id: Uuid) -> Result<Vec<ConnectionEvent>, StoreError> {
        self.db
            .fetch(
                "SELECT id, connection_id, at, kind, caller, acting_as, purpose FROM connection_events WHERE connection_id = $1 ORDER BY at, id",
                vec![id.into()],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ConnectionEvent {
                    id: r.uuid(0)?,
                    connection_id: r.uuid(1)?,
                    at: r.time(2)?,
                    kind: r.text(3)?,
                    caller: r.text(4)?,
                    acting_as: r.opt_text(5)?,
                    purpose: r.text(6)?,
                })
            })
            .collect()
    }
}
