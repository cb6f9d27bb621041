//! The ledger and its proofs: the latest (or any kept) signed checkpoint,
//! the key that signs it, inclusion proofs of entries, consistency proofs
//! between tree sizes, and runs of entries. Everything an auditor needs to
//! check the record without trusting the server.

use axum::Json;
use axum::extract::{Query, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_api::{
    Checkpoint, ConsistencyProof, InclusionProof, LedgerAudit, LedgerEntries, LedgerEntry,
    LedgerKey,
};
use custody_domain::Permission;
use custody_ledger::merkle::Hash;
use custody_store::ledger::RecordRef;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Entries one request returns at most.
const MAX_ENTRIES: u64 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CheckpointQuery {
    /// The checkpoint of exactly this tree size; the latest when absent.
    pub size: Option<u64>,
}

/// The latest signed checkpoint of the organisation's ledger, with its
/// witnesses' cosignatures (404 until the first one is issued).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/ledger/checkpoint", tag = "ledger",
    params(("org" = String, Path), CheckpointQuery),
    responses((status = 200, body = Checkpoint), (status = 404)))]
pub async fn checkpoint(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<CheckpointQuery>,
) -> ApiResult<Json<Checkpoint>> {
    caller.require(Permission::Read)?;
    let org = &caller.0.org;
    let cp = s.store.checkpoint(org, q.size).await?.ok_or_else(|| {
        ApiError::not_found(match q.size {
            Some(n) => format!("no checkpoint of size {n} was issued"),
            None => "no checkpoint was issued yet".to_string(),
        })
    })?;
    let witnesses = cp
        .cosignatures
        .iter()
        .filter_map(|l| custody_ledger::note::Signature::parse_line(l.trim_end()).ok())
        .map(|s| s.name)
        .collect();
    Ok(Json(Checkpoint {
        origin: s.signer.origin(org),
        size: cp.size,
        root: B64.encode(cp.root),
        note: cp.cosigned_note(),
        witnesses,
        created_at: cp.created_at,
    }))
}

/// The verifier key of the organisation's checkpoints.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/ledger/key", tag = "ledger",
    params(("org" = String, Path)),
    responses((status = 200, body = LedgerKey)))]
pub async fn key(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<LedgerKey>> {
    caller.require(Permission::Read)?;
    let org = &caller.0.org;
    let v = s
        .signer
        .verifier(org)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(LedgerKey {
        origin: s.signer.origin(org),
        verifier_key: v.encode(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InclusionQuery {
    /// The entry's sequence number.
    pub seq: Option<u64>,
    /// Or its leaf hash (base64 or hex).
    pub leaf_hash: Option<String>,
    /// The tree size to prove against; the current size when absent.
    pub tree_size: Option<u64>,
}

fn parse_hash(text: &str) -> Result<Hash, ApiError> {
    let bytes = if text.len() == 64 {
        hex::decode(text).ok()
    } else {
        B64.decode(text).ok()
    };
    bytes.and_then(|b| Hash::try_from(b).ok()).ok_or_else(|| {
        ApiError::bad_request(format!("'{text}' is not a SHA-256 hash (base64 or hex)"))
    })
}

/// An inclusion proof of one entry.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/ledger/inclusion", tag = "ledger",
    params(("org" = String, Path), InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400), (status = 404), (status = 422)))]
pub async fn inclusion(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<InclusionQuery>,
) -> ApiResult<Json<InclusionProof>> {
    caller.require(Permission::Read)?;
    let org = &caller.0.org;
    let seq = match (q.seq, q.leaf_hash.as_deref()) {
        (Some(seq), None) => seq,
        (None, Some(h)) => s.store.seq_of_leaf(org, &parse_hash(h)?).await?,
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of seq and leaf_hash",
            ));
        }
    };
    let (tree_size, leaf, proof) = s.store.inclusion_proof(org, seq, q.tree_size).await?;
    Ok(Json(InclusionProof {
        seq,
        tree_size,
        leaf_hash: B64.encode(leaf),
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ConsistencyQuery {
    /// The older tree size.
    pub old: u64,
    /// The newer tree size; the current size when absent.
    pub new: Option<u64>,
}

/// A consistency proof between two tree sizes.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/ledger/consistency", tag = "ledger",
    params(("org" = String, Path), ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400), (status = 422)))]
pub async fn consistency(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyProof>> {
    caller.require(Permission::Read)?;
    let (new_size, proof) = s
        .store
        .consistency_proof(&caller.0.org, q.old, q.new)
        .await?;
    Ok(Json(ConsistencyProof {
        old_size: q.old,
        new_size,
        proof: proof.iter().map(|h| B64.encode(h)).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EntriesQuery {
    /// The first entry (default 0).
    pub from: Option<u64>,
    /// The last entry, inclusive; at most 1000 entries are returned.
    pub to: Option<u64>,
}

/// Entries `from` to `to`, in order, as stored.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/ledger/entries", tag = "ledger",
    params(("org" = String, Path), EntriesQuery),
    responses((status = 200, body = LedgerEntries), (status = 400)))]
pub async fn entries(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<EntriesQuery>,
) -> ApiResult<Json<LedgerEntries>> {
    caller.require(Permission::Read)?;
    let org = &caller.0.org;
    let from = q.from.unwrap_or(0);
    let to = q.to.unwrap_or(from.saturating_add(MAX_ENTRIES - 1));
    if to < from {
        return Err(ApiError::bad_request(format!(
            "'to' ({to}) is before 'from' ({from})"
        )));
    }
    let limit = (to - from).saturating_add(1).min(MAX_ENTRIES);
    // Sequence numbers are stored as i64: one beyond them names no entry.
    let Ok(from_seq) = i64::try_from(from) else {
        return Ok(Json(LedgerEntries {
            entries: vec![],
            size: s.store.ledger_size(org).await?.max(0) as u64,
        }));
    };
    let size = s.store.ledger_size(org).await?;
    let rows = s.store.ledger_entries(org, from_seq, limit as i64).await?;
    Ok(Json(LedgerEntries {
        entries: rows
            .into_iter()
            .map(|e| LedgerEntry {
                seq: e.seq.max(0) as u64,
                kind: e.kind,
                ts: e.ts,
                entry: e.entry,
                leaf_hash: B64.encode(&e.leaf_hash),
            })
            .collect(),
        size: size.max(0) as u64,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LocateQuery {
    /// What kind of record: `trail`, `artifact`, `attestation` or
    /// `snapshot`.
    pub kind: String,
    /// The record's time, epoch milliseconds: a trail's `updated_at`, an
    /// artifact's or attestation's `created_at`, a snapshot's `timestamp`.
    pub at: i64,
    /// Trail and artifact: the flow.
    pub flow: Option<String>,
    /// Trail and artifact: the trail.
    pub trail: Option<String>,
    /// Artifact: its fingerprint.
    pub fingerprint: Option<String>,
    /// Attestation: its id.
    pub id: Option<String>,
    /// Snapshot: the environment (as named when the snapshot was taken).
    pub environment: Option<String>,
    /// Snapshot: its number.
    pub snapshot: Option<u64>,
}

impl LocateQuery {
    fn record(self) -> ApiResult<RecordRef> {
        fn need(v: Option<String>, kind: &str, field: &str) -> ApiResult<String> {
            v.ok_or_else(|| ApiError::bad_request(format!("a {kind} is located by '{field}' too")))
        }
        let at = self.at;
        Ok(match self.kind.as_str() {
            "trail" => RecordRef::Trail {
                flow: need(self.flow, "trail", "flow")?,
                trail: need(self.trail, "trail", "trail")?,
                at,
            },
            "artifact" => RecordRef::Artifact {
                flow: need(self.flow, "artifact", "flow")?,
                trail: need(self.trail, "artifact", "trail")?,
                fingerprint: need(self.fingerprint, "artifact", "fingerprint")?,
                at,
            },
            "attestation" => RecordRef::Attestation {
                id: need(self.id, "attestation", "id")?,
                at,
            },
            "snapshot" => RecordRef::Snapshot {
                environment: need(self.environment, "snapshot", "environment")?,
                snapshot: self.snapshot.ok_or_else(|| {
                    ApiError::bad_request("a snapshot is located by 'snapshot' too")
                })?,
                at,
            },
            other => {
                return Err(ApiError::bad_request(format!(
                    "kind '{other}' cannot be located: use trail, artifact, attestation or snapshot"
                )));
            }
        })
    }
}

/// The entry that wrote a record (a trail, an artifact report, an
/// attestation or a snapshot), found from the record's time; 404 when no
/// entry is it.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/ledger/locate", tag = "ledger",
    params(("org" = String, Path), LocateQuery),
    responses((status = 200, body = LedgerEntry), (status = 400), (status = 404)))]
pub async fn locate(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<LocateQuery>,
) -> ApiResult<Json<LedgerEntry>> {
    caller.require(Permission::Read)?;
    let org = &caller.0.org;
    let kind = q.kind.clone();
    let record = q.record()?;
    let seq = s
        .store
        .locate_entry(org, &record)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no ledger entry wrote this {kind}")))?;
    let e = s
        .store
        .ledger_entries(org, seq, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal(format!("ledger entry {seq} vanished")))?;
    Ok(Json(LedgerEntry {
        seq: e.seq.max(0) as u64,
        kind: e.kind,
        ts: e.ts,
        entry: e.entry,
        leaf_hash: B64.encode(&e.leaf_hash),
    }))
}

/// Audits the organisation's store against its ledger (admins): every
/// entry re-derived, the tree rebuilt and held to every checkpoint and its
/// signature, artifacts, attestations and snapshots held to their entries.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/ledger/verify", tag = "ledger",
    params(("org" = String, Path)),
    responses((status = 200, body = LedgerAudit), (status = 403)))]
pub async fn verify(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<LedgerAudit>> {
    caller.require(Permission::ManageServiceAccounts)?;
    let org = &caller.0.org;
    let key = s
        .signer
        .verifier(org)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(s.store.verify_ledger(org, Some(&key)).await?))
}
