//! The integration tests of custody-fingerprint, one binary so the crate and its
//! dependencies are linked once rather than once per file.

mod dirhash_agreement;
mod kosli_vectors;
