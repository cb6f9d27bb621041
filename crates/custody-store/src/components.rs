//! The components SBOM attestations list, kept row by row so that "which
//! artifacts contain package X" is an indexed query.

use custody_api::ComponentUse;
use custody_evidence::sbom::{Component, ComponentList, purl_base};
use sqlx::{AnyConnection, Row};

use crate::util::{Binds, from_json, to_json};
use crate::{Store, StoreError, StoreResult};

/// Rows per INSERT: 10 parameters each, well under every backend's limit,
/// and few enough statements that 10,000 components cost ~100 round trips
/// inside the transaction.
const BATCH: usize = 90;
const COLUMNS: usize = 10;

/// Where a batch of components was reported.
pub(crate) struct ComponentSite<'a> {
    pub org_id: i64,
    pub attestation_id: &'a str,
    pub trail_id: i64,
    pub artifact: Option<&'a str>,
    pub fingerprint: Option<&'a str>,
}

/// Stores the components of a list a batch at a time, reading each batch
/// from the list's text just before it is written.
pub(crate) async fn insert(
    c: &mut AnyConnection,
    site: &ComponentSite<'_>,
    components: &ComponentList,
) -> StoreResult<()> {
    let batches = components
        .batches(BATCH)
        .map_err(StoreError::Unprocessable)?;
    for chunk in batches {
        let chunk = chunk.map_err(StoreError::Unprocessable)?;
        let mut b = Binds::new(c);
        let mut sql = String::from(
            "INSERT INTO sbom_components (org_id, attestation_id, trail_id, artifact_name, fingerprint, \
             name, version, purl, purl_base, doc) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for j in 0..COLUMNS {
                if j > 0 {
                    sql.push(',');
                }
                sql.push_str(&b.next());
            }
            sql.push(')');
        }
        let docs: Vec<String> = chunk.iter().map(to_json).collect::<StoreResult<_>>()?;
        // Only placeholders are generated; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (comp, doc) in chunk.iter().zip(&docs) {
            q = q
                .bind(site.org_id)
                .bind(site.attestation_id)
                .bind(site.trail_id)
                .bind(site.artifact)
                .bind(site.fingerprint)
                .bind(&comp.name)
                .bind(comp.version.as_deref())
                .bind(comp.purl.as_deref())
                .bind(comp.purl.as_deref().map(purl_base))
                .bind(doc.as_str());
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

impl Store {
    /// Components of an organisation's SBOMs by name, purl (exact, or any
    /// version when the purl has none), and version; newest first.
    pub async fn find_components(
        &self,
        org_id: i64,
        name: Option<&str>,
        purl: Option<&str>,
        version: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ComponentUse>> {
        let (purl_exact, purl_any) = match purl {
            Some(p) if purl_base(p) == p => ("", p),
            Some(p) => (p, ""),
            None => ("", ""),
        };
        let rows = sqlx::query(
            // An SBOM bound by ARTIFACT.NAME may precede the artifact: its
            // fingerprint is the one the trail reports for that name now.
            "SELECT c.doc, f.name, t.name, c.artifact_name, \
             COALESCE(c.fingerprint, (SELECT r.fingerprint FROM artifacts r \
                WHERE r.trail_id = c.trail_id AND r.template_name = c.artifact_name ORDER BY r.id DESC LIMIT 1)), \
             c.attestation_id, a.name, a.created_at \
             FROM sbom_components c \
             JOIN attestations a ON a.id = c.attestation_id \
             JOIN trails t ON t.id = c.trail_id \
             JOIN flows f ON f.id = t.flow_id \
             WHERE c.org_id = $1 AND ($2 = '' OR c.name = $2) AND ($3 = '' OR c.purl = $3) \
             AND ($4 = '' OR c.purl_base = $4) AND ($5 = '' OR c.version = $5) \
             ORDER BY c.id DESC LIMIT $6",
        )
        .bind(org_id)
        .bind(name.unwrap_or(""))
        .bind(purl_exact)
        .bind(purl_any)
        .bind(version.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.db.read)
        .await?;
        rows.iter()
            .map(|r| {
                let comp: Component = from_json("component", &r.try_get::<String, _>(0)?)?;
                Ok(ComponentUse {
                    name: comp.name,
                    version: comp.version,
                    purl: comp.purl,
                    licenses: comp.licenses,
                    flow: r.try_get(1)?,
                    trail: r.try_get(2)?,
                    artifact: r.try_get(3)?,
                    fingerprint: r.try_get(4)?,
                    attestation_id: r.try_get(5)?,
                    attestation_name: r.try_get(6)?,
                    reported_at: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// The components of one SBOM attestation, in document order, a page
    /// at a time (an SBOM can list hundreds of thousands).
    pub async fn attestation_components(
        &self,
        org_id: i64,
        attestation_id: &str,
        page: u32,
        per_page: u32,
    ) -> StoreResult<custody_api::Page<Component>> {
        // Through get_attestation: a missing or foreign id is a 404.
        self.get_attestation(org_id, attestation_id).await?;
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) FROM sbom_components WHERE org_id = $1 AND attestation_id = $2",
        )
        .bind(org_id)
        .bind(attestation_id)
        .fetch_one(&self.db.read)
        .await?
        .try_get(0)?;
        let rows = sqlx::query(
            "SELECT doc FROM sbom_components WHERE org_id = $1 AND attestation_id = $2 ORDER BY id LIMIT $3 OFFSET $4",
        )
        .bind(org_id)
        .bind(attestation_id)
        .bind(i64::from(per_page))
        .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page))
        .fetch_all(&self.db.read)
        .await?;
        let items = rows
            .iter()
            .map(|r| from_json("component", &r.try_get::<String, _>(0)?))
            .collect::<StoreResult<_>>()?;
        Ok(custody_api::Page {
            items,
            page,
            per_page,
            total: total.max(0) as u64,
        })
    }
}
