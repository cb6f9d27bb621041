//! A trail's record as in-toto: each artifact and each attestation becomes
//! an in-toto Statement v1 (subjects: the artifacts, by name and SHA-256),
//! in a DSSE envelope signed with the server's key, so tools that know
//! nothing of Custody (in-toto, securesystemslib, SLSA verifiers) can check
//! it given the public key.
//!
//! Predicate types, one per kind of record:
//! - `https://custody.dev/artifact/v1`: the artifact's record (commit,
//!   build, repository, who reported it);
//! - `https://custody.dev/attestation/<type>/v1`: an attestation of that
//!   type (`generic`, `junit`, `snyk`, `custom/<name>`...), its whole record
//!   (verdict, reasons, summary, evidence digests).
//!
//! Each predicate also names the log it came from (`origin`) so a reader
//! can find its ledger entry.

use axum::Json;
use axum::extract::{Path, State};
use custody_api::{Artifact, IntotoExport};
use custody_domain::Permission;
use custody_ledger::dsse::{INTOTO_PAYLOAD_TYPE, key_id};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

fn subject(a: &Artifact) -> Value {
    let name = if a.display_name.is_empty() {
        &a.name
    } else {
        &a.display_name
    };
    json!({"name": name, "digest": {"sha256": a.fingerprint}})
}

/// `custom:coverage` → `custom/coverage`: a path segment of the type URI.
fn predicate_type(kind: &str) -> String {
    format!(
        "https://custody.dev/attestation/{}/v1",
        kind.replace(':', "/")
    )
}

/// The trail's artifacts and attestations as signed in-toto statements.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/intoto", tag = "trails",
    params(("org" = String, Path), ("flow" = String, Path), ("trail" = String, Path)),
    responses((status = 200, body = IntotoExport), (status = 404)))]
pub async fn export(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow, trail)): Path<(String, String, String)>,
) -> ApiResult<Json<IntotoExport>> {
    caller.require(Permission::Read)?;
    let org = &caller.0.org;
    let data = s.store.get_trail(caller.0.org_id, &flow, &trail).await?;
    let origin = s.signer.origin(org);
    let mut statements = Vec::new();
    let mut skipped = Vec::new();
    for a in &data.artifacts {
        statements.push(json!({
            "_type": STATEMENT_TYPE,
            "subject": [subject(a)],
            "predicateType": "https://custody.dev/artifact/v1",
            "predicate": {"origin": origin, "artifact": a},
        }));
    }
    for att in &data.attestations {
        let subjects: Vec<Value> = data
            .artifacts
            .iter()
            .filter(|a| match (&att.fingerprint, &att.artifact) {
                (Some(fp), _) => &a.fingerprint == fp,
                (None, Some(name)) => &a.name == name,
                (None, None) => true,
            })
            .map(subject)
            .collect();
        if subjects.is_empty() {
            skipped.push(format!(
                "attestation '{}' ({}): no artifact of the trail to be its subject yet",
                att.name, att.id
            ));
            continue;
        }
        statements.push(json!({
            "_type": STATEMENT_TYPE,
            "subject": subjects,
            "predicateType": predicate_type(&att.kind),
            "predicate": {"origin": origin, "attestation": att},
        }));
    }
    let envelopes = statements
        .iter()
        .map(|st| {
            let payload = serde_json::to_vec(st)
                .map_err(|e| ApiError::internal(format!("cannot encode a statement: {e}")))?;
            Ok(s.signer.envelope(INTOTO_PAYLOAD_TYPE, &payload))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let public = s.signer.public_key();
    Ok(Json(IntotoExport {
        keyid: key_id(&public),
        public_key: hex::encode(public),
        verifier_key: s
            .signer
            .verifier(org)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .encode(),
        envelopes,
        skipped,
    }))
}
