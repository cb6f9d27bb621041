//! The integration tests of custody-store, one binary so the crate and its
//! dependencies are linked once rather than once per file.

#[macro_use]
mod common;

mod audit;
mod blobs;
mod runtime;
mod store;
mod tree;
