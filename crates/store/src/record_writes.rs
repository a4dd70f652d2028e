//! Changing rows: each create, update or delete runs in one transaction with its audit row,
//! checked there against the caller's row scope and the expected version, and appended to the
//! environment's hash chain.

use keyway_core::dataverse::audit::{self, AuditAction, AuditContext, AuditEntry};
use keyway_core::dataverse::authz::RowScope;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::{FieldValue, Record};
use keyway_core::environment::Environment;
use uuid::Uuid;

use crate::StoreError;
use crate::flows::{RowChange, Subscribers};
use crate::sql::{Dialect, Tx, Value, ident};

/// Serialize writers of one environment so its audit chain stays a chain.
pub(crate) async fn lock_environment(
    tx: &mut dyn Tx,
    dialect: Dialect,
    env: &Environment,
) -> Result<(), StoreError> {
    let sql = match dialect {
        Dialect::Postgres => "SELECT id FROM environments WHERE id = $1 FOR UPDATE",
        // SQLite's write transaction (BEGIN IMMEDIATE) already holds the database's one write lock.
        Dialect::Sqlite => "SELECT id FROM environments WHERE id = $1",
    };
    tx.fetch(sql, vec![env.id.into()]).await.map(|_| ())
}

pub(crate) async fn read_row(
    tx: &mut dyn Tx,
    env: &Environment,
    entity: &EntityDef,
    id: Uuid,
) -> Result<Option<Record>, StoreError> {
    let cols: Vec<String> = entity
        .attributes
        .iter()
        .map(|a| ident(&a.logical_name))
        .collect();
    let rows = tx
        .fetch(
            &format!(
                "SELECT {} FROM {} WHERE {} = $1",
                cols.join(", "),
                ident(&entity.sql_table(env.number)),
                ident(&entity.primary_id)
            ),
            vec![id.into()],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let mut record = Record::new(&entity.logical_name);
    for (i, a) in entity.attributes.iter().enumerate() {
        record.fields.insert(
            a.logical_name.clone(),
            crate::records::from_sql(a.kind.storage(), r, i)?,
        );
    }
    Ok(Some(record))
}

fn id_of(r: &Record, col: &str) -> Option<Uuid> {
    match r.fields.get(col) {
        Some(FieldValue::Id(u)) => Some(*u),
        _ => None,
    }
}

/// Who a row is shared with, and with which rights: `(principal, access mask)`.
pub(crate) async fn row_grants(
    tx: &mut dyn Tx,
    env: &Environment,
    entity: &EntityDef,
    id: Uuid,
) -> Result<Vec<(Uuid, u32)>, StoreError> {
    tx.fetch(
        "SELECT principal_id, access_mask FROM dv_shares WHERE table_name = $1 AND object_id = $2",
        vec![entity.sql_table(env.number).into(), id.into()],
    )
    .await?
    .iter()
    .map(|r| Ok((r.uuid(0)?, u32::try_from(r.int(1)?).unwrap_or(0))))
    .collect()
}

/// The row must exist, be inside every scope (by ownership or a share) and (when asked) be at
/// the expected version.
pub(crate) async fn admit(
    tx: &mut dyn Tx,
    env: &Environment,
    entity: &EntityDef,
    id: Uuid,
    scopes: &[&RowScope],
    expected_version: Option<i64>,
) -> Result<Record, StoreError> {
    let old = read_row(tx, env, entity, id)
        .await?
        .ok_or(StoreError::RowMissing)?;
    let (owner, unit) = (id_of(&old, "ownerid"), id_of(&old, "owningbusinessunit"));
    let mut grants = None;
    for scope in scopes {
        if scope.admits(owner, unit) {
            continue;
        }
        if scope.shared().is_none() {
            return Err(StoreError::RowOutOfScope);
        }
        if grants.is_none() {
            grants = Some(row_grants(tx, env, entity, id).await?);
        }
        if !scope.admits_row(owner, unit, grants.as_deref().unwrap_or_default()) {
            return Err(StoreError::RowOutOfScope);
        }
    }
    if let Some(v) = expected_version
        && old.fields.get("versionnumber") != Some(&FieldValue::Int(v))
    {
        return Err(StoreError::VersionMismatch);
    }
    Ok(old)
}

pub(crate) async fn append_audit(
    tx: &mut dyn Tx,
    env: &Environment,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    let head = tx
        .fetch(
            "SELECT audit_seq, audit_hash FROM environments WHERE id = $1",
            vec![env.id.into()],
        )
        .await?;
    let (seq, prev) = match head.first() {
        Some(r) if !r.is_null(1) => (r.int(0)? + 1, r.blob(1)?),
        _ => (1, keyway_crypto::audit::GENESIS.to_vec()),
    };
    let hash = keyway_crypto::audit::chain_hash(&prev, &entry.canonical());
    tx.execute(
        "INSERT INTO dv_audit (environment_id, seq, auditid, action, operation, entity, objecttypecode, objectid, userid, callinguserid, transactionid, createdon, attributemask, changedata, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        vec![
            env.id.into(),
            seq.into(),
            entry.audit_id.into(),
            entry.action.into(),
            entry.operation.into(),
            entry.entity.clone().into(),
            entry.object_type_code.into(),
            entry.object_id.into(),
            entry.user_id.into(),
            entry.calling_user_id.into(),
            entry.transaction_id.into(),
            entry.created_on.into(),
            entry.attribute_mask.clone().into(),
            entry.change_data.to_string().into(),
            hash.clone().into(),
        ],
    )
    .await?;
    tx.execute(
        "UPDATE environments SET audit_seq = $1, audit_hash = $2 WHERE id = $3",
        vec![seq.into(), hash.into(), env.id.into()],
    )
    .await
    .map(|_| ())
}

pub(crate) async fn update_row(
    tx: &mut dyn Tx,
    env: &Environment,
    entity: &EntityDef,
    id: Uuid,
    set: &Record,
) -> Result<(), StoreError> {
    let mut assignments = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    for (name, value) in &set.fields {
        let a = entity.attribute(name).ok_or_else(|| {
            StoreError::Database(format!("{} has no column {name}", entity.logical_name))
        })?;
        args.push(crate::records::to_sql(a.kind.storage(), value)?);
        assignments.push(format!("{} = ${}", ident(name), args.len()));
    }
    args.push(id.into());
    tx.execute(
        &format!(
            "UPDATE {} SET {} WHERE {} = ${}",
            ident(&entity.sql_table(env.number)),
            assignments.join(", "),
            ident(&entity.primary_id),
            args.len()
        ),
        args,
    )
    .await
    .map(|_| ())
}

pub(crate) async fn delete_row(
    tx: &mut dyn Tx,
    env: &Environment,
    entity: &EntityDef,
    id: Uuid,
) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "DELETE FROM {} WHERE {} = $1",
            ident(&entity.sql_table(env.number)),
            ident(&entity.primary_id)
        ),
        vec![id.into()],
    )
    .await
    .map(|_| ())
}

/// A row split into its ownership columns and the rest, for auditing an assignment apart.
fn split_owner(r: &Record) -> (Record, Record) {
    let mut owner = Record::new(&r.entity);
    let mut rest = r.clone();
    for col in ["ownerid", "owningbusinessunit"] {
        if let Some(v) = rest.fields.remove(col) {
            owner.fields.insert(col.to_string(), v);
        }
    }
    (owner, rest)
}

pub(crate) fn audit_for(
    action: AuditAction,
    entity: &EntityDef,
    id: Uuid,
    old: Option<&Record>,
    new: Option<&Record>,
    ctx: &AuditContext,
) -> Option<AuditEntry> {
    entity
        .audited
        .then(|| audit::entry(action, entity, id, old, new, ctx))
}

/// Writes to these tables change who may do what, so caches of callers must hear of them.
pub(crate) fn is_security_table(entity: &EntityDef) -> bool {
    matches!(
        entity.logical_name.as_str(),
        "systemuser" | "businessunit" | "role" | "team"
    )
}

/// One write of a changeset.
#[derive(Debug, Clone)]
pub enum RecordOp<'a> {
    Create {
        entity: &'a EntityDef,
        record: Record,
    },
    Update {
        entity: &'a EntityDef,
        id: Uuid,
        set: Record,
        expected_version: Option<i64>,
        scope: RowScope,
        /// When `set` changes the owner: the Assign privilege's scope, which the row must also be in.
        assign: Option<RowScope>,
    },
    Delete {
        entity: &'a EntityDef,
        id: Uuid,
        expected_version: Option<i64>,
        scope: RowScope,
    },
}

/// Queue the runs of the flows this change triggers, in the change's own transaction.
#[allow(clippy::too_many_arguments)]
async fn triggered(
    tx: &mut dyn Tx,
    subscribers: &mut Subscribers,
    env: &Environment,
    entity: &EntityDef,
    change: RowChange,
    row: &Record,
    changed: &[String],
    ctx: &AuditContext,
) -> Result<(), StoreError> {
    crate::flows::queue_triggered(
        tx,
        subscribers,
        env.id,
        &entity.logical_name,
        change,
        changed,
        || crate::flows::trigger_outputs(entity, change, row, changed, ctx),
        ctx.at,
    )
    .await
    .map(|_| ())
}

async fn run_op(
    tx: &mut dyn Tx,
    subscribers: &mut Subscribers,
    env: &Environment,
    op: &RecordOp<'_>,
    ctx: &AuditContext,
) -> Result<Option<Record>, StoreError> {
    match op {
        RecordOp::Create { entity, record } => {
            crate::records::insert(tx, env.number, entity, record).await?;
            let id = id_of(record, &entity.primary_id)
                .ok_or_else(|| StoreError::Database("a new row needs its id".into()))?;
            if let Some(e) = audit_for(AuditAction::Create, entity, id, None, Some(record), ctx) {
                append_audit(tx, env, &e).await?;
            }
            triggered(
                tx,
                subscribers,
                env,
                entity,
                RowChange::Added,
                record,
                &[],
                ctx,
            )
            .await?;
            Ok(None)
        }
        RecordOp::Update {
            entity,
            id,
            set,
            expected_version,
            scope,
            assign,
        } => {
            let scopes: Vec<&RowScope> = std::iter::once(scope).chain(assign.as_ref()).collect();
            let old = admit(tx, env, entity, *id, &scopes, *expected_version).await?;
            let version = match old.fields.get("versionnumber") {
                Some(FieldValue::Int(v)) => *v,
                _ => 0,
            };
            let mut set = set.clone();
            set.fields
                .insert("versionnumber".into(), FieldValue::Int(version + 1));
            update_row(tx, env, entity, *id, &set).await?;
            let new = read_row(tx, env, entity, *id)
                .await?
                .ok_or(StoreError::RowMissing)?;
            // A change of owner is its own audit row (Assign); the other columns are an Update.
            let (owner_old, rest_old) = split_owner(&old);
            let (owner_new, rest_new) = split_owner(&new);
            if owner_old != owner_new
                && let Some(e) = audit_for(
                    AuditAction::Assign,
                    entity,
                    *id,
                    Some(&owner_old),
                    Some(&owner_new),
                    ctx,
                )
            {
                append_audit(tx, env, &e).await?;
            }
            if let Some(e) = audit_for(
                AuditAction::Update,
                entity,
                *id,
                Some(&rest_old),
                Some(&rest_new),
                ctx,
            ) && (owner_old == owner_new || !e.attribute_mask.is_empty())
            {
                append_audit(tx, env, &e).await?;
            }
            let changed: Vec<String> = new
                .fields
                .iter()
                .filter(|(k, v)| old.fields.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .filter(|k| {
                    !matches!(
                        k.as_str(),
                        "modifiedon" | "modifiedby" | "modifiedonbehalfby" | "versionnumber"
                    )
                })
                .collect();
            triggered(
                tx,
                subscribers,
                env,
                entity,
                RowChange::Modified,
                &new,
                &changed,
                ctx,
            )
            .await?;
            Ok(Some(new))
        }
        RecordOp::Delete {
            entity,
            id,
            expected_version,
            scope,
        } => {
            let old = admit(tx, env, entity, *id, &[scope], *expected_version).await?;
            delete_row(tx, env, entity, *id).await?;
            // A deleted row's shares go with it.
            tx.execute(
                "DELETE FROM dv_shares WHERE table_name = $1 AND object_id = $2",
                vec![entity.sql_table(env.number).into(), (*id).into()],
            )
            .await?;
            if let Some(e) = audit_for(AuditAction::Delete, entity, *id, Some(&old), None, ctx) {
                append_audit(tx, env, &e).await?;
            }
            triggered(
                tx,
                subscribers,
                env,
                entity,
                RowChange::Deleted,
                &old,
                &[],
                ctx,
            )
            .await?;
            Ok(None)
        }
    }
}

/// One audit row as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAudit {
    pub seq: i64,
    pub entry: AuditEntry,
    pub hash: Vec<u8>,
}

/// What walking an environment's audit chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheck {
    pub rows: i64,
    /// The first row whose hash or place does not hold (or the head when the newest rows went).
    pub first_broken: Option<i64>,
}

const AUDIT_COLS: &str = "seq, auditid, action, operation, entity, objecttypecode, objectid, userid, callinguserid, transactionid, createdon, attributemask, changedata, hash";

fn audit_from(r: &crate::sql::Row) -> Result<StoredAudit, StoreError> {
    let change: serde_json::Value = serde_json::from_str(&r.text(12)?)
        .map_err(|e| StoreError::Database(format!("audit changedata: {e}")))?;
    Ok(StoredAudit {
        seq: r.int(0)?,
        entry: AuditEntry {
            audit_id: r.uuid(1)?,
            action: r.int(2)?,
            operation: r.int(3)?,
            entity: r.text(4)?,
            object_type_code: r.int(5)?,
            object_id: r.uuid(6)?,
            user_id: r.uuid(7)?,
            calling_user_id: r.opt_uuid(8)?,
            transaction_id: r.uuid(9)?,
            created_on: r.int(10)?,
            attribute_mask: r.text(11)?,
            change_data: change,
        },
        hash: r.blob(13)?,
    })
}

#[async_trait::async_trait]
pub trait RecordStore: Send + Sync {
    /// Insert a row (and its audit row).
    /// Insert rows (and their audit rows), all or none.
    async fn record_create(
        &self,
        env: &Environment,
        entity: &EntityDef,
        records: &[Record],
        ctx: &AuditContext,
    ) -> Result<(), StoreError>;
    /// Set some columns of a row the scope reaches, at the expected version when one is named;
    /// returns the row as it is now.
    #[allow(clippy::too_many_arguments)]
    async fn record_update(
        &self,
        env: &Environment,
        entity: &EntityDef,
        id: Uuid,
        set: &Record,
        expected_version: Option<i64>,
        scope: &RowScope,
        ctx: &AuditContext,
    ) -> Result<Record, StoreError>;
    async fn record_delete(
        &self,
        env: &Environment,
        entity: &EntityDef,
        id: Uuid,
        expected_version: Option<i64>,
        scope: &RowScope,
        ctx: &AuditContext,
    ) -> Result<(), StoreError>;
    /// Run writes in one transaction, all or none: on failure, the index of the write that failed.
    async fn record_changeset(
        &self,
        env: &Environment,
        ops: &[RecordOp<'_>],
        ctx: &AuditContext,
    ) -> Result<Vec<Option<Record>>, (usize, StoreError)>;
    /// Audit rows, newest first, for one row or the whole environment.
    async fn audit_entries(
        &self,
        env: &Environment,
        object_id: Option<Uuid>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<StoredAudit>, StoreError>;
    /// Walk the whole chain.
    async fn audit_verify(&self, env: &Environment) -> Result<AuditCheck, StoreError>;
}

#[async_trait::async_trait]
impl RecordStore for crate::SqlStore {
    async fn record_changeset(
        &self,
        env: &Environment,
        ops: &[RecordOp<'_>],
        ctx: &AuditContext,
    ) -> Result<Vec<Option<Record>>, (usize, StoreError)> {
        let mut tx = self.db.begin().await.map_err(|e| (0, e))?;
        lock_environment(&mut *tx, self.db.dialect(), env)
            .await
            .map_err(|e| (0, e))?;
        let mut out = Vec::with_capacity(ops.len());
        let mut subscribers = self.subscribers();
        for (i, op) in ops.iter().enumerate() {
            // Dropping the transaction without commit rolls every earlier write back.
            out.push(
                run_op(&mut *tx, &mut subscribers, env, op, ctx)
                    .await
                    .map_err(|e| (i, e))?,
            );
        }
        tx.commit()
            .await
            .map_err(|e| (ops.len().saturating_sub(1), e))?;
        subscribers.hand_over();
        let touches_security = ops.iter().any(|op| match op {
            RecordOp::Create { entity, .. }
            | RecordOp::Update { entity, .. }
            | RecordOp::Delete { entity, .. } => is_security_table(entity),
        });
        if touches_security {
            let _ = self.changed(Ok(()));
        }
        Ok(out)
    }

    async fn record_create(
        &self,
        env: &Environment,
        entity: &EntityDef,
        records: &[Record],
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let ops: Vec<RecordOp<'_>> = records
            .iter()
            .map(|r| RecordOp::Create {
                entity,
                record: r.clone(),
            })
            .collect();
        self.record_changeset(env, &ops, ctx)
            .await
            .map(|_| ())
            .map_err(|(_, e)| e)
    }

    async fn record_update(
        &self,
        env: &Environment,
        entity: &EntityDef,
        id: Uuid,
        set: &Record,
        expected_version: Option<i64>,
        scope: &RowScope,
        ctx: &AuditContext,
    ) -> Result<Record, StoreError> {
        let op = RecordOp::Update {
            entity,
            id,
            set: set.clone(),
            expected_version,
            scope: scope.clone(),
            assign: None,
        };
        let mut out = self
            .record_changeset(env, std::slice::from_ref(&op), ctx)
            .await
            .map_err(|(_, e)| e)?;
        out.pop().flatten().ok_or(StoreError::RowMissing)
    }

    async fn record_delete(
        &self,
        env: &Environment,
        entity: &EntityDef,
        id: Uuid,
        expected_version: Option<i64>,
        scope: &RowScope,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let op = RecordOp::Delete {
            entity,
            id,
            expected_version,
            scope: scope.clone(),
        };
        self.record_changeset(env, std::slice::from_ref(&op), ctx)
            .await
            .map(|_| ())
            .map_err(|(_, e)| e)
    }

    async fn audit_entries(
        &self,
        env: &Environment,
        object_id: Option<Uuid>,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<StoredAudit>, StoreError> {
        let (filter, mut args): (&str, Vec<Value>) = match object_id {
            Some(id) => (" AND objectid = $2", vec![env.id.into(), id.into()]),
            None => ("", vec![env.id.into()]),
        };
        args.truncate(2);
        self.db
            .fetch(
                &format!("SELECT {AUDIT_COLS} FROM dv_audit WHERE environment_id = $1{filter} ORDER BY seq DESC LIMIT {limit} OFFSET {offset}"),
                args,
            )
            .await?
            .iter()
            .map(audit_from)
            .collect()
    }

    async fn audit_verify(&self, env: &Environment) -> Result<AuditCheck, StoreError> {
        let rows = self
            .db
            .fetch(
                &format!(
                    "SELECT {AUDIT_COLS} FROM dv_audit WHERE environment_id = $1 ORDER BY seq"
                ),
                vec![env.id.into()],
            )
            .await?;
        let mut prev = keyway_crypto::audit::GENESIS.to_vec();
        let mut expected_seq = 1;
        let mut count = 0;
        for r in &rows {
            count += 1;
            let a = match audit_from(r) {
                Ok(a) => a,
                Err(_) => {
                    return Ok(AuditCheck {
                        rows: count,
                        first_broken: Some(r.int(0).unwrap_or(expected_seq)),
                    });
                }
            };
            let hash = keyway_crypto::audit::chain_hash(&prev, &a.entry.canonical());
            if a.seq != expected_seq || hash != a.hash {
                return Ok(AuditCheck {
                    rows: count,
                    first_broken: Some(a.seq.min(expected_seq)),
                });
            }
            prev = a.hash;
            expected_seq += 1;
        }
        let head = self
            .db
            .fetch(
                "SELECT audit_seq, audit_hash FROM environments WHERE id = $1",
                vec![env.id.into()],
            )
            .await?;
        let head_ok = match head.first() {
            Some(h) if h.is_null(1) => count == 0,
            Some(h) => h.int(0)? == count && h.blob(1)? == prev,
            None => false,
        };
        Ok(AuditCheck {
            rows: count,
            first_broken: (!head_ok).then_some(expected_seq),
        })
    }
}
