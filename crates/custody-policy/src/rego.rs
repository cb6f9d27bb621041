//! Rego policies, evaluated with `regorus`, under Kosli's contract:
//! `package policy`, a rule `allow` that must give a boolean for the input,
//! and an optional set `violations` of strings, read only when `allow` is
//! false. Parameters are mounted at `data.params`.
//!
//! The same contract serves `custody evaluate` (any input, usually trails)
//! and Rego policies attached to environments, which judge one running
//! artifact at a time (see [`EnvironmentPolicy`]).

use std::fmt;

use regorus::{Engine, Value};

use crate::evaluate::{ArtifactFacts, ArtifactVerdict, RuleResult};

/// The name errors carry when no file name is given, as in Kosli's CLI
/// (`policy.rego:9: ...`).
pub const FILE: &str = "policy.rego";

/// How long one evaluation may run by default. The server runs policies in
/// its sandbox with a limit of its own (`--program-time-limit`); this one
/// is regorus's cooperative timer, which the sandbox backs with a kill.
pub const TIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Why a policy cannot be used or gave no answer. Every one of these is an
/// error, never a silent denial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum RegoError {
    #[error("failed to parse policy: {0}")]
    Parse(String),
    #[error("{0}")]
    Compile(String),
    #[error("policy package must be 'package policy', got '{0}'")]
    Package(String),
    #[error("policy must declare an 'allow' rule")]
    NoAllow,
    #[error("policy did not return a result for 'data.policy.allow'")]
    Undefined,
    #[error("'data.policy.allow' must be true or false, got {0}")]
    NotBoolean(String),
    #[error("policy evaluation failed: {0}")]
    Eval(String),
    #[error("{0}")]
    Params(String),
}

/// What a policy decided.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub allow: bool,
    /// With `allow` false: the members of `violations` that are strings,
    /// sorted (a Rego set has no order). Empty when it is undefined.
    pub violations: Vec<String>,
}

/// A checked policy, ready to evaluate many inputs.
#[derive(Clone)]
pub struct RegoPolicy {
    engine: Engine,
}

impl fmt::Debug for RegoPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RegoPolicy")
    }
}

/// Turns regorus's multi-line diagnostics (`--> policy.rego:9:3 ... error:
/// use of undefined variable `x` is unsafe`) into Kosli's one-line form
/// (`policy.rego:9: rego_unsafe_var_error: ...`).
fn diagnostic(e: &str) -> (Option<u32>, String) {
    // `--> FILE:LINE:COLUMN`, where FILE may itself hold colons.
    let line = e
        .split("-->")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|at| at.rsplit(':').nth(1))
        .and_then(|l| l.trim().parse().ok());
    let message = e
        .lines()
        .find_map(|l| l.trim().strip_prefix("error:"))
        .unwrap_or(e)
        .trim()
        .to_string();
    (line, message)
}

fn at(file: &str, line: Option<u32>, code: &str, message: &str) -> String {
    match line {
        Some(l) => format!("{file}:{l}: {code}: {message}"),
        None => format!("{file}: {code}: {message}"),
    }
}

impl RegoPolicy {
    /// Parses and checks a policy: its package, its `allow` rule, and what
    /// the compiler finds (unsafe variables, unknown functions), so a bad
    /// policy fails before any input is read.
    pub fn compile(text: &str) -> Result<RegoPolicy, RegoError> {
        Self::compile_limited(text, FILE, TIME_LIMIT)
    }

    /// [`RegoPolicy::compile`] with the file name errors are to carry and a
    /// time limit for each evaluation.
    pub fn compile_limited(
        text: &str,
        file: &str,
        limit: std::time::Duration,
    ) -> Result<RegoPolicy, RegoError> {
        let mut engine = Engine::new();
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit,
            check_interval: std::num::NonZeroU32::MIN.saturating_add(63),
        });
        let package = engine.add_policy(file.into(), text.into()).map_err(|e| {
            let (line, message) = diagnostic(&e.to_string());
            RegoError::Parse(at(file, line, "rego_parse_error", &message))
        })?;
        let package = package
            .strip_prefix("data.")
            .unwrap_or(&package)
            .to_string();
        if package != "policy" {
            return Err(RegoError::Package(package));
        }
        let has_allow = engine
            .has_declared_rule_rooted_at(file, "allow")
            .map_err(|e| RegoError::Compile(e.to_string()))?;
        if !has_allow {
            return Err(RegoError::NoAllow);
        }
        // Static checks run when the engine first prepares; an empty input
        // makes it prepare without depending on any real input.
        let mut probe = engine.clone();
        probe.set_input(Value::new_object());
        if let Err(e) = probe.eval_rule("data.policy.allow".into()) {
            let (line, message) = diagnostic(&e.to_string());
            if message.contains("exceeded time limit") {
                return Err(RegoError::Eval(format!(
                    "evaluating the policy on an empty input ran longer than its time limit of {} ms",
                    limit.as_millis()
                )));
            }
            let code = if message.contains("unsafe") {
                "rego_unsafe_var_error"
            } else {
                "rego_compile_error"
            };
            return Err(RegoError::Compile(at(file, line, code, &message)));
        }
        Ok(RegoPolicy { engine })
    }

    /// Evaluates `allow` (and, when it is false, `violations`) for one
    /// input, with `params` at `data.params`.
    pub fn evaluate(
        &self,
        input: serde_json::Value,
        params: Option<serde_json::Value>,
    ) -> Result<Decision, RegoError> {
        let mut engine = self.engine.clone();
        if let Some(p) = params {
            engine
                .add_data(Value::from(serde_json::json!({ "params": p })))
                .map_err(|e| RegoError::Params(format!("failed to mount --params: {e}")))?;
        }
        engine.set_input(Value::from(input));
        let allow = engine
            .eval_rule("data.policy.allow".into())
            .map_err(|e| RegoError::Eval(diagnostic(&e.to_string()).1))?;
        let allow = match allow {
            Value::Undefined => return Err(RegoError::Undefined),
            Value::Bool(b) => b,
            other => return Err(RegoError::NotBoolean(other.to_string())),
        };
        let mut violations = Vec::new();
        if !allow {
            // A policy without a `violations` rule simply lists none.
            if let Ok(v) = engine.eval_rule("data.policy.violations".into()) {
                collect_strings(&v, &mut violations);
            }
            violations.sort();
            violations.dedup();
        }
        Ok(Decision { allow, violations })
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.to_string()),
        Value::Set(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

/// A Rego policy attached to an environment: it judges one running
/// artifact at a time, with the input
/// `{environment, snapshot, artifact, trail, trails, attestations}`:
/// `artifact` is `{name, fingerprint, allowlisted, provenance}`, `trails`
/// every trail that reported it (`{flow, flow_tags, name, compliant,
/// attestations}`), `trail` the first of them (or null), and
/// `attestations` the first trail's attestations keyed by name.
#[derive(Debug, Clone)]
pub struct EnvironmentPolicy {
    policy: RegoPolicy,
}

/// Where an artifact runs, for the input of an environment policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    pub environment: Option<&'a str>,
    pub snapshot: Option<u64>,
}

impl EnvironmentPolicy {
    pub fn compile(text: &str) -> Result<Self, RegoError> {
        Ok(EnvironmentPolicy {
            policy: RegoPolicy::compile(text)?,
        })
    }

    pub fn input(place: Place<'_>, a: &ArtifactFacts) -> serde_json::Value {
        use serde_json::{Map, Value as J, json};
        let trails: Vec<J> = a
            .trails
            .iter()
            .map(|t| {
                let atts: Vec<J> = t
                    .attestations
                    .iter()
                    .map(|x| {
                        json!({
                            "name": x.name,
                            "type": x.kind.to_string(),
                            "compliant": x.compliant,
                            "control": x.control,
                        })
                    })
                    .collect();
                json!({
                    "flow": t.flow,
                    "flow_tags": t.flow_tags,
                    "name": t.trail,
                    "compliant": t.trail_compliant,
                    "attestations": atts,
                })
            })
            .collect();
        let attestations: Map<String, J> = a
            .trails
            .first()
            .map(|t| {
                t.attestations
                    .iter()
                    .map(|x| {
                        (
                            x.name.clone(),
                            json!({"type": x.kind.to_string(), "compliant": x.compliant, "control": x.control}),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "environment": place.environment.map(|e| json!({"name": e})),
            "snapshot": place.snapshot.map(|s| json!({"index": s})),
            "artifact": {
                "name": a.name,
                "fingerprint": a.fingerprint,
                "allowlisted": a.allowlisted,
                "provenance": !a.trails.is_empty(),
            },
            "trail": trails.first().cloned(),
            "trails": trails,
            "attestations": attestations,
        })
    }

    /// Judges one artifact: one rule, `allow`, whose reasons are the
    /// policy's violations. An allowlisted artifact is compliant, as under
    /// a policy v1. An evaluation error fails the artifact with its reason.
    pub fn evaluate(&self, place: Place<'_>, a: &ArtifactFacts) -> ArtifactVerdict {
        if a.allowlisted {
            return Self::verdict(
                a,
                Ok(Decision {
                    allow: true,
                    violations: vec![],
                }),
            );
        }
        let outcome = self
            .policy
            .evaluate(Self::input(place, a), None)
            .map_err(|e| e.to_string());
        Self::verdict(a, outcome)
    }

    /// The verdict on one artifact from what the policy decided for its
    /// input (or why it decided nothing): the pure half of
    /// [`EnvironmentPolicy::evaluate`], for callers that run the policy
    /// elsewhere (the server's sandbox). An allowlisted artifact is
    /// compliant whatever the outcome.
    pub fn verdict(a: &ArtifactFacts, outcome: Result<Decision, String>) -> ArtifactVerdict {
        let rule = |satisfied: bool, ignored: bool, reason: Option<String>| RuleResult {
            rule: "rego allow".into(),
            satisfied,
            ignored,
            reason,
        };
        let rules = if a.allowlisted {
            vec![rule(
                true,
                true,
                Some("artifact is allowlisted in the environment".into()),
            )]
        } else {
            match outcome {
                Ok(d) if d.allow => vec![rule(true, false, None)],
                Ok(d) if d.violations.is_empty() => {
                    vec![rule(false, false, Some("denied by the policy".into()))]
                }
                Ok(d) => d
                    .violations
                    .into_iter()
                    .map(|v| rule(false, false, Some(v)))
                    .collect(),
                Err(e) => vec![rule(
                    false,
                    false,
                    Some(format!("policy evaluation error: {e}")),
                )],
            }
        };
        ArtifactVerdict {
            name: a.name.clone(),
            fingerprint: a.fingerprint.clone(),
            compliant: rules.iter().all(|r| r.satisfied),
            rules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Policies written to the descriptions of Kosli's CLI test cases; the
    // expected verdicts are those OPA gives them there.
    const ALLOW_ALL: &str = "package policy\n\nallow := true\n";
    const DENY_ALL: &str = "package policy\n\nimport rego.v1\n\ndefault allow := false\n\nviolations contains \"always denied\" if true\n";
    const DENY_NO_VIOLATIONS: &str = "package policy\n\ndefault allow := false\n";
    const NO_PACKAGE_POLICY: &str = "package foo\n\nallow := true\n";
    const NO_ALLOW: &str =
        "package policy\n\nimport rego.v1\n\nviolations contains \"x\" if true\n";
    const INVALID: &str = "package policy\n\nallow if {{ \n";
    const UNSAFE: &str = "package policy\n\nimport rego.v1\n\nallow if {\n    true\n}\n\nviolations contains msg if {\n    x == 1\n    msg := \"m\"\n}\n";
    const UNDEFINED_ALLOW: &str = "package policy\n\nimport rego.v1\n\nallow if input.score > 3\n";
    const THRESHOLD: &str = r#"package policy

import rego.v1

threshold := object.get(data, ["params", "threshold"], 10)

default allow := false

allow if input.score >= threshold

violations contains msg if {
    input.score < threshold
    msg := sprintf("score %d is below threshold %d", [input.score, threshold])
}
"#;
    const REALISTIC: &str = r#"package policy

import rego.v1

required := object.get(data, ["params", "required"], ["pull-request", "unit-tests"])

statuses := input.trail.compliance_status.attestations_statuses

default allow := false

allow if count(violations) == 0

violations contains msg if {
    some name in required
    not statuses[name]
    msg := sprintf("attestation '%s' is missing", [name])
}

violations contains msg if {
    some name in required
    statuses[name].is_compliant == false
    msg := sprintf("attestation '%s' is non-compliant", [name])
}
"#;

    fn trail_input() -> serde_json::Value {
        json!({"trail": {"name": "release-42", "compliance_state": "COMPLIANT",
        "compliance_status": {"status": "COMPLIANT", "is_compliant": true, "attestations_statuses": {
            "pull-request": {"attestation_name": "pull-request", "attestation_type": "pull_request", "is_compliant": true},
            "unit-tests": {"attestation_name": "unit-tests", "attestation_type": "junit", "is_compliant": true},
            "snyk-scan": {"attestation_name": "snyk-scan", "attestation_type": "snyk", "is_compliant": false}
        }}}})
    }

    fn eval(
        policy: &str,
        input: serde_json::Value,
        params: Option<serde_json::Value>,
    ) -> Result<Decision, RegoError> {
        RegoPolicy::compile(policy)?.evaluate(input, params)
    }

    #[test]
    fn kosli_cases() {
        assert_eq!(
            eval(ALLOW_ALL, trail_input(), None).unwrap(),
            Decision {
                allow: true,
                violations: vec![]
            }
        );
        assert_eq!(
            eval(DENY_ALL, trail_input(), None).unwrap(),
            Decision {
                allow: false,
                violations: vec!["always denied".into()]
            }
        );
        assert_eq!(
            eval(DENY_NO_VIOLATIONS, trail_input(), None).unwrap(),
            Decision {
                allow: false,
                violations: vec![]
            }
        );
        assert_eq!(
            eval(NO_PACKAGE_POLICY, trail_input(), None)
                .unwrap_err()
                .to_string(),
            "policy package must be 'package policy', got 'foo'"
        );
        assert_eq!(
            eval(NO_ALLOW, trail_input(), None).unwrap_err().to_string(),
            "policy must declare an 'allow' rule"
        );
        let e = eval(INVALID, trail_input(), None).unwrap_err().to_string();
        assert!(e.starts_with("failed to parse policy: policy.rego:"), "{e}");
        let e = eval(UNSAFE, trail_input(), None).unwrap_err().to_string();
        assert!(
            e.starts_with("policy.rego:10: rego_unsafe_var_error"),
            "{e}"
        );
        assert_eq!(
            eval(UNDEFINED_ALLOW, json!({"score": 1}), None).unwrap_err(),
            RegoError::Undefined
        );
        assert_eq!(
            eval(THRESHOLD, json!({"score": 5}), None).unwrap(),
            Decision {
                allow: false,
                violations: vec!["score 5 is below threshold 10".into()]
            }
        );
        assert!(
            eval(
                THRESHOLD,
                json!({"score": 5}),
                Some(json!({"threshold": 3}))
            )
            .unwrap()
            .allow
        );
        assert!(eval(REALISTIC, trail_input(), None).unwrap().allow);
        let d = eval(
            REALISTIC,
            trail_input(),
            Some(json!({"required": ["pull-request", "snyk-scan", "sbom"]})),
        )
        .unwrap();
        assert_eq!(
            d.violations,
            [
                "attestation 'sbom' is missing",
                "attestation 'snyk-scan' is non-compliant"
            ]
        );
    }

    #[test]
    fn a_policy_that_runs_too_long_is_stopped() {
        let p = RegoPolicy::compile(
            "package policy\n\nimport rego.v1\n\nallow if {\n    input.go\n    count([x | some x in numbers.range(1, 20000000); x > 0]) > 0\n}\n",
        )
        .unwrap();
        let start = std::time::Instant::now();
        let e = p.evaluate(json!({"go": true}), None).unwrap_err();
        assert!(matches!(e, RegoError::Eval(_)), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn environment_policies_see_the_artifact() {
        let p = EnvironmentPolicy::compile(
            "package policy\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.artifact.provenance\n\nviolations contains sprintf(\"%s has no provenance in %s\", [input.artifact.name, input.environment.name]) if not input.artifact.provenance\n",
        )
        .unwrap();
        let a = ArtifactFacts {
            name: "nginx".into(),
            fingerprint: "ab".repeat(32),
            ..Default::default()
        };
        let place = Place {
            environment: Some("prod"),
            snapshot: Some(3),
        };
        let v = p.evaluate(place, &a);
        assert!(!v.compliant);
        assert_eq!(
            v.reasons().collect::<Vec<_>>(),
            ["nginx has no provenance in prod"]
        );
        let allowed = ArtifactFacts {
            allowlisted: true,
            ..a
        };
        assert!(p.evaluate(place, &allowed).compliant);
    }
}
