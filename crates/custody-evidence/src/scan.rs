//! What vulnerability scanners (Snyk, Trivy, Grype) have in common:
//! findings with a severity, counted, judged against a threshold.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_LISTED, truncate};
use crate::verdict::Verdict;

/// Scanner severities, ordered. Scanners spell them differently
/// (`CRITICAL`, `Critical`, `critical`); `unknown` and `negligible` are
/// reported but never fail a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Any spelling a scanner uses; `None` for what no scanner writes.
    pub fn from_scanner(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "unknown" | "" => Severity::Unknown,
            "negligible" | "info" | "informational" => Severity::Negligible,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--severity-threshold`: the lowest severity that fails.
impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "invalid severity threshold '{s}': expected low, medium, high or critical"
            )),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub negligible: u64,
    pub unknown: u64,
}

impl SeverityCounts {
    pub fn add(&mut self, s: Severity) {
        *self.slot(s) += 1;
    }

    fn slot(&mut self, s: Severity) -> &mut u64 {
        match s {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Negligible => &mut self.negligible,
            Severity::Unknown => &mut self.unknown,
        }
    }

    pub fn at_or_above(&self, t: Severity) -> u64 {
        [
            (Severity::Critical, self.critical),
            (Severity::High, self.high),
            (Severity::Medium, self.medium),
            (Severity::Low, self.low),
        ]
        .iter()
        .filter(|(s, _)| *s >= t)
        .map(|(_, n)| n)
        .sum()
    }

    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.negligible + self.unknown
    }

    /// [`SeverityCounts::total`], or None when it does not fit a u64: a
    /// summary from elsewhere must not wrap around to look clean.
    pub fn checked_total(&self) -> Option<u64> {
        [
            self.high,
            self.medium,
            self.low,
            self.negligible,
            self.unknown,
        ]
        .iter()
        .try_fold(self.critical, |acc, n| acc.checked_add(*n))
    }

    fn get(&self, s: Severity) -> u64 {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Negligible => self.negligible,
            Severity::Unknown => self.unknown,
        }
    }
}

/// What was scanned: an image, a lock file, a SARIF run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub counts: SeverityCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub severity: Severity,
    /// `vulnerability`, `misconfiguration`, `secret`, `code`, `iac`...
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What `attest snyk`, `attest trivy` and `attest grype` store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSummary {
    /// `sarif` or the scanner's native `json`.
    pub format: String,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_version: Option<String>,
    pub targets: Vec<Target>,
    pub totals: SeverityCounts,
    #[serde(default)]
    pub by_category: BTreeMap<String, SeverityCounts>,
    /// Worst first, the first [`MAX_LISTED`].
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub findings_not_listed: u64,
    /// Why the scan cannot be taken as clean: it did not run, or scanned
    /// nothing.
    #[serde(default)]
    pub incomplete: Vec<String>,
    /// What one finding of the totals is, where the scanner counts in more
    /// than one way (Snyk: unique issues, and vulnerable paths). The
    /// threshold applies to the totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<String>,
    /// Snyk's second count: vulnerable dependency paths (one per entry of
    /// its `vulnerabilities`), by severity. Shown, never judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<SeverityCounts>,
}

const TITLE: usize = 512;

impl ScanSummary {
    pub(crate) fn new(format: &str, tool: &str, tool_version: Option<String>) -> Self {
        ScanSummary {
            format: format.to_string(),
            tool: tool.to_string(),
            tool_version,
            ..ScanSummary::default()
        }
    }

    /// Counts a finding against the current (last) target and keeps the
    /// worst findings listed.
    pub(crate) fn add(&mut self, mut f: Finding) {
        self.totals.add(f.severity);
        self.by_category
            .entry(f.category.clone())
            .or_default()
            .add(f.severity);
        if let Some(t) = self.targets.last_mut() {
            t.counts.add(f.severity);
        }
        f.title = truncate(std::mem::take(&mut f.title), TITLE);
        self.findings.push(f);
        if self.findings.len() >= 2 * MAX_LISTED {
            self.trim();
        }
    }

    pub(crate) fn target(&mut self, name: impl Into<String>) {
        self.targets.push(Target {
            name: name.into(),
            counts: SeverityCounts::default(),
        });
    }

    pub(crate) fn trim(&mut self) {
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        if self.findings.len() > MAX_LISTED {
            self.findings_not_listed += (self.findings.len() - MAX_LISTED) as u64;
            self.findings.truncate(MAX_LISTED);
        }
    }

    /// Checks a summary received from elsewhere: every sum fits, the
    /// targets add up to the totals, and the findings listed agree with
    /// them (none of a severity the totals have none of; listed and
    /// unlisted together are the total).
    pub fn check(&self, kind: &str) -> Result<(), String> {
        let total = self
            .totals
            .checked_total()
            .ok_or_else(|| format!("{kind} results: the totals do not fit in 64 bits"))?;
        if !self.targets.is_empty() {
            let counted = self
                .targets
                .iter()
                .try_fold(0u64, |acc, t| acc.checked_add(t.counts.checked_total()?))
                .ok_or_else(|| {
                    format!("{kind} results: the targets' counts do not fit in 64 bits")
                })?;
            if counted != total {
                return Err(format!(
                    "{kind} results: totals ({total}) do not add up to the targets' counts ({counted})"
                ));
            }
        }
        let listed = self.findings.len() as u64;
        if listed.checked_add(self.findings_not_listed) != Some(total) {
            return Err(format!(
                "{kind} results: {listed} findings listed and {} not listed, but the totals count {total}",
                self.findings_not_listed
            ));
        }
        for s in [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Negligible,
            Severity::Unknown,
        ] {
            let n = self.findings.iter().filter(|f| f.severity == s).count() as u64;
            if n > self.totals.get(s) {
                return Err(format!(
                    "{kind} results: {n} {s} findings are listed but the totals count {}",
                    self.totals.get(s)
                ));
            }
        }
        if let Some(p) = &self.paths
            && p.checked_total().is_none()
        {
            return Err(format!(
                "{kind} results: the vulnerable paths do not fit in 64 bits"
            ));
        }
        Ok(())
    }

    /// Non-compliant if the scan is incomplete or anything is at or above
    /// `threshold`.
    pub fn verdict(&self, threshold: Severity) -> Verdict {
        let mut reasons = self.incomplete.clone();
        let n = self.totals.at_or_above(threshold);
        if n > 0 {
            let ids: Vec<&str> = self
                .findings
                .iter()
                .filter(|f| f.severity >= threshold)
                .map(|f| f.id.as_str())
                .take(5)
                .collect();
            let t = &self.totals;
            let what = self.counted.as_deref().unwrap_or("finding(s)");
            reasons.push(format!(
                "{n} {what} at severity {threshold} or above (critical {}, high {}, medium {}, low {}): {}",
                t.critical,
                t.high,
                t.medium,
                t.low,
                ids.join(", ")
            ));
        }
        Verdict::from_reasons(reasons)
    }
}
