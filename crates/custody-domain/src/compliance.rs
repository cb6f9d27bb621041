//! Compliance of a trail and of each of its artifacts, from the template
//! that applies to the trail and the evidence reported so far.
//!
//! Rules:
//! - The latest attestation of a name wins; earlier ones are history.
//! - An attestation on an artifact counts for the artifact currently
//!   reported under that template name: bound by that fingerprint, or bound
//!   by template name alone (`artifact.name`, before or after the artifact
//!   was reported).
//! - Something is compliant only if every required attestation is present,
//!   of the required type and compliant, and no attestation in it (required
//!   or not) is non-compliant. Anything non-compliant makes it
//!   NON-COMPLIANT; otherwise anything missing makes it INCOMPLETE.
//! - Without a template nothing is required: "missing" is never a reason.
//! - Evidence bound by name to an artifact that was never reported proves
//!   nothing yet (the name may be a typo, or the build may not have finished):
//!   that artifact is MISSING, not compliant, and the trail INCOMPLETE until
//!   an artifact is reported under the name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::attestation::AttestationKind;
use crate::template::{FlowTemplate, Requirement, TemplateType};

/// An artifact reported into the trail.
#[derive(Debug, Clone)]
pub struct ReportedArtifact {
    pub template_name: String,
    pub fingerprint: String,
}

/// An attestation reported into the trail.
#[derive(Debug, Clone)]
pub struct ReportedAttestation {
    pub id: String,
    pub name: String,
    pub kind: AttestationKind,
    /// Template name of the artifact it is bound to, if any.
    pub artifact: Option<String>,
    /// Fingerprint it was bound by, if it was bound that way.
    pub fingerprint: Option<String>,
    pub compliant: bool,
    /// Why its own evaluation failed, when it did.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Status {
    #[serde(rename = "COMPLIANT")]
    Compliant,
    #[serde(rename = "NON-COMPLIANT")]
    NonCompliant,
    #[serde(rename = "INCOMPLETE")]
    Incomplete,
    #[serde(rename = "MISSING")]
    Missing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Compliant => "COMPLIANT",
            Status::NonCompliant => "NON-COMPLIANT",
            Status::Incomplete => "INCOMPLETE",
            Status::Missing => "MISSING",
        }
    }
}

/// The state of one attestation slot: required by the template, or
/// reported without being required (`unexpected`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlotStatus {
    pub name: String,
    /// The type the template requires, if it requires this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_type: Option<String>,
    /// The type of the attestation that fills the slot, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation_id: Option<String>,
    pub status: Status,
    pub unexpected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactStatus {
    /// Template name of the artifact.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub status: Status,
    pub compliant: bool,
    pub unexpected: bool,
    pub attestations: Vec<SlotStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrailCompliance {
    pub status: Status,
    pub compliant: bool,
    /// Trail-level attestation slots.
    pub attestations: Vec<SlotStatus>,
    pub artifacts: Vec<ArtifactStatus>,
    /// What the template requires and nobody has reported: `name` for a
    /// trail attestation, `artifact` for an artifact, `artifact.name` for an
    /// artifact's attestation.
    pub missing: Vec<String>,
    /// Every reason the trail is not compliant, in a stable order.
    pub reasons: Vec<String>,
}

pub fn evaluate(
    template: Option<&FlowTemplate>,
    artifacts: &[ReportedArtifact],
    attestations: &[ReportedAttestation],
) -> TrailCompliance {
    let mut out = Acc::default();

    // Latest artifact per template name, keeping first-report order.
    let mut latest_artifact: BTreeMap<&str, &ReportedArtifact> = BTreeMap::new();
    let mut artifact_order: Vec<&str> = Vec::new();
    for a in artifacts {
        if latest_artifact.insert(&a.template_name, a).is_none() {
            artifact_order.push(&a.template_name);
        }
    }

    let empty = FlowTemplate::empty();
    let t = template.unwrap_or(&empty);
    let has_template = template.is_some();

    // Trail level.
    let trail_atts: Vec<&ReportedAttestation> = attestations
        .iter()
        .filter(|a| a.artifact.is_none())
        .collect();
    let trail_slots = slots(
        &t.trail.attestations,
        &trail_atts,
        has_template,
        None,
        &mut out,
    );

    // Artifacts: template ones first (template order), then reported ones,
    // then names only attestations mention.
    let mut names: Vec<&str> = t.trail.artifacts.iter().map(|a| a.name.as_str()).collect();
    for n in artifact_order {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    for a in attestations {
        if let Some(n) = a.artifact.as_deref()
            && !names.contains(&n)
        {
            names.push(n);
        }
    }

    let mut artifact_statuses = Vec::new();
    for name in names {
        let required = t.artifact(name);
        let reported = latest_artifact.get(name).copied();
        let atts: Vec<&ReportedAttestation> = attestations
            .iter()
            .filter(|a| a.artifact.as_deref() == Some(name))
            .filter(|a| match (&a.fingerprint, reported) {
                (None, _) => true,
                (Some(fp), Some(r)) => *fp == r.fingerprint,
                (Some(_), None) => false,
            })
            .collect();
        let reqs = required.map(|r| r.attestations.as_slice()).unwrap_or(&[]);
        let before = (out.non_compliant, out.missing.len());
        let slot_list = slots(reqs, &atts, has_template, Some(name), &mut out);
        let any_bad = out.non_compliant > before.0;
        let any_missing = out.missing.len() > before.1;
        if reported.is_none() && required.is_some() {
            out.missing.push(name.to_string());
            out.reasons
                .push(format!("artifact '{name}' has not been reported"));
        } else if reported.is_none() {
            out.unreported += 1;
            out.reasons.push(if has_template {
                format!("artifact '{name}' has evidence but has not been reported, and the template does not name it")
            } else {
                format!("artifact '{name}' has evidence but has not been reported")
            });
        }
        let status = if any_bad {
            Status::NonCompliant
        } else if reported.is_none() {
            Status::Missing
        } else if any_missing {
            Status::Incomplete
        } else {
            Status::Compliant
        };
        artifact_statuses.push(ArtifactStatus {
            name: name.to_string(),
            fingerprint: reported.map(|r| r.fingerprint.clone()),
            status,
            compliant: status == Status::Compliant,
            unexpected: has_template && required.is_none(),
            attestations: slot_list,
        });
    }

    let status = if out.non_compliant > 0 {
        Status::NonCompliant
    } else if !out.missing.is_empty() || out.unreported > 0 {
        Status::Incomplete
    } else {
        Status::Compliant
    };
    TrailCompliance {
        status,
        compliant: status == Status::Compliant,
        attestations: trail_slots,
        artifacts: artifact_statuses,
        missing: out.missing,
        reasons: out.reasons,
    }
}

#[derive(Default)]
struct Acc {
    non_compliant: usize,
    /// Artifacts only evidence names: neither required nor reported.
    unreported: usize,
    missing: Vec<String>,
    reasons: Vec<String>,
}

/// Fills the slots of one level (the trail, or one artifact).
fn slots(
    required: &[Requirement],
    reported: &[&ReportedAttestation],
    has_template: bool,
    artifact: Option<&str>,
    out: &mut Acc,
) -> Vec<SlotStatus> {
    // Latest of each name, keeping first-report order for unexpected ones.
    let mut latest: BTreeMap<&str, &ReportedAttestation> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for a in reported {
        if latest.insert(&a.name, a).is_none() {
            order.push(&a.name);
        }
    }
    let qualified = |name: &str| match artifact {
        Some(a) => format!("{a}.{name}"),
        None => name.to_string(),
    };
    let described = |name: &str| match artifact {
        Some(a) => format!("attestation '{name}' on artifact '{a}'"),
        None => format!("attestation '{name}'"),
    };

    let mut result = Vec::new();
    for r in required {
        match latest.get(r.name.as_str()) {
            None => {
                out.missing.push(qualified(&r.name));
                out.reasons
                    .push(format!("{} ({}) is missing", described(&r.name), r.kind));
                result.push(SlotStatus {
                    name: r.name.clone(),
                    required_type: Some(r.kind.to_string()),
                    attestation_type: None,
                    attestation_id: None,
                    status: Status::Missing,
                    unexpected: false,
                });
            }
            Some(a) => {
                let status = if !r.kind.matches(&a.kind) {
                    out.non_compliant += 1;
                    out.reasons.push(format!(
                        "{} has type {} but the template requires {}",
                        described(&r.name),
                        a.kind,
                        type_name(&r.kind)
                    ));
                    Status::NonCompliant
                } else {
                    judge(a, &described(&r.name), out)
                };
                result.push(SlotStatus {
                    name: r.name.clone(),
                    required_type: Some(r.kind.to_string()),
                    attestation_type: Some(a.kind.to_string()),
                    attestation_id: Some(a.id.clone()),
                    status,
                    unexpected: false,
                });
            }
        }
    }
    for name in order {
        if required.iter().any(|r| r.name == name) {
            continue;
        }
        let a = latest[name];
        let status = judge(a, &described(name), out);
        result.push(SlotStatus {
            name: name.to_string(),
            required_type: None,
            attestation_type: Some(a.kind.to_string()),
            attestation_id: Some(a.id.clone()),
            status,
            unexpected: has_template,
        });
    }
    result
}

fn judge(a: &ReportedAttestation, described: &str, out: &mut Acc) -> Status {
    if a.compliant {
        return Status::Compliant;
    }
    out.non_compliant += 1;
    match a.reasons.first() {
        Some(why) => out
            .reasons
            .push(format!("{described} is non-compliant: {why}")),
        None => out.reasons.push(format!("{described} is non-compliant")),
    }
    Status::NonCompliant
}

fn type_name(t: &TemplateType) -> String {
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> FlowTemplate {
        FlowTemplate::from_yaml(
            r#"
version: 1
trail:
  attestations:
  - name: review
    type: generic
  artifacts:
  - name: app
    attestations:
    - name: tests
      type: generic
    - name: checks
      type: custom:quality
"#,
        )
        .unwrap()
    }

    fn att(
        id: &str,
        name: &str,
        kind: &str,
        artifact: Option<&str>,
        fp: Option<&str>,
        ok: bool,
    ) -> ReportedAttestation {
        ReportedAttestation {
            id: id.into(),
            name: name.into(),
            kind: AttestationKind::parse(kind).unwrap(),
            artifact: artifact.map(Into::into),
            fingerprint: fp.map(Into::into),
            compliant: ok,
            reasons: if ok {
                vec![]
            } else {
                vec!["rule failed".into()]
            },
        }
    }

    fn art(name: &str, fp: &str) -> ReportedArtifact {
        ReportedArtifact {
            template_name: name.into(),
            fingerprint: fp.into(),
        }
    }

    #[test]
    fn empty_trail_with_template_is_incomplete() {
        let c = evaluate(Some(&template()), &[], &[]);
        assert_eq!(c.status, Status::Incomplete);
        assert!(!c.compliant);
        assert_eq!(c.missing, vec!["review", "app.tests", "app.checks", "app"]);
        assert_eq!(c.artifacts[0].status, Status::Missing);
    }

    #[test]
    fn becomes_compliant_only_when_everything_is_there() {
        let t = template();
        let arts = [art("app", "aa")];
        let mut atts = vec![
            att("1", "review", "generic", None, None, true),
            att("2", "tests", "generic", Some("app"), Some("aa"), true),
        ];
        let c = evaluate(Some(&t), &arts, &atts);
        assert_eq!(c.status, Status::Incomplete);
        assert_eq!(c.missing, vec!["app.checks"]);
        assert_eq!(c.artifacts[0].status, Status::Incomplete);

        atts.push(att(
            "3",
            "checks",
            "custom:quality",
            Some("app"),
            None,
            false,
        ));
        let c = evaluate(Some(&t), &arts, &atts);
        assert_eq!(c.status, Status::NonCompliant);
        assert!(
            c.reasons[0].contains("'checks' on artifact 'app' is non-compliant: rule failed"),
            "{:?}",
            c.reasons
        );

        // Latest wins.
        atts.push(att(
            "4",
            "checks",
            "custom:quality",
            Some("app"),
            None,
            true,
        ));
        let c = evaluate(Some(&t), &arts, &atts);
        assert_eq!(c.status, Status::Compliant, "{:?}", c.reasons);
        assert!(c.compliant);
        assert!(c.reasons.is_empty() && c.missing.is_empty());
        assert_eq!(
            c.artifacts[0].attestations[1].attestation_id.as_deref(),
            Some("4")
        );
    }

    #[test]
    fn wrong_type_is_non_compliant() {
        let c = evaluate(
            Some(&template()),
            &[],
            &[att("1", "review", "junit", None, None, true)],
        );
        assert_eq!(c.attestations[0].status, Status::NonCompliant);
        assert!(c.reasons[0].contains("has type junit but the template requires generic"));
    }

    #[test]
    fn unexpected_non_compliant_attestation_counts() {
        let t = FlowTemplate::empty();
        let c = evaluate(
            Some(&t),
            &[],
            &[att("1", "extra", "generic", None, None, false)],
        );
        assert_eq!(c.status, Status::NonCompliant);
        assert!(c.attestations[0].unexpected);
    }

    #[test]
    fn fingerprint_binding_follows_the_current_artifact() {
        let t = template();
        let atts = [
            att("1", "review", "generic", None, None, true),
            att("2", "tests", "generic", Some("app"), Some("old"), true),
            att("3", "checks", "custom:quality", Some("app"), None, true),
        ];
        // The artifact was rebuilt: evidence bound to the old fingerprint no
        // longer counts, evidence bound by template name still does.
        let c = evaluate(Some(&t), &[art("app", "old"), art("app", "new")], &atts);
        assert_eq!(c.status, Status::Incomplete);
        assert_eq!(c.missing, vec!["app.tests"]);
        assert_eq!(c.artifacts[0].fingerprint.as_deref(), Some("new"));
    }

    #[test]
    fn without_template_nothing_is_missing() {
        let c = evaluate(
            None,
            &[art("x", "aa")],
            &[att("1", "a", "generic", None, None, true)],
        );
        assert_eq!(c.status, Status::Compliant);
        assert!(!c.attestations[0].unexpected && !c.artifacts[0].unexpected);
        let c = evaluate(
            None,
            &[],
            &[att("1", "a", "generic", Some("x"), None, false)],
        );
        assert_eq!(c.status, Status::NonCompliant);
    }

    #[test]
    fn evidence_for_an_artifact_never_reported_proves_nothing_yet() {
        for template in [None, Some(FlowTemplate::empty())] {
            let atts = [att("1", "unit-tests", "junit", Some("ghost"), None, true)];
            let c = evaluate(template.as_ref(), &[], &atts);
            assert_eq!(c.artifacts[0].name, "ghost");
            assert_eq!(c.artifacts[0].status, Status::Missing);
            assert!(!c.artifacts[0].compliant);
            assert_eq!(c.status, Status::Incomplete, "{:?}", c.reasons);
            assert!(
                c.reasons[0].contains("'ghost' has evidence but has not been reported"),
                "{:?}",
                c.reasons
            );
            // Reported under that name, it counts.
            let c = evaluate(template.as_ref(), &[art("ghost", "aa")], &atts);
            assert_eq!(c.status, Status::Compliant, "{:?}", c.reasons);
        }
    }
}
