//! One way to call a provider: authentication, rate-limit answers waited
//! out (`Retry-After`, `X-RateLimit-Reset`), pagination links, and errors
//! that name the provider, the request and the answer.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

/// Trouble with a provider: it could not be reached, refused, or answered
/// something that is not what its API documents.
#[derive(Debug, thiserror::Error)]
#[error("{provider}: {method} {url} {what}")]
pub struct ProviderError {
    pub provider: &'static str,
    pub method: Method,
    pub url: String,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    pub what: String,
}

impl ProviderError {
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Basic {
        user: String,
        password: String,
    },
    /// A provider's own header, e.g. GitLab's `PRIVATE-TOKEN`.
    Header(HeaderName, String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        f.write_str(match self {
            Auth::Bearer(_) => "Bearer(..)",
            Auth::Basic { .. } => "Basic(..)",
            Auth::Header(..) => "Header(..)",
        })
    }
}

/// How long a rate-limited request may wait in all before it is given up.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(120);
const MAX_ATTEMPTS: usize = 5;

#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    pub provider: &'static str,
    auth: Auth,
}

impl Api {
    /// `client` is made by the caller, which knows what to trust (a private
    /// CA) and how long to wait.
    pub fn new(provider: &'static str, auth: Auth, client: reqwest::Client) -> Self {
        Api {
            client,
            provider,
            auth,
        }
    }

    pub fn error(
        &self,
        method: &Method,
        url: &Url,
        status: Option<u16>,
        what: String,
    ) -> ProviderError {
        ProviderError {
            provider: self.provider,
            method: method.clone(),
            url: url.to_string(),
            status,
            what,
        }
    }

    /// GETs JSON, with the answer's headers (for pagination).
    pub async fn get<T: DeserializeOwned>(
        &self,
        url: &Url,
    ) -> Result<(T, HeaderMap), ProviderError> {
        self.send(Method::GET, url, None).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<(T, HeaderMap), ProviderError> {
        self.send(Method::POST, url, Some(body)).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<(T, HeaderMap), ProviderError> {
        let mut waited = Duration::ZERO;
        for attempt in 1..=MAX_ATTEMPTS {
            let mut req = self
                .client
                .request(method.clone(), url.clone())
                .header(reqwest::header::ACCEPT, "application/json");
            req = match &self.auth {
                Auth::Bearer(t) => req.bearer_auth(t),
                Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
                Auth::Header(name, value) => req.header(name, value),
            };
            if let Some(b) = body {
                req = req.json(b);
            }
            let r = req
                .send()
                .await
                .map_err(|e| self.error(&method, url, None, format!("failed: {}", chain(&e))))?;
            let status = r.status();
            if status.is_success() {
                let headers = r.headers().clone();
                let bytes = r.bytes().await.map_err(|e| {
                    self.error(
                        &method,
                        url,
                        Some(status.as_u16()),
                        format!("answer broke off: {}", chain(&e)),
                    )
                })?;
                let value = serde_json::from_slice(&bytes).map_err(|e| {
                    self.error(
                        &method,
                        url,
                        Some(status.as_u16()),
                        format!("answered {status} with JSON not in the documented shape: {e}"),
                    )
                })?;
                return Ok((value, headers));
            }
            if let Some(delay) = rate_limit_delay(status, r.headers()) {
                if attempt < MAX_ATTEMPTS && waited + delay <= RATE_LIMIT_WAIT {
                    waited += delay;
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(self.error(
                    &method,
                    url,
                    Some(status.as_u16()),
                    format!(
                        "answered {status}: rate limited, asked to wait {}s more after {}s waited (the most is {}s)",
                        delay.as_secs(),
                        waited.as_secs(),
                        RATE_LIMIT_WAIT.as_secs()
                    ),
                ));
            }
            return Err(self.refusal(&method, url, r).await);
        }
        Err(self.error(
            &method,
            url,
            None,
            "was rate limited on every attempt".into(),
        ))
    }

    async fn refusal(&self, method: &Method, url: &Url, r: Response) -> ProviderError {
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let mut what = format!("answered {status}");
        if let Some(m) = message(&text) {
            what.push_str(": ");
            what.push_str(&m);
        }
        if status == StatusCode::UNAUTHORIZED {
            what.push_str(" (check the token)");
        }
        self.error(method, url, Some(status.as_u16()), what)
    }
}

/// The full cause of a reqwest error (its Display leaves out why).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How long a rate-limit answer asks to wait, if it is one: 429, or 403
/// with `Retry-After` or an exhausted `X-RateLimit-Remaining` (GitHub's
/// secondary and primary limits).
fn rate_limit_delay(status: StatusCode, h: &HeaderMap) -> Option<Duration> {
    let header = |n: &str| h.get(n).and_then(|v: &HeaderValue| v.to_str().ok());
    let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
    let exhausted = header("x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (retry_after.is_some() || exhausted));
    if !limited {
        return None;
    }
    if let Some(s) = retry_after {
        return Some(Duration::from_secs(s));
    }
    if let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok()) {
        let now = jiff::Timestamp::now().as_second();
        return Some(Duration::from_secs((reset - now).clamp(1, i64::MAX) as u64));
    }
    // A 429 that does not say how long: a short pause, then again.
    Some(Duration::from_secs(5))
}

/// The message in an error body, by each provider's documented shape.
fn message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let s = |v: &serde_json::Value| v.as_str().map(String::from);
    let found = s(&v["message"])
        .or_else(|| s(&v["error"]["message"]))
        .or_else(|| s(&v["error"]))
        .or_else(|| s(&v["errorMessages"][0]))
        .or_else(|| s(&v["errors"][0]["msg"]))
        .or_else(|| s(&v["errors"][0]["message"]))
        .or_else(|| v["message"].as_array().map(|a| format!("{a:?}")));
    found.map(|m| m.chars().take(300).collect())
}

/// The `rel="next"` target of a `Link` header (RFC 8288), as GitHub and
/// GitLab page.
pub fn next_link(h: &HeaderMap) -> Option<Url> {
    for value in h.get_all(reqwest::header::LINK) {
        let Ok(text) = value.to_str() else { continue };
        for part in text.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                let t = target.trim_start_matches('<').trim_end_matches('>');
                return Url::parse(t).ok();
            }
        }
    }
    None
}

/// `base` with `segments` appended as path segments (each escaped), so a
/// self-hosted base URL's path prefix is kept.
pub fn join(base: &Url, segments: &[&str]) -> Url {
    let mut u = base.clone();
    if let Ok(mut path) = u.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    u
}

/// Checks a `--*-base-url` flag.
pub fn base_url(flag: &str, value: &str) -> Result<Url, String> {
    let u = Url::parse(value.trim_end_matches('/'))
        .map_err(|e| format!("{flag} '{value}' is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.cannot_be_a_base() {
        return Err(format!("{flag} '{value}' must be an http(s) URL"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "{flag} '{value}' must not have a query or fragment"
        ));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/repositories/1/pulls?page=3>; rel=\"next\", <https://api.github.com/repositories/1/pulls?page=5>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h).unwrap().as_str(),
            "https://api.github.com/repositories/1/pulls?page=3"
        );
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://x/?page=1>; rel=\"prev\""),
        );
        assert!(next_link(&h).is_none());
    }

    #[test]
    fn rate_limits() {
        let mut h = HeaderMap::new();
        assert_eq!(
            rate_limit_delay(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Duration::from_secs(5))
        );
        assert_eq!(rate_limit_delay(StatusCode::FORBIDDEN, &h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            rate_limit_delay(StatusCode::FORBIDDEN, &h),
            Some(Duration::from_secs(7))
        );
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = jiff::Timestamp::now().as_second() + 30;
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        let d = rate_limit_delay(StatusCode::FORBIDDEN, &h).unwrap();
        assert!((29..=30).contains(&d.as_secs()), "{d:?}");
    }

    #[test]
    fn joins_keep_a_path_prefix_and_escape() {
        let b = base_url("--x", "https://git.example.com/gitlab/").unwrap();
        assert_eq!(
            join(&b, &["api", "v4", "projects", "acme/shop"]).as_str(),
            "https://git.example.com/gitlab/api/v4/projects/acme%2Fshop"
        );
        assert!(base_url("--x", "ftp://x").is_err());
        assert!(base_url("--x", "https://x/?a=1").is_err());
    }

    #[test]
    fn messages_by_shape() {
        assert_eq!(
            message(r#"{"message":"Bad credentials"}"#).unwrap(),
            "Bad credentials"
        );
        assert_eq!(
            message(r#"{"type":"error","error":{"message":"Repository not found"}}"#).unwrap(),
            "Repository not found"
        );
        assert_eq!(
            message(r#"{"errorMessages":["Issue does not exist"],"errors":{}}"#).unwrap(),
            "Issue does not exist"
        );
        assert_eq!(
            message(r#"{"errors":[{"msg":"Component key 'x' not found"}]}"#).unwrap(),
            "Component key 'x' not found"
        );
        assert_eq!(message("<html>"), None);
    }
}
