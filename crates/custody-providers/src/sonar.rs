//! SonarQube Server and SonarQube Cloud Web API: wait for an analysis'
//! background task, then read its quality gate.
//!
//! `api/ce/task`, `api/project_analyses/search` and
//! `api/qualitygates/project_status`, as documented at
//! <https://next.sonarqube.com/sonarqube/web_api>.

use std::time::{Duration, Instant};

use custody_evidence::sonar::{GateCondition, QualityGate, SonarProject, SonarSummary};
use serde::Deserialize;
use url::Url;

use crate::http::{Api, Auth, ProviderError, join};

pub const DEFAULT_SERVER_URL: &str = "https://sonarcloud.io";

pub struct Sonar {
    api: Api,
    server: Url,
}

#[derive(Deserialize)]
struct TaskAnswer {
    task: Task,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Task {
    id: String,
    status: String,
    component_key: Option<String>,
    analysis_id: Option<String>,
    executed_at: Option<String>,
    branch: Option<String>,
    pull_request: Option<String>,
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct Analyses {
    paging: Paging,
    analyses: Vec<Analysis>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Paging {
    page_index: u64,
    page_size: u64,
    total: u64,
}

#[derive(Deserialize)]
struct Analysis {
    key: String,
    date: Option<String>,
    revision: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusAnswer {
    project_status: ProjectStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectStatus {
    status: String,
    #[serde(default)]
    conditions: Vec<Condition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    status: String,
    metric_key: String,
    comparator: Option<String>,
    error_threshold: Option<String>,
    actual_value: Option<String>,
}

/// Which analysis to judge.
pub enum Find {
    /// The background task the scanner started (report-task.txt's ceTaskId).
    Task(String),
    /// The project's analysis of this revision.
    Revision {
        project_key: String,
        revision: String,
    },
}

/// Where the analysis is, besides the project: its branch or pull request.
#[derive(Default, Clone)]
pub struct Scope {
    pub branch: Option<String>,
    pub pull_request: Option<String>,
}

impl Sonar {
    pub fn new(server: &Url, token: &str, client: reqwest::Client) -> Self {
        Sonar {
            api: Api::new("Sonar", Auth::Bearer(token.to_string()), client),
            server: server.clone(),
        }
    }

    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> Url {
        let mut u = join(&self.server, path);
        u.query_pairs_mut().extend_pairs(query);
        u
    }

    /// Polls the task with exponential backoff (1 s, 2 s, 4 s, ... capped at
    /// 10 s) until it ends or `max_wait` is spent.
    async fn finished_task(&self, id: &str, max_wait: Duration) -> Result<Task, ProviderError> {
        let url = self.url(&["api", "ce", "task"], &[("id", id)]);
        let started = Instant::now();
        let mut pause = Duration::from_secs(1);
        loop {
            let (a, _): (TaskAnswer, _) = self.api.get(&url).await?;
            let t = a.task;
            match t.status.as_str() {
                "SUCCESS" => return Ok(t),
                "PENDING" | "IN_PROGRESS" => {}
                other => {
                    let why = t
                        .error_message
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    return Err(self.api.error(
                        &reqwest::Method::GET,
                        &url,
                        Some(200),
                        format!("task {} ended {other}{why}", t.id),
                    ));
                }
            }
            let spent = started.elapsed();
            if spent >= max_wait {
                return Err(self.api.error(
                    &reqwest::Method::GET,
                    &url,
                    Some(200),
                    format!(
                        "task {} is still {} after {}s (--max-wait)",
                        t.id,
                        t.status,
                        spent.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(pause.min(max_wait - spent)).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }

    /// The project's analyses, newest first, until `stop` finds one.
    async fn analysis(
        &self,
        project: &str,
        scope: &Scope,
        stop: impl Fn(&Analysis) -> bool,
    ) -> Result<Option<Analysis>, ProviderError> {
        let mut page = 1u64;
        loop {
            let p = page.to_string();
            let mut query = vec![("project", project), ("ps", "100"), ("p", p.as_str())];
            if let Some(b) = &scope.branch {
                query.push(("branch", b));
            }
            if let Some(pr) = &scope.pull_request {
                query.push(("pullRequest", pr));
            }
            let url = self.url(&["api", "project_analyses", "search"], &query);
            let (a, _): (Analyses, _) = self.api.get(&url).await?;
            let seen = a.paging.page_index * a.paging.page_size;
            let empty = a.analyses.is_empty();
            if let Some(found) = a.analyses.into_iter().find(|x| stop(x)) {
                return Ok(Some(found));
            }
            if empty || seen >= a.paging.total {
                return Ok(None);
            }
            page += 1;
        }
    }

    pub async fn quality_gate(
        &self,
        find: Find,
        scope: Scope,
        max_wait: Duration,
    ) -> Result<SonarSummary, ProviderError> {
        let (task_id, project_key, analysis_id, mut analysed_at, mut revision, scope) = match find {
            Find::Task(id) => {
                let t = self.finished_task(&id, max_wait).await?;
                let analysis = t.analysis_id.clone().ok_or_else(|| {
                    self.api.error(
                        &reqwest::Method::GET,
                        &self.url(&["api", "ce", "task"], &[("id", &id)]),
                        Some(200),
                        format!("task {id} succeeded without an analysisId"),
                    )
                })?;
                let project = t.component_key.clone().unwrap_or_default();
                let scope = Scope {
                    branch: t.branch.or(scope.branch),
                    pull_request: t.pull_request.or(scope.pull_request),
                };
                (Some(t.id), project, analysis, t.executed_at, None, scope)
            }
            Find::Revision {
                project_key,
                revision,
            } => {
                let found = self
                    .analysis(&project_key, &scope, |a| {
                        a.revision.as_deref() == Some(revision.as_str())
                    })
                    .await?;
                let Some(a) = found else {
                    let url = self.url(
                        &["api", "project_analyses", "search"],
                        &[("project", &project_key)],
                    );
                    return Err(self.api.error(
                        &reqwest::Method::GET,
                        &url,
                        Some(200),
                        format!("has no analysis of project {project_key} at revision {revision}"),
                    ));
                };
                (None, project_key, a.key, a.date, a.revision, scope)
            }
        };
        if revision.is_none()
            && !project_key.is_empty()
            && let Some(a) = self
                .analysis(&project_key, &scope, |a| a.key == analysis_id)
                .await?
        {
            revision = a.revision;
            analysed_at = analysed_at.or(a.date);
        }
        let url = self.url(
            &["api", "qualitygates", "project_status"],
            &[("analysisId", &analysis_id)],
        );
        let (s, _): (StatusAnswer, _) = self.api.get(&url).await?;
        let mut dashboard = self.url(&["dashboard"], &[("id", &project_key)]);
        if let Some(b) = &scope.branch {
            dashboard.query_pairs_mut().append_pair("branch", b);
        }
        Ok(SonarSummary {
            server_url: self.server.to_string().trim_end_matches('/').to_string(),
            task_id,
            analysis_id,
            analysed_at,
            revision,
            project: SonarProject {
                key: project_key,
                url: Some(dashboard.to_string()),
            },
            branch: scope.branch,
            pull_request: scope.pull_request,
            quality_gate: QualityGate {
                status: s.project_status.status,
                conditions: s
                    .project_status
                    .conditions
                    .into_iter()
                    .map(|c| GateCondition {
                        metric: c.metric_key,
                        status: c.status,
                        comparator: c.comparator,
                        error_threshold: c.error_threshold,
                        actual_value: c.actual_value,
                    })
                    .collect(),
            },
        })
    }
}
