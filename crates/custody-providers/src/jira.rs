//! Jira Cloud (REST v3, basic auth with an API token) and Jira Data Center
//! (REST v2, a personal access token): does each referred issue exist, and
//! what is it.
//!
//! <https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get>,
//! <https://developer.atlassian.com/server/jira/platform/rest/v10000/api-group-issue/#api-api-2-issue-issueidorkey-get>

use custody_evidence::jira::JiraIssue;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::http::{Api, Auth, ProviderError, join};

pub enum Credentials {
    /// Jira Cloud: the account's email and an API token.
    Cloud { username: String, api_token: String },
    /// Jira Data Center: a personal access token.
    Pat(String),
}

pub struct Jira {
    api: Api,
    base: Url,
    version: &'static str,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct Issue {
    key: String,
    #[serde(default)]
    fields: Map<String, Value>,
}

impl Jira {
    pub fn new(base: &Url, credentials: Credentials, client: reqwest::Client) -> Self {
        let (auth, version) = match credentials {
            Credentials::Cloud {
                username,
                api_token,
            } => (
                Auth::Basic {
                    user: username,
                    password: api_token,
                },
                "3",
            ),
            Credentials::Pat(t) => (Auth::Bearer(t), "2"),
        };
        Jira {
            api: Api::new("Jira", auth, client),
            base: base.clone(),
            version,
        }
    }

    /// Looks `key` up; `extra_fields` are kept as Jira gives them (`*all`
    /// for every field). A 404 is an issue that does not exist.
    pub async fn issue(
        &self,
        key: &str,
        extra_fields: &[String],
    ) -> Result<JiraIssue, ProviderError> {
        let mut url = join(&self.base, &["rest", "api", self.version, "issue", key]);
        let mut fields = vec!["summary".to_string(), "status".into(), "issuetype".into()];
        fields.extend(extra_fields.iter().cloned());
        url.query_pairs_mut()
            .append_pair("fields", &fields.join(","));
        let browse = join(&self.base, &["browse", key]).to_string();
        let issue: Issue = match self.api.get(&url).await {
            Ok((i, _)) => i,
            Err(e) if e.is_not_found() => {
                return Ok(JiraIssue {
                    key: key.to_string(),
                    url: browse,
                    exists: false,
                    summary: None,
                    status: None,
                    issue_type: None,
                    fields: None,
                });
            }
            Err(e) => return Err(e),
        };
        let named = |f: &str| {
            issue
                .fields
                .get(f)
                .and_then(|v| Named::deserialize(v).ok())
                .map(|n| n.name)
        };
        let all = extra_fields.iter().any(|f| f == "*all");
        let kept: Map<String, Value> = issue
            .fields
            .iter()
            .filter(|(k, _)| all || extra_fields.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(JiraIssue {
            key: issue.key.clone(),
            url: browse,
            exists: true,
            summary: issue
                .fields
                .get("summary")
                .and_then(Value::as_str)
                .map(String::from),
            status: named("status"),
            issue_type: named("issuetype"),
            fields: (!extra_fields.is_empty()).then_some(Value::Object(kept)),
        })
    }
}
