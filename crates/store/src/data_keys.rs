//! Data keys for envelope encryption, and every value sealed directly under the master key ring
//! (wrapped data keys, signing keys, server secrets), read and replaced for a master key
//! rotation. The store never sees a key in the clear: callers seal and open.

use time::OffsetDateTime;

use crate::sql::{Row, Value};
use crate::{SqlStore, StoreError};

/// A data key as stored: its bytes wrapped by a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDataKey {
    pub id: String,
    /// The newest generation seals new secrets.
    pub generation: i64,
    pub wrapped: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// The tables whose values are sealed directly under the master key ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterSealed {
    DataKeys,
    SigningKeys,
    ServerSecrets,
}

impl MasterSealed {
    pub const ALL: [MasterSealed; 3] = [Self::DataKeys, Self::SigningKeys, Self::ServerSecrets];

    /// (table, row key column, sealed column)
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::DataKeys => ("data_keys", "id", "wrapped"),
            Self::SigningKeys => ("signing_keys", "kid", "sealed_private_key"),
            Self::ServerSecrets => ("server_secrets", "name", "sealed"),
        }
    }
}

/// One sealed value to replace: its row key, the bytes read, and the bytes to write.
#[derive(Debug, Clone)]
pub struct Reseal {
    pub key: String,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// The longest header a sealed value can have: magic, id length, and a 64-byte id.
const HEADER_MAX: i64 = 68;

#[async_trait::async_trait]
pub trait DataKeyStore: Send + Sync {
    /// Store `key` as the first data key unless one exists already, and return every data key,
    /// newest generation first. Nodes starting together all end up with the same first key.
    async fn data_key_first(&self, key: &StoredDataKey) -> Result<Vec<StoredDataKey>, StoreError>;
    /// Every data key, newest generation first.
    async fn data_keys(&self) -> Result<Vec<StoredDataKey>, StoreError>;
    /// Every value of one table sealed under the master ring: (row key, sealed bytes).
    async fn master_sealed(
        &self,
        table: MasterSealed,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Replace sealed values of one table in one transaction. A row changed since it was read
    /// is left alone; the count of rows replaced is returned.
    async fn master_sealed_replace(
        &self,
        table: MasterSealed,
        changes: &[Reseal],
    ) -> Result<u64, StoreError>;
    /// The header (magic, key id) of every value sealed under a data key, for counting.
    async fn vault_sealed_headers(&self) -> Result<Vec<Vec<u8>>, StoreError>;
}

const COLS: &str = "id, generation, wrapped, created_at";

fn data_key_from(r: &Row) -> Result<StoredDataKey, StoreError> {
    Ok(StoredDataKey {
        id: r.text(0)?,
        generation: r.int(1)?,
        wrapped: r.blob(2)?,
        created_at: r.time(3)?,
    })
}

#[async_trait::async_trait]
impl DataKeyStore for SqlStore {
    async fn data_key_first(&self, key: &StoredDataKey) -> Result<Vec<StoredDataKey>, StoreError> {
        // Generation 1 is unique: a node that loses the race inserts nothing and reads the
        // winner's key.
        self.db
            .execute(
                "INSERT INTO data_keys (id, generation, wrapped, created_at) VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING",
                vec![
                    key.id.clone().into(),
                    key.wrapped.clone().into(),
                    key.created_at.into(),
                ],
            )
            .await?;
        self.data_keys().await
    }

    async fn data_keys(&self) -> Result<Vec<StoredDataKey>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM data_keys ORDER BY generation DESC"),
                vec![],
            )
            .await?
            .iter()
            .map(data_key_from)
            .collect()
    }

    async fn master_sealed(
        &self,
        table: MasterSealed,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (t, k, s) = table.columns();
        self.db
            .fetch(&format!("SELECT {k}, {s} FROM {t} ORDER BY {k}"), vec![])
            .await?
            .iter()
            .map(|r| Ok((r.text(0)?, r.blob(1)?)))
            .collect()
    }

    async fn master_sealed_replace(
        &self,
        table: MasterSealed,
        changes: &[Reseal],
    ) -> Result<u64, StoreError> {
        let (t, k, s) = table.columns();
        let sql = format!("UPDATE {t} SET {s} = $1 WHERE {k} = $2 AND {s} = $3");
        let mut tx = self.db.begin().await?;
        let mut n = 0;
        for c in changes {
            n += tx
                .execute(
                    &sql,
                    vec![
                        c.new.clone().into(),
                        c.key.clone().into(),
                        Value::from(c.old.clone()),
                    ],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn vault_sealed_headers(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        // Every table sealed through the vault is listed here.
        self.db
            .fetch(
                &format!("SELECT substr(sealed, 1, {HEADER_MAX}) FROM connection_secrets"),
                vec![],
            )
            .await?
            .iter()
            .map(|r| r.blob(0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DirectoryStore;

    async fn store() -> (tempfile::TempDir, std::sync::Arc<SqlStore>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let s = crate::open(&url).await.unwrap();
        (dir, s)
    }

    fn key(id: &str, wrapped: &[u8]) -> StoredDataKey {
        StoredDataKey {
            id: id.into(),
            generation: 1,
            wrapped: wrapped.to_vec(),
            created_at: keyway_core::clock::from_micros(1_000_000),
        }
    }

    #[tokio::test]
    async fn the_first_data_key_wins_and_reseals_are_compare_and_set() {
        let (_d, s) = store().await;
        let first = s.data_key_first(&key("dk-a", b"wa")).await.unwrap();
        assert_eq!(first, vec![key("dk-a", b"wa")]);
        let again = s.data_key_first(&key("dk-b", b"wb")).await.unwrap();
        assert_eq!(again, vec![key("dk-a", b"wa")]);

        let n = s
            .master_sealed_replace(
                MasterSealed::DataKeys,
                &[
                    Reseal {
                        key: "dk-a".into(),
                        old: b"stale".to_vec(),
                        new: b"x".to_vec(),
                    },
                    Reseal {
                        key: "dk-a".into(),
                        old: b"wa".to_vec(),
                        new: b"wa2".to_vec(),
                    },
                ],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            s.master_sealed(MasterSealed::DataKeys).await.unwrap(),
            vec![("dk-a".to_string(), b"wa2".to_vec())]
        );

        let now = keyway_core::clock::from_micros(2_000_000);
        s.server_secret_get_or_insert("p", b"KW1\x02mkpepper".to_vec(), now)
            .await
            .unwrap();
        assert_eq!(
            s.master_sealed(MasterSealed::ServerSecrets).await.unwrap(),
            vec![("p".to_string(), b"KW1\x02mkpepper".to_vec())]
        );
        assert!(s.vault_sealed_headers().await.unwrap().is_empty());
    }
}
