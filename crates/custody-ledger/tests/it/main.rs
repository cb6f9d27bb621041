//! The integration tests of custody-ledger, one binary.

mod merkle_vectors;
