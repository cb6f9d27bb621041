//! Change-process evidence on the trail page: pull requests and their
//! approvals, Jira issues, Sonar quality gates, and overrides.

use custody_api::Attestation;
use custody_evidence::jira::JiraSummary;
use custody_evidence::pull_request::{PrRules, PullRequestSummary};
use custody_evidence::sonar::SonarSummary;
use maud::{Markup, html};
use serde::de::DeserializeOwned;

use crate::web::html::external;

fn results<T: DeserializeOwned>(a: &Attestation) -> Option<T> {
    serde_json::from_value(a.data.get("results")?.clone()).ok()
}

/// The card's part for these types; `None` for any other.
pub fn summary(a: &Attestation) -> Option<Markup> {
    match a.kind.as_str() {
        "pull_request" => {
            let rules: PrRules = a
                .data
                .get("rules")
                .and_then(|r| serde_json::from_value(r.clone()).ok())
                .unwrap_or_default();
            Some(results(a).map_or_else(|| html! {}, |s| pull_requests(&s, &rules)))
        }
        "jira" => Some(results(a).map_or_else(|| html! {}, |s| jira(&s))),
        "sonar" => Some(results(a).map_or_else(|| html! {}, |s| sonar(&s))),
        _ => None,
    }
}

/// An override's reason, shown first on its card.
pub fn override_note(a: &Attestation) -> Markup {
    let Some(o) = a.override_note() else {
        return html! {};
    };
    let word = |c: bool| if c { "compliant" } else { "non-compliant" };
    html! {
        div.warn role="note" {
            strong { "Overridden to " (word(a.compliant)) } ": " (o.reason)
            " (it was " (word(o.was_compliant)) "; the original is in this attestation's history)"
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn pull_requests(s: &PullRequestSummary, rules: &PrRules) -> Markup {
    html! {
        p { (s.pull_requests.len()) " pull request(s) in " (s.repository) " (" (s.provider) ") contain commit "
            code { (short(&s.commit)) } ". Counts: merged" @if rules.allow_open { " or open" }
            ", with " (rules.require_approvals) " approval(s) by someone other than the author on the last commit." }
        @for pr in &s.pull_requests {
            @let valid = pr.valid_approvers();
            h4 { (external(&pr.url, &format!("#{} {}", pr.number, pr.title))) }
            p { (pr.state.word()) " · by " (pr.author) " · " code { (pr.source_branch) } " → " code { (pr.target_branch) }
                @if let Some(m) = &pr.merge_commit { " · merged as " code { (short(m)) } }
                @if let Some(h) = &pr.head_commit { " · last commit " code { (short(h)) } } }
            @if pr.approvals.is_empty() {
                p.muted { "No approvals." }
            } @else {
                div.table-wrap { table {
                    caption { "Approvals of #" (pr.number) }
                    thead { tr { th scope="col" { "Who" } th scope="col" { "When" } th scope="col" { "At commit" } th scope="col" { "Counts" } } }
                    tbody { @for ap in &pr.approvals {
                        tr {
                            th scope="row" { (ap.username) }
                            td { (ap.at.as_deref().unwrap_or("")) }
                            td { @if let Some(c) = &ap.commit { code { (short(c)) } } }
                            td { @if valid.contains(&ap.username.to_lowercase()) { "yes" }
                                 @else if ap.username.eq_ignore_ascii_case(&pr.author) { "no: the author's own" }
                                 @else { "no: before the last commit" } }
                        }
                    } }
                } }
            }
        }
    }
}

fn jira(s: &JiraSummary) -> Markup {
    html! {
        p { "Searched the " (s.searched.join(", ")) " for Jira issue keys." }
        @if !s.issues.is_empty() {
            div.table-wrap { table {
                caption { "Jira issues" }
                thead { tr { th scope="col" { "Issue" } th scope="col" { "Exists" } th scope="col" { "Type" } th scope="col" { "Status" } th scope="col" { "Summary" } } }
                tbody { @for i in &s.issues {
                    tr {
                        th scope="row" { (external(&i.url, &i.key)) }
                        td { @if i.exists { "yes" } @else { "no" } }
                        td { (i.issue_type.as_deref().unwrap_or("")) }
                        td { (i.status.as_deref().unwrap_or("")) }
                        td { (i.summary.as_deref().unwrap_or("")) }
                    }
                } }
            } }
        }
    }
}

fn sonar(s: &SonarSummary) -> Markup {
    html! {
        p { "Quality gate of " @if let Some(u) = &s.project.url { (external(u, &s.project.key)) } @else { (s.project.key) }
            ": " strong { (s.quality_gate.status) }
            @if let Some(r) = &s.revision { " · revision " code { (short(r)) } }
            @if let Some(b) = &s.branch { " · branch " code { (b) } }
            @if let Some(t) = &s.analysed_at { " · analysed " (t) } }
        @if !s.quality_gate.conditions.is_empty() {
            div.table-wrap { table {
                caption { "Quality gate conditions" }
                thead { tr { th scope="col" { "Metric" } th scope="col" { "Status" } th scope="col" { "Value" } th scope="col" { "Fails when" } } }
                tbody { @for c in &s.quality_gate.conditions {
                    tr {
                        th scope="row" { (c.metric) }
                        td { (c.status) }
                        td { (c.actual_value.as_deref().unwrap_or("")) }
                        td { @match (c.comparator.as_deref(), &c.error_threshold) {
                            (Some("GT"), Some(t)) => { "above " (t) }
                            (Some("LT"), Some(t)) => { "below " (t) }
                            (_, Some(t)) => { (t) }
                            _ => {}
                        } }
                    }
                } }
            } }
        }
    }
}
