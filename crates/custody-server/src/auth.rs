//! API keys and the caller extractor.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use custody_domain::{Permission, Role};
use custody_store::Principal;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const KEY_PREFIX: &str = "cust_";

/// A new random API key (256 bits) and the hash that is stored.
pub fn generate_key() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    let hash = hash_key(&key);
    (key, hash)
}

pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// An authenticated caller. When the route has an `{org}` segment, the
/// caller's key must belong to that organisation; any other organisation
/// is reported as not existing, so keys cannot probe for names.
pub struct Caller(pub Principal);

impl Caller {
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        if self.0.role.allows(p) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the role '{}' of service account '{}' does not allow this",
                self.0.role, self.0.service_account
            )))
        }
    }

    pub fn role(&self) -> Role {
        self.0.role
    }
}

/// Notes when a key was used, at most once a minute, off the request's
/// path: `list api-keys` shows it so unused keys can be found and revoked.
fn note_use(state: &AppState, p: &Principal) {
    const EVERY_MS: i64 = 60_000;
    let now = custody_store::clock::now_ms();
    if p.key_last_used_at.is_some_and(|t| now - t < EVERY_MS) {
        return;
    }
    let (store, id) = (state.store.clone(), p.key_id.clone());
    tokio::spawn(async move {
        if let Err(e) = store.touch_key(&id, now).await {
            tracing::warn!(error = %e, "cannot note an API key's use");
        }
    });
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing Authorization header: use 'Authorization: Bearer <api key>'",
                )
            })?;
        let value = header
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be 'Bearer <api key>'")
            })?;
        let principal = state
            .store
            .authenticate(&hash_key(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("API key not found, expired or revoked"))?;
        if let Some(limiter) = &state.rate
            && let Err(wait) = limiter.check(&principal.key_id)
        {
            return Err(ApiError::too_many(
                format!(
                    "API key {} is over the server's rate limit of {} requests per second",
                    principal.key_id, state.limits.rate_limit
                ),
                wait,
            ));
        }
        note_use(state, &principal);
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("malformed path"))?;
        let Some((_, org)) = params.iter().find(|(k, _)| *k == "org") else {
            return Ok(Caller(principal));
        };
        if org == principal.org {
            return Ok(Caller(principal));
        }
        // The server admin acts in every organisation (it creates them);
        // any other key only in its own, and another's name answers as a
        // missing one does, so keys cannot probe for names.
        if principal.server_admin
            && let Some(id) = state.store.org_id(org).await?
        {
            return Ok(Caller(principal.acting_in(id, org)));
        }
        Err(ApiError::not_found(format!(
            "org '{org}' does not exist (this key is of org '{}')",
            principal.org
        )))
    }
}
