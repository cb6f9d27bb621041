//! How errors become exit codes and messages.

use custody_client::ClientError;

/// A verdict, not a failure: assert, evaluate and parse judged non-compliant.
pub const NON_COMPLIANT: u8 = 1;
pub const INPUT: u8 = 2;
pub const SERVER: u8 = 3;

/// An error that is the server's, the network's or the environment's (a
/// Docker daemon that cannot be reached, a port in use), not the user's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Environment(pub String);

pub fn code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return if c.is_input_error() { INPUT } else { SERVER };
        }
        if cause.downcast_ref::<Environment>().is_some()
            || cause
                .downcast_ref::<custody_providers::ProviderError>()
                .is_some()
        {
            return SERVER;
        }
    }
    INPUT
}

pub fn message(e: &anyhow::Error) -> String {
    format!("{e:#}")
}
