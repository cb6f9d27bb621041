//! What the server and a worker say to each other: one JSON document per
//! line. Documents a user wrote (schemas, attestation data) travel as JSON
//! *text* inside the request, so the request's own nesting never counts
//! against the JSON depth limit the data is parsed with.

use custody_domain::custom_type::{CustomTypeError, Verdict};
use custody_policy::rego::{Decision, RegoError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Answered with [`Reply::Pong`]: the worker runs.
    Ping,
    /// Is this a usable type definition (schema and jq rules)?
    CheckType { schema: String, rules: Vec<String> },
    /// The verdict on one attestation's data.
    EvalType {
        type_name: String,
        schema: String,
        rules: Vec<String>,
        data: String,
    },
    /// Does this Rego policy compile, and does it evaluate on an empty input?
    /// `file` is the name its errors carry.
    CheckRego {
        policy: String,
        file: String,
        time_limit_ms: u64,
    },
    /// Evaluates the policy for `inputs` documents, which follow this line
    /// one per line; answered with one [`Reply::Decision`] per input, each
    /// written as soon as it is known. `params` (JSON text) is mounted at
    /// `data.params`.
    EvalRego {
        policy: String,
        file: String,
        time_limit_ms: u64,
        #[serde(default)]
        params: Option<String>,
        inputs: usize,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", content = "result", rename_all = "snake_case")]
pub enum Reply {
    Pong,
    TypeChecked(Result<(), CustomTypeError>),
    TypeVerdict(Result<Verdict, CustomTypeError>),
    RegoChecked(Result<(), RegoError>),
    Decision(Result<Decision, RegoError>),
    /// The request itself could not be read: a bug on the server's side,
    /// never the user's program.
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_message() {
        let r = Request::EvalType {
            type_name: "t".into(),
            schema: "{\n}".into(),
            rules: vec![".a\n| .b".into()],
            data: "[1,\n2]".into(),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        let back: Request = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, Request::EvalType { data, .. } if data == "[1,\n2]"));
        let reply = Reply::Decision(Err(RegoError::Undefined));
        let line = serde_json::to_string(&reply).unwrap();
        let back: Reply = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, Reply::Decision(Err(RegoError::Undefined))));
    }
}
