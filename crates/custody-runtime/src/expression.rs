//! Naming a snapshot (`prod`, `prod#12`, `prod~1`, `prod@{2026-03-01T03:12:00}`,
//! `prod@{3.hours.ago}`), a point in time, and a range of snapshots (`3..~1`).

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

pub const MAX_ENV_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

fn err(msg: impl Into<String>) -> ExprError {
    ExprError(msg.into())
}

/// Environment names appear in snapshot expressions, so they may not hold
/// `#`, `~` or `@`: letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit (Kosli's rule).
pub fn validate_environment_name(name: &str) -> Result<(), ExprError> {
    let bytes = name.as_bytes();
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    match bytes.first() {
        None => Err(err("the environment name is empty")),
        _ if bytes.len() > MAX_ENV_NAME => Err(err(format!(
            "environment name '{name}' is longer than {MAX_ENV_NAME} characters"
        ))),
        Some(first) if first.is_ascii_alphanumeric() && bytes.iter().all(ok) => Ok(()),
        _ => Err(err(format!(
            "environment name '{name}' is invalid: it must start with a letter or digit and contain only letters, digits, '.', '_' or '-'"
        ))),
    }
}

/// Which snapshot of an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Latest,
    /// The Nth snapshot, from 1.
    Index(u64),
    /// N before the latest (`~0` is the latest).
    Behind(u64),
    /// The snapshot current at this time, in ms since the epoch.
    Time(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    pub environment: String,
    pub at: At,
}

impl SnapshotRef {
    /// Parses `ENV`, `ENV#N`, `ENV~N`, `ENV@{TIME}`; relative times are
    /// taken back from `now_ms`.
    pub fn parse(expr: &str, now_ms: i64) -> Result<SnapshotRef, ExprError> {
        let cut = expr.find(['#', '~', '@']).unwrap_or(expr.len());
        let (env, rest) = expr.split_at(cut);
        validate_environment_name(env).map_err(|e| err(format!("snapshot '{expr}': {e}")))?;
        let bad = |why: &str| {
            err(format!(
                "snapshot '{expr}': {why}; expected ENV, ENV#N, ENV~N, ENV@{{2026-03-01T03:12:00}} or ENV@{{3.hours.ago}}"
            ))
        };
        let at = if rest.is_empty() {
            At::Latest
        } else if let Some(n) = rest.strip_prefix('#') {
            match n.parse::<u64>() {
                Ok(n) if n >= 1 => At::Index(n),
                _ => return Err(bad("#N needs a snapshot number from 1")),
            }
        } else if let Some(n) = rest.strip_prefix('~') {
            At::Behind(
                n.parse::<u64>()
                    .map_err(|_| bad("~N needs a whole number"))?,
            )
        } else if let Some(t) = rest.strip_prefix("@{").and_then(|t| t.strip_suffix('}')) {
            At::Time(parse_time(t, now_ms).map_err(|e| err(format!("snapshot '{expr}': {e}")))?)
        } else {
            return Err(bad("unrecognised suffix"));
        };
        Ok(SnapshotRef {
            environment: env.to_string(),
            at,
        })
    }
}

/// A point in time: `NOW`, an RFC 3339 or ISO 8601 time (UTC unless it
/// says otherwise; a date alone is its midnight), a number of seconds since
/// the epoch, or `N.unit.ago` with unit seconds, minutes, hours, days,
/// weeks, months or years (singular too). Milliseconds since the epoch.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, ExprError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(rel) = t.strip_suffix(".ago").or_else(|| t.strip_suffix(" ago")) {
        return relative(rel, now_ms).ok_or_else(|| {
            err(format!(
                "'{text}' is not a relative time: use N.unit.ago, e.g. 3.hours.ago or 2.days.ago"
            ))
        });
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = t
            .parse()
            .map_err(|_| err(format!("'{text}' is too large a number of seconds")))?;
        return secs
            .checked_mul(1000)
            .ok_or_else(|| err(format!("'{text}' is too large a number of seconds")));
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    // Without an offset the time is UTC, as Kosli reads it.
    if let Ok(dt) = t.parse::<jiff::civil::DateTime>()
        && let Ok(z) = dt.to_zoned(TimeZone::UTC)
    {
        return Ok(z.timestamp().as_millisecond());
    }
    if let Ok(d) = t.parse::<jiff::civil::Date>()
        && let Ok(z) = d.to_zoned(TimeZone::UTC)
    {
        return Ok(z.timestamp().as_millisecond());
    }
    Err(err(format!(
        "'{text}' is not a time: use 2026-03-01T03:12:00 (UTC), an RFC 3339 time, seconds since the epoch, NOW or N.unit.ago"
    )))
}

fn relative(rel: &str, now_ms: i64) -> Option<i64> {
    let (n, unit) = rel.split_once(['.', ' '])?;
    let n: i64 = n.parse().ok()?;
    if n < 0 {
        return None;
    }
    let span = match unit.trim_end_matches('s') {
        "second" | "sec" => Span::new().try_seconds(n).ok()?,
        "minute" | "min" => Span::new().try_minutes(n).ok()?,
        "hour" => Span::new().try_hours(n).ok()?,
        "day" => Span::new().try_days(n).ok()?,
        "week" => Span::new().try_weeks(n).ok()?,
        "month" => Span::new().try_months(n).ok()?,
        "year" => Span::new().try_years(n).ok()?,
        _ => return None,
    };
    // Calendar units (days, months) are taken back in UTC.
    let now = Timestamp::from_millisecond(now_ms)
        .ok()?
        .to_zoned(TimeZone::UTC);
    Some(now.checked_sub(span).ok()?.timestamp().as_millisecond())
}

/// One end of a snapshot range: `N`, `~N` or `NOW` (the latest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Index(u64),
    Behind(u64),
    Now,
}

impl Bound {
    fn parse(s: &str) -> Option<Bound> {
        if s.eq_ignore_ascii_case("now") {
            Some(Bound::Now)
        } else if let Some(n) = s.strip_prefix('~') {
            n.parse().ok().map(Bound::Behind)
        } else {
            s.parse().ok().filter(|n| *n >= 1).map(Bound::Index)
        }
    }

    /// The snapshot number, given the latest; may be 0 (before the first).
    pub fn resolve(self, latest: u64) -> u64 {
        match self {
            Bound::Index(n) => n,
            Bound::Behind(n) => latest.saturating_sub(n),
            Bound::Now => latest,
        }
    }
}

/// `A..B`, both ends included; either end may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: Option<Bound>,
    pub to: Option<Bound>,
}

impl Range {
    pub fn parse(text: &str) -> Result<Range, ExprError> {
        let bad = || {
            err(format!(
                "'{text}' is not a snapshot range: use A..B with N, ~N or NOW at each end, e.g. 3..NOW or ~5..~1"
            ))
        };
        let (a, b) = text.trim().split_once("..").ok_or_else(bad)?;
        let end = |s: &str| -> Result<Option<Bound>, ExprError> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                Bound::parse(s).map(Some).ok_or_else(bad)
            }
        };
        Ok(Range {
            from: end(a)?,
            to: end(b)?,
        })
    }

    /// First and last snapshot numbers, given the latest.
    pub fn resolve(&self, latest: u64) -> (u64, u64) {
        (
            self.from.map_or(1, |b| b.resolve(latest).max(1)),
            self.to.map_or(latest, |b| b.resolve(latest)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_772_336_000_000; // 2026-03-01T03:33:20Z

    fn at(expr: &str) -> At {
        SnapshotRef::parse(expr, NOW).unwrap().at
    }

    #[test]
    fn snapshot_expressions() {
        assert_eq!(at("prod"), At::Latest);
        assert_eq!(at("prod#12"), At::Index(12));
        assert_eq!(at("prod~0"), At::Behind(0));
        assert_eq!(at("prod~3"), At::Behind(3));
        assert_eq!(
            at("prod@{2026-03-01T03:12:00}"),
            At::Time(NOW - (21 * 60 + 20) * 1000)
        );
        assert_eq!(at("prod@{3.hours.ago}"), At::Time(NOW - 3 * 3600 * 1000));
        assert_eq!(at("prod@{1.day.ago}"), At::Time(NOW - 86_400_000));
        assert_eq!(
            SnapshotRef::parse("my-env.eu_1#2", NOW)
                .unwrap()
                .environment,
            "my-env.eu_1"
        );
        for bad in [
            "prod#0",
            "prod#x",
            "prod~",
            "prod@2026",
            "prod@{x}",
            "#3",
            "-x#1",
        ] {
            assert!(SnapshotRef::parse(bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("NOW", NOW).unwrap(), NOW);
        assert_eq!(
            parse_time("2026-03-01T03:33:20Z", NOW).unwrap(),
            NOW,
            "RFC 3339"
        );
        assert_eq!(parse_time("2026-03-01T04:33:20+01:00", NOW).unwrap(), NOW);
        assert_eq!(parse_time("2026-03-01 03:33:20", NOW).unwrap(), NOW);
        assert_eq!(
            parse_time("2026-03-01", NOW).unwrap(),
            NOW - (3 * 3600 + 33 * 60 + 20) * 1000
        );
        assert_eq!(parse_time("1772336000", NOW).unwrap(), NOW);
        assert_eq!(parse_time("90.minutes.ago", NOW).unwrap(), NOW - 5_400_000);
        // A month back from 1 March is 1 February: 28 days in 2026.
        assert_eq!(
            parse_time("1.month.ago", NOW).unwrap(),
            NOW - 28 * 86_400_000
        );
        assert!(parse_time("3.fortnights.ago", NOW).is_err());
        assert!(parse_time("yesterday", NOW).is_err());
    }

    #[test]
    fn environment_names() {
        assert!(validate_environment_name("prod-eu.1_a").is_ok());
        for bad in ["", "-prod", "pro#d", "pro~d", "pro@d", "pro d", "prod/x"] {
            assert!(validate_environment_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let r = Range::parse("3..NOW").unwrap();
        assert_eq!(r.resolve(10), (3, 10));
        assert_eq!(Range::parse("~5..~1").unwrap().resolve(10), (5, 9));
        assert_eq!(Range::parse("..4").unwrap().resolve(10), (1, 4));
        assert_eq!(Range::parse("~20..").unwrap().resolve(10), (1, 10));
        for bad in ["3", "a..b", "0..2", "3...4"] {
            assert!(Range::parse(bad).is_err(), "{bad}");
        }
    }
}
