//! Audit bundles: an environment's history over a window, with the
//! provenance of what ran, every ledger entry proven against the latest
//! signed checkpoint — for `custody audit verify` to check offline.
//!
//! The request is checked and the bundle planned before the answer
//! starts, so a wrong environment or window is a plain error. Then the
//! entries and their proofs are spooled to an anonymous temporary file (the
//! tar format needs a member's size before its bytes) and the bundle
//! streams out as it is framed; evidence files stream from the vault. A
//! failure after the answer started cuts the stream, which the client
//! sees as an incomplete bundle.

use std::io::{Read, Seek, Write};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use custody_api::AuditBundleRequest;
use custody_audit::format::{self, Consistency};
use custody_audit::{BundleWriter, Claim};
use custody_domain::Permission;
use custody_ledger::note::{Checkpoint, Note};
use custody_store::{BlobStore, BundlePlan, BundleRequest, Store, StoreError};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Entries read and proven together: their proofs' nodes come in one
/// query, whose size (a range per stored subtree) this bounds.
const LINES_PER_RUN: usize = 64;
/// Bytes handed to the connection at a time.
const CHUNK: usize = 256 << 10;

/// An audit bundle of the environment (gzip'd tar; docs/proofs.md).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/environments/{env}/audit-bundle", tag = "ledger",
    params(("org" = String, Path), ("env" = String, Path)),
    request_body = AuditBundleRequest,
    responses((status = 200, content_type = "application/gzip"), (status = 404), (status = 409), (status = 422)))]
pub async fn audit_bundle(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    Json(req): Json<AuditBundleRequest>,
) -> ApiResult<Response> {
    caller.require(Permission::Read)?;
    let org = caller.0.org.clone();
    let org_id = caller.0.org_id;
    let cp = s.store.checkpoint(&org, None).await?.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "no checkpoint has been issued yet: the server signs one within --checkpoint-interval of a write",
        )
    })?;
    let since = match &req.since_checkpoint {
        None => None,
        Some(note) => Some(since(&s, &org, note, cp.size).await?),
    };
    if let Some(fp) = &req.absent
        && (fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ApiError::unprocessable(format!(
            "absent: '{fp}' is not a SHA-256 fingerprint (64 hex digits)"
        )));
    }
    let plan = s
        .store
        .bundle_plan(
            org_id,
            &org,
            &BundleRequest {
                environment: env.clone(),
                from: req.from,
                to: req.to,
                flow: req.flow.clone(),
                claim: match &req.absent {
                    Some(fp) => Claim::Absent {
                        fingerprint: fp.to_ascii_lowercase(),
                    },
                    None => Claim::History,
                },
                blobs: req.blobs,
                tree_size: cp.size,
                now: custody_store::clock::now_ms(),
            },
        )
        .await?;

    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let job = Job {
        store: s.store.clone(),
        blobs: s.blobs.clone(),
        org_id,
        tree_size: cp.size,
        checkpoint: cp.cosigned_note(),
        since,
        plan,
    };
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        if let Err(e) = job.write(&rt, ChannelWriter::new(tx)) {
            tracing::warn!(error = %e, "audit bundle cut short");
            let _ = err_tx.blocking_send(Err(e));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-audit.tar.gz\"",
        env.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_"
        )
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Checks the requester's older checkpoint: ours, signed by us, and part
/// of the history we hold; returns it with the consistency proof to `size`.
async fn since(s: &AppState, org: &str, note: &str, size: u64) -> ApiResult<(String, Consistency)> {
    let bad = |why: String| ApiError::unprocessable(format!("since_checkpoint: {why}"));
    let key = s
        .signer
        .verifier(org)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let parsed = Note::parse(note).map_err(|e| bad(e.to_string()))?;
    parsed.verify(&[], &key).map_err(|e| bad(e.to_string()))?;
    let old = Checkpoint::parse(&parsed.text).map_err(|e| bad(e.to_string()))?;
    if old.size == 0 {
        return Err(bad("a checkpoint of no entries proves nothing".into()));
    }
    if old.size > size {
        return Err(bad(format!(
            "it is of {} entries, more than the latest checkpoint's {size}",
            old.size
        )));
    }
    let root = s.store.tree_root_at(org, old.size).await?;
    if root != old.root {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!(
                "since_checkpoint: this log's tree of {} entries has another root: the checkpoint given is not of this history",
                old.size
            ),
        ));
    }
    let (_, proof) = s.store.consistency_proof(org, old.size, Some(size)).await?;
    Ok((
        note.to_string(),
        Consistency {
            old_size: old.size,
            new_size: size,
            proof: proof.iter().map(hex::encode).collect(),
        },
    ))
}

struct Job {
    store: Store,
    blobs: BlobStore,
    org_id: i64,
    tree_size: u64,
    checkpoint: String,
    since: Option<(String, Consistency)>,
    plan: BundlePlan,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Job {
    /// Runs on a blocking thread: the tar framing is synchronous, the
    /// store and the vault are reached through the runtime's handle.
    fn write(self, rt: &tokio::runtime::Handle, out: ChannelWriter) -> std::io::Result<()> {
        let mut spool = std::io::BufWriter::new(tempfile::tempfile()?);
        for run in self.plan.seqs.chunks(LINES_PER_RUN) {
            let lines = rt
                .block_on(self.store.bundle_lines(
                    self.org_id,
                    self.plan.env_id,
                    run,
                    self.tree_size,
                ))
                .map_err(io)?;
            for line in lines {
                serde_json::to_writer(&mut spool, &line).map_err(io)?;
                spool.write_all(b"\n")?;
            }
        }
        let mut spool = spool.into_inner().map_err(|e| io(e.error()))?;
        let entries_len = spool.stream_position()?;
        spool.rewind()?;

        let mut w = BundleWriter::new(out, self.plan.manifest.created_at);
        let manifest = serde_json::to_vec_pretty(&self.plan.manifest).map_err(io)?;
        w.file(format::MANIFEST, &manifest)?;
        w.file(format::CHECKPOINT, self.checkpoint.as_bytes())?;
        if let Some((note, consistency)) = &self.since {
            w.file(format::SINCE_CHECKPOINT, note.as_bytes())?;
            w.file(
                format::CONSISTENCY,
                &serde_json::to_vec_pretty(consistency).map_err(io)?,
            )?;
        }
        w.stream(format::ENTRIES, entries_len, std::io::BufReader::new(spool))?;
        for (sha, size) in &self.plan.blobs {
            let stream = rt.block_on(self.blobs.read(sha)).map_err(io)?;
            let reader = BlockingStream {
                rt,
                stream,
                chunk: Bytes::new(),
            };
            w.stream(&format::blob_member(sha), *size, reader)?;
        }
        let mut out = w.finish()?;
        out.flush()
    }
}

/// A vault stream read synchronously, chunk by chunk.
struct BlockingStream<'a> {
    rt: &'a tokio::runtime::Handle,
    stream: futures::stream::BoxStream<'static, Result<Bytes, StoreError>>,
    chunk: Bytes,
}

impl Read for BlockingStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Err(e)) => return Err(io(e)),
                Some(Ok(c)) => self.chunk = c,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Hands written bytes to the response in chunks; a closed connection
/// stops the writing.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<Result<Bytes, std::io::Error>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
