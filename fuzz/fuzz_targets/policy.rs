#![no_main]
//! Any text as a policy v1 file, and as a bare `${{ }}` expression: never
//! a panic or a stack overflow, whatever the nesting; a policy that is
//! accepted judges artifacts without a panic; an accepted expression prints
//! to text that parses back to the same expression.

use custody_policy::expr;
use custody_policy::{ArtifactFacts, AttestationFact, Policy, TrailFacts};
use libfuzzer_sys::fuzz_target;

fn facts() -> Vec<ArtifactFacts> {
    let trail = TrailFacts {
        flow: "backend".into(),
        trail: "t1".into(),
        flow_tags: [("risk-level".to_string(), "high".to_string())].into(),
        trail_compliant: true,
        attestations: vec![AttestationFact {
            name: "unit-tests".into(),
            kind: custody_domain::attestation::AttestationKind::BuiltIn("generic"),
            compliant: true,
            control: None,
        }],
    };
    vec![
        ArtifactFacts {
            name: "web".into(),
            fingerprint: "ab".repeat(32),
            trails: vec![trail],
            allowlisted: false,
        },
        ArtifactFacts {
            name: "unknown".into(),
            fingerprint: String::new(),
            ..Default::default()
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::from_yaml(text) {
        for f in facts() {
            let _ = p.evaluate(&f);
        }
    }
    if let Ok(e) = expr::parse(text) {
        let printed = e.to_string();
        let again = expr::parse(&printed)
            .unwrap_or_else(|err| panic!("'{printed}' does not parse back: {err}"));
        assert_eq!(e, again);
    }
});
