//! What the entries say of the records they wrote, replayed in ledger
//! order: the latest document of each record, accounts and keys through
//! their rotations and revocations, environments across renames, the
//! intervals of what ran.

use std::collections::HashMap;

use serde_json::Value;

/// What the ledger says of a record, to hold the record to it.
pub(super) struct Recorded {
    pub(super) seq: u64,
    pub(super) record: Value,
}

/// Names environments by identity across renames: an environment keeps the
/// identity it was first seen with, and a name given up by a rename is a
/// new environment if it comes back.
#[derive(Default)]
pub(super) struct Identities {
    pub(super) by_name: HashMap<String, u64>,
    pub(super) next: u64,
}

impl Identities {
    pub(super) fn of(&mut self, name: &str) -> u64 {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        self.next += 1;
        self.by_name.insert(name.to_string(), self.next);
        self.next
    }

    pub(super) fn rename(&mut self, old: &str, new: &str) {
        let id = self.of(old);
        self.by_name.remove(old);
        self.by_name.insert(new.to_string(), id);
    }
}

/// What the ledger says of the records it wrote, to hold them to it.
#[derive(Default)]
pub(super) struct Ledgered {
    pub(super) attestations: HashMap<String, Recorded>,
    pub(super) snapshots: HashMap<(u64, i64), Recorded>,
    /// Artifact reports have no key of their own: each is known by its
    /// whole record (canonical JSON), with the entries that wrote one so.
    pub(super) artifacts: HashMap<String, Vec<u64>>,
    /// The latest entry of each trail (flow, name): a trail begun again
    /// is written again, whole.
    pub(super) trails: HashMap<(String, String), Recorded>,
    pub(super) policies: HashMap<(String, i64), Recorded>,
    pub(super) evaluations: HashMap<(u64, i64), Recorded>,
    pub(super) allowlist: HashMap<(u64, String), Recorded>,
    /// Accounts and keys as their entries leave them, replayed.
    pub(super) accounts: HashMap<String, Account>,
    pub(super) keys: HashMap<String, Key>,
    /// Flow templates by (flow, version); flows' description and tags as
    /// their latest entries left them.
    pub(super) templates: HashMap<(String, i64), Recorded>,
    pub(super) flows: HashMap<String, Recorded>,
    /// The policies attached to each environment, replayed.
    pub(super) attached: HashMap<u64, (u64, std::collections::BTreeSet<String>)>,
    /// Each environment's type, description and archiving, replayed.
    pub(super) environments: HashMap<u64, Recorded>,
    /// Whole documents: attestation types by (name, version), control
    /// versions by (identifier, version), actions by name (the latest).
    pub(super) types: HashMap<(String, i64), Recorded>,
    pub(super) controls: HashMap<(String, i64), Recorded>,
    pub(super) actions: HashMap<String, Recorded>,
    /// Evidence files by (attestation, file name).
    pub(super) evidence: HashMap<(String, String), Recorded>,
    /// SBOM attestations: the SHA-256 of their components' JSON.
    pub(super) components: HashMap<String, (u64, String)>,
    /// What ran when, replayed from the snapshot entries' changes.
    pub(super) runs: HashMap<u64, Runs>,
    pub(super) envs: Identities,
}

/// An artifact (name, fingerprint) running with so many instances from one
/// snapshot to another (`OPEN` while it still runs).
pub(super) type Interval = (u64, String, String, i64, i64, i64);
pub(super) const OPEN: i64 = 2_147_483_647;

/// One environment's replay: intervals still open, and those closed, each
/// with the entry that opened it.
#[derive(Default)]
pub(super) struct Runs {
    pub(super) open: HashMap<(String, String), (i64, i64, u64)>,
    pub(super) closed: Vec<(Interval, u64)>,
}

/// An account as its entries leave it: who may act, and how far.
pub(super) struct Account {
    pub(super) seq: u64,
    pub(super) role: Value,
    pub(super) server_admin: bool,
    pub(super) deleted_at: Option<i64>,
}

/// A key as its entries leave it: whose, until when, whether revoked.
pub(super) struct Key {
    pub(super) seq: u64,
    pub(super) service_account: Value,
    pub(super) expires_at: Option<i64>,
    pub(super) revoked_at: Option<i64>,
    /// SHA-256 of the stored key hash (entries written since it was added).
    pub(super) hash_sha256: Option<String>,
}

pub(super) fn key_of(seq: u64, r: &Value) -> Option<(String, Key)> {
    Some((
        r.get("id")?.as_str()?.to_string(),
        Key {
            seq,
            service_account: r.get("service_account").cloned().unwrap_or(Value::Null),
            expires_at: r.get("expires_at").and_then(Value::as_i64),
            revoked_at: None,
            hash_sha256: r
                .get("hash_sha256")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
    ))
}

/// A flow's rename, replayed: the records of the flow say its new name
/// from then on, as the store rewrote them in the same transaction.
#[allow(clippy::too_many_arguments)]
fn rename_flow(
    old: &str,
    new: &str,
    seq: u64,
    flows: &mut HashMap<String, Recorded>,
    trails: &mut HashMap<(String, String), Recorded>,
    templates: &mut HashMap<(String, i64), Recorded>,
    attestations: &mut HashMap<String, Recorded>,
    artifacts: &mut HashMap<String, Vec<u64>>,
) {
    let renamed = |v: &Value| v.get("flow").and_then(Value::as_str) == Some(old);
    let new_value = Value::String(new.to_string());
    if let Some(mut f) = flows.remove(old) {
        f.seq = seq;
        flows.insert(new.to_string(), f);
    }
    let moved: Vec<(String, String)> = trails.keys().filter(|(f, _)| f == old).cloned().collect();
    for key in moved {
        if let Some(mut t) = trails.remove(&key) {
            t.record["flow"] = new_value.clone();
            trails.insert((new.to_string(), key.1), t);
        }
    }
    let moved: Vec<(String, i64)> = templates
        .keys()
        .filter(|(f, _)| f == old)
        .cloned()
        .collect();
    for key in moved {
        if let Some(mut t) = templates.remove(&key) {
            t.record["flow"] = new_value.clone();
            templates.insert((new.to_string(), key.1), t);
        }
    }
    for a in attestations.values_mut().filter(|a| renamed(&a.record)) {
        a.record["flow"] = new_value.clone();
    }
    // Artifact reports are known by their whole record.
    let moved: Vec<String> = artifacts
        .keys()
        .filter(|k| serde_json::from_str::<Value>(k).is_ok_and(|v| renamed(&v)))
        .cloned()
        .collect();
    for key in moved {
        let (Some(seqs), Ok(mut v)) = (artifacts.remove(&key), serde_json::from_str::<Value>(&key))
        else {
            continue;
        };
        v["flow"] = new_value.clone();
        if let Ok(text) = custody_ledger::canonical_json(&v) {
            artifacts.entry(text).or_default().extend(seqs);
        }
    }
}

/// Keeps what an entry says of the records it wrote.
pub(super) fn note_record(seq: u64, kind: &str, record: Value, l: &mut Ledgered) {
    let Ledgered {
        attestations,
        snapshots,
        artifacts,
        trails,
        policies,
        evaluations,
        allowlist,
        accounts,
        keys,
        templates,
        flows,
        attached,
        environments,
        types,
        controls,
        actions,
        evidence,
        components,
        runs,
        envs,
    } = l;
    let text = |f: &str| record.get(f).and_then(Value::as_str).map(str::to_string);
    match kind {
        "trail" => {
            if let (Some(flow), Some(name)) = (text("flow"), text("name")) {
                trails.insert((flow, name), Recorded { seq, record });
            }
        }
        "policy" => {
            if let (Some(name), Some(v)) =
                (text("name"), record.get("version").and_then(Value::as_i64))
            {
                policies.insert((name, v), Recorded { seq, record });
            }
        }
        "evaluation" => {
            if let (Some(env), Some(n)) = (
                text("environment"),
                record.get("evaluation").and_then(Value::as_i64),
            ) {
                let id = envs.of(&env);
                evaluations.insert((id, n), Recorded { seq, record });
            }
        }
        "evidence" => {
            if let (Some(att), Some(name)) = (text("attestation_id"), text("filename")) {
                evidence.insert((att, name), Recorded { seq, record });
            }
        }
        "attestation_type" => {
            if let (Some(name), Some(v)) =
                (text("name"), record.get("version").and_then(Value::as_i64))
            {
                types.insert((name, v), Recorded { seq, record });
            }
        }
        "control" => {
            if let (Some(id), Some(v)) = (
                text("identifier"),
                record.get("version").and_then(Value::as_i64),
            ) {
                controls.insert((id, v), Recorded { seq, record });
            }
        }
        "action" => {
            if let Some(name) = text("name") {
                actions.insert(name, Recorded { seq, record });
            }
        }
        "flow_template" => {
            if let (Some(flow), Some(v)) =
                (text("flow"), record.get("version").and_then(Value::as_i64))
            {
                templates.insert((flow, v), Recorded { seq, record });
            }
        }
        "flow" if record.get("renamed_to").is_some() => {
            if let (Some(old), Some(new)) = (text("name"), text("renamed_to")) {
                rename_flow(
                    &old,
                    &new,
                    seq,
                    flows,
                    trails,
                    templates,
                    attestations,
                    artifacts,
                );
            }
        }
        "flow" => {
            let Some(name) = text("name") else { return };
            let f = flows.entry(name).or_insert_with(|| Recorded {
                seq,
                record: serde_json::json!({"description": null, "tags": {}}),
            });
            f.seq = seq;
            for field in ["description", "tags"] {
                if let Some(v) = record.get(field) {
                    f.record[field] = v.clone();
                }
            }
        }
        "policy_attachment" => {
            let Some(env) = text("environment") else {
                return;
            };
            let id = envs.of(&env);
            let names = |field: &str| -> Vec<String> {
                record
                    .get(field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            };
            let set = attached.entry(id).or_default();
            set.0 = seq;
            set.1.extend(names("attached"));
            for n in names("detached") {
                set.1.remove(&n);
            }
        }
        "service_account" => {
            let Some(name) = text("name") else { return };
            if record.get("created_at").is_some() {
                accounts.insert(
                    name,
                    Account {
                        seq,
                        role: record.get("role").cloned().unwrap_or(Value::Null),
                        server_admin: record
                            .get("server_admin")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        deleted_at: None,
                    },
                );
            } else if let Some(a) = accounts.get_mut(&name) {
                a.seq = seq;
                if let Some(role) = record.get("role") {
                    a.role = role.clone();
                }
                if let Some(t) = record.get("deleted_at").and_then(Value::as_i64) {
                    a.deleted_at = Some(t);
                    for id in record
                        .get("revoked_keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(k) = id.as_str().and_then(|id| keys.get_mut(id)) {
                            k.seq = seq;
                            k.revoked_at = Some(t);
                        }
                    }
                }
            }
        }
        "api_key" => {
            // A rotation says the new key and what became of the old one.
            if let Some(new) = record.get("key") {
                if let Some((id, k)) = key_of(seq, new) {
                    keys.insert(id, k);
                }
                let old = &record["replaces"];
                if let Some(k) = old
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| keys.get_mut(id))
                {
                    k.seq = seq;
                    k.expires_at = old.get("expires_at").and_then(Value::as_i64);
                    k.revoked_at = old.get("revoked_at").and_then(Value::as_i64);
                }
            } else if let Some((id, k)) = key_of(seq, &record) {
                keys.insert(id, k);
            }
        }
        "api_key_revoked" => {
            if let Some(k) = text("id").and_then(|id| keys.get_mut(&id)) {
                k.seq = seq;
                k.revoked_at = record.get("revoked_at").and_then(Value::as_i64);
            }
        }
        "allowlist" => {
            if let (Some(env), Some(fp)) = (text("environment"), text("fingerprint")) {
                let id = envs.of(&env);
                allowlist.insert((id, fp), Recorded { seq, record });
            }
        }
        "artifact" => {
            if let Ok(text) = custody_ledger::canonical_json(&record) {
                artifacts.entry(text).or_default().push(seq);
            }
        }
        "attestation" => {
            if let Some(id) = record.get("id").and_then(Value::as_str) {
                if let Some(d) = record["data"]
                    .get("components_sha256")
                    .and_then(Value::as_str)
                {
                    components.insert(id.to_string(), (seq, d.to_string()));
                }
                attestations.insert(id.to_string(), Recorded { seq, record });
            }
        }
        "snapshot" => {
            if let (Some(env), Some(n)) = (
                record.get("environment").and_then(Value::as_str),
                record.get("snapshot").and_then(Value::as_i64),
            ) {
                let id = envs.of(env);
                // A change closes the artifact's running interval at the
                // snapshot before and opens one with its new count: the
                // store's own rule, so the intervals follow from the log.
                let r = runs.entry(id).or_default();
                for ch in record["changes"].as_array().into_iter().flatten() {
                    let key = (
                        ch["name"].as_str().unwrap_or_default().to_string(),
                        ch["fingerprint"].as_str().unwrap_or_default().to_string(),
                    );
                    if ch["was"].as_i64().unwrap_or(0) > 0
                        && let Some((first, inst, opened)) = r.open.remove(&key)
                    {
                        r.closed.push((
                            (id, key.0.clone(), key.1.clone(), inst, first, n - 1),
                            opened,
                        ));
                    }
                    let now = ch["now"].as_i64().unwrap_or(0);
                    if now > 0 {
                        r.open.insert(key, (n, now, seq));
                    }
                }
                snapshots.insert((id, n), Recorded { seq, record });
            }
        }
        "environment" => {
            if let (Some(old), Some(new)) = (
                record.get("name").and_then(Value::as_str),
                record.get("renamed_to").and_then(Value::as_str),
            ) {
                envs.rename(old, new);
            } else if let Some(name) = record.get("name").and_then(Value::as_str) {
                let id = envs.of(name);
                let e = environments.entry(id).or_insert_with(|| Recorded {
                    seq,
                    record: serde_json::json!({"type": null, "description": null, "archived": false}),
                });
                e.seq = seq;
                if record.get("type").is_some() {
                    e.record["type"] = record["type"].clone();
                    e.record["description"] =
                        record.get("description").cloned().unwrap_or(Value::Null);
                }
                if record.get("archived").and_then(Value::as_bool) == Some(true) {
                    e.record["archived"] = Value::Bool(true);
                }
            }
        }
        _ => {}
    }
}
