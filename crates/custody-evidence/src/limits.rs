/// Bounds every parser honours, so that a hostile file costs at most this
/// much. The defaults are far above what real tools write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, in bytes (after transcoding to UTF-8 for XML).
    pub max_bytes: u64,
    /// Deepest element or JSON value nesting.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 2 << 30,
            max_depth: 256,
        }
    }
}

/// Longest message or stack trace kept per failing test or finding.
pub const MAX_MESSAGE: usize = 64 << 10;

/// Total bytes of messages kept per report, so that a report of many
/// failures still makes a summary of bounded size; past it, failures are
/// listed by name only.
pub const MESSAGE_BUDGET: usize = 4 << 20;

/// Failing cases or findings listed one by one; the rest are counted.
pub const MAX_LISTED: usize = 1000;

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo".into(), 2), "h");
        assert_eq!(truncate("héllo".into(), 3), "hé");
        assert_eq!(truncate("abc".into(), 10), "abc");
    }
}
