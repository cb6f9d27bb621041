//! Flows (with versioned templates), trails and artifacts.

use custody_api::Attestation;
use custody_api::{
    Artifact, BeginTrailRequest, Flow, Page, ReportArtifactRequest, Saved, Trail, TrailSummary,
};
use custody_ledger::EntryKind;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::evaluation::{Cause, Reported};
use crate::ledger::LedgerWriter;
use crate::util::{from_json, now_ms, to_json};
use crate::{Principal, Store, StoreError, StoreResult};

pub type NewTrail = BeginTrailRequest;

/// Everything needed to show a trail and judge its compliance.
#[derive(Debug, Clone)]
pub struct TrailData {
    pub trail: Trail,
    /// The flow's current template, if it has one.
    pub flow_template_yaml: Option<String>,
    /// Every artifact report, oldest first.
    pub artifacts: Vec<Artifact>,
    /// The latest attestation of each name and binding (trail, artifact
    /// name, fingerprint), oldest first. Earlier ones are history.
    pub attestations: Vec<Attestation>,
}

impl TrailData {
    /// The template that applies: the trail's override, else the flow's.
    pub fn template_yaml(&self) -> Option<&str> {
        self.trail
            .template_yaml
            .as_deref()
            .or(self.flow_template_yaml.as_deref())
    }
}

pub(crate) struct FlowRow {
    pub id: i64,
    pub template_yaml: Option<String>,
    pub archived: bool,
}

impl FlowRow {
    /// Refuses new records in an archived flow.
    pub fn writable(&self, flow: &str) -> StoreResult<()> {
        if self.archived {
            return Err(archived(flow));
        }
        Ok(())
    }
}

fn archived(flow: &str) -> StoreError {
    StoreError::Unprocessable(format!(
        "flow '{flow}' is archived: its history is kept, but it takes nothing new"
    ))
}

pub(crate) async fn flow_row(
    c: &mut AnyConnection,
    org_id: i64,
    flow: &str,
) -> StoreResult<FlowRow> {
    let r = sqlx::query(
        "SELECT f.id, t.yaml, f.archived_at FROM flows f LEFT JOIN flow_templates t \
         ON t.flow_id = f.id AND t.version = f.template_version WHERE f.org_id = $1 AND f.name = $2",
    )
    .bind(org_id)
    .bind(flow)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found("flow", flow))?;
    Ok(FlowRow {
        id: r.try_get(0)?,
        template_yaml: r.try_get(1)?,
        archived: r.try_get::<Option<i64>, _>(2)?.is_some(),
    })
}

/// The id of a trail and its flow, looked up by name in one query, for a
/// write: an archived flow is refused.
pub(crate) async fn trail_ids(
    c: &mut AnyConnection,
    org_id: i64,
    flow: &str,
    trail: &str,
) -> StoreResult<(i64, i64)> {
    let r = sqlx::query(
        "SELECT f.id, t.id, f.archived_at FROM flows f LEFT JOIN trails t ON t.flow_id = f.id AND t.name = $3 \
         WHERE f.org_id = $1 AND f.name = $2",
    )
    .bind(org_id)
    .bind(flow)
    .bind(trail)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found("flow", flow))?;
    if r.try_get::<Option<i64>, _>(2)?.is_some() {
        return Err(archived(flow));
    }
    let trail_id: Option<i64> = r.try_get(1)?;
    let trail_id = trail_id.ok_or_else(|| StoreError::NotFound {
        what: "trail",
        name: format!("{trail}' in flow '{flow}"),
    })?;
    Ok((r.try_get(0)?, trail_id))
}

pub(crate) async fn trail_row(
    c: &mut AnyConnection,
    flow_id: i64,
    flow: &str,
    trail: &str,
) -> StoreResult<(i64, Trail)> {
    let r = sqlx::query("SELECT id, doc FROM trails WHERE flow_id = $1 AND name = $2")
        .bind(flow_id)
        .bind(trail)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "trail",
            name: format!("{trail}' in flow '{flow}"),
        })?;
    let doc: String = r.try_get(1)?;
    Ok((r.try_get(0)?, from_json("trail", &doc)?))
}

impl Store {
    /// Creates a flow, or updates its description and template. A template
    /// that differs from the current one becomes a new version.
    pub async fn put_flow(
        &self,
        p: &Principal,
        name: &str,
        description: Option<String>,
        template_yaml: Option<String>,
    ) -> StoreResult<Saved<Flow>> {
        let (org_id, org, name) = (p.org_id, p.org.clone(), name.to_string());
        let actor = p.actor();
        self.write_judged(org_id, move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let now = now_ms();
                    let existing = sqlx::query("SELECT id, description, archived_at FROM flows WHERE org_id = $1 AND name = $2")
                        .bind(org_id)
                        .bind(&name)
                        .fetch_optional(&mut *c)
                        .await?;
                    let (flow_id, created) = match existing {
                        Some(r) => {
                            if r.try_get::<Option<i64>, _>(2)?.is_some() {
                                return Err(archived(&name));
                            }
                            let id: i64 = r.try_get(0)?;
                            let old: Option<String> = r.try_get(1)?;
                            if description.is_some() && description != old {
                                sqlx::query("UPDATE flows SET description = $2, updated_at = $3 WHERE id = $1")
                                    .bind(id)
                                    .bind(description.clone())
                                    .bind(now)
                                    .execute(&mut *c)
                                    .await?;
                                ledger
                                    .append(c, EntryKind::Flow, &json!({"name": name, "description": description}))
                                    .await?;
                            }
                            (id, false)
                        }
                        None => {
                            let id: i64 = sqlx::query(
                                "INSERT INTO flows (org_id, name, description, created_at, updated_at) \
                                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
                            )
                            .bind(org_id)
                            .bind(&name)
                            .bind(description.clone())
                            .bind(now)
                            .fetch_one(&mut *c)
                            .await?
                            .try_get(0)?;
                            ledger
                                .append(c, EntryKind::Flow, &json!({"name": name, "description": description}))
                                .await?;
                            (id, true)
                        }
                    };
                    if let Some(yaml) = template_yaml {
                        let current = flow_row(c, org_id, &name).await?.template_yaml;
                        if current.as_deref() != Some(yaml.as_str()) {
                            let version: i64 = sqlx::query(
                                "SELECT COALESCE(MAX(version), 0) + 1 FROM flow_templates WHERE flow_id = $1",
                            )
                            .bind(flow_id)
                            .fetch_one(&mut *c)
                            .await?
                            .try_get(0)?;
                            sqlx::query(
                                "INSERT INTO flow_templates (flow_id, version, yaml, created_at) VALUES ($1, $2, $3, $4)",
                            )
                            .bind(flow_id)
                            .bind(version)
                            .bind(&yaml)
                            .bind(now)
                            .execute(&mut *c)
                            .await?;
                            sqlx::query("UPDATE flows SET template_version = $2, updated_at = $3 WHERE id = $1")
                                .bind(flow_id)
                                .bind(version)
                                .bind(now)
                                .execute(&mut *c)
                                .await?;
                            ledger
                                .append(
                                    c,
                                    EntryKind::FlowTemplate,
                                    &json!({"flow": name, "version": version, "yaml": yaml}),
                                )
                                .await?;
                            // Every trail of the flow is judged by the new
                            // template: so is wherever their artifacts run.
                            crate::evaluation::reported_changed(c, &ledger, org_id, Reported::Flow(flow_id), Cause::Template).await?;
                        }
                    }
                    let value = load_flow(c, org_id, &name).await?;
                    Ok(Saved { created, value })
                })
            })
            .await
    }

    /// Sets and removes a flow's tags (read by policy conditions as
    /// `flow.tags.<key>`).
    pub async fn tag_flow(
        &self,
        p: &Principal,
        name: &str,
        set: std::collections::BTreeMap<String, String>,
        unset: Vec<String>,
    ) -> StoreResult<Flow> {
        for k in set.keys().chain(unset.iter()) {
            if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c == '=') {
                return Err(StoreError::Unprocessable(format!(
                    "invalid tag key '{k}': keys are non-empty, without spaces or '='"
                )));
            }
        }
        let (org_id, org, name) = (p.org_id, p.org.clone(), name.to_string());
        let actor = p.actor();
        self.write_judged(org_id, move |c| {
            Box::pin(async move {
                let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                let mut flow = load_flow(c, org_id, &name).await?;
                for k in &unset {
                    flow.tags.remove(k);
                }
                flow.tags.extend(set);
                let now = now_ms();
                sqlx::query(
                    "UPDATE flows SET tags = $3, updated_at = $4 WHERE org_id = $1 AND name = $2",
                )
                .bind(org_id)
                .bind(&name)
                .bind(crate::policies::tags_json(&flow.tags)?)
                .bind(now)
                .execute(&mut *c)
                .await?;
                ledger
                    .append(
                        c,
                        EntryKind::Flow,
                        &json!({"name": name, "tags": flow.tags}),
                    )
                    .await?;
                // Conditions read flow tags: where the flow's artifacts
                // run, judge again.
                let flow_id = flow_row(c, org_id, &name).await?.id;
                crate::evaluation::reported_changed(
                    c,
                    &ledger,
                    org_id,
                    Reported::Flow(flow_id),
                    Cause::FlowTags,
                )
                .await?;
                load_flow(c, org_id, &name).await
            })
        })
        .await
    }

    pub async fn get_flow(&self, org_id: i64, name: &str) -> StoreResult<Flow> {
        let mut c = self.db.read.acquire().await?;
        load_flow(&mut c, org_id, name).await
    }

    /// Archived flows are listed only when asked for.
    pub async fn list_flows(&self, org_id: i64, include_archived: bool) -> StoreResult<Vec<Flow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{FLOW_SELECT} WHERE f.org_id = $1 AND ($2 = 1 OR f.archived_at IS NULL) ORDER BY f.name"
        )))
        .bind(org_id)
        .bind(i64::from(include_archived))
        .fetch_all(&self.db.read)
        .await?;
        rows.iter().map(flow_from_row).collect()
    }

    /// Archiving keeps a flow's history readable and refuses new trails,
    /// artifacts and attestations in it.
    pub async fn archive_flow(&self, p: &Principal, name: &str) -> StoreResult<Flow> {
        let (org_id, org, name) = (p.org_id, p.org.clone(), name.to_string());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let f = flow_row(c, org_id, &name).await?;
                    if !f.archived {
                        sqlx::query("UPDATE flows SET archived_at = $2 WHERE id = $1")
                            .bind(f.id)
                            .bind(now_ms())
                            .execute(&mut *c)
                            .await?;
                        ledger
                            .append(c, EntryKind::Flow, &json!({"name": name, "archived": true}))
                            .await?;
                    }
                    load_flow(c, org_id, &name).await
                })
            })
            .await
    }

    /// Renames a flow; its trails and their history go with it. Policies
    /// and notification actions that name the old flow are not rewritten.
    pub async fn rename_flow(&self, p: &Principal, old: &str, new: &str) -> StoreResult<Flow> {
        custody_domain::names::validate("flow name", new)
            .map_err(|e| StoreError::Unprocessable(e.to_string()))?;
        let (org_id, org, old, new) = (p.org_id, p.org.clone(), old.to_string(), new.to_string());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let f = flow_row(c, org_id, &old).await?;
                    if flow_row(c, org_id, &new).await.is_ok() {
                        return Err(StoreError::Conflict(format!("flow '{new}' already exists")));
                    }
                    sqlx::query("UPDATE flows SET name = $2, updated_at = $3 WHERE id = $1")
                        .bind(f.id)
                        .bind(&new)
                        .bind(now_ms())
                        .execute(&mut *c)
                        .await?;
                    // Trails, artifacts and attestations say which flow they
                    // are of; they say the new name from now on (the ledger
                    // entry below tells `ledger verify` so).
                    for (select, update) in [
                        (
                            "SELECT id, doc FROM trails WHERE flow_id = $1",
                            "UPDATE trails SET doc = $2 WHERE id = $1",
                        ),
                        (
                            "SELECT id, doc FROM artifacts WHERE flow_id = $1",
                            "UPDATE artifacts SET doc = $2 WHERE id = $1",
                        ),
                        (
                            "SELECT a.id, a.doc FROM attestations a JOIN trails t ON t.id = a.trail_id WHERE t.flow_id = $1",
                            "UPDATE attestations SET doc = $2 WHERE id = $1",
                        ),
                    ] {
                        rename_in_docs(c, f.id, select, update, &new).await?;
                    }
                    ledger
                        .append(c, EntryKind::Flow, &json!({"name": old, "renamed_to": new}))
                        .await?;
                    load_flow(c, org_id, &new).await
                })
            })
            .await
    }

    /// Begins a trail, or updates the fields given for an existing one.
    pub async fn begin_trail(
        &self,
        p: &Principal,
        flow: &str,
        req: NewTrail,
    ) -> StoreResult<Saved<Trail>> {
        let (org_id, org, flow) = (p.org_id, p.org.clone(), flow.to_string());
        let actor = p.actor();
        self.write_judged(org_id, move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let f = flow_row(c, org_id, &flow).await?;
                    f.writable(&flow)?;
                    let now = now_ms();
                    let existing = trail_row(c, f.id, &flow, &req.name).await;
                    let (trail, created) = match existing {
                        Ok((id, mut t)) => {
                            merge_trail(&mut t, req);
                            t.updated_at = now;
                            t.updated_by = Some(actor.clone());
                            sqlx::query("UPDATE trails SET doc = $2, git_commit = $3, updated_at = $4 WHERE id = $1")
                                .bind(id)
                                .bind(to_json(&t)?)
                                .bind(t.git_commit_info.as_ref().map(|g| g.sha1.clone()))
                                .bind(now)
                                .execute(&mut *c)
                                .await?;
                            // Its template may have changed, and with it its
                            // compliance.
                            crate::evaluation::reported_changed(c, &ledger, org_id, Reported::Trail(id), Cause::Template).await?;
                            (t, false)
                        }
                        Err(StoreError::NotFound { .. }) => {
                            let t = Trail {
                                name: req.name,
                                flow: flow.clone(),
                                description: req.description,
                                template_yaml: req.template_yaml,
                                git_commit_info: req.git_commit_info,
                                repo_info: req.repo_info,
                                user_data: req.user_data,
                                origin_url: req.origin_url,
                                external_urls: req.external_urls,
                                created_at: now,
                                updated_at: now,
                                created_by: Some(actor.clone()),
                                updated_by: Some(actor.clone()),
                            };
                            sqlx::query(
                                "INSERT INTO trails (org_id, flow_id, name, git_commit, doc, created_at, updated_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
                            )
                            .bind(org_id)
                            .bind(f.id)
                            .bind(&t.name)
                            .bind(t.git_commit_info.as_ref().map(|g| g.sha1.clone()))
                            .bind(to_json(&t)?)
                            .bind(now)
                            .execute(&mut *c)
                            .await?;
                            (t, true)
                        }
                        Err(e) => return Err(e),
                    };
                    ledger.append(c, EntryKind::Trail, &trail).await?;
                    Ok(Saved { created, value: trail })
                })
            })
            .await
    }

    /// Fails with not-found unless the flow and trail exist.
    pub async fn trail_exists(&self, org_id: i64, flow: &str, trail: &str) -> StoreResult<()> {
        let mut c = self.db.read.acquire().await?;
        let f = flow_row(&mut c, org_id, flow).await?;
        trail_row(&mut c, f.id, flow, trail).await?;
        Ok(())
    }

    pub async fn get_trail(&self, org_id: i64, flow: &str, trail: &str) -> StoreResult<TrailData> {
        let mut c = self.db.read.acquire().await?;
        // One read transaction, so the trail, its artifacts and its
        // attestations are one consistent picture.
        let mut tx = sqlx::Connection::begin(&mut *c).await?;
        let f = flow_row(&mut tx, org_id, flow).await?;
        let (trail_id, t) = trail_row(&mut tx, f.id, flow, trail).await?;
        let artifacts = docs::<Artifact>(
            &mut tx,
            "artifact",
            "SELECT doc FROM artifacts WHERE trail_id = $1 ORDER BY id",
            trail_id,
        )
        .await?;
        // Only the latest of each name and binding can count, so history
        // (which may be long) is neither read nor decoded.
        let attestations = docs::<Attestation>(
            &mut tx,
            "attestation",
            "SELECT doc FROM attestations WHERE trail_id = $1 AND latest = 1 ORDER BY created_at, id",
            trail_id,
        )
        .await?;
        tx.commit().await?;
        Ok(TrailData {
            trail: t,
            flow_template_yaml: f.template_yaml,
            artifacts,
            attestations,
        })
    }

    /// Several trails as `get_trail` reads each, in one read transaction
    /// and a handful of queries however many there are (a page that shows
    /// where 100 running artifacts came from reads 100 trails). Trails that
    /// do not exist are left out; the order is not the order asked.
    pub async fn get_trails(
        &self,
        org_id: i64,
        keys: &[(String, String)],
    ) -> StoreResult<Vec<TrailData>> {
        let mut by_flow: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (flow, trail) in keys {
            by_flow.entry(flow).or_default().push(trail);
        }
        let mut c = self.db.read.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *c).await?;
        // id → (trail, its flow's template), then its artifacts and
        // attestations by trail id.
        let mut trails: BTreeMap<i64, (Trail, Option<String>)> = BTreeMap::new();
        for (flow, names) in by_flow {
            let f = match flow_row(&mut tx, org_id, flow).await {
                Ok(f) => f,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            for chunk in names.chunks(IN_CHUNK) {
                let mut b = crate::util::Binds::new(&tx);
                let flow_id = b.next();
                let list: Vec<String> = chunk.iter().map(|_| b.next()).collect();
                let sql = format!(
                    "SELECT id, doc FROM trails WHERE flow_id = {flow_id} AND name IN ({})",
                    list.join(",")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(f.id);
                for n in chunk {
                    q = q.bind(*n);
                }
                for r in q.fetch_all(&mut *tx).await? {
                    let doc: String = r.try_get(1)?;
                    trails.insert(
                        r.try_get(0)?,
                        (from_json("trail", &doc)?, f.template_yaml.clone()),
                    );
                }
            }
        }
        let ids: Vec<i64> = trails.keys().copied().collect();
        let mut artifacts: HashMap<i64, Vec<Artifact>> = HashMap::new();
        let mut attestations: HashMap<i64, Vec<Attestation>> = HashMap::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let rows = by_trail(
                &mut tx,
                "SELECT trail_id, doc FROM artifacts WHERE trail_id IN ({}) ORDER BY id",
                chunk,
            )
            .await?;
            for (id, doc) in rows {
                artifacts
                    .entry(id)
                    .or_default()
                    .push(from_json("artifact", &doc)?);
            }
            // As `get_trail`: only the latest of each name and binding.
            let rows = by_trail(
                &mut tx,
                "SELECT trail_id, doc FROM attestations WHERE trail_id IN ({}) AND latest = 1 ORDER BY created_at, id",
                chunk,
            )
            .await?;
            for (id, doc) in rows {
                attestations
                    .entry(id)
                    .or_default()
                    .push(from_json("attestation", &doc)?);
            }
        }
        tx.commit().await?;
        Ok(trails
            .into_iter()
            .map(|(id, (trail, flow_template_yaml))| TrailData {
                trail,
                flow_template_yaml,
                artifacts: artifacts.remove(&id).unwrap_or_default(),
                attestations: attestations.remove(&id).unwrap_or_default(),
            })
            .collect())
    }

    pub async fn list_trails(
        &self,
        org_id: i64,
        flow: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<Page<TrailSummary>> {
        let mut c = self.db.read.acquire().await?;
        let f = flow_row(&mut c, org_id, flow).await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) FROM trails WHERE flow_id = $1")
            .bind(f.id)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
        // The page's ids first, from `trails_by_created` alone: skipping
        // to a deep page then reads no document it does not show.
        let rows = sqlx::query(
            "SELECT doc FROM trails WHERE id IN (SELECT id FROM trails WHERE flow_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3) ORDER BY created_at DESC, id DESC",
        )
            .bind(f.id)
            .bind(i64::from(per_page))
            .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page))
            .fetch_all(&mut *c)
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                let t: Trail = from_json("trail", &r.try_get::<String, _>(0)?)?;
                Ok(TrailSummary {
                    git_commit: t.git_commit_info.as_ref().map(|g| g.sha1.clone()),
                    name: t.name,
                    flow: t.flow,
                    description: t.description,
                    created_at: t.created_at,
                    updated_at: t.updated_at,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page {
            items,
            page,
            per_page,
            total: total as u64,
        })
    }

    /// Records an artifact in a trail. Each report is kept; the latest per
    /// template name is the trail's current artifact of that name.
    pub async fn report_artifact(
        &self,
        p: &Principal,
        flow: &str,
        trail: &str,
        req: ReportArtifactRequest,
    ) -> StoreResult<Artifact> {
        let (org_id, org, flow, trail) =
            (p.org_id, p.org.clone(), flow.to_string(), trail.to_string());
        let actor = p.actor();
        self.write_judged(org_id, move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let f = flow_row(c, org_id, &flow).await?;
                    f.writable(&flow)?;
                    let (trail_id, _) = trail_row(c, f.id, &flow, &trail).await?;
                    let now = now_ms();
                    let git_commit = req
                        .git_commit
                        .clone()
                        .or_else(|| req.git_commit_info.as_ref().map(|g| g.sha1.clone()));
                    let a = Artifact {
                        display_name: req.display_name.unwrap_or_else(|| req.name.clone()),
                        fingerprint: req.fingerprint,
                        name: req.name,
                        flow: flow.clone(),
                        trail: trail.clone(),
                        git_commit,
                        git_commit_info: req.git_commit_info,
                        repo_info: req.repo_info,
                        build_url: req.build_url,
                        commit_url: req.commit_url,
                        external_urls: req.external_urls,
                        annotations: req.annotations,
                        created_at: now,
                        reported_by: Some(actor.clone()),
                    };
                    sqlx::query(
                        "INSERT INTO artifacts (org_id, flow_id, trail_id, template_name, fingerprint, git_commit, doc, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(org_id)
                    .bind(f.id)
                    .bind(trail_id)
                    .bind(&a.name)
                    .bind(&a.fingerprint)
                    .bind(a.git_commit.clone())
                    .bind(to_json(&a)?)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                    ledger.append(c, EntryKind::Artifact, &a).await?;
                    // The trail's compliance can change with a new artifact,
                    // and with it the judgement of wherever its artifacts run.
                    crate::evaluation::reported_changed(c, &ledger, org_id, Reported::Trail(trail_id), Cause::Artifact).await?;
                    Ok(a)
                })
            })
            .await
    }

    pub async fn list_artifacts(
        &self,
        org_id: i64,
        flow: Option<&str>,
        page: u32,
        per_page: u32,
    ) -> StoreResult<Page<Artifact>> {
        let mut c = self.db.read.acquire().await?;
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let (total, rows) = match flow {
            Some(flow) => {
                let f = flow_row(&mut c, org_id, flow).await?;
                let total: i64 = sqlx::query("SELECT COUNT(*) FROM artifacts WHERE flow_id = $1")
                    .bind(f.id)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?;
                let rows = sqlx::query("SELECT doc FROM artifacts WHERE flow_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3")
                    .bind(f.id)
                    .bind(i64::from(per_page))
                    .bind(offset)
                    .fetch_all(&mut *c)
                    .await?;
                (total, rows)
            }
            None => {
                let total: i64 = sqlx::query("SELECT COUNT(*) FROM artifacts WHERE org_id = $1")
                    .bind(org_id)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?;
                let rows = sqlx::query("SELECT doc FROM artifacts WHERE org_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3")
                    .bind(org_id)
                    .bind(i64::from(per_page))
                    .bind(offset)
                    .fetch_all(&mut *c)
                    .await?;
                (total, rows)
            }
        };
        Ok(Page {
            items: rows_to_docs(&rows, "artifact")?,
            page,
            per_page,
            total: total as u64,
        })
    }

    /// The newest reports of these exact fingerprints, at most
    /// `per_fingerprint` of each (a base image can be in thousands of
    /// trails), newest first.
    pub async fn artifacts_with_fingerprints(
        &self,
        org_id: i64,
        fingerprints: &[String],
        per_fingerprint: u32,
    ) -> StoreResult<Vec<Artifact>> {
        let mut out = vec![];
        let mut c = self.db.read.acquire().await?;
        for chunk in fingerprints.chunks(500) {
            let mut b = crate::util::Binds::new(&c);
            let org = b.next();
            let list: Vec<String> = chunk.iter().map(|_| b.next()).collect();
            let sql = format!(
                "SELECT doc FROM (SELECT doc, id, ROW_NUMBER() OVER (PARTITION BY fingerprint ORDER BY id DESC) AS n \
                 FROM artifacts WHERE org_id = {org} AND fingerprint IN ({})) a WHERE n <= {per_fingerprint} ORDER BY id DESC",
                list.join(",")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id);
            for f in chunk {
                q = q.bind(f);
            }
            let rows = q.fetch_all(&mut *c).await?;
            out.extend(rows_to_docs::<Artifact>(&rows, "artifact")?);
        }
        Ok(out)
    }

    /// Artifacts whose fingerprint or git commit starts with `prefix`
    /// (lower-case hex), newest first.
    pub async fn search(
        &self,
        org_id: i64,
        prefix: &str,
        flow: Option<&str>,
    ) -> StoreResult<Vec<Artifact>> {
        // A range instead of LIKE so both backends use the index; 'g' sorts
        // after every hex digit.
        let upper = format!("{prefix}g");
        let rows = sqlx::query(
            "SELECT a.doc FROM artifacts a JOIN flows f ON f.id = a.flow_id WHERE a.org_id = $1 AND \
             ((a.fingerprint >= $2 AND a.fingerprint < $3) OR (a.git_commit >= $2 AND a.git_commit < $3)) \
             AND ($4 = '' OR f.name = $4) ORDER BY a.id DESC LIMIT 500",
        )
        .bind(org_id)
        .bind(prefix)
        .bind(&upper)
        .bind(flow.unwrap_or(""))
        .fetch_all(&self.db.read)
        .await?;
        rows_to_docs(&rows, "artifact")
    }
}

/// Sets `"flow"` to `new` in the documents `select` (id, doc) finds for
/// the flow, writing each back with `update` (id, doc).
async fn rename_in_docs(
    c: &mut AnyConnection,
    flow_id: i64,
    select: &'static str,
    update: &'static str,
    new: &str,
) -> StoreResult<()> {
    let rows = sqlx::query(select).bind(flow_id).fetch_all(&mut *c).await?;
    for r in &rows {
        // Trails and artifacts have number ids, attestations text ones.
        let id: Result<i64, _> = r.try_get(0);
        let mut doc: serde_json::Value = from_json("document", &r.try_get::<String, _>(1)?)?;
        doc["flow"] = serde_json::Value::String(new.to_string());
        let q = sqlx::query(update);
        let q = match id {
            Ok(n) => q.bind(n),
            Err(_) => q.bind(r.try_get::<String, _>(0)?),
        };
        q.bind(to_json(&doc)?).execute(&mut *c).await?;
    }
    Ok(())
}

const FLOW_SELECT: &str = "SELECT f.name, f.description, f.template_version, t.yaml, f.created_at, f.updated_at, f.tags, f.archived_at \
     FROM flows f LEFT JOIN flow_templates t ON t.flow_id = f.id AND t.version = f.template_version";

async fn load_flow(c: &mut AnyConnection, org_id: i64, name: &str) -> StoreResult<Flow> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{FLOW_SELECT} WHERE f.org_id = $1 AND f.name = $2"
    )))
    .bind(org_id)
    .bind(name)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::not_found("flow", name))?;
    flow_from_row(&row)
}

fn flow_from_row(r: &AnyRow) -> StoreResult<Flow> {
    Ok(Flow {
        name: r.try_get(0)?,
        description: r.try_get(1)?,
        template_version: r.try_get(2)?,
        template_yaml: r.try_get(3)?,
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
        tags: match r.try_get::<Option<String>, _>(6)? {
            Some(t) => from_json("flow tags", &t)?,
            None => Default::default(),
        },
        archived_at: r.try_get(7)?,
    })
}

fn merge_trail(t: &mut Trail, req: NewTrail) {
    if req.description.is_some() {
        t.description = req.description;
    }
    if req.template_yaml.is_some() {
        t.template_yaml = req.template_yaml;
    }
    if req.git_commit_info.is_some() {
        t.git_commit_info = req.git_commit_info;
    }
    if req.repo_info.is_some() {
        t.repo_info = req.repo_info;
    }
    if req.user_data.is_some() {
        t.user_data = req.user_data;
    }
    if req.origin_url.is_some() {
        t.origin_url = req.origin_url;
    }
    t.external_urls.extend(req.external_urls);
}

/// Values bound in one `IN (...)` list at most.
const IN_CHUNK: usize = 500;

/// (trail id, document) rows of `sql`, whose `{}` is filled with the
/// trail ids of `ids`.
async fn by_trail(
    c: &mut AnyConnection,
    sql: &str,
    ids: &[i64],
) -> StoreResult<Vec<(i64, String)>> {
    let mut b = crate::util::Binds::new(c);
    let list: Vec<String> = ids.iter().map(|_| b.next()).collect();
    let sql = sql.replace("{}", &list.join(","));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(*id);
    }
    q.fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub(crate) async fn docs<T: serde::de::DeserializeOwned>(
    c: &mut AnyConnection,
    what: &str,
    sql: &'static str,
    id: i64,
) -> StoreResult<Vec<T>> {
    let rows = sqlx::query(sql).bind(id).fetch_all(&mut *c).await?;
    rows_to_docs(&rows, what)
}

pub(crate) fn rows_to_docs<T: serde::de::DeserializeOwned>(
    rows: &[AnyRow],
    what: &str,
) -> StoreResult<Vec<T>> {
    rows.iter()
        .map(|r| from_json(what, &r.try_get::<String, _>(0)?))
        .collect()
}

impl Store {
    /// Artifacts whose name in their template starts with `prefix`,
    /// newest first, at most `limit`.
    pub async fn search_artifact_names(
        &self,
        org_id: i64,
        prefix: &str,
        limit: u32,
    ) -> StoreResult<Vec<Artifact>> {
        let upper = crate::util::prefix_upper(prefix);
        let rows = sqlx::query(
            "SELECT doc FROM artifacts WHERE org_id = $1 AND template_name >= $2 AND template_name < $3 \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(org_id)
        .bind(prefix)
        .bind(&upper)
        .bind(i64::from(limit))
        .fetch_all(&self.db.read)
        .await?;
        let found: Vec<Artifact> = rows_to_docs(&rows, "artifact")?;
        Ok(found
            .into_iter()
            .filter(|a| a.name.starts_with(prefix))
            .collect())
    }
}
