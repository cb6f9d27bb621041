//! `get trail --output markdown`: a trail as GitHub-flavoured Markdown, to
//! paste into a change ticket or append to a CI job summary
//! (`$GITHUB_STEP_SUMMARY`). What a reviewer asks first comes first: the
//! verdict, the commit, then each slot of the template with its status,
//! then why it is not compliant.

use std::fmt::Write;

use custody_api::{Attestation, TrailView};
use custody_domain::compliance::{SlotStatus, Status};

use crate::output::time;

fn mark(s: Status) -> &'static str {
    match s {
        Status::Compliant => "✅",
        Status::NonCompliant => "❌",
        Status::Incomplete => "⏳",
        Status::Missing => "⬜",
    }
}

/// A value safe inside a table cell: one line, no column breaks.
fn cell(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    one_line.replace('|', "\\|")
}

/// Inline code that survives backticks in the value.
fn code(s: &str) -> String {
    let s = cell(s);
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

pub fn trail(t: &TrailView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## {} Trail {} of flow {}: {}\n",
        mark(t.status),
        code(&t.name),
        code(&t.flow),
        t.status.as_str()
    );
    let mut facts: Vec<(&str, String)> = Vec::new();
    if let Some(d) = t.trail.description.as_deref().filter(|d| !d.is_empty()) {
        facts.push(("Description", cell(d)));
    }
    if let Some(g) = &t.trail.git_commit_info {
        let sha = match &g.url {
            Some(u) => format!("[{}]({})", code(&g.sha1), cell(u)),
            None => code(&g.sha1),
        };
        facts.push(("Commit", sha));
        if let Some(first) = g.message.lines().next().filter(|m| !m.is_empty()) {
            facts.push(("Message", cell(first)));
        }
        if !g.author.is_empty() {
            facts.push(("Author", cell(&g.author)));
        }
        if !g.branch.is_empty() {
            facts.push(("Branch", code(&g.branch)));
        }
    }
    if let Some(u) = t.trail.origin_url.as_deref() {
        facts.push(("Build", cell(u)));
    }
    facts.push(("Started", time(t.trail.created_at)));
    if let Some(a) = &t.trail.created_by {
        facts.push(("Started by", cell(&a.to_string())));
    }
    out.push_str("| | |\n|---|---|\n");
    for (k, v) in facts {
        let _ = writeln!(out, "| {k} | {v} |");
    }

    let by_id = |id: &Option<String>| -> Option<&Attestation> {
        let id = id.as_deref()?;
        t.attestations.iter().find(|a| a.id == id)
    };
    let slots = |out: &mut String, slots: &[SlotStatus]| {
        out.push_str("| Attestation | Type | Status | Reported | Why not compliant |\n|---|---|---|---|---|\n");
        for s in slots {
            let a = by_id(&s.attestation_id);
            let kind = s
                .required_type
                .clone()
                .or(s.attestation_type.clone())
                .unwrap_or_default();
            let reported = a.map_or_else(|| "not reported".to_string(), |a| time(a.created_at));
            let why = a.map_or_else(String::new, |a| cell(&a.reasons.join("; ")));
            let _ = writeln!(
                out,
                "| {}{} | {} | {} {} | {} | {} |",
                code(&s.name),
                if s.unexpected {
                    " (not in the template)"
                } else {
                    ""
                },
                cell(&kind),
                mark(s.status),
                s.status.as_str(),
                reported,
                why
            );
        }
    };
    if !t.compliance.attestations.is_empty() {
        out.push_str("\n### Trail attestations\n\n");
        slots(&mut out, &t.compliance.attestations);
    }
    for a in &t.compliance.artifacts {
        let fp = a
            .fingerprint
            .as_deref()
            .map_or_else(|| "not reported".to_string(), code);
        let _ = writeln!(
            out,
            "\n### {} Artifact {}: {}\n\nFingerprint: {fp}\n",
            mark(a.status),
            code(&a.name),
            a.status.as_str()
        );
        if a.attestations.is_empty() {
            out.push_str("No attestations required or reported.\n");
        } else {
            slots(&mut out, &a.attestations);
        }
    }
    if !t.reasons.is_empty() {
        out.push_str("\n### Why it is not compliant\n\n");
        for r in &t.reasons {
            let _ = writeln!(out, "- {}", cell(r));
        }
    }
    let overrides: Vec<String> = t
        .attestations
        .iter()
        .filter_map(crate::commands::override_note)
        .collect();
    if !overrides.is_empty() {
        out.push_str("\n### Overrides\n\n");
        for n in overrides {
            let _ = writeln!(out, "- {}", cell(&n));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_in_their_column() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(code("x`y"), "`` x`y ``");
        assert_eq!(code("main"), "`main`");
    }
}
