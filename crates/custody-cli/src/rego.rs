//! Rego policies run here, for `custody evaluate` and before `create
//! policy` sends one: in a sandbox worker, as the server runs them. A
//! policy that loops or recurses without end ends its worker, not this
//! command, and what the Rego library prints on its own (its scheduler's
//! "could not schedule all statements") stays out of the user's terminal.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use custody_policy::rego::Decision;
use custody_sandbox::{RegoProgram, Sandbox, SandboxConfig, SandboxError};
use serde_json::Value;

use crate::fail::Environment;

/// A checked policy, ready to evaluate inputs.
pub struct LocalRego {
    sandbox: Sandbox,
    /// The name errors carry: the file as the user named it.
    file: String,
    text: String,
    params: Option<Value>,
}

/// One policy run here may take this long per input: generous, since it is
/// the user's own machine, but not for ever.
const TIME_LIMIT: Duration = Duration::from_secs(30);
const MEMORY: u64 = 2 << 30;

async fn sandbox() -> anyhow::Result<Sandbox> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut cfg = SandboxConfig::new(exe, vec![custody_sandbox::worker::ARG.into()]);
    cfg.time_limit = TIME_LIMIT;
    cfg.memory_limit = MEMORY;
    cfg.workers = 1;
    Sandbox::start(cfg)
        .await
        .map_err(|e| Environment(e.to_string()).into())
}

fn refused(e: SandboxError) -> anyhow::Error {
    match e {
        SandboxError::Limit(why) => anyhow::anyhow!("the policy {why}"),
        SandboxError::Unavailable(why) => Environment(why).into(),
    }
}

impl LocalRego {
    /// Reads and checks the policy at `path`, with `params` for
    /// `data.params`.
    pub async fn load(path: &Path, text: String, params: Option<Value>) -> anyhow::Result<Self> {
        let file = path.display().to_string();
        let sandbox = sandbox().await?;
        sandbox
            .check_rego(0, &file, &text)
            .await
            .map_err(refused)??;
        Ok(LocalRego {
            sandbox,
            file,
            text,
            params,
        })
    }

    pub fn params(&self) -> Option<&Value> {
        self.params.as_ref()
    }

    pub async fn evaluate(&self, input: Value) -> anyhow::Result<Decision> {
        let program = RegoProgram {
            text: &self.text,
            file: &self.file,
            params: self.params.as_ref(),
        };
        let mut answers = self
            .sandbox
            .eval_rego(0, &program, std::slice::from_ref(&input), TIME_LIMIT * 2)
            .await
            .map_err(refused)?;
        match answers.pop() {
            Some(Ok(d)) => Ok(d),
            Some(Err(why)) => Err(anyhow::anyhow!("{why}")),
            None => Err(Environment("the sandbox gave no answer".into()).into()),
        }
    }
}
