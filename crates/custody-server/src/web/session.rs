//! Signing in to the web UI: an API key pasted once becomes a session.
//!
//! The browser holds only a random session token, in an HttpOnly,
//! SameSite=Strict cookie (Secure, and `__Host-` prefixed, when the server
//! is reached over HTTPS). The server keeps the token's SHA-256 in the
//! database (every replica sees it), with the key it stands for and an
//! expiry; every request resolves the session through that key, so the
//! session has exactly the key's role and dies with it.
//!
//! Forms that write carry the session's CSRF token, compared in constant
//! time; the sign-in form, which has no session yet, carries a token that
//! must match a short-lived cookie of its own (double submit), so another
//! site cannot sign a browser in to an account of its choosing.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use custody_domain::Role;
use custody_store::Principal;
use sha2::{Digest, Sha256};

use super::error::WebError;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a session lives: a working day.
pub const SESSION_TTL_MS: i64 = 8 * 3600 * 1000;
/// How long the sign-in form's token lives.
const SIGNIN_TTL_S: i64 = 3600;

/// Who is looking, and the token their forms must carry.
#[derive(Clone)]
pub struct Viewer {
    /// Scoped to the organisation in the path, when there is one.
    pub principal: Principal,
    pub csrf: String,
}

impl Viewer {
    /// The API's caller for this viewer: pages call the API's own
    /// handlers, so what a page shows is what the API answers.
    pub fn caller(&self) -> Caller {
        Caller(self.principal.clone())
    }

    pub fn org(&self) -> &str {
        &self.principal.org
    }

    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// Refuses a form whose token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(WebError::Api(ApiError::forbidden(
                "the form was not sent from this session's page (its CSRF token is missing or wrong): reload the page and try again",
            )))
        }
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Cookie names and attributes, which depend on whether users reach the
/// server over HTTPS.
#[derive(Clone, Copy)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    pub fn for_state(s: &AppState) -> Cookies {
        Cookies {
            secure: s.public_url.starts_with("https://"),
        }
    }

    pub fn session_name(self) -> &'static str {
        if self.secure {
            "__Host-custody_session"
        } else {
            "custody_session"
        }
    }

    pub fn signin_name(self) -> &'static str {
        if self.secure {
            "__Host-custody_signin"
        } else {
            "custody_signin"
        }
    }

    fn set(self, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let v = format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
        );
        // Names and values are ours (hex), so the header is always valid.
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn set_session(self, token: &str) -> HeaderValue {
        self.set(self.session_name(), token, SESSION_TTL_MS / 1000)
    }

    pub fn clear_session(self) -> HeaderValue {
        self.set(self.session_name(), "", 0)
    }

    pub fn set_signin(self, token: &str) -> HeaderValue {
        self.set(self.signin_name(), token, SIGNIN_TTL_S)
    }

    pub fn clear_signin(self) -> HeaderValue {
        self.set(self.signin_name(), "", 0)
    }
}

/// The value of a cookie in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Where to go after signing in: only a path on this server, never
/// another site (`//host` or a scheme) — the sign-in page must not be a
/// way to send people elsewhere.
pub fn local_path(next: Option<&str>) -> Option<String> {
    let n = next?;
    let ok = n.starts_with('/')
        && !n.starts_with("//")
        && !n.starts_with("/\\")
        && !n.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| n.to_string())
}

/// A signed-out visitor of a page is sent to sign in, and back afterwards.
fn sign_in_first(parts: &Parts) -> WebError {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    WebError::SignIn { next }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let cookies = Cookies::for_state(s);
        let Some(token) = cookie(&parts.headers, cookies.session_name()) else {
            return Err(sign_in_first(parts));
        };
        let now = custody_store::clock::now_ms();
        let Some(session) = s
            .store
            .session(&token_hash(token), now)
            .await
            .map_err(|e| WebError::Api(e.into()))?
        else {
            return Err(sign_in_first(parts));
        };
        let principal = session.principal;
        let params = RawPathParams::from_request_parts(parts, s)
            .await
            .map_err(|_| WebError::Api(ApiError::bad_request("malformed path")))?;
        let scoped = match params.iter().find(|(k, _)| *k == "org") {
            None => principal,
            Some((_, org)) if org == principal.org => principal,
            Some((_, org)) => {
                // As in the API: a server admin may look into every
                // organisation; anyone else is told another's does not exist.
                let id = if principal.server_admin {
                    s.store
                        .org_id(org)
                        .await
                        .map_err(|e| WebError::Api(e.into()))?
                } else {
                    None
                };
                match id {
                    Some(id) => principal.acting_in(id, org),
                    None => {
                        return Err(WebError::Api(ApiError::not_found(format!(
                            "org '{org}' does not exist"
                        ))));
                    }
                }
            }
        };
        Ok(Viewer {
            principal: scoped,
            csrf: session.csrf,
        })
    }
}

/// An answer that sets or clears cookies and goes somewhere else.
pub fn redirect_with(to: &str, cookies: &[HeaderValue]) -> Response {
    let mut r = Redirect::to(to).into_response();
    for c in cookies {
        r.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            local_path(Some("/orgs/a/flows?page=2")).as_deref(),
            Some("/orgs/a/flows?page=2")
        );
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(local_path(None), None);
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x_custody_session=no; custody_session=abc ; other=1"),
        );
        assert_eq!(cookie(&h, "custody_session"), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
