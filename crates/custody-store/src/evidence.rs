//! Attestations, custom attestation types, and the evidence files attached
//! to attestations.

use custody_api::{
    Annotations, Attestation, AttestationType, CreateAttestationTypeRequest, Evidence, ExternalUrls,
};
use custody_api::{GitCommitInfo, RepoInfo};
use custody_ledger::EntryKind;
use serde_json::{Value, json};
use sqlx::Row;

use crate::flows::{flow_row, rows_to_docs, trail_ids, trail_row};
use crate::ledger::LedgerWriter;
use crate::util::{from_json, now_ms, to_json};
use crate::{Principal, Store, StoreError, StoreResult};

/// What the attestation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Trail,
    /// The trail's artifact with this fingerprint.
    Fingerprint(String),
    /// The trail's artifact of this template name, reported or not.
    ArtifactName(String),
}

/// An attestation ready to be recorded: evaluated, with its evidence
/// already in the blob store.
#[derive(Debug, Clone)]
pub struct NewAttestation {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub binding: Binding,
    pub compliant: bool,
    pub reasons: Vec<String>,
    pub data: Value,
    /// For `custom`: the data checked, as sent.
    pub attestation_data: Option<Box<serde_json::value::RawValue>>,
    pub user_data: Option<Box<serde_json::value::RawValue>>,
    pub annotations: Annotations,
    pub external_urls: ExternalUrls,
    pub description: Option<String>,
    pub origin_url: Option<String>,
    pub git_commit_info: Option<GitCommitInfo>,
    pub repo_info: Option<RepoInfo>,
    pub evidence: Vec<NewEvidence>,
    /// For SBOM attestations: every component, stored row by row.
    pub components: Option<custody_evidence::sbom::ComponentList>,
    /// For a decision: the control it was made for (which must exist).
    pub control: Option<String>,
}

pub type NewEvidence = Evidence;

/// The fingerprints an attestation can count for: the one it is bound by,
/// those reported under its artifact name, or (for a trail attestation)
/// every artifact of the trail.
async fn trail_fingerprints(
    c: &mut sqlx::AnyConnection,
    trail_id: i64,
    artifact: Option<&str>,
    fingerprint: Option<&str>,
) -> StoreResult<Vec<String>> {
    if let Some(fp) = fingerprint {
        return Ok(vec![fp.to_string()]);
    }
    let Some(name) = artifact else {
        return crate::evaluation::fingerprints_of(c, crate::evaluation::Reported::Trail(trail_id))
            .await;
    };
    let rows = sqlx::query(
        "SELECT DISTINCT fingerprint FROM artifacts WHERE trail_id = $1 AND template_name = $2",
    )
    .bind(trail_id)
    .bind(name)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

pub use Binding as AttestationBinding;

impl Store {
    pub async fn put_attestation(
        &self,
        p: &Principal,
        flow: &str,
        trail: &str,
        n: NewAttestation,
    ) -> StoreResult<Attestation> {
        let (org_id, org, flow, trail) =
            (p.org_id, p.org.clone(), flow.to_string(), trail.to_string());
        let actor = p.actor();
        self.write_judged(org_id, move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let (_, trail_id) = trail_ids(c, org_id, &flow, &trail).await?;
                    let (artifact, fingerprint) = match &n.binding {
                        Binding::Trail => (None, None),
                        Binding::ArtifactName(a) => (Some(a.clone()), None),
                        Binding::Fingerprint(fp) => {
                            let rows = sqlx::query(
                                "SELECT DISTINCT template_name FROM artifacts WHERE trail_id = $1 AND fingerprint = $2",
                            )
                            .bind(trail_id)
                            .bind(fp)
                            .fetch_all(&mut *c)
                            .await?;
                            let names: Vec<String> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
                            match names.as_slice() {
                                [one] => (Some(one.clone()), Some(fp.clone())),
                                [] => {
                                    return Err(StoreError::Unprocessable(format!(
                                        "artifact with fingerprint {fp} does not exist in trail '{trail}' of flow '{flow}'"
                                    )));
                                }
                                _ => {
                                    return Err(StoreError::Conflict(format!(
                                        "fingerprint {fp} is reported under several artifact names in trail '{trail}' ({}): name the artifact with --name ARTIFACT.NAME",
                                        names.join(", ")
                                    )));
                                }
                            }
                        }
                    };
                    let mut data = n.data;
                    if let Some(control) = &n.control {
                        let version = crate::policies::control_version(c, org_id, control)
                            .await
                            .map_err(|e| match e {
                                StoreError::NotFound { .. } => StoreError::Unprocessable(format!(
                                    "control '{control}' does not exist: create it with `custody create control {control} --name ...`"
                                )),
                                other => other,
                            })?;
                        data = json!({"control": control, "control_version": version});
                    }
                    let now = now_ms();
                    let a = Attestation {
                        id: n.id,
                        name: n.name,
                        kind: n.kind,
                        flow: flow.clone(),
                        trail: trail.clone(),
                        artifact,
                        fingerprint,
                        compliant: n.compliant,
                        reasons: n.reasons,
                        data,
                        attestation_data: n.attestation_data,
                        user_data: n.user_data,
                        annotations: n.annotations,
                        external_urls: n.external_urls,
                        description: n.description,
                        origin_url: n.origin_url,
                        git_commit_info: n.git_commit_info,
                        repo_info: n.repo_info,
                        evidence: n.evidence,
                        created_at: now,
                        reported_by: Some(actor.clone()),
                    };
                    // The latest of its name and binding, by (created_at,
                    // id) as the reads order them, is the one marked.
                    sqlx::query(
                        "UPDATE attestations SET latest = 0 \
                         WHERE trail_id = $1 AND name = $2 AND latest = 1 \
                           AND COALESCE(artifact_name, '') = COALESCE($3, '') \
                           AND COALESCE(fingerprint, '') = COALESCE($4, '') \
                           AND (created_at < $5 OR (created_at = $5 AND id < $6))",
                    )
                    .bind(trail_id)
                    .bind(&a.name)
                    .bind(a.artifact.clone())
                    .bind(a.fingerprint.clone())
                    .bind(now)
                    .bind(&a.id)
                    .execute(&mut *c)
                    .await?;
                    sqlx::query(
                        "INSERT INTO attestations (id, org_id, trail_id, name, kind, artifact_name, fingerprint, compliant, doc, created_at, control, latest) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                           CASE WHEN EXISTS (SELECT 1 FROM attestations WHERE trail_id = $3 AND name = $4 AND latest = 1 \
                             AND COALESCE(artifact_name, '') = COALESCE($6, '') AND COALESCE(fingerprint, '') = COALESCE($7, '')) \
                           THEN 0 ELSE 1 END)",
                    )
                    .bind(&a.id)
                    .bind(org_id)
                    .bind(trail_id)
                    .bind(&a.name)
                    .bind(&a.kind)
                    .bind(a.artifact.clone())
                    .bind(a.fingerprint.clone())
                    .bind(i64::from(a.compliant))
                    .bind(to_json(&a)?)
                    .bind(now)
                    .bind(n.control.clone())
                    .execute(&mut *c)
                    .await?;
                    for e in &a.evidence {
                        sqlx::query("INSERT INTO blobs (sha256, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING")
                            .bind(&e.sha256)
                            .bind(e.size as i64)
                            .bind(now)
                            .execute(&mut *c)
                            .await?;
                        sqlx::query("INSERT INTO evidence (org_id, attestation_id, sha256, filename) VALUES ($1, $2, $3, $4)")
                            .bind(org_id)
                            .bind(&a.id)
                            .bind(&e.sha256)
                            .bind(&e.filename)
                            .execute(&mut *c)
                            .await
                            .map_err(|err| match StoreError::from(err) {
                                StoreError::Conflict(_) => StoreError::Unprocessable(format!(
                                    "attachment '{}' is given more than once", e.filename
                                )),
                                other => other,
                            })?;
                    }
                    let site = crate::components::ComponentSite {
                        org_id,
                        attestation_id: &a.id,
                        trail_id,
                        artifact: a.artifact.as_deref(),
                        fingerprint: a.fingerprint.as_deref(),
                    };
                    if let Some(list) = &n.components {
                        crate::components::insert(c, &site, list).await?;
                    }
                    ledger.append(c, EntryKind::Attestation, &a).await?;
                    for e in &a.evidence {
                        ledger
                            .append(c, EntryKind::Evidence, &json!({"attestation_id": a.id, "sha256": e.sha256, "filename": e.filename, "size": e.size}))
                            .await?;
                    }
                    // Environments where the artifacts this evidence is
                    // about run are judged again.
                    let fps = trail_fingerprints(c, trail_id, a.artifact.as_deref(), a.fingerprint.as_deref()).await?;
                    crate::evaluation::evidence_changed(c, &ledger, org_id, &fps, crate::evaluation::Cause::Attestation).await?;
                    Ok(a)
                })
            })
            .await
    }

    pub async fn get_attestation(&self, org_id: i64, id: &str) -> StoreResult<Attestation> {
        let row = sqlx::query("SELECT doc FROM attestations WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .fetch_optional(&self.db.read)
            .await?
            .ok_or_else(|| StoreError::not_found("attestation", id))?;
        from_json("attestation", &row.try_get::<String, _>(0)?)
    }

    /// The attestations of a name in a trail, newest first, a page at a
    /// time.
    #[allow(clippy::too_many_arguments)]
    pub async fn attestation_history(
        &self,
        org_id: i64,
        flow: &str,
        trail: &str,
        artifact: Option<&str>,
        name: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<custody_api::Page<Attestation>> {
        let mut c = self.db.read.acquire().await?;
        let f = flow_row(&mut c, org_id, flow).await?;
        let (trail_id, _) = trail_row(&mut c, f.id, flow, trail).await?;
        const WHERE: &str = "WHERE trail_id = $1 AND name = $2 \
             AND ((artifact_name IS NULL AND $3 = '') OR artifact_name = $3)";
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM attestations {WHERE}"
        )))
        .bind(trail_id)
        .bind(name)
        .bind(artifact.unwrap_or(""))
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT doc FROM attestations {WHERE} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        )))
        .bind(trail_id)
        .bind(name)
        .bind(artifact.unwrap_or(""))
        .bind(i64::from(per_page))
        .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page))
        .fetch_all(&mut *c)
        .await?;
        Ok(custody_api::Page {
            items: rows_to_docs(&rows, "attestation")?,
            page,
            per_page,
            total: total.max(0) as u64,
        })
    }

    /// The size of an evidence file, if the organisation holds a reference
    /// to it. Files of other organisations are "not found", never revealed.
    pub async fn evidence_size(&self, org_id: i64, sha256: &str) -> StoreResult<u64> {
        let row = sqlx::query(
            "SELECT b.size FROM evidence e JOIN blobs b ON b.sha256 = e.sha256 WHERE e.org_id = $1 AND e.sha256 = $2 LIMIT 1",
        )
        .bind(org_id)
        .bind(sha256)
        .fetch_optional(&self.db.read)
        .await?
        .ok_or_else(|| StoreError::not_found("evidence", sha256))?;
        Ok(row.try_get::<i64, _>(0)? as u64)
    }

    /// Creates a custom attestation type, or its next version.
    pub async fn create_attestation_type(
        &self,
        p: &Principal,
        req: CreateAttestationTypeRequest,
    ) -> StoreResult<AttestationType> {
        let (org_id, org) = (p.org_id, p.org.clone());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let version: i64 = sqlx::query(
                        "SELECT COALESCE(MAX(version), 0) + 1 FROM attestation_types WHERE org_id = $1 AND name = $2",
                    )
                    .bind(org_id)
                    .bind(&req.name)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?;
                    let t = AttestationType {
                        name: req.name,
                        version,
                        description: req.description,
                        schema: req.schema,
                        jq_rules: req.jq_rules,
                        created_at: now_ms(),
                    };
                    sqlx::query("INSERT INTO attestation_types (org_id, name, version, doc, created_at) VALUES ($1, $2, $3, $4, $5)")
                        .bind(org_id)
                        .bind(&t.name)
                        .bind(version)
                        .bind(to_json(&t)?)
                        .bind(t.created_at)
                        .execute(&mut *c)
                        .await?;
                    ledger.append(c, EntryKind::AttestationType, &t).await?;
                    // A new version brings an archived type back.
                    sqlx::query("DELETE FROM attestation_types_archived WHERE org_id = $1 AND name = $2")
                        .bind(org_id)
                        .bind(&t.name)
                        .execute(&mut *c)
                        .await?;
                    Ok(t)
                })
            })
            .await
    }

    /// A version of a type, or its latest.
    pub async fn get_attestation_type(
        &self,
        org_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> StoreResult<AttestationType> {
        let row = match version {
            Some(v) => {
                sqlx::query("SELECT doc FROM attestation_types WHERE org_id = $1 AND name = $2 AND version = $3")
                    .bind(org_id)
                    .bind(name)
                    .bind(v)
                    .fetch_optional(&self.db.read)
                    .await?
            }
            None => {
                sqlx::query("SELECT doc FROM attestation_types WHERE org_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1")
                    .bind(org_id)
                    .bind(name)
                    .fetch_optional(&self.db.read)
                    .await?
            }
        };
        let what = match version {
            Some(v) => format!("{name}@v{v}"),
            None => name.to_string(),
        };
        let row = row.ok_or_else(|| StoreError::not_found("attestation type", what))?;
        from_json("attestation type", &row.try_get::<String, _>(0)?)
    }

    /// The latest version of every type; archived ones only when asked for.
    pub async fn list_attestation_types(
        &self,
        org_id: i64,
        include_archived: bool,
    ) -> StoreResult<Vec<AttestationType>> {
        let rows = sqlx::query(
            "SELECT t.doc FROM attestation_types t WHERE t.org_id = $1 AND t.version = \
             (SELECT MAX(version) FROM attestation_types u WHERE u.org_id = t.org_id AND u.name = t.name) \
             AND ($2 = 1 OR NOT EXISTS (SELECT 1 FROM attestation_types_archived a WHERE a.org_id = t.org_id AND a.name = t.name)) \
             ORDER BY t.name",
        )
        .bind(org_id)
        .bind(i64::from(include_archived))
        .fetch_all(&self.db.read)
        .await?;
        rows_to_docs(&rows, "attestation type")
    }

    /// Whether a type is archived (it then takes no new attestations).
    pub async fn attestation_type_archived(&self, org_id: i64, name: &str) -> StoreResult<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM attestation_types_archived WHERE org_id = $1 AND name = $2")
                .bind(org_id)
                .bind(name)
                .fetch_optional(&self.db.read)
                .await?
                .is_some(),
        )
    }

    /// Archives a custom attestation type: it takes no new attestations
    /// until a new version of it is created; what was attested stays.
    pub async fn archive_attestation_type(
        &self,
        p: &Principal,
        name: &str,
    ) -> StoreResult<AttestationType> {
        let (org_id, org, name) = (p.org_id, p.org.clone(), name.to_string());
        let actor = p.actor();
        let t = self.get_attestation_type(org_id, &name, None).await?;
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let done = sqlx::query(
                        "INSERT INTO attestation_types_archived (org_id, name, archived_at) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(org_id)
                    .bind(&name)
                    .bind(now_ms())
                    .execute(&mut *c)
                    .await?;
                    if done.rows_affected() > 0 {
                        ledger
                            .append(c, EntryKind::AttestationType, &json!({"name": name, "archived": true}))
                            .await?;
                    }
                    Ok(t)
                })
            })
            .await
    }
}
