//! When a report counts as coming in time: the rule the store applies to
//! stretches of observation and an audit bundle's verifier applies to the
//! reports it replays. One rule, so the two cannot disagree.

/// Reports this close together are one stretch of observation, even from
/// one-shot reporters that promise nothing: a gap shorter than this is no
/// gap anyone could use (times are shown to the second) and only noise
/// between two reports of one pipeline step.
pub const SAME_MOMENT_MS: i64 = 1_000;

/// How late a report may come, after one that promised to report every
/// `interval_ms`, for the environment to count as watched in between.
pub fn allowance(interval_ms: i64) -> i64 {
    if interval_ms <= 0 {
        0
    } else {
        interval_ms + interval_ms / 2 + 5_000
    }
}

/// Whether a report at `now` continues the observation of one at `then`
/// that promised `interval_ms`.
pub fn in_time(then: i64, interval_ms: i64, now: i64) -> bool {
    now - then <= allowance(interval_ms).max(SAME_MOMENT_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_in_time_within_half_an_interval_and_five_seconds() {
        assert!(in_time(0, 60_000, 95_000));
        assert!(!in_time(0, 60_000, 95_001));
        // One-shot reporters promise nothing: only the same moment counts.
        assert!(in_time(0, 0, 1_000));
        assert!(!in_time(0, 0, 1_001));
    }
}
