//! The directory's use cases in storage: tenants and their signing keys, applications and their
//! credentials, service principals, app role assignments, users and seen client assertions.

use async_trait::async_trait;
use keyway_core::directory::{
    AppRoleAssignment, Application, HomeAccount, KeyCredential, PasswordCredential,
    ServicePrincipal, Tenant, User, UserType,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::sql::{Row, Tx, Value};
use crate::{SqlStore, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    pub tenant_id: Uuid,
    pub alg: String,
    pub sealed_private_key: Vec<u8>,
    pub public_x: String,
    pub public_y: String,
    pub created_at: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
}

/// Everything the token endpoint needs to know about a client, read together.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub application: Application,
    pub service_principal: Option<ServicePrincipal>,
    pub passwords: Vec<PasswordCredential>,
    pub keys: Vec<KeyCredential>,
}

/// What happened when a client assertion's `jti` was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionUse {
    /// First time this client used this `jti`.
    New,
    /// The same assertion again (Microsoft's libraries reuse one for several scopes).
    Repeat,
    /// The `jti` was seen with other claims: a forgery or a broken client.
    Conflict,
}

/// A tenant as it is born: its first signing key, the Microsoft Graph service principal, an
/// administrator application with one secret and its service principal, and that principal's
/// administrator roles on Graph. Written in one transaction, so a tenant never half exists.
#[derive(Debug, Clone)]
pub struct TenantBirth {
    pub tenant: Tenant,
    pub signing_key: StoredSigningKey,
    pub graph: ServicePrincipal,
    pub admin_app: Application,
    pub admin_secret: PasswordCredential,
    pub admin_sp: ServicePrincipal,
    pub admin_roles: Vec<AppRoleAssignment>,
}

#[async_trait]
pub trait DirectoryStore: Send + Sync {
    // Server-wide secrets (sealed by the caller).
    /// Store `sealed` under `name` unless a value is there already; return what is stored.
    async fn server_secret_get_or_insert(
        &self,
        name: &str,
        sealed: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, StoreError>;

    // Tenants.
    async fn tenant_create(&self, birth: &TenantBirth) -> Result<(), StoreError>;
    async fn tenant_get(&self, id: Uuid) -> Result<Option<Tenant>, StoreError>;
    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>, StoreError>;
    async fn tenant_system(&self) -> Result<Option<Tenant>, StoreError>;
    async fn tenant_list(&self) -> Result<Vec<Tenant>, StoreError>;

    // Signing keys.
    async fn signing_keys(&self, tenant_id: Uuid) -> Result<Vec<StoredSigningKey>, StoreError>;
    /// Make `key` the active key and retire the others at `now`.
    async fn signing_key_rotate(
        &self,
        key: &StoredSigningKey,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Forget keys retired before `before` (no token they signed can still be valid).
    async fn signing_keys_purge(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    // Applications.
    async fn application_create(
        &self,
        app: &Application,
        keys: &[KeyCredential],
    ) -> Result<(), StoreError>;
    async fn application_get(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Application>, StoreError>;
    async fn application_by_app_id(&self, app_id: Uuid) -> Result<Option<Application>, StoreError>;
    async fn application_by_identifier_uri(
        &self,
        tenant_id: Uuid,
        uri: &str,
    ) -> Result<Option<Application>, StoreError>;
    async fn application_list(&self, tenant_id: Uuid) -> Result<Vec<Application>, StoreError>;
    /// Save changed fields and, when given, replace the certificate credentials.
    async fn application_update(
        &self,
        app: &Application,
        keys: Option<&[KeyCredential]>,
    ) -> Result<(), StoreError>;
    /// Delete an application, its credentials and its service principal in this tenant.
    async fn application_delete(&self, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError>;

    async fn password_add(&self, cred: &PasswordCredential) -> Result<(), StoreError>;
    async fn password_remove(&self, application_id: Uuid, key_id: Uuid)
    -> Result<bool, StoreError>;
    async fn passwords(&self, application_id: Uuid) -> Result<Vec<PasswordCredential>, StoreError>;
    async fn key_credentials(&self, application_id: Uuid)
    -> Result<Vec<KeyCredential>, StoreError>;
    /// The client, its principal in `tenant_id` and all its credentials.
    async fn client_record(
        &self,
        tenant_id: Uuid,
        app_id: Uuid,
    ) -> Result<Option<ClientRecord>, StoreError>;

    // Service principals.
    async fn service_principal_create(&self, sp: &ServicePrincipal) -> Result<(), StoreError>;
    async fn service_principal_get(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<ServicePrincipal>, StoreError>;
    async fn service_principal_by_app_id(
        &self,
        tenant_id: Uuid,
        app_id: Uuid,
    ) -> Result<Option<ServicePrincipal>, StoreError>;
    async fn service_principal_list(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<ServicePrincipal>, StoreError>;
    async fn service_principal_set_enabled(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        enabled: bool,
    ) -> Result<bool, StoreError>;
    async fn service_principal_delete(&self, tenant_id: Uuid, id: Uuid)
    -> Result<bool, StoreError>;

    // App role assignments.
    async fn app_role_assign(&self, a: &AppRoleAssignment) -> Result<(), StoreError>;
    async fn app_role_assignments(
        &self,
        tenant_id: Uuid,
        principal_id: Uuid,
    ) -> Result<Vec<AppRoleAssignment>, StoreError>;
    async fn app_role_unassign(
        &self,
        tenant_id: Uuid,
        principal_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError>;

    // Users.
    async fn user_create(&self, user: &User) -> Result<(), StoreError>;
    async fn user_get(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<User>, StoreError>;
    async fn user_by_upn(&self, upn: &str) -> Result<Option<User>, StoreError>;
    /// The guest in `tenant_id` that stands for the home account `home_user_id`.
    async fn user_guest_of(
        &self,
        tenant_id: Uuid,
        home_user_id: Uuid,
    ) -> Result<Option<User>, StoreError>;
    async fn user_list(&self, tenant_id: Uuid) -> Result<Vec<User>, StoreError>;
    async fn user_update(&self, user: &User) -> Result<bool, StoreError>;
    async fn user_delete(&self, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError>;

    // Client assertions.
    async fn assertion_record(
        &self,
        client_id: Uuid,
        jti: &str,
        claims_hash: &[u8],
        expires_at: OffsetDateTime,
    ) -> Result<AssertionUse, StoreError>;
    async fn assertions_purge(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

const TENANT_COLS: &str = "t.id, t.display_name, t.is_system, t.created_at";
const APP_COLS: &str = "id, tenant_id, app_id, display_name, sign_in_audience, identifier_uris, is_fallback_public_client, created_at";
const PASSWORD_COLS: &str =
    "key_id, application_id, display_name, hint, secret_hash, start_at, end_at";
const KEY_COLS: &str = "key_id, application_id, display_name, thumbprint_sha1, thumbprint_sha256, der, start_at, end_at";
const SP_COLS: &str =
    "id, tenant_id, app_id, display_name, account_enabled, app_owner_organization_id, created_at";
const ROLE_COLS: &str = "id, tenant_id, principal_id, resource_id, app_role_id, created_at";
const USER_COLS: &str = "id, tenant_id, user_principal_name, display_name, mail_nickname, account_enabled, password_hash, created_at, user_type, mail, home_tenant_id, home_user_id";
const KEY_ROW_COLS: &str =
    "kid, tenant_id, alg, sealed_private_key, public_x, public_y, created_at, retired_at";

fn app_from(r: &Row) -> Result<Application, StoreError> {
    let uris: Vec<String> = serde_json::from_str(&r.text(5)?)
        .map_err(|e| StoreError::Database(format!("identifier_uris: {e}")))?;
    Ok(Application {
        id: r.uuid(0)?,
        tenant_id: r.uuid(1)?,
        app_id: r.uuid(2)?,
        display_name: r.text(3)?,
        sign_in_audience: r.text(4)?,
        identifier_uris: uris,
        is_fallback_public_client: r.bool(6)?,
        created_at: r.time(7)?,
    })
}

fn password_from(r: &Row) -> Result<PasswordCredential, StoreError> {
    Ok(PasswordCredential {
        key_id: r.uuid(0)?,
        application_id: r.uuid(1)?,
        display_name: r.opt_text(2)?,
        hint: r.text(3)?,
        secret_hash: r.blob(4)?,
        start: r.time(5)?,
        end: r.time(6)?,
    })
}

fn key_from(r: &Row) -> Result<KeyCredential, StoreError> {
    Ok(KeyCredential {
        key_id: r.uuid(0)?,
        application_id: r.uuid(1)?,
        display_name: r.opt_text(2)?,
        thumbprint_sha1: r.text(3)?,
        thumbprint_sha256: r.text(4)?,
        der: r.blob(5)?,
        start: r.time(6)?,
        end: r.time(7)?,
    })
}

fn sp_from(r: &Row) -> Result<ServicePrincipal, StoreError> {
    Ok(ServicePrincipal {
        id: r.uuid(0)?,
        tenant_id: r.uuid(1)?,
        app_id: r.uuid(2)?,
        display_name: r.text(3)?,
        account_enabled: r.bool(4)?,
        app_owner_organization_id: r.opt_uuid(5)?,
        created_at: r.time(6)?,
    })
}

fn role_from(r: &Row) -> Result<AppRoleAssignment, StoreError> {
    Ok(AppRoleAssignment {
        id: r.uuid(0)?,
        tenant_id: r.uuid(1)?,
        principal_id: r.uuid(2)?,
        resource_id: r.uuid(3)?,
        app_role_id: r.uuid(4)?,
        created_at: r.time(5)?,
    })
}

fn user_from(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: r.uuid(0)?,
        tenant_id: r.uuid(1)?,
        user_principal_name: r.text(2)?,
        display_name: r.text(3)?,
        mail_nickname: r.text(4)?,
        account_enabled: r.bool(5)?,
        password_hash: r.text(6)?,
        created_at: r.time(7)?,
        user_type: {
            let t = r.text(8)?;
            UserType::parse(&t)
                .ok_or_else(|| StoreError::Database(format!("unknown user type {t}")))?
        },
        mail: r.opt_text(9)?,
        home: match (r.opt_uuid(10)?, r.opt_uuid(11)?) {
            (Some(tenant_id), Some(user_id)) => Some(HomeAccount { tenant_id, user_id }),
            _ => None,
        },
    })
}

fn signing_key_from(r: &Row) -> Result<StoredSigningKey, StoreError> {
    Ok(StoredSigningKey {
        kid: r.text(0)?,
        tenant_id: r.uuid(1)?,
        alg: r.text(2)?,
        sealed_private_key: r.blob(3)?,
        public_x: r.text(4)?,
        public_y: r.text(5)?,
        created_at: r.time(6)?,
        retired_at: r.opt_time(7)?,
    })
}

fn uris_json(app: &Application) -> String {
    serde_json::Value::from(app.identifier_uris.clone()).to_string()
}

async fn insert_app(tx: &mut dyn Tx, app: &Application) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO applications (id, tenant_id, app_id, display_name, sign_in_audience, identifier_uris, is_fallback_public_client, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            app.id.into(),
            app.tenant_id.into(),
            app.app_id.into(),
            app.display_name.clone().into(),
            app.sign_in_audience.clone().into(),
            uris_json(app).into(),
            app.is_fallback_public_client.into(),
            app.created_at.into(),
        ],
    )
    .await?;
    insert_uris(tx, app).await
}

async fn insert_uris(tx: &mut dyn Tx, app: &Application) -> Result<(), StoreError> {
    for uri in &app.identifier_uris {
        tx.execute(
            "INSERT INTO application_identifier_uris (tenant_id, uri, application_id) VALUES ($1, $2, $3)",
            vec![app.tenant_id.into(), uri.to_ascii_lowercase().into(), app.id.into()],
        )
        .await?;
    }
    Ok(())
}

async fn insert_keys(tx: &mut dyn Tx, keys: &[KeyCredential]) -> Result<(), StoreError> {
    for k in keys {
        tx.execute(
            "INSERT INTO key_credentials (key_id, application_id, display_name, thumbprint_sha1, thumbprint_sha256, der, start_at, end_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                k.key_id.into(),
                k.application_id.into(),
                k.display_name.clone().into(),
                k.thumbprint_sha1.clone().into(),
                k.thumbprint_sha256.clone().into(),
                k.der.clone().into(),
                k.start.into(),
                k.end.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

async fn insert_password(tx: &mut dyn Tx, c: &PasswordCredential) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO password_credentials (key_id, application_id, display_name, hint, secret_hash, start_at, end_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            c.key_id.into(),
            c.application_id.into(),
            c.display_name.clone().into(),
            c.hint.clone().into(),
            c.secret_hash.clone().into(),
            c.start.into(),
            c.end.into(),
        ],
    )
    .await
    .map(|_| ())
}

async fn insert_sp(tx: &mut dyn Tx, sp: &ServicePrincipal) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO service_principals (id, tenant_id, app_id, display_name, account_enabled, app_owner_organization_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            sp.id.into(),
            sp.tenant_id.into(),
            sp.app_id.into(),
            sp.display_name.clone().into(),
            sp.account_enabled.into(),
            sp.app_owner_organization_id.into(),
            sp.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

async fn insert_role(tx: &mut dyn Tx, a: &AppRoleAssignment) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO app_role_assignments (id, tenant_id, principal_id, resource_id, app_role_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            a.id.into(),
            a.tenant_id.into(),
            a.principal_id.into(),
            a.resource_id.into(),
            a.app_role_id.into(),
            a.created_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

async fn insert_signing_key(tx: &mut dyn Tx, k: &StoredSigningKey) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO signing_keys (kid, tenant_id, alg, sealed_private_key, public_x, public_y, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            k.kid.clone().into(),
            k.tenant_id.into(),
            k.alg.clone().into(),
            k.sealed_private_key.clone().into(),
            k.public_x.clone().into(),
            k.public_y.clone().into(),
            k.created_at.into(),
            k.retired_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

impl SqlStore {
    async fn tenant_with_domains(&self, r: &Row) -> Result<Tenant, StoreError> {
        let id = r.uuid(0)?;
        let domains = self
            .db
            .fetch(
                "SELECT domain FROM tenant_domains WHERE tenant_id = $1 ORDER BY position",
                vec![id.into()],
            )
            .await?
            .iter()
            .map(|d| d.text(0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tenant {
            id,
            display_name: r.text(1)?,
            is_system: r.bool(2)?,
            created_at: r.time(3)?,
            domains,
        })
    }

    async fn one_tenant(&self, sql: &str, args: Vec<Value>) -> Result<Option<Tenant>, StoreError> {
        match self.db.fetch(sql, args).await?.first() {
            Some(r) => Ok(Some(self.tenant_with_domains(r).await?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn server_secret_get_or_insert(
        &self,
        name: &str,
        sealed: Vec<u8>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, StoreError> {
        // Two nodes starting together may both try: the first insert wins, both read it back.
        self.db
            .execute(
                "INSERT INTO server_secrets (name, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                vec![name.into(), sealed.into(), now.into()],
            )
            .await?;
        let rows = self
            .db
            .fetch(
                "SELECT sealed FROM server_secrets WHERE name = $1",
                vec![name.into()],
            )
            .await?;
        rows.first()
            .ok_or_else(|| StoreError::Database("server secret vanished".into()))?
            .blob(0)
    }

    async fn tenant_create(&self, b: &TenantBirth) -> Result<(), StoreError> {
        self.changed(async {
            let mut tx = self.db.begin().await?;
            tx.execute(
                "INSERT INTO tenants (id, display_name, is_system, created_at) VALUES ($1, $2, $3, $4)",
                vec![
                    b.tenant.id.into(),
                    b.tenant.display_name.clone().into(),
                    b.tenant.is_system.into(),
                    b.tenant.created_at.into(),
                ],
            )
            .await?;
            for (i, d) in b.tenant.domains.iter().enumerate() {
                tx.execute(
                    "INSERT INTO tenant_domains (domain, tenant_id, position) VALUES ($1, $2, $3)",
                    vec![d.clone().into(), b.tenant.id.into(), (i as i64).into()],
                )
                .await?;
            }
            insert_signing_key(&mut *tx, &b.signing_key).await?;
            insert_sp(&mut *tx, &b.graph).await?;
            insert_app(&mut *tx, &b.admin_app).await?;
            insert_password(&mut *tx, &b.admin_secret).await?;
            insert_sp(&mut *tx, &b.admin_sp).await?;
            for a in &b.admin_roles {
                insert_role(&mut *tx, a).await?;
            }
            tx.commit().await
        }
        .await)
    }

    async fn tenant_get(&self, id: Uuid) -> Result<Option<Tenant>, StoreError> {
        self.one_tenant(
            &format!("SELECT {TENANT_COLS} FROM tenants t WHERE t.id = $1"),
            vec![id.into()],
        )
        .await
    }

    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>, StoreError> {
        self.one_tenant(
            &format!("SELECT {TENANT_COLS} FROM tenants t JOIN tenant_domains d ON d.tenant_id = t.id WHERE d.domain = $1"),
            vec![domain.to_ascii_lowercase().into()],
        )
        .await
    }

    async fn tenant_system(&self) -> Result<Option<Tenant>, StoreError> {
        self.one_tenant(
            &format!("SELECT {TENANT_COLS} FROM tenants t WHERE t.is_system = $1"),
            vec![true.into()],
        )
        .await
    }

    async fn tenant_list(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = self
            .db
            .fetch(
                &format!("SELECT {TENANT_COLS} FROM tenants t ORDER BY t.created_at, t.id"),
                vec![],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.tenant_with_domains(r).await?);
        }
        Ok(out)
    }

    async fn signing_keys(&self, tenant_id: Uuid) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {KEY_ROW_COLS} FROM signing_keys WHERE tenant_id = $1 ORDER BY CASE WHEN retired_at IS NULL THEN 0 ELSE 1 END, created_at DESC, kid"),
                vec![tenant_id.into()],
            )
            .await?
            .iter()
            .map(signing_key_from)
            .collect()
    }

    async fn signing_key_rotate(
        &self,
        key: &StoredSigningKey,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "UPDATE signing_keys SET retired_at = $1 WHERE tenant_id = $2 AND retired_at IS NULL",
            vec![now.into(), key.tenant_id.into()],
        )
        .await?;
        insert_signing_key(&mut *tx, key).await?;
        tx.commit().await
    }

    async fn signing_keys_purge(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.db
            .execute(
                "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
                vec![before.into()],
            )
            .await
    }

    async fn application_create(
        &self,
        app: &Application,
        keys: &[KeyCredential],
    ) -> Result<(), StoreError> {
        self.changed(
            async {
                let mut tx = self.db.begin().await?;
                insert_app(&mut *tx, app).await?;
                insert_keys(&mut *tx, keys).await?;
                tx.commit().await
            }
            .await,
        )
    }

    async fn application_get(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Application>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {APP_COLS} FROM applications WHERE tenant_id = $1 AND id = $2"),
                vec![tenant_id.into(), id.into()],
            )
            .await?
            .first()
            .map(app_from)
            .transpose()
    }

    async fn application_by_app_id(&self, app_id: Uuid) -> Result<Option<Application>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {APP_COLS} FROM applications WHERE app_id = $1"),
                vec![app_id.into()],
            )
            .await?
            .first()
            .map(app_from)
            .transpose()
    }

    async fn application_by_identifier_uri(
        &self,
        tenant_id: Uuid,
        uri: &str,
    ) -> Result<Option<Application>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {APP_COLS} FROM applications WHERE id = (SELECT application_id FROM application_identifier_uris WHERE tenant_id = $1 AND uri = $2)"),
                vec![tenant_id.into(), uri.to_ascii_lowercase().into()],
            )
            .await?
            .first()
            .map(app_from)
            .transpose()
    }

    async fn application_list(&self, tenant_id: Uuid) -> Result<Vec<Application>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {APP_COLS} FROM applications WHERE tenant_id = $1 ORDER BY created_at, id"),
                vec![tenant_id.into()],
            )
            .await?
            .iter()
            .map(app_from)
            .collect()
    }

    async fn application_update(
        &self,
        app: &Application,
        keys: Option<&[KeyCredential]>,
    ) -> Result<(), StoreError> {
        self.changed(async {
            let mut tx = self.db.begin().await?;
            tx.execute(
                "UPDATE applications SET display_name = $1, sign_in_audience = $2, identifier_uris = $3, is_fallback_public_client = $4 WHERE id = $5 AND tenant_id = $6",
                vec![
                    app.display_name.clone().into(),
                    app.sign_in_audience.clone().into(),
                    uris_json(app).into(),
                    app.is_fallback_public_client.into(),
                    app.id.into(),
                    app.tenant_id.into(),
                ],
            )
            .await?;
            tx.execute(
                "DELETE FROM application_identifier_uris WHERE application_id = $1",
                vec![app.id.into()],
            )
            .await?;
            insert_uris(&mut *tx, app).await?;
            if let Some(keys) = keys {
                tx.execute(
                    "DELETE FROM key_credentials WHERE application_id = $1",
                    vec![app.id.into()],
                )
                .await?;
                insert_keys(&mut *tx, keys).await?;
            }
            tx.commit().await
        }
        .await)
    }

    async fn application_delete(&self, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.changed(
            async {
                let mut tx = self.db.begin().await?;
                let rows = tx
                    .fetch(
                        "SELECT app_id FROM applications WHERE tenant_id = $1 AND id = $2",
                        vec![tenant_id.into(), id.into()],
                    )
                    .await?;
                let Some(row) = rows.first() else {
                    return Ok(false);
                };
                let app_id = row.uuid(0)?;
                tx.execute(
                    "DELETE FROM service_principals WHERE tenant_id = $1 AND app_id = $2",
                    vec![tenant_id.into(), app_id.into()],
                )
                .await?;
                tx.execute(
                    "DELETE FROM applications WHERE tenant_id = $1 AND id = $2",
                    vec![tenant_id.into(), id.into()],
                )
                .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await,
        )
    }

    async fn password_add(&self, cred: &PasswordCredential) -> Result<(), StoreError> {
        self.changed(
            async {
                let mut tx = self.db.begin().await?;
                insert_password(&mut *tx, cred).await?;
                tx.commit().await
            }
            .await,
        )
    }

    async fn password_remove(
        &self,
        application_id: Uuid,
        key_id: Uuid,
    ) -> Result<bool, StoreError> {
        self.changed(
            async {
                self.db
                .execute(
                    "DELETE FROM password_credentials WHERE application_id = $1 AND key_id = $2",
                    vec![application_id.into(), key_id.into()],
                )
                .await
                .map(|n| n > 0)
            }
            .await,
        )
    }

    async fn passwords(&self, application_id: Uuid) -> Result<Vec<PasswordCredential>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {PASSWORD_COLS} FROM password_credentials WHERE application_id = $1 ORDER BY start_at, key_id"),
                vec![application_id.into()],
            )
            .await?
            .iter()
            .map(password_from)
            .collect()
    }

    async fn key_credentials(
        &self,
        application_id: Uuid,
    ) -> Result<Vec<KeyCredential>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {KEY_COLS} FROM key_credentials WHERE application_id = $1 ORDER BY start_at, key_id"),
                vec![application_id.into()],
            )
            .await?
            .iter()
            .map(key_from)
            .collect()
    }

    async fn client_record(
        &self,
        tenant_id: Uuid,
        app_id: Uuid,
    ) -> Result<Option<ClientRecord>, StoreError> {
        let Some(application) = self.application_by_app_id(app_id).await? else {
            return Ok(None);
        };
        let service_principal = self.service_principal_by_app_id(tenant_id, app_id).await?;
        let passwords = self.passwords(application.id).await?;
        let keys = self.key_credentials(application.id).await?;
        Ok(Some(ClientRecord {
            application,
            service_principal,
            passwords,
            keys,
        }))
    }

    async fn service_principal_create(&self, sp: &ServicePrincipal) -> Result<(), StoreError> {
        self.changed(
            async {
                let mut tx = self.db.begin().await?;
                insert_sp(&mut *tx, sp).await?;
                tx.commit().await
            }
            .await,
        )
    }

    async fn service_principal_get(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<ServicePrincipal>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT {SP_COLS} FROM service_principals WHERE tenant_id = $1 AND id = $2"
                ),
                vec![tenant_id.into(), id.into()],
            )
            .await?
            .first()
            .map(sp_from)
            .transpose()
    }

    async fn service_principal_by_app_id(
        &self,
        tenant_id: Uuid,
        app_id: Uuid,
    ) -> Result<Option<ServicePrincipal>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT {SP_COLS} FROM service_principals WHERE tenant_id = $1 AND app_id = $2"
                ),
                vec![tenant_id.into(), app_id.into()],
            )
            .await?
            .first()
            .map(sp_from)
            .transpose()
    }

    async fn service_principal_list(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<ServicePrincipal>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {SP_COLS} FROM service_principals WHERE tenant_id = $1 ORDER BY created_at, id"),
                vec![tenant_id.into()],
            )
            .await?
            .iter()
            .map(sp_from)
            .collect()
    }

    async fn service_principal_set_enabled(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        self.changed(async {
            self.db
                .execute(
                    "UPDATE service_principals SET account_enabled = $1 WHERE tenant_id = $2 AND id = $3",
                    vec![enabled.into(), tenant_id.into(), id.into()],
                )
                .await
                .map(|n| n > 0)
        }
        .await)
    }

    async fn service_principal_delete(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        self.changed(
            async {
                self.db
                    .execute(
                        "DELETE FROM service_principals WHERE tenant_id = $1 AND id = $2",
                        vec![tenant_id.into(), id.into()],
                    )
                    .await
                    .map(|n| n > 0)
            }
            .await,
        )
    }

    async fn app_role_assign(&self, a: &AppRoleAssignment) -> Result<(), StoreError> {
        self.changed(
            async {
                let mut tx = self.db.begin().await?;
                insert_role(&mut *tx, a).await?;
                tx.commit().await
            }
            .await,
        )
    }

    async fn app_role_assignments(
        &self,
        tenant_id: Uuid,
        principal_id: Uuid,
    ) -> Result<Vec<AppRoleAssignment>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {ROLE_COLS} FROM app_role_assignments WHERE tenant_id = $1 AND principal_id = $2 ORDER BY created_at, id"),
                vec![tenant_id.into(), principal_id.into()],
            )
            .await?
            .iter()
            .map(role_from)
            .collect()
    }

    async fn app_role_unassign(
        &self,
        tenant_id: Uuid,
        principal_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        self.changed(async {
            self.db
                .execute(
                    "DELETE FROM app_role_assignments WHERE tenant_id = $1 AND principal_id = $2 AND id = $3",
                    vec![tenant_id.into(), principal_id.into(), id.into()],
                )
                .await
                .map(|n| n > 0)
        }
        .await)
    }

    async fn user_create(&self, u: &User) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO users (id, tenant_id, user_principal_name, display_name, mail_nickname, account_enabled, password_hash, created_at, user_type, mail, home_tenant_id, home_user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                vec![
                    u.id.into(),
                    u.tenant_id.into(),
                    u.user_principal_name.clone().into(),
                    u.display_name.clone().into(),
                    u.mail_nickname.clone().into(),
                    u.account_enabled.into(),
                    u.password_hash.clone().into(),
                    u.created_at.into(),
                    u.user_type.as_str().into(),
                    u.mail.clone().into(),
                    u.home.map(|h| h.tenant_id).into(),
                    u.home.map(|h| h.user_id).into(),
                ],
            )
            .await
            .map(|_| ())
    }

    async fn user_get(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<User>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND id = $2"),
                vec![tenant_id.into(), id.into()],
            )
            .await?
            .first()
            .map(user_from)
            .transpose()
    }

    async fn user_by_upn(&self, upn: &str) -> Result<Option<User>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {USER_COLS} FROM users WHERE user_principal_name = $1"),
                vec![keyway_core::directory::normalize_upn(upn).into()],
            )
            .await?
            .first()
            .map(user_from)
            .transpose()
    }

    async fn user_guest_of(
        &self,
        tenant_id: Uuid,
        home_user_id: Uuid,
    ) -> Result<Option<User>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND home_user_id = $2"
                ),
                vec![tenant_id.into(), home_user_id.into()],
            )
            .await?
            .first()
            .map(user_from)
            .transpose()
    }

    async fn user_list(&self, tenant_id: Uuid) -> Result<Vec<User>, StoreError> {
        self.db
            .fetch(
                &format!(
                    "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 ORDER BY created_at, id"
                ),
                vec![tenant_id.into()],
            )
            .await?
            .iter()
            .map(user_from)
            .collect()
    }

    async fn user_update(&self, u: &User) -> Result<bool, StoreError> {
        self.db
            .execute(
                "UPDATE users SET display_name = $1, mail_nickname = $2, account_enabled = $3, password_hash = $4 WHERE tenant_id = $5 AND id = $6",
                vec![
                    u.display_name.clone().into(),
                    u.mail_nickname.clone().into(),
                    u.account_enabled.into(),
                    u.password_hash.clone().into(),
                    u.tenant_id.into(),
                    u.id.into(),
                ],
            )
            .await
            .map(|n| n > 0)
    }

    async fn user_delete(&self, tenant_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.db
            .execute(
                "DELETE FROM users WHERE tenant_id = $1 AND id = $2",
                vec![tenant_id.into(), id.into()],
            )
            .await
            .map(|n| n > 0)
    }

    async fn assertion_record(
        &self,
        client_id: Uuid,
        jti: &str,
        claims_hash: &[u8],
        expires_at: OffsetDateTime,
    ) -> Result<AssertionUse, StoreError> {
        let inserted = self
            .db
            .execute(
                "INSERT INTO client_assertions (client_id, jti, claims_hash, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (client_id, jti) DO NOTHING",
                vec![client_id.into(), jti.into(), claims_hash.into(), expires_at.into()],
            )
            .await?;
        if inserted > 0 {
            return Ok(AssertionUse::New);
        }
        let rows = self
            .db
            .fetch(
                "SELECT claims_hash FROM client_assertions WHERE client_id = $1 AND jti = $2",
                vec![client_id.into(), jti.into()],
            )
            .await?;
        match rows.first() {
            Some(r) if r.blob(0)? == claims_hash => Ok(AssertionUse::Repeat),
            Some(_) => Ok(AssertionUse::Conflict),
            // Purged between the two statements: it had expired, so this use is a new one.
            None => Ok(AssertionUse::New),
        }
    }

    async fn assertions_purge(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.db
            .execute(
                "DELETE FROM client_assertions WHERE expires_at < $1",
                vec![now.into()],
            )
            .await
    }
}
