//! Users' programs, run in the sandbox: how the store's Rego judgements
//! reach it, and how its answers become API errors.

use std::time::Duration;

use custody_policy::rego::Decision;
use custody_sandbox::{Sandbox, SandboxError};
use custody_store::RegoRunner;

use crate::error::ApiError;

/// Runs environments' Rego policies in the sandbox, each judgement of an
/// environment by one policy within `budget`.
pub struct SandboxRego {
    pub sandbox: Sandbox,
    pub budget: Duration,
}

#[async_trait::async_trait]
impl RegoRunner for SandboxRego {
    async fn run(
        &self,
        org_id: i64,
        name: &str,
        policy: &str,
        inputs: Vec<serde_json::Value>,
    ) -> Result<Vec<Result<Decision, String>>, String> {
        if inputs.is_empty() {
            return Ok(vec![]);
        }
        let program = custody_sandbox::RegoProgram {
            text: policy,
            file: &format!("{name}.rego"),
            params: None,
        };
        self.sandbox
            .eval_rego(org_id, &program, &inputs, self.budget)
            .await
            .map_err(|e| e.to_string())
    }
}

/// A program that gave no answer: the program's fault (422, with what it
/// overran) or the server's (503).
pub fn refused(what: &str, e: SandboxError) -> ApiError {
    match e {
        SandboxError::Limit(why) => ApiError::unprocessable(format!("{what}: {why}")),
        SandboxError::Unavailable(why) => {
            tracing::error!(error = %why, "the sandbox is not available");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the server cannot run programs right now; try again later",
            )
        }
    }
}
