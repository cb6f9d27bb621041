//! How deeply a JSON text nests, found without parsing it.
//!
//! Free-form JSON (`user_data`, `attestation_data`) is kept as the text it
//! was sent as; taking it as text does not bound its nesting, and anything
//! that later walks it recursively (canonical JSON for the ledger, a
//! reader's parser) would overflow or refuse it. So its depth is measured
//! at the edge, in one pass with no recursion, and a text deeper than
//! [`MAX_DEPTH`] is refused.

/// The deepest free-form JSON accepted: far beyond any real document, and
/// within serde_json's own limit (128) with room for what wraps it.
pub const MAX_DEPTH: usize = 64;

/// The nesting depth of a JSON text (0 for a scalar). The text is assumed
/// to be valid JSON; brackets inside strings are not counted.
pub fn depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(depth("1"), 0);
        assert_eq!(depth("\"[[[\""), 0);
        assert_eq!(depth("{\"a\": [1, {\"b\": \"]}\\\"[\"}]}"), 3);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(depth(&deep), 100_000);
    }
}
