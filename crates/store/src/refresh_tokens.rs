//! Refresh tokens of people's sign-ins, kept only as keyed hashes. A family is one sign-in and
//! every token rotated from it; rotation and reuse detection are one transaction each, with a
//! compare-and-set on the old token's state, so two refreshes with one token never both succeed.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::sql::Row;
use crate::{SqlStore, StoreError};

/// Where a refresh token is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshState {
    /// The newest of its family: it may be redeemed once.
    Active,
    /// Redeemed: a newer token replaced it.
    Rotated,
    Revoked,
}

impl RefreshState {
    fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Rotated => "rotated",
            Self::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(Self::Active),
            "rotated" => Ok(Self::Rotated),
            "revoked" => Ok(Self::Revoked),
            other => Err(StoreError::Database(format!(
                "unknown refresh token state {other}"
            ))),
        }
    }
}

/// A refresh token as stored (its text never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefreshToken {
    pub id: Uuid,
    /// The sign-in it descends from.
    pub family_id: Uuid,
    pub tenant_id: Uuid,
    /// The user object in the tenant (a member, or a guest).
    pub user_id: Uuid,
    /// The account whose password signed in (a guest's home account; else `user_id`).
    pub account_id: Uuid,
    /// The client application it was issued to.
    pub client_id: Uuid,
    /// When the user signed in with their password (the family's start).
    pub auth_time: OffsetDateTime,
    pub issued_at: OffsetDateTime,
    /// Its inactivity deadline, capped by the family's maximum age.
    pub expires_at: OffsetDateTime,
    pub state: RefreshState,
    /// When it was rotated out or revoked.
    pub changed_at: Option<OffsetDateTime>,
    /// Why it was revoked (`reuse`, `signout`, `disabled`, `password`).
    pub revoked_reason: Option<String>,
}

/// What redeeming a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token is rotated out and its successor stored.
    Rotated,
    /// It had been rotated out at `rotated_at`; `family_revoked` when this reuse came later than
    /// the leeway and so revoked every token of its sign-in.
    Reused {
        rotated_at: OffsetDateTime,
        family_revoked: bool,
    },
    Revoked {
        at: Option<OffsetDateTime>,
        reason: Option<String>,
    },
    /// Past its deadline.
    Expired,
    /// No such token.
    Unknown,
}

#[async_trait::async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// A new family's first token.
    async fn refresh_token_create(
        &self,
        t: &StoredRefreshToken,
        hash: &[u8],
    ) -> Result<(), StoreError>;
    async fn refresh_token_find(
        &self,
        hash: &[u8],
    ) -> Result<Option<StoredRefreshToken>, StoreError>;
    /// Redeem token `old` at `now`: if it is active and unexpired, mark it rotated and store
    /// `next` (same family) in one transaction. A rotated token redeemed again more than
    /// `reuse_leeway` after its rotation revokes its whole family in the same transaction (within
    /// the leeway it is only refused: two nodes racing with one token is not theft).
    async fn refresh_token_rotate(
        &self,
        old: Uuid,
        next: &StoredRefreshToken,
        next_hash: &[u8],
        now: OffsetDateTime,
        reuse_leeway: Duration,
    ) -> Result<Rotation, StoreError>;
    /// Revoke every token of a user not yet revoked: those issued about the object `user_id` and those its
    /// account signed in for (a guest's tokens follow its home account). Returns how many.
    async fn refresh_tokens_revoke_user(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<u64, StoreError>;
    /// Forget tokens whose deadline passed before `before`.
    async fn refresh_tokens_purge(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

const COLS: &str = "id, family_id, tenant_id, user_id, account_id, client_id, auth_time, issued_at, expires_at, state, changed_at, revoked_reason";

fn row_to(r: &Row) -> Result<StoredRefreshToken, StoreError> {
    Ok(StoredRefreshToken {
        id: r.uuid(0)?,
        family_id: r.uuid(1)?,
        tenant_id: r.uuid(2)?,
        user_id: r.uuid(3)?,
        account_id: r.uuid(4)?,
        client_id: r.uuid(5)?,
        auth_time: r.time(6)?,
        issued_at: r.time(7)?,
        expires_at: r.time(8)?,
        state: RefreshState::parse(&r.text(9)?)?,
        changed_at: r.opt_time(10)?,
        revoked_reason: r.opt_text(11)?,
    })
}

async fn insert(
    tx: &mut dyn crate::sql::Tx,
    t: &StoredRefreshToken,
    hash: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        &format!("INSERT INTO refresh_tokens ({COLS}, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
        vec![
            t.id.into(),
            t.family_id.into(),
            t.tenant_id.into(),
            t.user_id.into(),
            t.account_id.into(),
            t.client_id.into(),
            t.auth_time.into(),
            t.issued_at.into(),
            t.expires_at.into(),
            t.state.name().into(),
            t.changed_at.into(),
            t.revoked_reason.clone().into(),
            hash.into(),
        ],
    )
    .await
    .map(|_| ())
}

#[async_trait::async_trait]
impl RefreshTokenStore for SqlStore {
    async fn refresh_token_create(
        &self,
        t: &StoredRefreshToken,
        hash: &[u8],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        insert(&mut *tx, t, hash).await?;
        tx.commit().await
    }

    async fn refresh_token_find(
        &self,
        hash: &[u8],
    ) -> Result<Option<StoredRefreshToken>, StoreError> {
        self.db
            .fetch(
                &format!("SELECT {COLS} FROM refresh_tokens WHERE token_hash = $1"),
                vec![hash.into()],
            )
            .await?
            .first()
            .map(row_to)
            .transpose()
    }

    async fn refresh_token_rotate(
        &self,
        old: Uuid,
        next: &StoredRefreshToken,
        next_hash: &[u8],
        now: OffsetDateTime,
        reuse_leeway: Duration,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.db.begin().await?;
        // The compare-and-set: of two concurrent redemptions only one sees 'active'.
        let n = tx
            .execute(
                "UPDATE refresh_tokens SET state = 'rotated', changed_at = $1 WHERE id = $2 AND state = 'active' AND expires_at > $1",
                vec![now.into(), old.into()],
            )
            .await?;
        if n == 1 {
            insert(&mut *tx, next, next_hash).await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated);
        }
        let row = tx
            .fetch(
                &format!("SELECT {COLS} FROM refresh_tokens WHERE id = $1"),
                vec![old.into()],
            )
            .await?;
        let Some(stored) = row.first().map(row_to).transpose()? else {
            tx.commit().await?;
            return Ok(Rotation::Unknown);
        };
        let outcome = match stored.state {
            RefreshState::Revoked => Rotation::Revoked {
                at: stored.changed_at,
                reason: stored.revoked_reason,
            },
            RefreshState::Rotated => {
                let rotated_at = stored.changed_at.unwrap_or(stored.issued_at);
                let family_revoked = now - rotated_at > reuse_leeway;
                if family_revoked {
                    tx.execute(
                        "UPDATE refresh_tokens SET state = 'revoked', changed_at = $1, revoked_reason = 'reuse' WHERE family_id = $2 AND state <> 'revoked'",
                        vec![now.into(), stored.family_id.into()],
                    )
                    .await?;
                }
                Rotation::Reused {
                    rotated_at,
                    family_revoked,
                }
            }
            RefreshState::Active => Rotation::Expired,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn refresh_tokens_revoke_user(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<u64, StoreError> {
        self.db
            .execute(
                "UPDATE refresh_tokens SET state = 'revoked', changed_at = $1, revoked_reason = $2 WHERE (user_id = $3 OR account_id = $3) AND state <> 'revoked'",
                vec![now.into(), reason.into(), user_id.into()],
            )
            .await
    }

    async fn refresh_tokens_purge(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.db
            .execute(
                "DELETE FROM refresh_tokens WHERE expires_at < $1",
                vec![before.into()],
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            RefreshState::Active,
            RefreshState::Rotated,
            RefreshState::Revoked,
        ] {
            assert_eq!(RefreshState::parse(s.name()).unwrap(), s);
        }
        assert!(RefreshState::parse("x").is_err());
    }
}
