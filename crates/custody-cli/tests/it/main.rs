//! The integration tests of custody-cli, one binary so the crate and its
//! dependencies are linked once rather than once per file.

#[macro_use]
mod common;

mod audit;
mod aws;
mod change;
mod compliance;
mod controls;
mod docker;
mod evidence;
mod fingerprint;
mod first_hour;
mod k8s;
mod ledger;
mod lifecycle;
mod notifications;
mod operate;
mod runtime;
mod security;
mod tool_evidence;
mod web;
