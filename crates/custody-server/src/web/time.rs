//! Times as pages show them: UTC, like the CLI, with how long ago.

/// `2026-03-01 03:12:00 UTC`.
pub fn utc(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => format!("{ms} ms"),
    }
}

/// RFC 3339, for `<time datetime>` and for links.
pub fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// "3 hours ago", "in 5 minutes", "just now".
pub fn relative(ms: i64, now: i64) -> String {
    let ahead = ms > now;
    let d = (now - ms).unsigned_abs() / 1000;
    if d < 45 {
        return "just now".into();
    }
    let (n, unit) = span(d);
    let unit = if n == 1 {
        unit.to_string()
    } else {
        format!("{unit}s")
    };
    if ahead {
        format!("in {n} {unit}")
    } else {
        format!("{n} {unit} ago")
    }
}

/// A length of time in its largest whole unit: (3, "hour").
fn span(secs: u64) -> (u64, &'static str) {
    const UNITS: [(u64, &str); 6] = [
        (365 * 86_400, "year"),
        (30 * 86_400, "month"),
        (7 * 86_400, "week"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
    ];
    for (size, name) in UNITS {
        if secs >= size {
            return (secs / size, name);
        }
    }
    (secs.max(1), "second")
}

/// A duration for people: "3 h 20 min", "2 d 4 h", "45 s".
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_forms() {
        let now = 1_000_000_000_000;
        assert_eq!(relative(now - 10_000, now), "just now");
        assert_eq!(relative(now - 60_000, now), "1 minute ago");
        assert_eq!(relative(now - 3 * 3_600_000 - 5, now), "3 hours ago");
        assert_eq!(relative(now - 2 * 86_400_000, now), "2 days ago");
        assert_eq!(relative(now + 5 * 60_000, now), "in 5 minutes");
        assert_eq!(relative(now - 400 * 86_400_000, now), "1 year ago");
    }

    #[test]
    fn utc_and_durations() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(rfc3339(86_400_000), "1970-01-02T00:00:00Z");
        assert_eq!(duration(200 * 60_000), "3 h 20 min");
        assert_eq!(duration(52 * 3_600_000), "2 d 4 h");
        assert_eq!(duration(45_000), "45 s");
    }
}
