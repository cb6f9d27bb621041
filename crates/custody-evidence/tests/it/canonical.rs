//! `sbom::canonical_json` must be exactly RFC 8785: the ledger binds an
//! SBOM's component rows to its attestation by the SHA-256 of this text.

use custody_evidence::sbom::{Component, Hash, canonical_json};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Control characters, quotes, backslashes, DEL, non-ASCII and astral
    // characters are where escaping rules differ between encoders.
    prop_oneof![
        "[\\x00-\\x1f\"\\\\\\x7f/a-z]{0,12}",
        any::<String>(),
        "[\u{80}-\u{7ff}\u{2028}\u{2029}\u{fffd}\u{1f600}]{0,6}",
    ]
}

fn component() -> impl Strategy<Value = Component> {
    (
        prop::collection::vec((text(), text()), 0..3),
        prop::option::of(text()),
        prop::collection::vec(text(), 0..3),
        text(),
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(|(hashes, kind, licenses, name, purl, version)| Component {
            hashes: hashes
                .into_iter()
                .map(|(alg, value)| Hash { alg, value })
                .collect(),
            kind,
            licenses,
            name,
            purl,
            version,
        })
}

proptest! {
    #[test]
    fn component_lists_serialise_to_their_canonical_form(list in prop::collection::vec(component(), 0..6)) {
        let mut ours = Vec::new();
        canonical_json(&list, &mut ours).unwrap();
        let reference = serde_json_canonicalizer::to_string(&list).unwrap();
        prop_assert_eq!(String::from_utf8(ours).unwrap(), reference);
    }
}

#[test]
fn a_full_component_has_its_keys_in_order() {
    let c = Component {
        hashes: vec![Hash {
            alg: "SHA-256".into(),
            value: "ab".into(),
        }],
        kind: Some("library".into()),
        licenses: vec!["MIT".into()],
        name: "left-pad".into(),
        purl: Some("pkg:npm/left-pad@1.3.0".into()),
        version: Some("1.3.0".into()),
    };
    let mut out = Vec::new();
    canonical_json(&[c], &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"[{"hashes":[{"alg":"SHA-256","value":"ab"}],"kind":"library","licenses":["MIT"],"name":"left-pad","purl":"pkg:npm/left-pad@1.3.0","version":"1.3.0"}]"#
    );
}
