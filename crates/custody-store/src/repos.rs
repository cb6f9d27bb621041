//! Source repositories, as the trails' repo info names them (`list repos`,
//! `get repo`).

use std::collections::{BTreeMap, BTreeSet};

use custody_api::{Repo, RepoDetail, RepoTrail, Trail};
use sqlx::Row;

use crate::Store;
use crate::error::{StoreError, StoreResult};
use crate::util::from_json;

/// How many trails `get repo` shows.
pub const RECENT_TRAILS: usize = 50;

struct Seen {
    repo: Repo,
    flows: BTreeSet<String>,
    recent: Vec<RepoTrail>,
}

impl Store {
    /// Every repository named by a trail of the organisation, by name.
    pub async fn list_repos(&self, org_id: i64) -> StoreResult<Vec<Repo>> {
        Ok(self
            .repos(org_id, None)
            .await?
            .into_iter()
            .map(|d| d.repo)
            .collect())
    }

    pub async fn get_repo(&self, org_id: i64, name: &str) -> StoreResult<RepoDetail> {
        self.repos(org_id, Some(name))
            .await?
            .pop()
            .ok_or_else(|| StoreError::not_found("repository", name))
    }

    /// Reads the trails' documents: repositories are not a table of their
    /// own, so what trails said is the one source and nothing can drift.
    async fn repos(&self, org_id: i64, only: Option<&str>) -> StoreResult<Vec<RepoDetail>> {
        let rows = sqlx::query(
            "SELECT f.name, t.doc FROM trails t JOIN flows f ON f.id = t.flow_id \
             WHERE f.org_id = $1 ORDER BY t.created_at DESC",
        )
        .bind(org_id)
        .fetch_all(&self.db.read)
        .await?;
        let mut by_name: BTreeMap<String, Seen> = BTreeMap::new();
        for r in &rows {
            let flow: String = r.try_get(0)?;
            let t: Trail = from_json("trail", &r.try_get::<String, _>(1)?)?;
            let Some(info) = &t.repo_info else { continue };
            if only.is_some_and(|n| n != info.name) {
                continue;
            }
            // Rows come newest first: the first seen of a name describes it.
            let seen = by_name.entry(info.name.clone()).or_insert_with(|| Seen {
                repo: Repo {
                    name: info.name.clone(),
                    url: info.url.clone(),
                    id: info.id.clone(),
                    provider: info.provider.clone(),
                    flows: vec![],
                    trails: 0,
                    first_seen: t.created_at,
                    last_seen: t.created_at,
                },
                flows: BTreeSet::new(),
                recent: vec![],
            });
            seen.repo.trails += 1;
            seen.repo.first_seen = seen.repo.first_seen.min(t.created_at);
            seen.repo.last_seen = seen.repo.last_seen.max(t.created_at);
            seen.flows.insert(flow.clone());
            if seen.recent.len() < RECENT_TRAILS {
                seen.recent.push(RepoTrail {
                    flow,
                    trail: t.name.clone(),
                    commit: t.git_commit_info.as_ref().map(|g| g.sha1.clone()),
                    created_at: t.created_at,
                });
            }
        }
        Ok(by_name
            .into_values()
            .map(|s| RepoDetail {
                repo: Repo {
                    flows: s.flows.into_iter().collect(),
                    ..s.repo
                },
                recent_trails: s.recent,
            })
            .collect())
    }
}
