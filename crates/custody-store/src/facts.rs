//! What is known about how running artifacts were made, gathered for
//! policies: for each fingerprint, every trail that reported it, that
//! trail's compliance (computed as a trail read computes it) and the latest
//! attestations that count for the artifact there.
//!
//! Everything is read in a handful of batched queries whatever the number
//! of artifacts, and attestation documents are never decoded: the columns
//! hold what a policy asks.

use std::collections::{BTreeMap, HashMap, HashSet};

use custody_domain::AttestationKind;
use custody_domain::compliance::{self, ReportedArtifact, ReportedAttestation};
use custody_domain::template::FlowTemplate;
use custody_policy::{ArtifactFacts, AttestationFact, TrailFacts};
use custody_runtime::ArtifactKey;
use sqlx::{AnyConnection, Row};

use crate::util::{Binds, from_json};
use crate::{StoreError, StoreResult};

/// Ids per statement: well under SQLite's and PostgreSQL's bind limits.
const CHUNK: usize = 500;

struct TrailRow {
    flow: String,
    flow_tags: BTreeMap<String, String>,
    trail: String,
    template: Option<String>,
}

struct AttRow {
    trail_id: i64,
    id: String,
    name: String,
    kind: String,
    artifact: Option<String>,
    fingerprint: Option<String>,
    compliant: bool,
    control: Option<String>,
}

/// Runs `sql` (with `{}` where the placeholders go) once per chunk of
/// `values`, collecting the rows.
async fn chunked<T>(
    c: &mut AnyConnection,
    sql: &str,
    first: Option<i64>,
    values: &[T],
) -> StoreResult<Vec<sqlx::any::AnyRow>>
where
    T: Clone + Send + Sync + 'static,
    for<'q> T: sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    let mut out = Vec::new();
    for chunk in values.chunks(CHUNK) {
        let mut b = Binds::new(c);
        let lead = first.map(|_| b.next());
        let marks: Vec<String> = chunk.iter().map(|_| b.next()).collect();
        let text = match &lead {
            Some(l) => sql.replacen("{org}", l, 1),
            None => sql.to_string(),
        }
        .replacen("{}", &marks.join(","), 1);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
        if let Some(v) = first {
            q = q.bind(v);
        }
        for v in chunk {
            q = q.bind(v.clone());
        }
        out.extend(q.fetch_all(&mut *c).await?);
    }
    Ok(out)
}

/// Facts for each artifact, in the order given. `allowlisted` holds the
/// fingerprints the environment allowlists.
pub(crate) async fn gather(
    c: &mut AnyConnection,
    org_id: i64,
    artifacts: &[ArtifactKey],
    allowlisted: &HashSet<String>,
) -> StoreResult<Vec<ArtifactFacts>> {
    let fps: Vec<String> = artifacts
        .iter()
        .map(|a| a.fingerprint.clone())
        .filter(|f| !f.is_empty())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();

    // Which trails reported each fingerprint, under which template name.
    let mut reported: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    let mut trail_ids: Vec<i64> = Vec::new();
    for r in chunked(
        c,
        "SELECT fingerprint, trail_id, template_name FROM artifacts \
         WHERE org_id = {org} AND fingerprint IN ({}) ORDER BY id",
        Some(org_id),
        &fps,
    )
    .await?
    {
        let (fp, trail, name): (String, i64, String) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        let list = reported.entry(fp).or_default();
        if !list.iter().any(|(t, n)| *t == trail && *n == name) {
            list.push((trail, name));
        }
        trail_ids.push(trail);
    }
    trail_ids.sort_unstable();
    trail_ids.dedup();

    let mut trails: HashMap<i64, TrailRow> = HashMap::new();
    for r in chunked(
        c,
        "SELECT t.id, t.name, f.name, f.tags, t.doc, ft.yaml FROM trails t \
         JOIN flows f ON f.id = t.flow_id \
         LEFT JOIN flow_templates ft ON ft.flow_id = f.id AND ft.version = f.template_version \
         WHERE t.id IN ({})",
        None,
        &trail_ids,
    )
    .await?
    {
        let id: i64 = r.try_get(0)?;
        let tags: Option<String> = r.try_get(3)?;
        let doc: String = r.try_get(4)?;
        let trail: custody_api::Trail = from_json("trail", &doc)?;
        trails.insert(
            id,
            TrailRow {
                trail: r.try_get(1)?,
                flow: r.try_get(2)?,
                flow_tags: match tags {
                    Some(t) => from_json("flow tags", &t)?,
                    None => BTreeMap::new(),
                },
                template: trail.template_yaml.or(r.try_get(5)?),
            },
        );
    }

    let mut trail_artifacts: HashMap<i64, Vec<ReportedArtifact>> = HashMap::new();
    for r in chunked(
        c,
        "SELECT trail_id, template_name, fingerprint FROM artifacts WHERE trail_id IN ({}) ORDER BY id",
        None,
        &trail_ids,
    )
    .await?
    {
        trail_artifacts
            .entry(r.try_get(0)?)
            .or_default()
            .push(ReportedArtifact {
                template_name: r.try_get(1)?,
                fingerprint: r.try_get(2)?,
            });
    }

    let mut atts: HashMap<i64, Vec<AttRow>> = HashMap::new();
    for r in chunked(
        c,
        "SELECT trail_id, id, name, kind, artifact_name, fingerprint, compliant, control FROM attestations \
         WHERE trail_id IN ({}) AND latest = 1 ORDER BY created_at, id",
        None,
        &trail_ids,
    )
    .await?
    {
        let row = AttRow {
            trail_id: r.try_get(0)?,
            id: r.try_get(1)?,
            name: r.try_get(2)?,
            kind: r.try_get(3)?,
            artifact: r.try_get(4)?,
            fingerprint: r.try_get(5)?,
            compliant: r.try_get::<i64, _>(6)? != 0,
            control: r.try_get(7)?,
        };
        atts.entry(row.trail_id).or_default().push(row);
    }

    // Each trail's compliance, with templates parsed once per text.
    let mut templates: HashMap<&str, FlowTemplate> = HashMap::new();
    for t in trails.values() {
        if let Some(y) = t.template.as_deref()
            && !templates.contains_key(y)
        {
            let parsed = FlowTemplate::from_yaml(y)
                .map_err(|e| StoreError::Corrupt(format!("stored template: {e}")))?;
            templates.insert(y, parsed);
        }
    }
    let mut compliant: HashMap<i64, bool> = HashMap::new();
    let mut kinds: HashMap<&str, AttestationKind> = HashMap::new();
    for (id, t) in &trails {
        let reported_atts = atts
            .get(id)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
            .iter()
            .map(|a| {
                Ok(ReportedAttestation {
                    id: a.id.clone(),
                    name: a.name.clone(),
                    kind: kind_of(&mut kinds, &a.kind)?,
                    artifact: a.artifact.clone(),
                    fingerprint: a.fingerprint.clone(),
                    compliant: a.compliant,
                    reasons: vec![],
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let template = t.template.as_deref().and_then(|y| templates.get(y));
        let arts = trail_artifacts.get(id).map(|v| v.as_slice()).unwrap_or(&[]);
        compliant.insert(
            *id,
            compliance::evaluate(template, arts, &reported_atts).compliant,
        );
    }

    let mut out = Vec::with_capacity(artifacts.len());
    for a in artifacts {
        let mut facts = ArtifactFacts {
            name: a.name.clone(),
            fingerprint: a.fingerprint.clone(),
            allowlisted: !a.fingerprint.is_empty() && allowlisted.contains(&a.fingerprint),
            trails: vec![],
        };
        for (trail_id, template_name) in reported
            .get(&a.fingerprint)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
        {
            let Some(t) = trails.get(trail_id) else {
                continue;
            };
            let attestations = atts
                .get(trail_id)
                .map(|v| v.as_slice())
                .unwrap_or(&[])
                .iter()
                .filter(|x| match &x.artifact {
                    None => true,
                    Some(n) => {
                        n == template_name
                            && x.fingerprint.as_deref().is_none_or(|f| f == a.fingerprint)
                    }
                })
                .map(|x| {
                    Ok(AttestationFact {
                        name: x.name.clone(),
                        kind: kind_of(&mut kinds, &x.kind)?,
                        compliant: x.compliant,
                        control: x.control.clone(),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            facts.trails.push(TrailFacts {
                flow: t.flow.clone(),
                flow_tags: t.flow_tags.clone(),
                trail: t.trail.clone(),
                trail_compliant: compliant.get(trail_id).copied().unwrap_or(false),
                attestations,
            });
        }
        out.push(facts);
    }
    Ok(out)
}

fn kind_of<'a>(
    cache: &mut HashMap<&'a str, AttestationKind>,
    s: &'a str,
) -> StoreResult<AttestationKind> {
    if let Some(k) = cache.get(s) {
        return Ok(k.clone());
    }
    let k = AttestationKind::parse(s)
        .map_err(|e| StoreError::Corrupt(format!("stored attestation type: {e}")))?;
    cache.insert(s, k.clone());
    Ok(k)
}
