//! SARIF 2.1.0 from any producer (CodeQL, Semgrep, Trivy, Grype, ESLint,
//! Checkmarx, Snyk...).
//!
//! The effective level of a result is its `level`, else its rule's
//! `defaultConfiguration.level`, else `warning` (SARIF §3.27.10). Only
//! results of kind `fail` (the default) count. A result is suppressed only
//! if it has suppressions and all of them are accepted (a suppression
//! without a status is accepted). A run whose invocation reports
//! `executionSuccessful: false`, or an `error`-level tool execution or
//! configuration notification (Semgrep reports an invalid scanning root
//! that way, with `executionSuccessful: true` and no results), or that has
//! no `results`, did not complete: that is a reason, not a clean scan.
//!
//! `"version": "2.2"` (the OASIS working draft some tools already write)
//! is read with the 2.1.0 rules: the parts read here did not change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;
use crate::json;
use crate::limits::{Limits, MAX_LISTED, truncate};
use crate::verdict::Verdict;

/// The largest message kept per listed finding.
const FINDING_MESSAGE: usize = 1024;

// ---- The parts of the SARIF object model that are read. ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Log {
    pub version: Option<String>,
    #[serde(default)]
    pub runs: Option<Vec<Run>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Run {
    pub tool: Tool,
    #[serde(default)]
    pub results: Option<Vec<SarifResult>>,
    #[serde(default)]
    pub invocations: Vec<Invocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tool {
    pub driver: Component,
    #[serde(default)]
    pub extensions: Vec<Component>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Component {
    #[serde(default)]
    pub name: String,
    pub version: Option<String>,
    pub semantic_version: Option<String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl Component {
    pub fn version(&self) -> Option<String> {
        self.semantic_version
            .clone()
            .or_else(|| self.version.clone())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rule {
    pub id: Option<String>,
    pub default_configuration: Option<Configuration>,
    #[serde(default)]
    pub properties: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(crate) struct Configuration {
    pub level: Option<Level>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Invocation {
    pub execution_successful: Option<bool>,
    #[serde(default)]
    pub tool_execution_notifications: Vec<Notification>,
    #[serde(default)]
    pub tool_configuration_notifications: Vec<Notification>,
}

/// A tool's message about its own run (SARIF §3.58); `level` defaults to
/// `warning`, and only `error` means the run went wrong.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Notification {
    pub level: Option<String>,
    #[serde(default)]
    pub message: Message,
    pub descriptor: Option<DescriptorRef>,
}

#[derive(Deserialize)]
pub(crate) struct DescriptorRef {
    pub id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SarifResult {
    pub rule_id: Option<String>,
    pub rule_index: Option<i64>,
    pub rule: Option<RuleRef>,
    pub level: Option<Level>,
    pub kind: Option<Kind>,
    #[serde(default)]
    pub message: Message,
    #[serde(default)]
    pub locations: Vec<Location>,
    pub suppressions: Option<Vec<Suppression>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleRef {
    pub id: Option<String>,
    pub index: Option<i64>,
    pub tool_component: Option<ComponentRef>,
}

#[derive(Deserialize)]
pub(crate) struct ComponentRef {
    pub index: Option<i64>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Message {
    pub text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Location {
    pub physical_location: Option<PhysicalLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PhysicalLocation {
    pub artifact_location: Option<ArtifactLocation>,
    pub region: Option<Region>,
}

#[derive(Deserialize)]
pub(crate) struct ArtifactLocation {
    pub uri: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Region {
    pub start_line: Option<u64>,
    pub end_line: Option<u64>,
}

#[derive(Deserialize)]
pub(crate) struct Suppression {
    pub status: Option<SuppressionStatus>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) enum SuppressionStatus {
    Accepted,
    UnderReview,
    Rejected,
}

#[derive(Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Kind {
    NotApplicable,
    Pass,
    Fail,
    Review,
    Open,
    Informational,
}

/// A SARIF level, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    Note,
    Warning,
    Error,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "none" => Some(Level::None),
            "note" => Some(Level::Note),
            "warning" => Some(Level::Warning),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

impl Log {
    pub fn parse(bytes: &[u8], limits: Limits) -> Result<Log, ParseError> {
        let log: Log = json::from_slice(bytes, limits)?;
        match log.version.as_deref() {
            Some("2.1.0" | "2.2") => {}
            Some(v) => {
                return Err(ParseError::new(format!(
                    "SARIF version \"{v}\" is not supported: only 2.1.0 (and 2.2, read by its rules)"
                )));
            }
            None => {
                return Err(ParseError::new(
                    "not a SARIF log: no \"version\" (expected \"2.1.0\")",
                ));
            }
        }
        if log.runs.is_none() {
            return Err(ParseError::new("not a SARIF log: no \"runs\""));
        }
        Ok(log)
    }
}

impl Run {
    /// The rule a result refers to: by index (in the driver or the
    /// extension `rule.toolComponent` names), else by id.
    pub fn rule_of(&self, r: &SarifResult) -> Option<&Rule> {
        let index = r.rule.as_ref().and_then(|x| x.index).or(r.rule_index);
        let component = match r
            .rule
            .as_ref()
            .and_then(|x| x.tool_component.as_ref())
            .and_then(|c| c.index)
        {
            Some(i) => usize::try_from(i)
                .ok()
                .and_then(|i| self.tool.extensions.get(i))?,
            None => &self.tool.driver,
        };
        if let Some(rule) = index
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| component.rules.get(i))
        {
            return Some(rule);
        }
        let id = r.rule_id()?;
        let find = |id: &str| {
            std::iter::once(&self.tool.driver)
                .chain(&self.tool.extensions)
                .flat_map(|c| &c.rules)
                .find(|rule| rule.id.as_deref() == Some(id))
        };
        // Hierarchical ids ("A/B") may be declared by their first part.
        find(id).or_else(|| id.split_once('/').and_then(|(head, _)| find(head)))
    }

    /// Did not complete: a failed invocation, or results never computed.
    pub fn incomplete(&self) -> Option<String> {
        if self
            .invocations
            .iter()
            .any(|i| i.execution_successful == Some(false))
        {
            return Some(format!(
                "{} did not complete: executionSuccessful is false",
                self.tool.driver.name
            ));
        }
        let mut failed = self.invocations.iter().flat_map(|i| {
            i.tool_execution_notifications
                .iter()
                .chain(&i.tool_configuration_notifications)
        });
        if let Some(n) = failed.find(|n| n.level.as_deref() == Some("error")) {
            let text = n.message.text.as_deref().unwrap_or("(no message)");
            let text = truncate(text.to_string(), FINDING_MESSAGE);
            return Some(match n.descriptor.as_ref().and_then(|d| d.id.as_deref()) {
                Some(id) => format!(
                    "{} did not complete: an error notification ({id}): {text}",
                    self.tool.driver.name
                ),
                None => format!(
                    "{} did not complete: an error notification: {text}",
                    self.tool.driver.name
                ),
            });
        }
        if self.results.is_none() {
            return Some(format!(
                "{} did not complete: the run has no results",
                self.tool.driver.name
            ));
        }
        None
    }
}

impl SarifResult {
    pub fn rule_id(&self) -> Option<&str> {
        self.rule_id
            .as_deref()
            .or_else(|| self.rule.as_ref().and_then(|r| r.id.as_deref()))
    }

    /// Suppressed only if every suppression is accepted.
    pub fn suppressed(&self) -> bool {
        match &self.suppressions {
            Some(s) if !s.is_empty() => s
                .iter()
                .all(|x| matches!(x.status, None | Some(SuppressionStatus::Accepted))),
            _ => false,
        }
    }

    pub fn counts(&self) -> bool {
        matches!(self.kind, None | Some(Kind::Fail))
    }

    pub fn location(&self) -> Option<String> {
        let p = self.locations.first()?.physical_location.as_ref()?;
        let uri = p.artifact_location.as_ref()?.uri.clone()?;
        Some(match p.region.as_ref().and_then(|r| r.start_line) {
            Some(start) => match p.region.as_ref().and_then(|r| r.end_line) {
                Some(end) if end != start => format!("{uri}:{start}-{end}"),
                _ => format!("{uri}:{start}"),
            },
            None => uri,
        })
    }

    pub fn message(&self) -> String {
        truncate(
            self.message.text.clone().unwrap_or_default(),
            FINDING_MESSAGE,
        )
    }
}

// ---- The summary stored with a `sarif` attestation. ----

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelCounts {
    pub error: u64,
    pub warning: u64,
    pub note: u64,
    pub none: u64,
}

impl LevelCounts {
    fn add(&mut self, l: Level) {
        match l {
            Level::Error => self.error += 1,
            Level::Warning => self.warning += 1,
            Level::Note => self.note += 1,
            Level::None => self.none += 1,
        }
    }

    /// Results at `level` or above.
    pub fn at_or_above(&self, level: Level) -> u64 {
        let mut n = self.error;
        if level <= Level::Warning {
            n += self.warning;
        }
        if level <= Level::Note {
            n += self.note;
        }
        if level <= Level::None {
            n += self.none;
        }
        n
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub counts: LevelCounts,
    /// Suppressed results, and results whose kind is not `fail`: not counted.
    pub suppressed: u64,
    pub not_failing: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub level: Level,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SarifSummary {
    pub runs: Vec<RunSummary>,
    pub totals: LevelCounts,
    pub by_rule: BTreeMap<String, LevelCounts>,
    /// Counted results, worst first, the first [`MAX_LISTED`].
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub findings_not_listed: u64,
}

pub fn parse(bytes: &[u8], limits: Limits) -> Result<SarifSummary, ParseError> {
    let log = Log::parse(bytes, limits)?;
    let mut s = SarifSummary::default();
    let mut findings = vec![];
    for run in log.runs.iter().flatten() {
        let mut r = RunSummary {
            tool: run.tool.driver.name.clone(),
            version: run.tool.driver.version(),
            counts: LevelCounts::default(),
            suppressed: 0,
            not_failing: 0,
            incomplete: run.incomplete(),
        };
        for result in run.results.iter().flatten() {
            if !result.counts() {
                r.not_failing += 1;
                continue;
            }
            if result.suppressed() {
                r.suppressed += 1;
                continue;
            }
            let rule = run.rule_of(result);
            let level = result
                .level
                .or_else(|| rule.and_then(|x| x.default_configuration.as_ref()?.level))
                .unwrap_or(Level::Warning);
            let id = result
                .rule_id()
                .map(str::to_string)
                .or_else(|| rule.and_then(|x| x.id.clone()))
                .unwrap_or_else(|| "(no rule)".to_string());
            r.counts.add(level);
            s.totals.add(level);
            s.by_rule.entry(id.clone()).or_default().add(level);
            if level > Level::None {
                findings.push(Finding {
                    rule: id,
                    level,
                    message: result.message(),
                    location: result.location(),
                });
                // Keep the list bounded while reading: the worst
                // MAX_LISTED survive.
                if findings.len() >= 2 * MAX_LISTED {
                    findings.sort_by_key(|f: &Finding| std::cmp::Reverse(f.level));
                    s.findings_not_listed += (findings.len() - MAX_LISTED) as u64;
                    findings.truncate(MAX_LISTED);
                }
            }
        }
        s.runs.push(r);
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    if findings.len() > MAX_LISTED {
        s.findings_not_listed += (findings.len() - MAX_LISTED) as u64;
        findings.truncate(MAX_LISTED);
    }
    s.findings = findings;
    Ok(s)
}

impl LevelCounts {
    fn checked_add(&self, o: &LevelCounts) -> Option<LevelCounts> {
        Some(LevelCounts {
            error: self.error.checked_add(o.error)?,
            warning: self.warning.checked_add(o.warning)?,
            note: self.note.checked_add(o.note)?,
            none: self.none.checked_add(o.none)?,
        })
    }
}

impl SarifSummary {
    /// Checks a summary received from elsewhere: the runs add up to the
    /// totals, as do the rules, every sum fits, and the findings listed
    /// agree with the totals.
    pub fn check(&self) -> Result<(), String> {
        fn sum<'a>(mut counts: impl Iterator<Item = &'a LevelCounts>) -> Option<LevelCounts> {
            counts.try_fold(LevelCounts::default(), |acc, c| acc.checked_add(c))
        }
        let overflow = || "sarif results: the counts do not fit in 64 bits".to_string();
        let runs = sum(self.runs.iter().map(|r| &r.counts)).ok_or_else(overflow)?;
        let rules = sum(self.by_rule.values()).ok_or_else(overflow)?;
        if runs != self.totals || rules != self.totals {
            return Err(format!(
                "sarif results: the totals (error {}, warning {}, note {}) are not the sum of the runs and of the rules",
                self.totals.error, self.totals.warning, self.totals.note
            ));
        }
        let failing = [self.totals.warning, self.totals.note]
            .iter()
            .try_fold(self.totals.error, |a, n| a.checked_add(*n))
            .ok_or_else(overflow)?;
        let listed = self.findings.len() as u64;
        if listed.checked_add(self.findings_not_listed) != Some(failing) {
            return Err(format!(
                "sarif results: {listed} findings listed and {} not listed, but the totals count {failing}",
                self.findings_not_listed
            ));
        }
        for (level, total) in [
            (Level::Error, self.totals.error),
            (Level::Warning, self.totals.warning),
            (Level::Note, self.totals.note),
        ] {
            let n = self.findings.iter().filter(|f| f.level == level).count() as u64;
            if n > total {
                return Err(format!(
                    "sarif results: {n} findings at level {} are listed but the totals count {total}",
                    level.as_str()
                ));
            }
        }
        Ok(())
    }

    /// Non-compliant if any counted result is at or above `fail_on`, or a
    /// run did not complete, or there was no run at all.
    pub fn verdict(&self, fail_on: Level) -> Verdict {
        let mut reasons = vec![];
        if self.runs.is_empty() {
            reasons.push("the SARIF log has no runs: nothing was scanned".to_string());
        }
        for r in &self.runs {
            if let Some(why) = &r.incomplete {
                reasons.push(why.clone());
            }
        }
        let n = self.totals.at_or_above(fail_on);
        if n > 0 {
            let rules: Vec<&str> = self
                .by_rule
                .iter()
                .filter(|(_, c)| c.at_or_above(fail_on) > 0)
                .map(|(id, _)| id.as_str())
                .take(5)
                .collect();
            reasons.push(format!(
                "{n} result(s) at level {} or above (error {}, warning {}, note {}); rules: {}",
                fail_on.as_str(),
                self.totals.error,
                self.totals.warning,
                self.totals.note,
                rules.join(", ")
            ));
        }
        Verdict::from_reasons(reasons)
    }
}
