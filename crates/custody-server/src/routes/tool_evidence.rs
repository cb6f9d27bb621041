//! Verdicts for the attestation types built on tools' reports. The client
//! parses the report with `custody-evidence` and sends its summary; the
//! same crate checks its shape, recounts and judges it here.

use custody_api::AttestationInput;
use custody_evidence::judge::{Thresholds, judge};
use custody_evidence::sbom::ComponentList;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

pub use custody_evidence::judge::KINDS;

pub struct ToolVerdict {
    pub compliant: bool,
    pub reasons: Vec<String>,
    pub data: Value,
    /// An SBOM's components, as checked text.
    pub components: Option<ComponentList>,
}

pub fn evaluate(kind: &str, input: &mut AttestationInput) -> ApiResult<ToolVerdict> {
    let results = input
        .results
        .take()
        .ok_or_else(|| ApiError::bad_request(format!("a {kind} attestation needs results")))?;
    let thresholds = Thresholds {
        fail_on: input.fail_on.clone(),
        severity_threshold: input.severity_threshold.clone(),
        require_approvals: input.require_approvals,
        allow_open: input.allow_open,
    };
    let mut j = judge(kind, results.get(), &thresholds).map_err(ApiError::bad_request)?;
    // The ledger records the attestation, not the component rows: this
    // digest binds the rows to it.
    if let (Some(digest), Some(o)) = (j.components_sha256.take(), j.data.as_object_mut()) {
        o.insert("components_sha256".to_string(), Value::String(digest));
    }
    Ok(ToolVerdict {
        compliant: j.verdict.compliant,
        reasons: j.verdict.reasons,
        data: j.data,
        components: j.components,
    })
}
