//! The sandbox: where the server runs programs its users wrote.
//!
//! A custom attestation type's jq rules and JSON Schema, and a Rego
//! policy, are programs: a rule can loop forever, recurse until the stack
//! overflows, or allocate until the machine runs out of memory. None of
//! that can be stopped from inside the process that runs it (a stack
//! overflow or a failed allocation aborts the process), so the server
//! never runs them itself. It hands them to worker processes — the
//! `custody` binary started again in [`worker`] mode — each started with
//! an address-space limit (`RLIMIT_AS`), no core dumps, a lower CPU
//! priority, and death with its parent. The [`Sandbox`] pool kills a worker
//! that overruns its time limit, reads how one that died ended (out of
//! memory, stack overflow, signal), and starts a fresh one.
//!
//! The pool also shares the machine fairly: a fixed number of workers in
//! all, and at most a few at a time for any one tenant (organisation), so
//! one tenant's heavy policy waits for its own slot instead of taking
//! everyone's.
//!
//! [`protocol`] is the wire format between the two: one JSON document per
//! line over the worker's stdin and stdout.

pub mod pool;
pub mod protocol;
pub mod worker;

pub use pool::{RegoProgram, Sandbox, SandboxConfig, SandboxError};
