//! Jira key extraction on any text: it never panics, finds each key once,
//! in order, and only what the rules call a key.

use custody_evidence::jira::{issue_keys, project_keys};
use proptest::prelude::*;

/// Text made of the pieces keys are made of, so that near-misses
/// (`CVE-2026-1`, `A-1`, `x_AB-1`, lower case, non-ASCII) are common.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[A-Za-z][A-Za-z0-9]{0,11}",
            "-[0-9]{1,4}",
            Just("-".to_string()),
            "[ _/:.(),]",
            "[\u{e9}\u{df}\u{131}\u{1f600}]",
            any::<String>(),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

fn is_key(k: &str) -> bool {
    let Some((project, number)) = k.split_once('-') else {
        return false;
    };
    let mut p = project.chars();
    p.next().is_some_and(|c| c.is_ascii_uppercase())
        && p.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && (2..=10).contains(&project.len())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

proptest! {
    #[test]
    fn keys_are_keys_sorted_and_unique(t in text()) {
        let keys = issue_keys(&t, &[]);
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for k in &keys {
            prop_assert!(is_key(k), "{k:?} from {t:?}");
            prop_assert!(t.to_uppercase().contains(k.as_str()), "{k:?} from {t:?}");
        }
    }

    #[test]
    fn project_keys_only_narrow(t in text(), project in "[A-Za-z][A-Za-z0-9]{1,5}") {
        let projects = project_keys(&[project]).unwrap();
        let all = issue_keys(&t, &[]);
        let narrowed = issue_keys(&t, &projects);
        for k in &narrowed {
            prop_assert!(k.starts_with(&format!("{}-", projects[0])), "{k:?}");
            prop_assert!(all.contains(k), "{k:?} found only when narrowed, in {t:?}");
        }
    }
}
