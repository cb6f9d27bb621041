//! A typed client for Custody's HTTP API. The CLI talks to the server only
//! through this crate.

use std::path::PathBuf;

use custody_api::ErrorBody;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    #[error("cannot reach {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("{0}")]
    Local(String),
    #[error(
        "downloaded evidence does not match its SHA-256 (expected {expected}, got {actual}); the file was not kept"
    )]
    Integrity { expected: String, actual: String },
}

/// How the client reaches the server beyond its address.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// PEM certificates trusted besides the system's roots (a private CA).
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to a host other than this machine.
    pub insecure_http: bool,
}

/// An HTTP client as `transport` says: the private CA trusted besides the
/// system's roots. The CLI's clients of other services (the providers of
/// change-process evidence) are made here too, so they trust the same.
pub fn http_client(transport: &Transport, timeout: std::time::Duration) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("custody/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10).min(timeout))
        .read_timeout(timeout)
        .tcp_keepalive(std::time::Duration::from_secs(30));
    if let Some(path) = &transport.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| ClientError::Local(format!("--ca-cert {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ClientError::Local(format!(
                "--ca-cert {}: not PEM certificates: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(ClientError::Local(format!(
                "--ca-cert {}: no PEM certificate in it",
                path.display()
            )));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| ClientError::Local(e.to_string()))
}

/// Whether a secret may go to `u` over plain http: to this machine, or
/// anywhere with `--insecure-http`.
pub fn plain_http_allowed(u: &url::Url, transport: &Transport) -> bool {
    transport.insecure_http || is_loopback(u)
}

/// Whether a URL names this machine: plain HTTP there never crosses a
/// network.
fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl ClientError {
    /// Whether the server judged the request itself wrong (bad input, an
    /// unknown name, a conflict), as opposed to auth, server or network
    /// trouble.
    pub fn is_input_error(&self) -> bool {
        match self {
            ClientError::Api { status, .. } => matches!(
                *status,
                StatusCode::BAD_REQUEST
                    | StatusCode::NOT_FOUND
                    | StatusCode::CONFLICT
                    | StatusCode::PAYLOAD_TOO_LARGE
                    | StatusCode::UNPROCESSABLE_ENTITY
                    | StatusCode::UNSUPPORTED_MEDIA_TYPE
            ),
            ClientError::Local(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A file to attach to an attestation.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The name recorded with the evidence (a relative path).
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// Called with the number of bytes just sent.
pub type Progress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
    timeout: std::time::Duration,
}

impl Client {
    /// How long a request may take by default ([`Client::with_timeout`]).
    pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

    pub fn new(host: &str, token: Option<String>) -> Result<Self> {
        Self::with_timeout(host, token, Self::TIMEOUT)
    }

    /// A client whose requests fail after `timeout` rather than wait on a
    /// server that stopped answering (a half-open connection would
    /// otherwise hold `snapshot --watch` for ever). Uploads of evidence
    /// files may take longer in all, but not go `timeout` without the
    /// server answering, nor without its socket taking data.
    pub fn with_timeout(
        host: &str,
        token: Option<String>,
        timeout: std::time::Duration,
    ) -> Result<Self> {
        Self::with_transport(host, token, timeout, &Transport::default())
    }

    /// A client that trusts `transport.ca_cert` as well as the system's
    /// roots, and that refuses to send a key in clear text across a
    /// network (plain `http://` to a host other than this machine) unless
    /// told `insecure_http`.
    pub fn with_transport(
        host: &str,
        token: Option<String>,
        timeout: std::time::Duration,
        transport: &Transport,
    ) -> Result<Self> {
        let base = url::Url::parse(host)
            .map_err(|e| ClientError::Local(format!("invalid --host '{host}': {e}")))?;
        match base.scheme() {
            "https" => {}
            "http" if transport.insecure_http || is_loopback(&base) => {}
            "http" => {
                return Err(ClientError::Local(format!(
                    "refusing plain http:// to {}: the API key would cross the network unencrypted; \
                     use https:// (with --ca-cert for a private CA), or --insecure-http if the network is yours",
                    base.host_str().unwrap_or(host)
                )));
            }
            _ => {
                return Err(ClientError::Local(format!(
                    "invalid --host '{host}': use http:// or https://"
                )));
            }
        }
        let http = http_client(transport, timeout)?;
        Ok(Client {
            http,
            base,
            token,
            timeout,
        })
    }

    /// The URL of an API path given as segments (each is escaped).
    pub fn url(&self, segments: &[&str]) -> url::Url {
        let mut u = self.base.clone();
        {
            let mut p = u.path_segments_mut().expect("http(s) URLs have paths");
            p.pop_if_empty();
            p.extend(segments);
        }
        u
    }

    /// `/api/v1/orgs/{org}/...`
    pub fn org_url(&self, org: &str, rest: &[&str]) -> url::Url {
        let mut segs = vec!["api", "v1", "orgs", org];
        segs.extend_from_slice(rest);
        self.url(&segs)
    }

    fn request(&self, method: Method, url: url::Url) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, url: url::Url) -> Result<T> {
        let rb = self.request(Method::GET, url.clone()).timeout(self.timeout);
        self.send(rb, &url).await
    }

    /// A GET whose answer is read whatever its status (a readiness probe
    /// says why it is not ready in its body): the status and the body.
    pub async fn probe(&self, url: url::Url) -> Result<(StatusCode, bytes::Bytes)> {
        let resp = self
            .request(Method::GET, url.clone())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| network(&url, e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| network(&url, e))?;
        Ok((status, body))
    }

    pub async fn delete<T: DeserializeOwned>(&self, url: url::Url) -> Result<T> {
        let rb = self
            .request(Method::DELETE, url.clone())
            .timeout(self.timeout);
        self.send(rb, &url).await
    }

    pub async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: url::Url,
        body: &B,
    ) -> Result<T> {
        let rb = self
            .request(method, url.clone())
            .json(body)
            .timeout(self.timeout);
        self.send(rb, &url).await
    }

    /// Posts `data_json` followed by each attachment, streamed from disk.
    pub async fn post_attestation<B: Serialize, T: DeserializeOwned>(
        &self,
        url: url::Url,
        data: &B,
        attachments: &[Attachment],
        progress: Option<Progress>,
    ) -> Result<T> {
        if attachments.is_empty() {
            return self.send_json(Method::POST, url, data).await;
        }
        let json = serde_json::to_string(data).map_err(|e| ClientError::Local(e.to_string()))?;
        let mut form = reqwest::multipart::Form::new().text("data_json", json);
        for a in attachments {
            // Not through a link: what was checked when the attachments were
            // collected (a file inside the attached tree) is what is read,
            // even if a link was put in its place since.
            let file = tokio::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&a.path)
                .await
                .map_err(|e| {
                    ClientError::Local(format!("cannot read attachment {}: {e}", a.path.display()))
                })?;
            let p = progress.clone();
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).inspect(
                move |chunk| {
                    if let (Some(p), Ok(c)) = (&p, chunk) {
                        p(c.len() as u64);
                    }
                },
            );
            let part = reqwest::multipart::Part::stream_with_length(
                reqwest::Body::wrap_stream(stream),
                a.size,
            )
            .file_name(a.name.clone())
            .mime_str("application/octet-stream")
            .map_err(|e| ClientError::Local(e.to_string()))?;
            form = form.part("attachment_file", part);
        }
        self.send(
            self.request(Method::POST, url.clone()).multipart(form),
            &url,
        )
        .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
        url: &url::Url,
    ) -> Result<T> {
        let resp = rb.send().await.map_err(|e| network(url, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| network(url, e))?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Api {
            status,
            message: format!("unexpected answer from {url}: {e}"),
        })
    }

    /// POSTs `body` and streams the answer to `out`, returning how many
    /// bytes came. The caller decides what to do with a partial file.
    pub async fn post_to_file<B: Serialize>(
        &self,
        url: url::Url,
        body: &B,
        out: &mut tokio::fs::File,
    ) -> Result<u64> {
        let resp = self
            .request(Method::POST, url.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| network(&url, e))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.map_err(|e| network(&url, e))?;
            return Err(api_error(status, &bytes));
        }
        let mut size = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| network(&url, e))?;
            size += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| ClientError::Local(format!("cannot write the bundle: {e}")))?;
        }
        out.flush()
            .await
            .map_err(|e| ClientError::Local(format!("cannot write the bundle: {e}")))?;
        Ok(size)
    }

    /// Downloads an evidence file to `dest`, checking its SHA-256; on any
    /// failure the partial file is removed.
    pub async fn download_evidence(
        &self,
        org: &str,
        sha256: &str,
        dest: &std::path::Path,
    ) -> Result<u64> {
        let url = self.org_url(org, &["evidence", sha256]);
        let resp = self
            .request(Method::GET, url.clone())
            .send()
            .await
            .map_err(|e| network(&url, e))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.map_err(|e| network(&url, e))?;
            return Err(api_error(status, &bytes));
        }
        let tmp = dest.with_extension(format!("custody-partial-{}", std::process::id()));
        let result = async {
            let mut out = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| ClientError::Local(format!("cannot write {}: {e}", tmp.display())))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| network(&url, e))?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                out.write_all(&chunk).await.map_err(|e| {
                    ClientError::Local(format!("cannot write {}: {e}", tmp.display()))
                })?;
            }
            out.flush()
                .await
                .map_err(|e| ClientError::Local(e.to_string()))?;
            let actual = hex::encode(hasher.finalize());
            if actual != sha256 {
                return Err(ClientError::Integrity {
                    expected: sha256.to_string(),
                    actual,
                });
            }
            Ok(size)
        }
        .await;
        match result {
            Ok(size) => {
                tokio::fs::rename(&tmp, dest).await.map_err(|e| {
                    ClientError::Local(format!("cannot write {}: {e}", dest.display()))
                })?;
                Ok(size)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }
}

fn network(url: &url::Url, e: reqwest::Error) -> ClientError {
    let mut reason = if e.is_timeout() {
        "no answer in time (the server or the network stalled): ".to_string() + &e.to_string()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        reason = format!("{reason}: {s}");
        src = s.source();
    }
    ClientError::Network {
        url: format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""))
            + &url.port().map(|p| format!(":{p}")).unwrap_or_default(),
        reason,
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    let message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => b.error,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("the server answered {status}")
            } else {
                format!(
                    "the server answered {status}: {}",
                    text.chars().take(500).collect::<String>()
                )
            }
        }
    };
    ClientError::Api { status, message }
}
