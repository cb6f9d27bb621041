//! SonarQube Server and SonarQube Cloud: the scanner's `report-task.txt`
//! and the quality gate of the analysis it started.

use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

/// What the scanner writes to `.scannerwork/report-task.txt`: Java
/// properties, one `key=value` per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportTask {
    pub project_key: String,
    pub server_url: String,
    pub ce_task_id: String,
    pub ce_task_url: Option<String>,
    pub dashboard_url: Option<String>,
    pub organization: Option<String>,
}

/// Reads report-task.txt; errors name the line or the missing key.
pub fn report_task(text: &str) -> Result<ReportTask, String> {
    let mut t = ReportTask::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: expected key=value", n + 1));
        };
        // Properties files escape ':' and '=' in values (`https\://`).
        let v = v.trim().replace("\\:", ":").replace("\\=", "=");
        match k.trim() {
            "projectKey" => t.project_key = v,
            "serverUrl" => t.server_url = v,
            "ceTaskId" => t.ce_task_id = v,
            "ceTaskUrl" => t.ce_task_url = Some(v),
            "dashboardUrl" => t.dashboard_url = Some(v),
            "organization" => t.organization = Some(v),
            _ => {}
        }
    }
    for (key, value) in [
        ("projectKey", &t.project_key),
        ("serverUrl", &t.server_url),
        ("ceTaskId", &t.ce_task_id),
    ] {
        if value.is_empty() {
            return Err(format!("no {key}"));
        }
    }
    Ok(t)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SonarSummary {
    pub server_url: String,
    /// The analysis' background task.
    #[serde(default)]
    pub task_id: Option<String>,
    pub analysis_id: String,
    #[serde(default)]
    pub analysed_at: Option<String>,
    /// The commit that was analysed, when Sonar knows it.
    #[serde(default)]
    pub revision: Option<String>,
    pub project: SonarProject,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub pull_request: Option<String>,
    pub quality_gate: QualityGate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SonarProject {
    pub key: String,
    /// The project's dashboard.
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityGate {
    /// `OK`, `ERROR`, or `NONE` when the project has no gate. (`WARN` was
    /// removed in SonarQube 7.6; it is kept as not passing.)
    pub status: String,
    #[serde(default)]
    pub conditions: Vec<GateCondition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateCondition {
    pub metric: String,
    /// `OK` or `ERROR`.
    pub status: String,
    /// `GT` or `LT`: the value fails when it is greater / less than the threshold.
    #[serde(default)]
    pub comparator: Option<String>,
    #[serde(default)]
    pub error_threshold: Option<String>,
    #[serde(default)]
    pub actual_value: Option<String>,
}

const STATUSES: &[&str] = &["OK", "ERROR", "WARN", "NONE"];

impl SonarSummary {
    pub fn check(&self) -> Result<(), String> {
        if !STATUSES.contains(&self.quality_gate.status.as_str()) {
            return Err(format!(
                "sonar results: unknown quality gate status '{}': expected one of {}",
                self.quality_gate.status,
                STATUSES.join(", ")
            ));
        }
        if self.project.key.trim().is_empty() {
            return Err("sonar results: project.key is empty".into());
        }
        Ok(())
    }

    /// Compliant iff the quality gate passed.
    pub fn verdict(&self) -> Verdict {
        let gate = &self.quality_gate;
        match gate.status.as_str() {
            "OK" => Verdict::from_reasons(vec![]),
            "NONE" => Verdict::from_reasons(vec![format!(
                "project {} has no quality gate in Sonar",
                self.project.key
            )]),
            status => {
                let mut reasons: Vec<String> = gate
                    .conditions
                    .iter()
                    .filter(|c| c.status != "OK")
                    .map(|c| {
                        let wanted = match (c.comparator.as_deref(), &c.error_threshold) {
                            (Some("GT"), Some(t)) => format!(", fails above {t}"),
                            (Some("LT"), Some(t)) => format!(", fails below {t}"),
                            (_, Some(t)) => format!(", threshold {t}"),
                            _ => String::new(),
                        };
                        format!(
                            "quality gate condition {} is {}{wanted}",
                            c.metric,
                            c.actual_value.as_deref().unwrap_or("unknown")
                        )
                    })
                    .collect();
                reasons.insert(
                    0,
                    format!(
                        "the quality gate of project {} is {status}",
                        self.project.key
                    ),
                );
                Verdict::from_reasons(reasons)
            }
        }
    }

    pub fn headline(&self) -> String {
        let failed = self
            .quality_gate
            .conditions
            .iter()
            .filter(|c| c.status != "OK")
            .count();
        format!(
            "quality gate of {}: {} ({} of {} conditions failing)",
            self.project.key,
            self.quality_gate.status,
            failed,
            self.quality_gate.conditions.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_task_as_the_scanner_writes_it() {
        let text = "organization=acme\nprojectKey=acme_shop\nserverUrl=https\\://sonarcloud.io\n\
            serverVersion=8.0.0.63488\ndashboardUrl=https://sonarcloud.io/dashboard?id=acme_shop\n\
            ceTaskId=AYxyz123\nceTaskUrl=https://sonarcloud.io/api/ce/task?id=AYxyz123\n";
        let t = report_task(text).unwrap();
        assert_eq!(t.project_key, "acme_shop");
        assert_eq!(t.server_url, "https://sonarcloud.io");
        assert_eq!(t.ce_task_id, "AYxyz123");
        assert_eq!(t.organization.as_deref(), Some("acme"));
        assert_eq!(report_task("projectKey=a\n").unwrap_err(), "no serverUrl");
        assert_eq!(
            report_task("projectKey\n").unwrap_err(),
            "line 1: expected key=value"
        );
    }

    fn summary(status: &str) -> SonarSummary {
        SonarSummary {
            server_url: "https://sonar.example.com".into(),
            task_id: Some("AY1".into()),
            analysis_id: "AZ1".into(),
            analysed_at: None,
            revision: None,
            project: SonarProject {
                key: "shop".into(),
                url: None,
            },
            branch: None,
            pull_request: None,
            quality_gate: QualityGate {
                status: status.into(),
                conditions: vec![
                    GateCondition {
                        metric: "new_coverage".into(),
                        status: "ERROR".into(),
                        comparator: Some("LT".into()),
                        error_threshold: Some("80".into()),
                        actual_value: Some("61.5".into()),
                    },
                    GateCondition {
                        metric: "new_violations".into(),
                        status: "OK".into(),
                        comparator: Some("GT".into()),
                        error_threshold: Some("0".into()),
                        actual_value: Some("0".into()),
                    },
                ],
            },
        }
    }

    #[test]
    fn verdict_follows_the_gate() {
        assert!(summary("OK").verdict().compliant);
        let v = summary("ERROR").verdict();
        assert_eq!(
            v.reasons,
            [
                "the quality gate of project shop is ERROR",
                "quality gate condition new_coverage is 61.5, fails below 80"
            ]
        );
        assert!(!summary("NONE").verdict().compliant);
        assert!(summary("MAYBE").check().unwrap_err().contains("'MAYBE'"));
        assert_eq!(
            summary("ERROR").headline(),
            "quality gate of shop: ERROR (1 of 2 conditions failing)"
        );
    }
}
