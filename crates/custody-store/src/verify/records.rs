//! Step 3 of `ledger verify`: every table a write changes, held to what
//! the entries say of it ([`super::replay`]).

use std::collections::{BTreeMap, HashMap};

use custody_api::AuditProblem;
use serde_json::Value;
use sha2::Digest;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::problem;
use super::replay::{Interval, Ledgered, OPEN, Recorded};
use crate::{Store, StoreResult};

impl Store {
    /// Holds attestations and snapshots to the entries that wrote them.
    pub(super) async fn hold_records(
        &self,
        org_id: i64,
        ledgered: Ledgered,
        problems: &mut Vec<AuditProblem>,
    ) -> StoreResult<u64> {
        let Ledgered {
            mut attestations,
            mut snapshots,
            mut artifacts,
            mut trails,
            mut policies,
            mut evaluations,
            mut allowlist,
            mut accounts,
            mut keys,
            mut templates,
            mut flows,
            mut attached,
            mut environments,
            mut types,
            mut controls,
            mut actions,
            mut evidence,
            mut components,
            mut runs,
            mut envs,
        } = ledgered;
        let mut records = 0u64;
        // Artifacts: each row's record must be one an entry wrote, and its
        // queried columns must say what the record says.
        let rows = sqlx::query(
            "SELECT id, template_name, fingerprint, git_commit, doc FROM artifacts WHERE org_id = $1 ORDER BY id",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let id: i64 = r.try_get(0)?;
            let doc: String = r.try_get(4)?;
            let doc: Value = serde_json::from_str(&doc).unwrap_or(Value::Null);
            let key = Some(format!("#{id} {}", doc["name"].as_str().unwrap_or("?")));
            let text = custody_ledger::canonical_json(&doc).unwrap_or_default();
            let seq = artifacts.get_mut(&text).and_then(|seqs| seqs.pop());
            let Some(seq) = seq else {
                problems.push(problem(
                    None,
                    "artifacts",
                    key,
                    "no ledger entry wrote this artifact as it is (edited, or inserted outside a write)".into(),
                ));
                continue;
            };
            for (column, row, entry) in [
                (
                    "name",
                    Value::from(r.try_get::<String, _>(1)?),
                    doc["name"].clone(),
                ),
                (
                    "fingerprint",
                    Value::from(r.try_get::<String, _>(2)?),
                    doc["fingerprint"].clone(),
                ),
                (
                    "git_commit",
                    Value::from(r.try_get::<Option<String>, _>(3)?),
                    doc["git_commit"].clone(),
                ),
            ] {
                if row != entry {
                    problems.push(problem(
                        Some(seq),
                        "artifacts",
                        key.clone(),
                        format!("its {column} column is {row}, the entry says {entry}"),
                    ));
                }
            }
        }
        let mut gone: Vec<u64> = artifacts.into_values().flatten().collect();
        gone.sort();
        for seq in gone {
            problems.push(problem(
                Some(seq),
                "artifacts",
                None,
                "the entry wrote an artifact that is not there as written (deleted or edited)"
                    .into(),
            ));
        }

        let rows = sqlx::query(
            "SELECT id, name, kind, artifact_name, fingerprint, compliant, doc FROM attestations WHERE org_id = $1 ORDER BY id",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let id: String = r.try_get(0)?;
            let Some(rec) = attestations.remove(&id) else {
                problems.push(problem(
                    None,
                    "attestations",
                    Some(id),
                    "no ledger entry wrote this attestation".into(),
                ));
                continue;
            };
            let doc: String = r.try_get(6)?;
            let doc: Value = serde_json::from_str(&doc).unwrap_or(Value::Null);
            let mut differs = Vec::new();
            if custody_ledger::canonical_json(&doc).ok()
                != custody_ledger::canonical_json(&rec.record).ok()
            {
                differs.push("its document differs from the entry".to_string());
            }
            let compliant: i64 = r.try_get(5)?;
            let columns: [(&str, Value, Value); 5] = [
                (
                    "name",
                    Value::from(r.try_get::<String, _>(1)?),
                    rec.record["name"].clone(),
                ),
                (
                    "type",
                    Value::from(r.try_get::<String, _>(2)?),
                    rec.record["type"].clone(),
                ),
                (
                    "artifact",
                    Value::from(r.try_get::<Option<String>, _>(3)?),
                    rec.record["artifact"].clone(),
                ),
                (
                    "fingerprint",
                    Value::from(r.try_get::<Option<String>, _>(4)?),
                    rec.record["fingerprint"].clone(),
                ),
                (
                    "compliant",
                    Value::from(compliant != 0),
                    rec.record["compliant"].clone(),
                ),
            ];
            for (column, row, entry) in columns {
                if row != entry {
                    differs.push(format!("its {column} is {row}, the entry says {entry}"));
                }
            }
            for d in differs {
                problems.push(problem(Some(rec.seq), "attestations", Some(id.clone()), d));
            }
        }
        for (id, rec) in attestations {
            problems.push(problem(
                Some(rec.seq),
                "attestations",
                Some(id),
                "the entry wrote this attestation; it is gone".into(),
            ));
        }

        let rows = sqlx::query(
            "SELECT e.name, s.idx, s.artifacts, s.instances, s.changes FROM env_snapshots s \
             JOIN environments e ON e.id = s.env_id WHERE e.org_id = $1 ORDER BY e.name, s.idx",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let env: String = r.try_get(0)?;
            let idx: i64 = r.try_get(1)?;
            let key = format!("{env}#{idx}");
            let Some(rec) = snapshots.remove(&(envs.of(&env), idx)) else {
                problems.push(problem(
                    None,
                    "env_snapshots",
                    Some(key),
                    "no ledger entry wrote this snapshot".into(),
                ));
                continue;
            };
            let changes = rec.record["changes"]
                .as_array()
                .map_or(0, |c| c.len() as i64);
            for (column, row, entry) in [
                (
                    "artifacts",
                    r.try_get::<i64, _>(2)?,
                    rec.record["artifacts"].as_i64().unwrap_or(-1),
                ),
                (
                    "instances",
                    r.try_get::<i64, _>(3)?,
                    rec.record["instances"].as_i64().unwrap_or(-1),
                ),
                ("changes", r.try_get::<i64, _>(4)?, changes),
            ] {
                if row != entry {
                    problems.push(problem(
                        Some(rec.seq),
                        "env_snapshots",
                        Some(key.clone()),
                        format!("its {column} is {row}, the entry says {entry}"),
                    ));
                }
            }
        }
        let mut gone: Vec<(u64, String)> = snapshots
            .into_values()
            .map(|rec| {
                let env = rec.record["environment"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string();
                (rec.seq, format!("{env}#{}", rec.record["snapshot"]))
            })
            .collect();
        gone.sort();
        for (seq, key) in gone {
            problems.push(problem(
                Some(seq),
                "env_snapshots",
                Some(key),
                "the entry wrote this snapshot; it is gone".into(),
            ));
        }
        // Trails: the row's document is the latest entry's record.
        records += self
            .hold_rows(
                org_id,
                problems,
                "trails",
                "SELECT f.name, t.name, t.doc FROM trails t JOIN flows f ON f.id = t.flow_id \
                 WHERE t.org_id = $1 ORDER BY f.name, t.name",
                &mut trails,
                |r| {
                    let (flow, name): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    let doc = json_column(r, 2)?;
                    let label = format!("{flow}/{name}");
                    Ok(((flow, name), label, vec![("document", doc, None)]))
                },
                |(flow, name), _| format!("{flow}/{name}"),
            )
            .await?;

        // Policy versions: name, version, text and digest as written.
        records += self
            .hold_rows(
                org_id,
                problems,
                "policy_versions",
                "SELECT p.name, v.version, v.content, v.sha256 FROM policy_versions v \
                 JOIN policies p ON p.id = v.policy_id WHERE p.org_id = $1 ORDER BY p.name, v.version",
                &mut policies,
                |r| {
                    let (name, version): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                    let label = format!("{name} v{version}");
                    Ok((
                        (name, version),
                        label,
                        vec![
                            ("content", Value::from(r.try_get::<String, _>(2)?), Some("content")),
                            ("sha256", Value::from(r.try_get::<String, _>(3)?), Some("sha256")),
                        ],
                    ))
                },
                |(name, v), _| format!("{name} v{v}"),
            )
            .await?;

        // Evaluations: the verdict, and the document the entry's digest
        // commits to.
        records += self
            .hold_rows(
                org_id,
                problems,
                "env_evaluations",
                "SELECT e.name, v.seq, v.status, v.doc, v.snapshot_idx FROM env_evaluations v \
                 JOIN environments e ON e.id = v.env_id WHERE e.org_id = $1 ORDER BY e.name, v.seq",
                &mut evaluations,
                |r| {
                    let (env, n): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                    let doc: String = r.try_get(3)?;
                    let digest = hex::encode(sha2::Sha256::digest(doc.as_bytes()));
                    Ok((
                        (envs.of(&env), n),
                        format!("{env} evaluation {n}"),
                        vec![
                            (
                                "status",
                                Value::from(r.try_get::<String, _>(2)?),
                                Some("status"),
                            ),
                            (
                                "document's SHA-256",
                                Value::from(digest),
                                Some("doc_sha256"),
                            ),
                            (
                                "snapshot",
                                Value::from(r.try_get::<i64, _>(4)?),
                                Some("snapshot"),
                            ),
                        ],
                    ))
                },
                |_, r| {
                    format!(
                        "{} evaluation {}",
                        r["environment"].as_str().unwrap_or("?"),
                        r["evaluation"]
                    )
                },
            )
            .await?;

        // The allowlist: what is allowed, why, and on whose word.
        records += self
            .hold_rows(
                org_id,
                problems,
                "allowlist",
                "SELECT e.name, a.fingerprint, a.artifact_name, a.reason, a.created_by, a.created_at FROM allowlist a \
                 JOIN environments e ON e.id = a.env_id WHERE e.org_id = $1 ORDER BY e.name, a.fingerprint",
                &mut allowlist,
                |r| {
                    let (env, fp): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    let label = format!("{env} {fp}");
                    Ok((
                        (envs.of(&env), fp),
                        label,
                        vec![
                            ("artifact_name", Value::from(r.try_get::<Option<String>, _>(2)?), Some("artifact_name")),
                            ("reason", Value::from(r.try_get::<String, _>(3)?), Some("reason")),
                            ("created_by", Value::from(r.try_get::<String, _>(4)?), Some("created_by")),
                            ("created_at", Value::from(r.try_get::<i64, _>(5)?), Some("created_at")),
                        ],
                    ))
                },
                |_, r| {
                    format!(
                        "{} {}",
                        r["environment"].as_str().unwrap_or("?"),
                        r["fingerprint"].as_str().unwrap_or("?")
                    )
                },
            )
            .await?;

        // Flow templates: what a flow's trails must show, as written.
        records += self
            .hold_rows(
                org_id,
                problems,
                "flow_templates",
                "SELECT f.name, t.version, t.yaml FROM flow_templates t JOIN flows f ON f.id = t.flow_id \
                 WHERE f.org_id = $1 ORDER BY f.name, t.version",
                &mut templates,
                |r| {
                    let (flow, v): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                    let label = format!("{flow} v{v}");
                    Ok(((flow, v), label, vec![("yaml", Value::from(r.try_get::<String, _>(2)?), Some("yaml"))]))
                },
                |(flow, v), _| format!("{flow} v{v}"),
            )
            .await?;

        // Flows: description and tags (policies read the tags).
        records += self
            .hold_rows(
                org_id,
                problems,
                "flows",
                "SELECT name, description, tags FROM flows WHERE org_id = $1 ORDER BY name",
                &mut flows,
                |r| {
                    let name: String = r.try_get(0)?;
                    let tags: Option<String> = r.try_get(2)?;
                    let tags: Value = tags
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or_else(|| serde_json::json!({}));
                    Ok((
                        name.clone(),
                        name,
                        vec![
                            (
                                "description",
                                Value::from(r.try_get::<Option<String>, _>(1)?),
                                Some("description"),
                            ),
                            ("tag set", tags, Some("tags")),
                        ],
                    ))
                },
                |name, _| name.clone(),
            )
            .await?;

        // Environments: their type, description, and whether archived
        // (an archived environment takes no reports).
        records += self
            .hold_rows(
                org_id,
                problems,
                "environments",
                "SELECT name, kind, description, archived_at FROM environments WHERE org_id = $1 ORDER BY name",
                &mut environments,
                |r| {
                    let name: String = r.try_get(0)?;
                    Ok((
                        envs.of(&name),
                        name,
                        vec![
                            ("type", Value::from(r.try_get::<String, _>(1)?), Some("type")),
                            ("description", Value::from(r.try_get::<Option<String>, _>(2)?), Some("description")),
                            ("archived", Value::from(r.try_get::<Option<i64>, _>(3)?.is_some()), Some("archived")),
                        ],
                    ))
                },
                |_, _| "an environment".to_string(),
            )
            .await?;

        // Policy attachments: which policies judge each environment.
        let rows = sqlx::query(
            "SELECT e.name, p.name FROM environment_policies ep JOIN environments e ON e.id = ep.env_id \
             JOIN policies p ON p.id = ep.policy_id WHERE e.org_id = $1 ORDER BY e.name, p.name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        let mut in_db: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            in_db.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        let mut envs_seen: Vec<String> = in_db.keys().cloned().collect();
        for (name, id) in &envs.by_name {
            if attached.contains_key(id) && !in_db.contains_key(name) {
                envs_seen.push(name.clone());
            }
        }
        envs_seen.sort();
        envs_seen.dedup();
        for env in envs_seen {
            records += 1;
            let row: Vec<String> = in_db.remove(&env).unwrap_or_default();
            let (seq, want) = attached
                .remove(&envs.of(&env))
                .map(|(seq, set)| (Some(seq), set.into_iter().collect::<Vec<_>>()))
                .unwrap_or((None, Vec::new()));
            if row != want {
                problems.push(problem(
                    seq,
                    "environment_policies",
                    Some(env),
                    format!("the policies attached are {row:?}, the entries say {want:?}"),
                ));
            }
        }

        // Runtime intervals ("what ran at T" reads them): each row must be
        // one the snapshot entries' changes imply, and each implied one
        // must be there.
        let mut expected: HashMap<Interval, Vec<u64>> = HashMap::new();
        for (env_id, r) in runs.drain() {
            for (iv, seq) in r.closed {
                expected.entry(iv).or_default().push(seq);
            }
            for ((name, fp), (first, inst, seq)) in r.open {
                expected
                    .entry((env_id, name, fp, inst, first, OPEN))
                    .or_default()
                    .push(seq);
            }
        }
        {
            let mut rows = sqlx::query(
                "SELECT e.name, a.name, a.fingerprint, i.instances, i.first_idx, i.last_idx FROM env_intervals i \
                 JOIN environments e ON e.id = i.env_id JOIN runtime_artifacts a ON a.id = i.artifact_id \
                 WHERE e.org_id = $1",
            )
            .bind(org_id)
            .fetch(&self.db.read);
            while let Some(r) = futures::TryStreamExt::try_next(&mut rows).await? {
                records += 1;
                let env: String = r.try_get(0)?;
                let name: String = r.try_get(1)?;
                let fp = hex::encode(r.try_get::<Vec<u8>, _>(2)?);
                let (inst, first, last): (i64, i64, i64) =
                    (r.try_get(3)?, r.try_get(4)?, r.try_get(5)?);
                let key = (envs.of(&env), name.clone(), fp, inst, first, last);
                let found = match expected.get_mut(&key) {
                    Some(seqs) if !seqs.is_empty() => {
                        seqs.pop();
                        true
                    }
                    _ => false,
                };
                if !found {
                    problems.push(problem(
                        None,
                        "env_intervals",
                        Some(format!("{env} {name}")),
                        format!(
                            "{inst} instance(s) from #{first} to {}: no snapshot entry says so (edited, or inserted outside a write)",
                            if last == OPEN { "now".to_string() } else { format!("#{last}") }
                        ),
                    ));
                }
            }
        }
        let mut missing: Vec<(u64, Interval)> = expected
            .into_iter()
            .flat_map(|(iv, seqs)| seqs.into_iter().map(move |s| (s, iv.clone())))
            .collect();
        missing.sort_by_key(|(seq, _)| *seq);
        let env_names: HashMap<u64, String> = envs
            .by_name
            .iter()
            .map(|(n, id)| (*id, n.clone()))
            .collect();
        for (seq, (env_id, name, _, inst, first, last)) in missing {
            let env = env_names.get(&env_id).map_or("?", String::as_str);
            problems.push(problem(
                Some(seq),
                "env_intervals",
                Some(format!("{env} {name}")),
                format!(
                    "the entries say it ran with {inst} instance(s) from #{first} to {}; the interval is gone",
                    if last == OPEN { "now".to_string() } else { format!("#{last}") }
                ),
            ));
        }

        // SBOM components: the rows of each attestation, in the order they
        // were written, must hash to the digest its entry holds (the rows'
        // documents are the very JSON that was hashed), and their queried
        // columns must say what their documents say. Streamed: an SBOM can
        // have tens of thousands of components.
        {
            let mut rows = sqlx::query(
                "SELECT attestation_id, doc, name, version, purl FROM sbom_components WHERE org_id = $1 \
                 ORDER BY attestation_id, id",
            )
            .bind(org_id)
            .fetch(&self.db.read);
            let mut current: Option<(String, sha2::Sha256, u64)> = None;
            fn finish(
                cur: Option<(String, sha2::Sha256, u64)>,
                components: &mut HashMap<String, (u64, String)>,
                problems: &mut Vec<AuditProblem>,
            ) {
                let Some((att, mut h, _)) = cur else { return };
                h.update(b"]");
                let got = hex::encode(h.finalize());
                match components.remove(&att) {
                    Some((seq, want)) if want != got => problems.push(problem(
                        Some(seq),
                        "sbom_components",
                        Some(att),
                        "the components differ from those the entry's digest was taken of".into(),
                    )),
                    Some(_) => {}
                    None => problems.push(problem(
                        None,
                        "sbom_components",
                        Some(att),
                        "components of an attestation whose entry lists none".into(),
                    )),
                }
            }
            while let Some(r) = futures::TryStreamExt::try_next(&mut rows).await? {
                let att: String = r.try_get(0)?;
                let doc: String = r.try_get(1)?;
                if current.as_ref().is_none_or(|(a, _, _)| *a != att) {
                    finish(current.take(), &mut components, problems);
                    records += 1;
                    let mut h = sha2::Sha256::new();
                    h.update(b"[");
                    current = Some((att.clone(), h, 0));
                }
                if let Some((_, h, n)) = current.as_mut() {
                    if *n > 0 {
                        h.update(b",");
                    }
                    h.update(doc.as_bytes());
                    *n += 1;
                }
                let v: Value = serde_json::from_str(&doc).unwrap_or(Value::Null);
                for (column, row) in [
                    ("name", Value::from(r.try_get::<String, _>(2)?)),
                    ("version", Value::from(r.try_get::<Option<String>, _>(3)?)),
                    ("purl", Value::from(r.try_get::<Option<String>, _>(4)?)),
                ] {
                    let doc_value = v.get(column).cloned().unwrap_or(Value::Null);
                    if row != doc_value {
                        problems.push(problem(
                            components.get(&att).map(|(seq, _)| *seq),
                            "sbom_components",
                            Some(att.clone()),
                            format!("a component's {column} column is {row}, its document says {doc_value}"),
                        ));
                    }
                }
            }
            finish(current.take(), &mut components, problems);
        }
        let mut left: Vec<(String, (u64, String))> = components.into_iter().collect();
        left.sort_by_key(|(_, (seq, _))| *seq);
        for (att, (seq, _)) in left {
            problems.push(problem(
                Some(seq),
                "sbom_components",
                Some(att),
                "the entry lists components; they are gone".into(),
            ));
        }

        // Evidence files: which content an attestation's file name leads
        // to (a row pointed at another blob would serve other content).
        records += self
            .hold_rows(
                org_id,
                problems,
                "evidence",
                "SELECT attestation_id, filename, sha256 FROM evidence WHERE org_id = $1 ORDER BY attestation_id, filename",
                &mut evidence,
                |r| {
                    let (att, name): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    let label = format!("{att} {name}");
                    Ok(((att, name), label, vec![("sha256", Value::from(r.try_get::<String, _>(2)?), Some("sha256"))]))
                },
                |(att, name), _| format!("{att} {name}"),
            )
            .await?;

        // Custom attestation types (the schema and rules that judge
        // evidence), control versions and notification actions: each row's
        // document is what its entry wrote.
        records += self
            .hold_rows(
                org_id,
                problems,
                "attestation_types",
                "SELECT name, version, doc FROM attestation_types WHERE org_id = $1 ORDER BY name, version",
                &mut types,
                |r| {
                    let (name, v): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                    let label = format!("{name} v{v}");
                    Ok(((name, v), label, vec![("document", json_column(r, 2)?, None)]))
                },
                |(name, v), _| format!("{name} v{v}"),
            )
            .await?;
        // A control's entry is the control as shown: its fields flattened
        // beside its identity, which the row keeps in other columns.
        for r in controls.values_mut() {
            if let Some(o) = r.record.as_object_mut() {
                for k in [
                    "identifier",
                    "version",
                    "archived",
                    "created_at",
                    "updated_at",
                ] {
                    o.remove(k);
                }
            }
        }
        records += self
            .hold_rows(
                org_id,
                problems,
                "control_versions",
                "SELECT c.identifier, v.version, v.doc FROM control_versions v JOIN controls c ON c.id = v.control_id \
                 WHERE c.org_id = $1 ORDER BY c.identifier, v.version",
                &mut controls,
                |r| {
                    let (id, v): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                    let label = format!("{id} v{v}");
                    Ok(((id, v), label, vec![("document", json_column(r, 2)?, None)]))
                },
                |(id, v), _| format!("{id} v{v}"),
            )
            .await?;
        records += self
            .hold_rows(
                org_id,
                problems,
                "actions",
                "SELECT name, doc FROM actions WHERE org_id = $1 ORDER BY name",
                &mut actions,
                |r| {
                    let name: String = r.try_get(0)?;
                    Ok((
                        name.clone(),
                        name,
                        vec![("document", json_column(r, 1)?, None)],
                    ))
                },
                |name, _| name.clone(),
            )
            .await?;

        // Accounts: who may act, and how far (a role raised or an account
        // brought back in the database would give someone powers).
        let rows = sqlx::query(
            "SELECT name, role, server_admin, deleted_at FROM service_accounts WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let name: String = r.try_get(0)?;
            let Some(a) = accounts.remove(&name) else {
                problems.push(problem(
                    None,
                    "service_accounts",
                    Some(name),
                    "no ledger entry created this account (inserted outside a write)".into(),
                ));
                continue;
            };
            let rec = Recorded {
                seq: a.seq,
                record: serde_json::json!({"role": a.role, "server_admin": a.server_admin, "deleted_at": a.deleted_at}),
            };
            held(
                problems,
                "service_accounts",
                name,
                Some(rec),
                &[
                    (
                        "role",
                        Value::from(r.try_get::<String, _>(1)?),
                        Some("role"),
                    ),
                    (
                        "server_admin",
                        Value::from(r.try_get::<i64, _>(2)? != 0),
                        Some("server_admin"),
                    ),
                    (
                        "deleted_at",
                        Value::from(r.try_get::<Option<i64>, _>(3)?),
                        Some("deleted_at"),
                    ),
                ],
            );
        }
        gone_records(
            problems,
            "service_accounts",
            accounts.into_iter().map(|(name, a)| Recorded {
                seq: a.seq,
                record: serde_json::json!({"name": name}),
            }),
            |r| r["name"].as_str().unwrap_or("?").to_string(),
        );

        // Keys: whose, until when, revoked or not, and (where the entry
        // commits to it) the very hash a token must match.
        let rows = sqlx::query(
            "SELECT k.id, a.name, k.expires_at, k.revoked_at, k.key_hash FROM api_keys k \
             JOIN service_accounts a ON a.id = k.service_account_id WHERE a.org_id = $1 ORDER BY k.id",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        for r in rows {
            records += 1;
            let id: String = r.try_get(0)?;
            let Some(k) = keys.remove(&id) else {
                problems.push(problem(
                    None,
                    "api_keys",
                    Some(id),
                    "no ledger entry created this key (inserted outside a write)".into(),
                ));
                continue;
            };
            let hash: Vec<u8> = r.try_get(4)?;
            let mut columns = vec![
                (
                    "service account",
                    Value::from(r.try_get::<String, _>(1)?),
                    Some("service_account"),
                ),
                (
                    "expires_at",
                    Value::from(r.try_get::<Option<i64>, _>(2)?),
                    Some("expires_at"),
                ),
                (
                    "revoked_at",
                    Value::from(r.try_get::<Option<i64>, _>(3)?),
                    Some("revoked_at"),
                ),
            ];
            if k.hash_sha256.is_some() {
                columns.push((
                    "key hash",
                    Value::from(hex::encode(sha2::Sha256::digest(&hash))),
                    Some("hash_sha256"),
                ));
            }
            let rec = Recorded {
                seq: k.seq,
                record: serde_json::json!({
                    "service_account": k.service_account,
                    "expires_at": k.expires_at,
                    "revoked_at": k.revoked_at,
                    "hash_sha256": k.hash_sha256,
                }),
            };
            held(problems, "api_keys", id, Some(rec), &columns);
        }
        gone_records(
            problems,
            "api_keys",
            keys.into_iter().map(|(id, k)| Recorded {
                seq: k.seq,
                record: serde_json::json!({"id": id}),
            }),
            |r| r["id"].as_str().unwrap_or("?").to_string(),
        );

        problems.sort_by_key(|p| (p.seq.is_none(), p.seq));
        Ok(records)
    }
}

impl Store {
    /// Holds each row `sql` finds (bound to the organisation) to the entry
    /// `row` names for it, then reports the entries whose row is gone.
    #[allow(clippy::too_many_arguments)]
    async fn hold_rows<K: std::hash::Hash + Eq>(
        &self,
        org_id: i64,
        problems: &mut Vec<AuditProblem>,
        table: &str,
        sql: &'static str,
        entries: &mut HashMap<K, Recorded>,
        mut row: impl FnMut(&AnyRow) -> StoreResult<(K, String, Columns)>,
        gone: impl Fn(&K, &Value) -> String,
    ) -> StoreResult<u64> {
        let rows = sqlx::query(sql)
            .bind(org_id)
            .fetch_all(&self.db.read)
            .await?;
        for r in &rows {
            let (key, label, columns) = row(r)?;
            let rec = entries.remove(&key);
            held(problems, table, label, rec, &columns);
        }
        let mut left: Vec<(K, Recorded)> = entries.drain().collect();
        left.sort_by_key(|(_, r)| r.seq);
        for (key, rec) in left {
            problems.push(problem(
                Some(rec.seq),
                table,
                Some(gone(&key, &rec.record)),
                "the entry wrote this record; it is gone".into(),
            ));
        }
        Ok(rows.len() as u64)
    }
}

/// What a row says, column by column: (what, the row's value, the
/// record's field — or the whole record when `None`).
type Columns = Vec<(&'static str, Value, Option<&'static str>)>;

/// A JSON text column, as a value (`null` if it does not parse: the
/// comparison then names it).
fn json_column(r: &AnyRow, i: usize) -> StoreResult<Value> {
    Ok(serde_json::from_str(&r.try_get::<String, _>(i)?).unwrap_or(Value::Null))
}

/// Holds a row to the entry that wrote it: each (what, the row's value,
/// the record's field — or the whole record when `None`).
fn held(
    problems: &mut Vec<AuditProblem>,
    table: &str,
    key: String,
    rec: Option<Recorded>,
    columns: &[(&str, Value, Option<&str>)],
) {
    let Some(rec) = rec else {
        problems.push(problem(
            None,
            table,
            Some(key),
            "no ledger entry wrote this record (inserted outside a write)".into(),
        ));
        return;
    };
    for (what, row, field) in columns {
        let entry = match field {
            Some(f) => rec.record.get(*f).cloned().unwrap_or(Value::Null),
            None => rec.record.clone(),
        };
        let same =
            custody_ledger::canonical_json(row).ok() == custody_ledger::canonical_json(&entry).ok();
        if !same {
            let shown = |v: &Value| {
                let t = v.to_string();
                if t.len() > 80 {
                    format!("{}…", &t[..t.floor_char_boundary(80)])
                } else {
                    t
                }
            };
            problems.push(problem(
                Some(rec.seq),
                table,
                Some(key.clone()),
                if field.is_none() {
                    format!("its {what} differs from the entry")
                } else {
                    format!(
                        "its {what} is {}, the entry says {}",
                        shown(row),
                        shown(&entry)
                    )
                },
            ));
        }
    }
}

/// Entries whose record is not in its table any more.
fn gone_records(
    problems: &mut Vec<AuditProblem>,
    table: &str,
    left: impl Iterator<Item = Recorded>,
    key: impl Fn(&Value) -> String,
) {
    let mut left: Vec<Recorded> = left.collect();
    left.sort_by_key(|r| r.seq);
    for rec in left {
        problems.push(problem(
            Some(rec.seq),
            table,
            Some(key(&rec.record)),
            "the entry wrote this record; it is gone".into(),
        ));
    }
}
