//! Verdicts for the attestation types built on tools' reports. The client
//! parses the report with `custody-evidence` and sends its summary; the
//! same crate checks its shape, recounts and judges it here.

use custody_api::AttestationInput;
use custody_evidence::judge::{Thresholds, judge};
use custody_evidence::sbom::Component;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;

use crate::error::{ApiError, ApiResult};

pub use custody_evidence::judge::KINDS;

pub struct ToolVerdict {
    pub compliant: bool,
    pub reasons: Vec<String>,
    pub data: Value,
    pub components: Vec<Component>,
}

pub fn evaluate(kind: &str, input: &mut AttestationInput) -> ApiResult<ToolVerdict> {
    let results = input
        .results
        .take()
        .ok_or_else(|| ApiError::bad_request(format!("a {kind} attestation needs results")))?;
    let thresholds = Thresholds {
        fail_on: input.fail_on.clone(),
        severity_threshold: input.severity_threshold.clone(),
    };
    let mut j = judge(kind, results.get(), &thresholds).map_err(ApiError::bad_request)?;
    if kind == "sbom" {
        // The ledger records the attestation, not the component rows: this
        // digest binds the rows to it.
        let mut hasher = HashWriter(Sha256::new());
        let mut w = std::io::BufWriter::with_capacity(64 << 10, &mut hasher);
        custody_evidence::sbom::canonical_json(&j.components, &mut w)
            .and_then(|()| w.flush())
            .map_err(|e| ApiError::bad_request(format!("sbom components: {e}")))?;
        drop(w);
        let digest = hex::encode(hasher.0.finalize());
        if let Some(o) = j.data.as_object_mut() {
            o.insert("components_sha256".to_string(), Value::String(digest));
        }
    }
    Ok(ToolVerdict {
        compliant: j.verdict.compliant,
        reasons: j.verdict.reasons,
        data: j.data,
        components: j.components,
    })
}

/// Hashes what is written, so the canonical text is never held whole.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
