//! Background upkeep: the recurrence scheduler; forgetting expired client assertions, long-expired
//! refresh tokens, and signing keys retired long enough that no token they signed can be valid.

use keyway_core::token::{ACCESS_TOKEN_LIFETIME, CLOCK_SKEW};
use keyway_store::{DirectoryStore, RefreshTokenStore};
use time::Duration;

use crate::state::AppState;

const EVERY: std::time::Duration = std::time::Duration::from_secs(300);

pub fn spawn(state: AppState) {
    crate::services::recurrence::spawn(state.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            let now = state.clock.now();
            if let Err(e) = state.store.assertions_purge(now - CLOCK_SKEW).await {
                tracing::warn!(error = %e, "purging client assertions failed");
            }
            // Keep retired keys published for a token lifetime plus skew, and a margin.
            let keep = ACCESS_TOKEN_LIFETIME + CLOCK_SKEW + Duration::hours(1);
            if let Err(e) = state.store.signing_keys_purge(now - keep).await {
                tracing::warn!(error = %e, "purging retired signing keys failed");
            }
            // Expired refresh tokens are still answered as expired (700082) for a month.
            if let Err(e) = state
                .store
                .refresh_tokens_purge(now - Duration::days(30))
                .await
            {
                tracing::warn!(error = %e, "purging expired refresh tokens failed");
            }
        }
    });
}
