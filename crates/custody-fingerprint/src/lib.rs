//! Artifact fingerprints: the SHA-256 digests that identify an artifact
//! wherever it appears (a pipeline, a running container, a server folder).
//!
//! - [`file`]: SHA-256 of a file's bytes.
//! - [`dirhash`]: the Dirhash Standard v0.1.0 (default for directories).
//! - [`kosli`]: Kosli's directory algorithm, bit-exact.
//! - [`oci`]: the manifest digest of an OCI image layout (directory or tarball).
//! - [`docker`]: choosing the repo digest of a local image.
//!
//! The algorithms and their test vectors are documented in `docs/fingerprints.md`.

pub mod dirhash;
pub mod docker;
pub mod file;
pub mod kosli;
pub mod oci;

mod digest;
mod error;
mod walk;

pub use digest::Digest;
pub use error::{Error, Result};

/// What `custody fingerprint` and the reporters can be asked to fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirAlgorithm {
    /// The Dirhash Standard v0.1.0, sha256, name+data, no empty directories.
    Dirhash,
    /// Kosli's algorithm (`kosli fingerprint --artifact-type dir`).
    Kosli,
}

/// Fingerprint a directory with the chosen algorithm and exclusion globs.
pub fn directory(
    path: &std::path::Path,
    algorithm: DirAlgorithm,
    excludes: &[String],
) -> Result<Digest> {
    match algorithm {
        DirAlgorithm::Dirhash => dirhash::hash_dir(path, excludes),
        DirAlgorithm::Kosli => kosli::hash_dir(path, excludes),
    }
}
