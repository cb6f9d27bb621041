//! Judging one running artifact against one policy.
//!
//! The facts come from the caller (the store gathers them): the artifact's
//! name and fingerprint, whether the environment allowlists it, and every
//! trail that reported it, with that trail's flow tags, its compliance and
//! the latest attestations that count for the artifact there.
//!
//! Rules:
//! - An allowlisted artifact is compliant; every rule is `ignored` for it.
//! - `provenance`: some trail reported the fingerprint.
//! - `trail-compliance`: some trail of the artifact is compliant.
//! - An attestation rule: some trail carries an attestation of that name
//!   (or any, for `*`) and type (or any), compliant when `must_be_compliant`,
//!   and for `for_control` a decision for that control. Its `if` is asked
//!   per trail, with that trail's flow as `flow`; where it is false for
//!   every trail the rule is `ignored`.
//! - An exception (`if` of a boolean rule) waives the rule when it holds
//!   for the artifact with any of its trails' flows, or with no flow when it
//!   has none.
//! - A condition that cannot be evaluated (not a boolean, bad comparison)
//!   fails its rule with the reason, never passes it.
//!
//! Reasons use Kosli's wording, so people moving over read the same words.

use std::collections::BTreeMap;

use custody_domain::attestation::AttestationKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::expr::Context;
use crate::policy::{AttestationRule, BooleanRule, Policy};

/// An artifact that runs, with what is known about how it was made.
#[derive(Debug, Clone, Default)]
pub struct ArtifactFacts {
    pub name: String,
    pub fingerprint: String,
    /// The environment's allowlist holds this fingerprint.
    pub allowlisted: bool,
    /// Every trail that reported the fingerprint.
    pub trails: Vec<TrailFacts>,
}

#[derive(Debug, Clone, Default)]
pub struct TrailFacts {
    pub flow: String,
    pub flow_tags: BTreeMap<String, String>,
    pub trail: String,
    pub trail_compliant: bool,
    /// The latest attestations that count for the artifact in this trail:
    /// the trail's own and those bound to the artifact.
    pub attestations: Vec<AttestationFact>,
}

#[derive(Debug, Clone)]
pub struct AttestationFact {
    pub name: String,
    pub kind: AttestationKind,
    pub compliant: bool,
    /// For a decision: the control it was made for.
    pub control: Option<String>,
}

/// How one rule went for one artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleResult {
    /// The rule as written: `provenance`, `trail-compliance`, or
    /// `attestation NAME (type: T)`.
    pub rule: String,
    pub satisfied: bool,
    /// The rule did not apply (an exception held, its `if` was false, or
    /// the artifact is allowlisted).
    pub ignored: bool,
    /// Why it is not satisfied, or why it was ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One artifact under one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactVerdict {
    pub name: String,
    pub fingerprint: String,
    pub compliant: bool,
    pub rules: Vec<RuleResult>,
}

impl ArtifactVerdict {
    /// The reasons of every failed rule, in rule order.
    pub fn reasons(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .filter(|r| !r.satisfied && !r.ignored)
            .filter_map(|r| r.reason.as_deref())
    }
}

struct Cx<'a> {
    artifact: &'a ArtifactFacts,
    trail: Option<&'a TrailFacts>,
}

impl Context for Cx<'_> {
    fn flow_name(&self) -> Option<&str> {
        self.trail.map(|t| t.flow.as_str())
    }
    fn flow_tag(&self, key: &str) -> Option<&str> {
        self.trail
            .and_then(|t| t.flow_tags.get(key))
            .map(String::as_str)
    }
    fn artifact_name(&self) -> &str {
        &self.artifact.name
    }
    fn artifact_fingerprint(&self) -> &str {
        &self.artifact.fingerprint
    }
}

impl Policy {
    /// Judges one artifact.
    pub fn evaluate(&self, a: &ArtifactFacts) -> ArtifactVerdict {
        let rules_of = &self.artifacts;
        let mut rules = Vec::new();
        if rules_of.provenance.required {
            rules.push(boolean(
                "provenance",
                &rules_of.provenance,
                a,
                || !a.trails.is_empty(),
                if a.fingerprint.is_empty() {
                    "artifact has no fingerprint (the reporter could not identify it), so no provenance can match it"
                } else {
                    "artifact has no provenance: no flow reported its fingerprint"
                },
            ));
        }
        if rules_of.trail_compliance.required {
            let reason = if a.trails.is_empty() {
                "artifact has no provenance, so no trail can be compliant"
            } else {
                "artifact is not compliant in trail"
            };
            rules.push(boolean(
                "trail-compliance",
                &rules_of.trail_compliance,
                a,
                || a.trails.iter().any(|t| t.trail_compliant),
                reason,
            ));
        }
        for r in &rules_of.attestations {
            rules.push(attestation(r, a));
        }
        if a.allowlisted {
            for r in &mut rules {
                r.satisfied = true;
                r.ignored = true;
                r.reason = Some("artifact is allowlisted in the environment".into());
            }
        }
        let compliant = rules.iter().all(|r| r.satisfied || r.ignored);
        ArtifactVerdict {
            name: a.name.clone(),
            fingerprint: a.fingerprint.clone(),
            compliant,
            rules,
        }
    }
}

/// Every trail context of the artifact, or the one without a flow.
fn contexts(a: &ArtifactFacts) -> Vec<Cx<'_>> {
    if a.trails.is_empty() {
        vec![Cx {
            artifact: a,
            trail: None,
        }]
    } else {
        a.trails
            .iter()
            .map(|t| Cx {
                artifact: a,
                trail: Some(t),
            })
            .collect()
    }
}

fn boolean(
    name: &str,
    rule: &BooleanRule,
    a: &ArtifactFacts,
    holds: impl Fn() -> bool,
    reason: &str,
) -> RuleResult {
    for e in &rule.exceptions {
        for cx in contexts(a) {
            match e.condition.expr.test(&cx) {
                Ok(true) => {
                    return RuleResult {
                        rule: name.into(),
                        satisfied: true,
                        ignored: true,
                        reason: Some(format!("exception {} holds", e.condition.text)),
                    };
                }
                Ok(false) => {}
                Err(err) => return failed(name, format!("policy evaluation error: {err}")),
            }
        }
    }
    if holds() {
        RuleResult {
            rule: name.into(),
            satisfied: true,
            ignored: false,
            reason: None,
        }
    } else {
        failed(name, reason.to_string())
    }
}

fn failed(rule: &str, reason: String) -> RuleResult {
    RuleResult {
        rule: rule.into(),
        satisfied: false,
        ignored: false,
        reason: Some(reason),
    }
}

fn attestation(r: &AttestationRule, a: &ArtifactFacts) -> RuleResult {
    let rule = format!("attestation {r}");
    // Which trails the rule applies to.
    let mut applies: Vec<&TrailFacts> = Vec::new();
    let mut any_context_applies = false;
    for cx in contexts(a) {
        let yes = match &r.condition {
            None => true,
            Some(c) => match c.expr.test(&cx) {
                Ok(b) => b,
                Err(err) => return failed(&rule, format!("policy evaluation error: {err}")),
            },
        };
        if yes {
            any_context_applies = true;
            if let Some(t) = cx.trail {
                applies.push(t);
            }
        }
    }
    if !any_context_applies {
        return RuleResult {
            rule,
            satisfied: true,
            ignored: true,
            reason: r.condition.as_ref().map(|c| format!("{} is false", c.text)),
        };
    }
    if applies.is_empty() {
        return failed(
            &rule,
            "artifact has no provenance, so it has no attestations".into(),
        );
    }
    let fits = |f: &AttestationFact| {
        (r.name == "*" || f.name == r.name)
            && r.kind.matches(&f.kind)
            && match &r.for_control {
                Some(c) => f.control.as_deref() == Some(c.as_str()),
                None => true,
            }
    };
    let mut found_non_compliant: Option<&AttestationFact> = None;
    for t in &applies {
        let mut candidates = t.attestations.iter().filter(|f| fits(f)).peekable();
        if candidates.peek().is_none() {
            continue;
        }
        let mut all_ok = true;
        for f in candidates {
            if r.must_be_compliant && !f.compliant {
                all_ok = false;
                found_non_compliant.get_or_insert(f);
            }
        }
        if all_ok {
            return RuleResult {
                rule,
                satisfied: true,
                ignored: false,
                reason: None,
            };
        }
    }
    let reason = match (&r.for_control, found_non_compliant) {
        (Some(c), Some(_)) => format!("decision for control '{c}' is non-compliant in trail"),
        (Some(c), None) => format!("artifact is missing required decision for control '{c}'"),
        (None, Some(f)) => format!("attestation '{}' is non-compliant in trail", f.name),
        (None, None) => format!(
            "artifact is missing required '{}' (type: {}) attestation in trail",
            r.name, r.kind
        ),
    };
    failed(&rule, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
_schema: https://docs.kosli.com/schemas/policy/v1
artifacts:
  provenance:
    required: true
    exceptions:
      - if: ${{ matches(artifact.name, "^datadog:.*") }}
  trail-compliance:
    required: true
  attestations:
    - name: "*"
      type: pull_request
    - name: unit-tests
      type: junit
      if: ${{ flow.tags.risk-level == "high" }}
    - type: decision
      for_control: RCTL-043
"#;

    fn att(name: &str, kind: &str, compliant: bool) -> AttestationFact {
        AttestationFact {
            name: name.into(),
            kind: AttestationKind::parse(kind).unwrap(),
            compliant,
            control: None,
        }
    }

    fn decision(control: &str, compliant: bool) -> AttestationFact {
        AttestationFact {
            control: Some(control.into()),
            ..att("approval", "decision", compliant)
        }
    }

    fn trail(risk: &str, compliant: bool, atts: Vec<AttestationFact>) -> TrailFacts {
        TrailFacts {
            flow: "backend".into(),
            flow_tags: [("risk-level".to_string(), risk.to_string())].into(),
            trail: "t1".into(),
            trail_compliant: compliant,
            attestations: atts,
        }
    }

    fn artifact(name: &str, trails: Vec<TrailFacts>) -> ArtifactFacts {
        ArtifactFacts {
            name: name.into(),
            fingerprint: "ab".repeat(32),
            allowlisted: false,
            trails,
        }
    }

    fn reasons(v: &ArtifactVerdict) -> Vec<&str> {
        v.reasons().collect()
    }

    #[test]
    fn a_fully_evidenced_artifact_is_compliant() {
        let p = Policy::from_yaml(POLICY).unwrap();
        let a = artifact(
            "backend:1",
            vec![trail(
                "high",
                true,
                vec![
                    att("pr", "pull_request", true),
                    att("unit-tests", "junit", true),
                    decision("RCTL-043", true),
                ],
            )],
        );
        let v = p.evaluate(&a);
        assert!(v.compliant, "{v:#?}");
        assert_eq!(v.rules.len(), 5);
    }

    #[test]
    fn every_failed_rule_gives_kosli_wording() {
        let p = Policy::from_yaml(POLICY).unwrap();
        let a = artifact(
            "backend:1",
            vec![trail(
                "high",
                false,
                vec![att("unit-tests", "junit", false), decision("OTHER", true)],
            )],
        );
        let v = p.evaluate(&a);
        assert!(!v.compliant);
        assert_eq!(
            reasons(&v),
            [
                "artifact is not compliant in trail",
                "artifact is missing required '*' (type: pull_request) attestation in trail",
                "attestation 'unit-tests' is non-compliant in trail",
                "artifact is missing required decision for control 'RCTL-043'",
            ]
        );
    }

    #[test]
    fn a_non_compliant_decision_is_named() {
        let p = Policy::from_yaml(POLICY).unwrap();
        let a = artifact(
            "x",
            vec![trail(
                "low",
                true,
                vec![att("pr", "pull_request", true), decision("RCTL-043", false)],
            )],
        );
        let v = p.evaluate(&a);
        assert_eq!(
            reasons(&v),
            ["decision for control 'RCTL-043' is non-compliant in trail"]
        );
        // risk-level is low, so unit tests are not asked for.
        let unit = &v.rules[3];
        assert!(unit.ignored && unit.satisfied);
    }

    #[test]
    fn exceptions_waive_provenance_and_conditions_see_no_flow() {
        let p = Policy::from_yaml(POLICY).unwrap();
        let v = p.evaluate(&artifact("datadog:7", vec![]));
        assert!(v.rules[0].ignored, "{v:#?}");
        assert_eq!(
            reasons(&v),
            [
                "artifact has no provenance, so no trail can be compliant",
                "artifact has no provenance, so it has no attestations",
                "artifact has no provenance, so it has no attestations",
            ]
        );
        let v = p.evaluate(&artifact("nginx", vec![]));
        assert_eq!(
            reasons(&v)[0],
            "artifact has no provenance: no flow reported its fingerprint"
        );
    }

    #[test]
    fn an_artifact_without_a_fingerprint_fails_provenance_saying_so() {
        let p = Policy::from_yaml(POLICY).unwrap();
        let mut a = artifact("nginx", vec![]);
        a.fingerprint = String::new();
        let v = p.evaluate(&a);
        assert!(!v.compliant);
        assert_eq!(
            reasons(&v)[0],
            "artifact has no fingerprint (the reporter could not identify it), so no provenance can match it"
        );
    }

    #[test]
    fn allowlisted_artifacts_are_compliant() {
        let p = Policy::from_yaml(POLICY).unwrap();
        let mut a = artifact("redis:7", vec![]);
        a.allowlisted = true;
        let v = p.evaluate(&a);
        assert!(v.compliant);
        assert!(v.rules.iter().all(|r| r.ignored));
    }

    #[test]
    fn any_trail_may_satisfy_a_rule() {
        let p = Policy::from_yaml(
            "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  attestations:\n    - name: scan\n      type: snyk\n      must_be_compliant: false\n",
        )
        .unwrap();
        let a = artifact(
            "x",
            vec![
                trail("low", true, vec![]),
                trail("low", true, vec![att("scan", "snyk", false)]),
            ],
        );
        assert!(p.evaluate(&a).compliant);
    }

    #[test]
    fn a_condition_that_is_not_boolean_fails_the_rule() {
        let p = Policy::from_yaml(
            "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n    exceptions:\n      - if: ${{ artifact.name }}\n",
        )
        .unwrap();
        let v = p.evaluate(&artifact("x", vec![trail("low", true, vec![])]));
        assert!(!v.compliant);
        assert!(
            reasons(&v)[0].starts_with("policy evaluation error:"),
            "{v:#?}"
        );
    }

    #[test]
    fn an_empty_policy_passes_everything() {
        let p = Policy::from_yaml("_schema: https://docs.kosli.com/schemas/policy/v1\n").unwrap();
        let v = p.evaluate(&artifact("x", vec![]));
        assert!(v.compliant && v.rules.is_empty());
    }
}
