//! Jira issues a change refers to: the keys found in the commit message and
//! the branch name, and what Jira said about each.
//!
//! Keys are found by Kosli's rules, so a team moving over gets the same
//! references: the text is upper-cased; a key is `\b[A-Z][A-Z0-9]{1,9}-[0-9]+`
//! (or one of the given project keys followed by `-[0-9]+`); a candidate
//! whose every occurrence runs on into `-<digit>` is dropped (so
//! `CVE-2026-41284` is not a key); the rest are de-duplicated and sorted.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::verdict::Verdict;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid Jira project key '{0}': a letter, then 1 to 9 letters, digits or '_' (like PROJ or AB_2)"
)]
pub struct BadProjectKey(pub String);

/// Checks `--jira-project-key`s; blank ones are dropped.
pub fn project_keys(keys: &[String]) -> Result<Vec<String>, BadProjectKey> {
    let mut out = vec![];
    for k in keys {
        let k = k.trim();
        if k.is_empty() {
            continue;
        }
        let mut chars = k.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok || !rest_ok || !(2..=10).contains(&k.len()) {
            return Err(BadProjectKey(k.to_string()));
        }
        out.push(k.to_ascii_uppercase());
    }
    Ok(out)
}

/// The issue keys referred to in `text`, sorted. `projects` (checked with
/// [`project_keys`]) narrows them to those projects.
pub fn issue_keys(text: &str, projects: &[String]) -> Vec<String> {
    let pattern = if projects.is_empty() {
        r"\b[A-Z][A-Z0-9]{1,9}-[0-9]+".to_string()
    } else {
        let alternatives: Vec<String> = projects.iter().map(|k| regex::escape(k)).collect();
        format!(r"\b(?:{})-[0-9]+", alternatives.join("|"))
    };
    // The pattern is built from escaped keys: it always compiles.
    let Ok(re) = Regex::new(&pattern) else {
        return vec![];
    };
    let upper = text.to_uppercase();
    // For each candidate: whether some occurrence stands on its own.
    let mut seen: BTreeMap<&str, bool> = BTreeMap::new();
    for m in re.find_iter(&upper) {
        let rest = &upper.as_bytes()[m.end()..];
        let runs_on = rest.len() >= 2 && rest[0] == b'-' && rest[1].is_ascii_digit();
        *seen.entry(m.as_str()).or_insert(false) |= !runs_on;
    }
    seen.into_iter()
        .filter(|(_, alone)| *alone)
        .map(|(k, _)| k.to_string())
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraSummary {
    /// The Jira site, e.g. `https://acme.atlassian.net`.
    pub base_url: String,
    /// Where keys were looked for: `commit message`, `branch name`, ...
    pub searched: Vec<String>,
    pub issues: Vec<JiraIssue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraIssue {
    pub key: String,
    /// `BASE/browse/KEY`.
    pub url: String,
    pub exists: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    /// The fields asked for with `--jira-issue-fields`, as Jira gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Value>,
}

impl JiraSummary {
    pub fn check(&self) -> Result<(), String> {
        let mut keys = BTreeSet::new();
        for (i, issue) in self.issues.iter().enumerate() {
            if issue_keys(&issue.key, &[]) != [issue.key.clone()] {
                return Err(format!(
                    "jira results: issues[{i}].key '{}' is not a Jira issue key",
                    issue.key
                ));
            }
            if !keys.insert(&issue.key) {
                return Err(format!("jira results: issue {} is listed twice", issue.key));
            }
        }
        Ok(())
    }

    /// Compliant iff at least one issue is referred to and every one
    /// referred to exists.
    pub fn verdict(&self) -> Verdict {
        if self.issues.is_empty() {
            return Verdict::from_reasons(vec![format!(
                "no Jira issue key found in the {}",
                self.searched.join(" or ")
            )]);
        }
        Verdict::from_reasons(
            self.issues
                .iter()
                .filter(|i| !i.exists)
                .map(|i| format!("Jira issue {} does not exist ({})", i.key, i.url))
                .collect(),
        )
    }

    pub fn headline(&self) -> String {
        if self.issues.is_empty() {
            return "found no Jira issue reference".into();
        }
        let list: Vec<String> = self
            .issues
            .iter()
            .map(|i| match (&i.exists, &i.status) {
                (false, _) => format!("{} (does not exist)", i.key),
                (true, Some(s)) => format!("{} ({s})", i.key),
                (true, None) => i.key.clone(),
            })
            .collect();
        format!("found Jira issue(s): {}", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<String> {
        issue_keys(text, &[])
    }

    #[test]
    fn kosli_examples() {
        assert_eq!(
            keys("PROJ-42: Upgrade dependency for CVE-2026-41284 / CVE-2026-42498"),
            ["PROJ-42"]
        );
        assert!(keys("fix CVE-2026-41284").is_empty());
        assert_eq!(
            keys("CVE-2026-41284 and also CVE-2026 standalone"),
            ["CVE-2026"]
        );
        assert_eq!(keys("tDIE-12419:Update test9882.ts"), ["TDIE-12419"]);
        let p = project_keys(&["proj".into()]).unwrap();
        assert_eq!(issue_keys("PROJ-10: fix for OTHER-789", &p), ["PROJ-10"]);
    }

    #[test]
    fn sorted_unique_and_bounded_by_word() {
        assert_eq!(
            keys("feature/ABC-2 then abc-10 and ABC-2 again, 9ABC-3"),
            ["ABC-10", "ABC-2"]
        );
        // A key is 2 to 10 characters before the dash.
        assert!(keys("A-1 ABCDEFGHIJK-1").is_empty());
    }

    #[test]
    fn project_keys_are_checked_and_blank_ones_dropped() {
        assert_eq!(
            project_keys(&["ab_2".into(), " ".into()]).unwrap(),
            ["AB_2"]
        );
        assert!(project_keys(&["a(b".into()]).is_err());
        assert!(project_keys(&["1AB".into()]).is_err());
        assert!(project_keys(&["ABCDEFGHIJK".into()]).is_err());
        // All blank: no narrowing, as if none were given.
        assert!(project_keys(&[" ".into()]).unwrap().is_empty());
    }

    fn issue(key: &str, exists: bool) -> JiraIssue {
        JiraIssue {
            key: key.into(),
            url: format!("https://acme.atlassian.net/browse/{key}"),
            exists,
            summary: None,
            status: None,
            issue_type: None,
            fields: None,
        }
    }

    #[test]
    fn verdict() {
        let mut s = JiraSummary {
            base_url: "https://acme.atlassian.net".into(),
            searched: vec!["commit message".into(), "branch name".into()],
            issues: vec![],
        };
        let v = s.verdict();
        assert_eq!(
            v.reasons,
            ["no Jira issue key found in the commit message or branch name"]
        );
        s.issues = vec![issue("PROJ-1", true), issue("PROJ-2", false)];
        let v = s.verdict();
        assert_eq!(
            v.reasons,
            ["Jira issue PROJ-2 does not exist (https://acme.atlassian.net/browse/PROJ-2)"]
        );
        s.issues.pop();
        assert!(s.verdict().compliant);
        s.issues.push(issue("PROJ-1", true));
        assert!(s.check().unwrap_err().contains("listed twice"));
        s.issues = vec![issue("not a key", true)];
        assert!(s.check().unwrap_err().contains("not a Jira issue key"));
    }
}
