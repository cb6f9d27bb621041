//! Policy evaluation speed, without I/O: a policy v1 and a Rego policy
//! over 1,000 artifacts' facts, and Kosli-style Rego policies over a trail
//! document. `cargo bench -p custody-policy --bench policies`.

use std::hint::black_box;
use std::time::Instant;

use custody_domain::AttestationKind;
use custody_policy::rego::{EnvironmentPolicy, Place, RegoPolicy};
use custody_policy::{ArtifactFacts, AttestationFact, Policy, TrailFacts};
use serde_json::json;

const V1: &str = r#"_schema: https://docs.kosli.com/schemas/policy/v1
artifacts:
  provenance:
    required: true
    exceptions:
      - if: ${{ matches(artifact.name, "^registry.example.com/vendor/.*") }}
  trail-compliance:
    required: true
  attestations:
    - name: unit-tests
      type: junit
      if: ${{ flow.tags.risk-level == "high" }}
    - name: "*"
      type: pull_request
    - type: decision
      for_control: RCTL-1
"#;

const ENV_REGO: &str = r#"package policy

import rego.v1

default allow := false

allow if {
    input.artifact.provenance
    input.trail.compliant
    some a in input.trail.attestations
    a.type == "junit"
    a.compliant
}

violations contains "no provenance" if not input.artifact.provenance
"#;

const TRAIL_REGO: &str = r#"package policy

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

fn facts(n: usize) -> Vec<ArtifactFacts> {
    let kind = |k: &str| AttestationKind::parse(k).unwrap();
    (0..n)
        .map(|i| ArtifactFacts {
            name: format!("registry.example.com/team/svc-{i}:1.0.{i}"),
            fingerprint: format!("{i:064x}"),
            allowlisted: false,
            trails: vec![TrailFacts {
                flow: "svc".into(),
                flow_tags: [("risk-level".to_string(), "high".to_string())].into(),
                trail: format!("t-{i}"),
                trail_compliant: i % 50 != 0,
                attestations: vec![
                    AttestationFact {
                        name: "unit-tests".into(),
                        kind: kind("junit"),
                        compliant: true,
                        control: None,
                    },
                    AttestationFact {
                        name: "pr".into(),
                        kind: kind("pull_request"),
                        compliant: true,
                        control: None,
                    },
                    AttestationFact {
                        name: "approval".into(),
                        kind: kind("decision"),
                        compliant: true,
                        control: Some("RCTL-1".into()),
                    },
                ],
            }],
        })
        .collect()
}

/// Median of `rounds` timings of `f`, in microseconds.
fn median_us(rounds: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..rounds)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() {
    let fs = facts(1000);
    let v1 = Policy::from_yaml(V1).unwrap();
    let us = median_us(50, || {
        for f in &fs {
            black_box(v1.evaluate(black_box(f)));
        }
    });
    println!(
        "policy v1, 1,000 artifacts (5 rules each): {:.2} ms ({:.2} us per artifact)",
        us / 1000.0,
        us / 1000.0
    );

    let rego = EnvironmentPolicy::compile(ENV_REGO).unwrap();
    let place = Place {
        environment: Some("prod"),
        snapshot: Some(7),
    };
    let us = median_us(10, || {
        for f in &fs {
            black_box(rego.evaluate(place, black_box(f)));
        }
    });
    println!(
        "rego environment policy, 1,000 artifacts: {:.2} ms ({:.1} us per artifact)",
        us / 1000.0,
        us / 1000.0
    );

    let trail = json!({"trail": {"name": "release-42", "compliance_state": "COMPLIANT",
        "compliance_status": {"status": "COMPLIANT", "is_compliant": true, "attestations_statuses": {
            "pull-request": {"attestation_name": "pull-request", "attestation_type": "pull_request", "is_compliant": true},
            "unit-tests": {"attestation_name": "unit-tests", "attestation_type": "junit", "is_compliant": true},
            "snyk-scan": {"attestation_name": "snyk-scan", "attestation_type": "snyk", "is_compliant": false}}}}});
    let p = RegoPolicy::compile(TRAIL_REGO).unwrap();
    let params = json!({"required": ["pull-request", "snyk-scan", "sbom"]});
    let us = median_us(2000, || {
        black_box(p.evaluate(trail.clone(), Some(params.clone())).unwrap());
    });
    println!("rego trail policy (Kosli's realistic-compliance shape), one evaluation: {us:.1} us");
    let us = median_us(200, || {
        black_box(RegoPolicy::compile(TRAIL_REGO).unwrap());
    });
    println!("rego trail policy, parse and check: {us:.1} us");
}
