//! The evidence vault: files stored by the SHA-256 of their content.
//!
//! Uploads are streamed to a staging object while being hashed, then moved
//! to `sha256/<first two hex>/<hex>` unless that object already exists
//! (deduplication). Reads are streamed and hashed again; a mismatch ends
//! the stream with an error, so corrupted evidence is never served as good.
//!
//! A file lands in the vault before the write that references it commits:
//! a failed write can leave an unreferenced file, never a reference to a
//! missing one.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::{StoreError, StoreResult};

/// Bytes buffered per part; object stores such as S3 need parts of 5 MiB.
const PART: usize = 5 << 20;
/// Parts in flight at once: bounds the memory one upload holds.
const IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    /// A local directory can move a file into place only if nothing is
    /// there; S3 cannot, and overwrites instead (harmless: same content).
    atomic_rename: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
}

/// A write's error: `Full` when the disk (or quota) is, whatever layer
/// says so, so the caller hears 507 rather than an internal error.
fn write_error(e: object_store::Error) -> StoreError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded)
        {
            return StoreError::Full;
        }
        cause = c.source();
    }
    StoreError::Blob(e.to_string())
}

impl BlobStore {
    /// `file://PATH` (created if missing), or `s3://BUCKET[/PREFIX]` for any
    /// S3-compatible store, configured by the standard `AWS_*` variables
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials, `AWS_ALLOW_HTTP`).
    pub fn open(url: &str) -> StoreResult<Self> {
        if let Some(path) = url.strip_prefix("file://") {
            std::fs::create_dir_all(path).map_err(|e| {
                StoreError::Blob(format!("cannot create blob directory {path}: {e}"))
            })?;
            let fs = LocalFileSystem::new_with_prefix(path)
                .map_err(|e| StoreError::Blob(format!("cannot open blob directory {path}: {e}")))?;
            return Ok(BlobStore {
                inner: Arc::new(fs),
                atomic_rename: true,
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::Unprocessable(format!(
                    "blob store URL '{url}' names no bucket"
                )));
            }
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| {
                    StoreError::Blob(format!("cannot configure S3 bucket {bucket}: {e}"))
                })?;
            let inner: Arc<dyn ObjectStore> = match prefix.trim_matches('/') {
                "" => Arc::new(s3),
                p => Arc::new(object_store::prefix::PrefixStore::new(s3, p)),
            };
            return Ok(BlobStore {
                inner,
                atomic_rename: false,
            });
        }
        Err(StoreError::Unprocessable(format!(
            "unsupported blob store URL '{url}': use file://PATH or s3://BUCKET[/PREFIX]"
        )))
    }

    /// Checks that the store answers (for readiness).
    pub async fn ping(&self) -> StoreResult<()> {
        match self
            .inner
            .head(&Path::from("custody-readiness-probe"))
            .await
        {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::Blob(e.to_string())),
        }
    }

    /// Moves a finished staging object to its content address.
    async fn promote(&self, staging: &Path, target: &Path) -> StoreResult<()> {
        let moved = if self.atomic_rename {
            self.inner.rename_if_not_exists(staging, target).await
        } else {
            match self.inner.head(target).await {
                Ok(_) => Err(object_store::Error::AlreadyExists {
                    path: target.to_string(),
                    source: "present".into(),
                }),
                Err(object_store::Error::NotFound { .. }) => {
                    self.inner.rename(staging, target).await
                }
                Err(e) => Err(e),
            }
        };
        match moved {
            Ok(()) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Already in the vault: keep the existing copy.
                let _ = self.inner.delete(staging).await;
                Ok(())
            }
            Err(e) => {
                let _ = self.inner.delete(staging).await;
                Err(write_error(e))
            }
        }
    }

    fn location(sha256: &str) -> Path {
        Path::from(format!("sha256/{}/{}", &sha256[..2], sha256))
    }

    /// Streams `body` into the vault. `budget` is how many more bytes this
    /// request may upload; it is reduced by what was read, and exceeding it
    /// aborts the upload with [`StoreError::TooLarge`] (`limit` is reported).
    pub async fn put_stream<S, E>(
        &self,
        body: S,
        budget: &mut u64,
        limit: u64,
    ) -> StoreResult<StoredBlob>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let staging = Path::from(format!("staging/{}", uuid::Uuid::new_v4()));
        let upload = self
            .inner
            .put_multipart(&staging)
            .await
            .map_err(write_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = body;
        let result: StoreResult<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StoreError::Upload(e.to_string()))?;
                size += chunk.len() as u64;
                if size > *budget {
                    return Err(StoreError::TooLarge { limit });
                }
                hasher.update(&chunk);
                writer
                    .wait_for_capacity(IN_FLIGHT)
                    .await
                    .map_err(write_error)?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = writer.abort().await;
            return Err(e);
        }
        if let Err(e) = writer.finish().await {
            // What was written of it goes too.
            let _ = self.inner.delete(&staging).await;
            return Err(write_error(e));
        }
        *budget -= size;
        let sha256 = hex::encode(hasher.finalize());
        self.promote(&staging, &Self::location(&sha256)).await?;
        Ok(StoredBlob { sha256, size })
    }

    /// Streams a file, checking on the way that its content still hashes to
    /// its name.
    pub async fn read(&self, sha256: &str) -> StoreResult<BoxStream<'static, StoreResult<Bytes>>> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::not_found("evidence", sha256));
        }
        let got = self
            .inner
            .get(&Self::location(sha256))
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => StoreError::Integrity(format!(
                    "evidence {sha256} is recorded but missing from the blob store"
                )),
                other => StoreError::Blob(other.to_string()),
            })?;
        let expected = sha256.to_string();
        let inner = got.into_stream();
        let state = (inner, Sha256::new(), expected, false);
        let stream = futures::stream::unfold(
            state,
            |(mut inner, mut hasher, expected, done)| async move {
                if done {
                    return None;
                }
                match inner.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        Some((Ok(chunk), (inner, hasher, expected, false)))
                    }
                    Some(Err(e)) => Some((
                        Err(StoreError::Blob(e.to_string())),
                        (inner, hasher, expected, true),
                    )),
                    None => {
                        let actual = hex::encode(hasher.finalize_reset());
                        if actual == expected {
                            None
                        } else {
                            tracing::error!(%expected, %actual, "evidence file is corrupt");
                            Some((
                                Err(StoreError::Integrity(format!(
                                    "evidence {expected} is corrupt: its content hashes to {actual}"
                                ))),
                                (inner, hasher, expected, true),
                            ))
                        }
                    }
                }
            },
        );
        Ok(stream.boxed())
    }
}
