//! Web UI sessions: a browser's stand-in for an API key.
//!
//! A session names the key it was opened with and resolves through it on
//! every read, so a key revoked, expired or of a deleted account ends its
//! sessions at once, and the session acts with exactly that key's role.
//! Operational state like a key's last use, not a record: no ledger entry.

use sqlx::Row;

use crate::auth::{PRINCIPAL_COLUMNS, PRINCIPAL_FROM, principal};
use crate::{Principal, Store, StoreResult};

/// A session as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The token its forms carry (CSRF).
    pub csrf: String,
    pub expires_at: i64,
}

impl Store {
    /// Opens a session for the key with this hash, if the key is valid.
    /// Sessions that have expired are cleared on the way.
    pub async fn open_session(
        &self,
        token_hash: &[u8],
        key_hash: &[u8],
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<Option<Principal>> {
        let Some(p) = self.authenticate(key_hash).await? else {
            return Ok(None);
        };
        let (token, key_id, csrf) = (token_hash.to_vec(), p.key_id.clone(), csrf.to_string());
        self.db
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                        .bind(now)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query(
                        "INSERT INTO web_sessions (token_hash, key_id, csrf, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(token)
                    .bind(key_id)
                    .bind(csrf)
                    .bind(now)
                    .bind(expires_at)
                    .execute(&mut *c)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(Some(p))
    }

    /// The live session with this token hash: not expired, and its key
    /// still valid.
    pub async fn session(&self, token_hash: &[u8], now: i64) -> StoreResult<Option<Session>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PRINCIPAL_COLUMNS}, w.csrf, w.expires_at {PRINCIPAL_FROM} \
             JOIN web_sessions w ON w.key_id = k.id \
             WHERE w.token_hash = $1 AND w.expires_at > $2"
        )))
        .bind(token_hash.to_vec())
        .bind(now)
        .fetch_optional(&self.db.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        // The session's own columns follow the principal's ten.
        let csrf: String = r.try_get(10)?;
        let expires_at: i64 = r.try_get(11)?;
        Ok(principal(&r)?.map(|principal| Session {
            principal,
            csrf,
            expires_at,
        }))
    }

    /// Ends a session (sign-out). Ending one that is gone is not an error.
    pub async fn end_session(&self, token_hash: &[u8]) -> StoreResult<()> {
        let token = token_hash.to_vec();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
                        .bind(token)
                        .execute(&mut *c)
                        .await?;
                    Ok(())
                })
            })
            .await
    }
}
