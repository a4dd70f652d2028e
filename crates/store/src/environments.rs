//! Environments in storage: made with a server-unique number that names their SQL tables.

use async_trait::async_trait;
use keyway_core::dataverse::metadata::EntityDef;
use keyway_core::dataverse::record::Record;
use keyway_core::dataverse::security::{Depth, Privilege};
use keyway_core::dataverse::seed::EnvironmentSeed;
use keyway_core::environment::Environment;
use uuid::Uuid;

use crate::sql::{Row, ident};
use crate::{SqlStore, StoreError};

#[async_trait]
pub trait EnvironmentStore: Send + Sync {
    /// Store a new environment with its tables; its `number` is chosen here (the one given is
    /// ignored). The environment row, its metadata and its SQL tables are made in one transaction.
    async fn environment_create(
        &self,
        env: &Environment,
        tables: &[EntityDef],
        seed: &EnvironmentSeed,
    ) -> Result<Environment, StoreError>;
    /// The system user a Web API caller is, with the privileges of all their roles.
    async fn dataverse_user(
        &self,
        env: &Environment,
        key: SystemUserKey,
    ) -> Result<Option<SystemUserAccess>, StoreError>;
    /// A page of rows the scope admits and the filter selects, in order, and (when asked) how
    /// many there are in all. One SQL query (and one count), on the table's indexes.
    async fn records_list(
        &self,
        env: &Environment,
        list: RecordList<'_>,
    ) -> Result<(Vec<Record>, Option<i64>), StoreError>;
    /// The rows with these ids that the scope admits (for `$expand`): one query per call.
    async fn records_by_ids(
        &self,
        env: &Environment,
        entity: &EntityDef,
        ids: &[Uuid],
        scope: &keyway_core::dataverse::authz::RowScope,
    ) -> Result<Vec<Record>, StoreError>;
    /// The business-unit tree: (unit, parent).
    async fn business_units(
        &self,
        env: &Environment,
    ) -> Result<Vec<(Uuid, Option<Uuid>)>, StoreError>;
    /// One row by its id, every column.
    async fn record_get(
        &self,
        env: &Environment,
        entity: &EntityDef,
        id: Uuid,
    ) -> Result<Option<Record>, StoreError>;
    /// The environment's tables and columns.
    async fn environment_tables(&self, env_id: Uuid) -> Result<Vec<EntityDef>, StoreError>;
    async fn environment_get(&self, id: Uuid) -> Result<Option<Environment>, StoreError>;
    async fn environment_by_name(&self, name: &str) -> Result<Option<Environment>, StoreError>;
    async fn environment_list(&self, tenant_id: Uuid) -> Result<Vec<Environment>, StoreError>;
    async fn environment_delete(&self, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError>;
}

/// How a caller is found among an environment's system users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemUserKey {
    /// An application user, by the app registration's client id.
    ApplicationId(Uuid),
    /// A person, by their directory object id.
    ObjectId(Uuid),
    /// By `systemuserid` (impersonation with MSCRMCallerID).
    Id(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUserAccess {
    pub id: Uuid,
    pub business_unit: Uuid,
    pub disabled: bool,
    pub application_id: Option<Uuid>,
    /// `isguest`: a guest from another tenant.
    pub guest: bool,
    /// `islicensed` (unset counts as licensed for members, unlicensed for guests).
    pub licensed: bool,
    pub role_count: usize,
    /// Every (privilege, depth) granted by each of the user's roles and their teams' roles; the
    /// domain takes the union.
    pub privileges: Vec<Privilege>,
    /// The teams the user is a member of.
    pub teams: Vec<Uuid>,
}

/// What to list: the scope comes from authorization, the rest from the request's query options.
pub struct RecordList<'a> {
    pub entity: &'a EntityDef,
    pub scope: &'a keyway_core::dataverse::authz::RowScope,
    pub filter: Option<&'a keyway_core::odata::Expr>,
    pub orderby: &'a [keyway_core::odata::OrderBy],
    pub limit: u64,
    /// Start after this sort key (the last row of the page before; see `sql::query::page_key`).
    pub after: Option<&'a [keyway_core::dataverse::record::FieldValue]>,
    pub count: bool,
}

/// `a or b or c …` as a balanced tree, so SQL nesting stays shallow (SQLite limits depth).
fn balanced_or(mut leaves: Vec<keyway_core::odata::Expr>) -> Option<keyway_core::odata::Expr> {
    while leaves.len() > 1 {
        let mut next = Vec::with_capacity(leaves.len().div_ceil(2));
        let mut it = leaves.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => keyway_core::odata::Expr::Or(Box::new(a), Box::new(b)),
                None => a,
            });
        }
        leaves = next;
    }
    leaves.pop()
}

const COLS: &str = "id, tenant_id, name, number, created_by, created_at";

fn env_from(r: &Row) -> Result<Environment, StoreError> {
    Ok(Environment {
        id: r.uuid(0)?,
        tenant_id: r.uuid(1)?,
        name: r.text(2)?,
        number: r.int(3)?,
        created_by: r.uuid(4)?,
        created_at: r.time(5)?,
    })
}

#[async_trait]
impl EnvironmentStore for SqlStore {
    async fn environment_create(
        &self,
        env: &Environment,
        tables: &[EntityDef],
        seed: &EnvironmentSeed,
    ) -> Result<Environment, StoreError> {
        let mut tx = self.db.begin().await?;
        // Numbers are never reused, so a deleted environment's tables cannot be mistaken for a
        // new one's. Two nodes racing here collide on the primary key: one of them retries.
        let next = tx
            .fetch(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM environment_numbers",
                vec![],
            )
            .await?
            .first()
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(1);
        tx.execute(
            "INSERT INTO environment_numbers (number) VALUES ($1)",
            vec![next.into()],
        )
        .await?;
        tx.execute(
            &format!("INSERT INTO environments ({COLS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            vec![
                env.id.into(),
                env.tenant_id.into(),
                env.name.clone().into(),
                next.into(),
                env.created_by.into(),
                env.created_at.into(),
            ],
        )
        .await?;
        crate::dataverse::provision(&mut *tx, self.db.dialect(), env.id, next, tables).await?;
        for row in &seed.rows {
            let entity = tables
                .iter()
                .find(|e| e.logical_name == row.entity)
                .ok_or_else(|| {
                    StoreError::Database(format!("seed row for unknown table {}", row.entity))
                })?;
            crate::records::insert(&mut *tx, next, entity, row).await?;
        }
        crate::security_writes::grant(&mut *tx, env.id, &seed.role_privileges).await?;
        for (user, role) in &seed.user_roles {
            crate::security_writes::hold(&mut *tx, env.id, *user, *role).await?;
        }
        tx.commit().await?;
        self.changed(Ok(()))?;
        Ok(Environment {
            number: next,
            ..env.clone()
        })
    }

    async fn environment_get(&self, id: Uuid) -> Result<Option<Environment>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM environments WHERE id = $1"),
                vec![id.into()],
            )
            .await?
            .first()
            .map(env_from)
            .transpose()
    }

    async fn environment_by_name(&self, name: &str) -> Result<Option<Environment>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM environments WHERE name = $1"),
                vec![name.into()],
            )
            .await?
            .first()
            .map(env_from)
            .transpose()
    }

    async fn environment_list(&self, tenant_id: Uuid) -> Result<Vec<Environment>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM environments WHERE tenant_id = $1 ORDER BY name"),
                vec![tenant_id.into()],
            )
            .await?
            .iter()
            .map(env_from)
            .collect()
    }

    async fn dataverse_user(
        &self,
        env: &Environment,
        key: SystemUserKey,
    ) -> Result<Option<SystemUserAccess>, StoreError> {
        let (column, id) = match key {
            SystemUserKey::ApplicationId(id) => ("applicationid", id),
            SystemUserKey::ObjectId(id) => ("azureactivedirectoryobjectid", id),
            SystemUserKey::Id(id) => ("systemuserid", id),
        };
        let table = ident(&format!("dv{}_systemuser", env.number));
        let rows = self
            .db
            .fetch(
                &format!("SELECT systemuserid, businessunitid, isdisabled, applicationid, isguest, islicensed FROM {table} WHERE {} = $1", ident(column)),
                vec![id.into()],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let user = r.uuid(0)?;
        let privileges = self
            .db
            .fetch(
                "SELECT p.privilege, p.depth FROM dv_user_roles u JOIN dv_role_privileges p ON p.environment_id = u.environment_id AND p.role_id = u.role_id WHERE u.environment_id = $1 AND u.systemuser_id = $2 \
                 UNION ALL SELECT p.privilege, p.depth FROM dv_team_members m JOIN dv_team_roles t ON t.environment_id = m.environment_id AND t.team_id = m.team_id JOIN dv_role_privileges p ON p.environment_id = t.environment_id AND p.role_id = t.role_id WHERE m.environment_id = $1 AND m.systemuser_id = $2",
                vec![env.id.into(), user.into()],
            )
            .await?
            .iter()
            .map(|p| {
                let depth = p.text(1)?;
                Ok(Privilege {
                    name: p.text(0)?,
                    depth: Depth::parse(&depth).ok_or_else(|| StoreError::Database(format!("unknown depth {depth}")))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let role_count = self
            .db
            .fetch(
                "SELECT (SELECT COUNT(*) FROM dv_user_roles WHERE environment_id = $1 AND systemuser_id = $2) + (SELECT COUNT(*) FROM dv_team_members m JOIN dv_team_roles t ON t.environment_id = m.environment_id AND t.team_id = m.team_id WHERE m.environment_id = $1 AND m.systemuser_id = $2)",
                vec![env.id.into(), user.into()],
            )
            .await?
            .first()
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0);
        let teams = self
            .db
            .fetch(
                "SELECT team_id FROM dv_team_members WHERE environment_id = $1 AND systemuser_id = $2 ORDER BY team_id",
                vec![env.id.into(), user.into()],
            )
            .await?
            .iter()
            .map(|t| t.uuid(0))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(SystemUserAccess {
            teams,
            id: user,
            role_count: usize::try_from(role_count).unwrap_or(0),
            business_unit: r.uuid(1)?,
            disabled: !r.is_null(2) && r.bool(2)?,
            application_id: r.opt_uuid(3)?,
            guest: !r.is_null(4) && r.bool(4)?,
            licensed: if r.is_null(5) {
                r.is_null(4) || !r.bool(4)?
            } else {
                r.bool(5)?
            },
            privileges,
        }))
    }

    async fn records_list(
        &self,
        env: &Environment,
        list: RecordList<'_>,
    ) -> Result<(Vec<Record>, Option<i64>), StoreError> {
        use crate::sql::query::{QueryError, RecordQuery, compile};
        let q = RecordQuery {
            entity: list.entity,
            env_number: env.number,
            scope: list.scope,
            filter: list.filter,
            orderby: list.orderby,
            limit: list.limit,
            after: list.after,
        };
        let ((select, args), (count_sql, count_args)) =
            compile(&q, self.db.dialect()).map_err(|e| match e {
                QueryError::Invalid(message) => StoreError::InvalidQuery {
                    message,
                    unsupported: false,
                },
                QueryError::Unsupported(message) => StoreError::InvalidQuery {
                    message,
                    unsupported: true,
                },
            })?;
        let rows = self.db.fetch(&select, args).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut record = Record::new(&list.entity.logical_name);
            for (i, a) in list.entity.attributes.iter().enumerate() {
                record.fields.insert(
                    a.logical_name.clone(),
                    crate::records::from_sql(a.kind.storage(), r, i)?,
                );
            }
            out.push(record);
        }
        let count = if list.count {
            self.db
                .fetch(&count_sql, count_args)
                .await?
                .first()
                .map(|r| r.int(0))
                .transpose()?
        } else {
            None
        };
        Ok((out, count))
    }

    async fn records_by_ids(
        &self,
        env: &Environment,
        entity: &EntityDef,
        ids: &[Uuid],
        scope: &keyway_core::dataverse::authz::RowScope,
    ) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let leaves: Vec<keyway_core::odata::Expr> = chunk
                .iter()
                .map(|id| keyway_core::odata::Expr::Compare {
                    left: keyway_core::odata::Operand::Property(vec![entity.primary_id.clone()]),
                    op: keyway_core::odata::CompareOp::Eq,
                    right: keyway_core::odata::Operand::Literal(keyway_core::odata::Literal::Guid(
                        *id,
                    )),
                })
                .collect();
            let in_list = balanced_or(leaves);
            let Some(filter) = in_list else { continue };
            let (rows, _) = self
                .records_list(
                    env,
                    RecordList {
                        entity,
                        scope,
                        filter: Some(&filter),
                        orderby: &[],
                        limit: chunk.len() as u64,
                        after: None,
                        count: false,
                    },
                )
                .await?;
            out.extend(rows);
        }
        Ok(out)
    }

    async fn business_units(
        &self,
        env: &Environment,
    ) -> Result<Vec<(Uuid, Option<Uuid>)>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT businessunitid, parentbusinessunitid FROM {}",
                    ident(&format!("dv{}_businessunit", env.number))
                ),
                vec![],
            )
            .await?
            .iter()
            .map(|r| Ok((r.uuid(0)?, r.opt_uuid(1)?)))
            .collect()
    }

    async fn record_get(
        &self,
        env: &Environment,
        entity: &EntityDef,
        id: Uuid,
    ) -> Result<Option<Record>, StoreError> {
        let cols: Vec<String> = entity
            .attributes
            .iter()
            .map(|a| ident(&a.logical_name))
            .collect();
        let rows = self
            .db
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

    async fn environment_tables(&self, env_id: Uuid) -> Result<Vec<EntityDef>, StoreError> {
        let entities = self
            .db
            .fetch(crate::dataverse::ENTITY_QUERY, vec![env_id.into()])
            .await?;
        let attributes = self
            .db
            .fetch(crate::dataverse::ATTRIBUTE_QUERY, vec![env_id.into()])
            .await?;
        crate::dataverse::load(entities, attributes)
    }

    async fn environment_delete(&self, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let Some(env) = self
            .environment_get(id)
            .await?
            .filter(|e| e.tenant_id == tenant_id)
        else {
            return Ok(false);
        };
        let tables = self.environment_tables(id).await?;
        let mut tx = self.db.begin().await?;
        crate::dataverse::drop_tables(&mut *tx, env.number, &tables).await?;
        let n = tx
            .execute(
                "DELETE FROM environments WHERE tenant_id = $1 AND id = $2",
                vec![tenant_id.into(), id.into()],
            )
            .await?;
        tx.commit().await?;
        self.changed(Ok(n > 0))
    }
}
