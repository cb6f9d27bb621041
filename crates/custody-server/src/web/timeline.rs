//! The environment timeline, drawn as SVG on the server: one lane per
//! service (an artifact name without its tag), a bar per run, hatched red when its provenance is not
//! compliant and hatched amber when nothing knows it, shaded where the
//! environment was not observed, and a tick per snapshot. Pure: it takes
//! the API's `Timeline` and gives markup.

use std::collections::BTreeMap;

use custody_api::{RuntimeOccurrence, Timeline};
use custody_runtime::dora::service;
use maud::{Markup, html};

use super::time;

const WIDTH: f64 = 1000.0;
const LABEL: f64 = 210.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 34.0;
const LANE: f64 = 24.0;
const BAR: f64 = 14.0;
/// Lanes drawn at most; the table under the chart lists every run.
pub const MAX_LANES: usize = 60;

/// What a run's bar says about it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Standing {
    Known,
    NonCompliant,
    Unknown,
}

pub fn standing(t: &Timeline, r: &RuntimeOccurrence) -> Standing {
    if r.fingerprint.is_empty() || t.unknown.binary_search(&r.fingerprint).is_ok() {
        Standing::Unknown
    } else if t.non_compliant.binary_search(&r.fingerprint).is_ok() {
        Standing::NonCompliant
    } else {
        Standing::Known
    }
}

struct Scale {
    from: i64,
    to: i64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        let t = t.clamp(self.from, self.to);
        let span = (self.to - self.from).max(1) as f64;
        LABEL + (t - self.from) as f64 / span * (WIDTH - LABEL - RIGHT)
    }
}

/// Round times for the axis: about six, on a step people read easily.
fn axis_ticks(from: i64, to: i64) -> Vec<i64> {
    const STEPS: [i64; 12] = [
        60_000,
        300_000,
        900_000,
        1_800_000,
        3_600_000,
        3 * 3_600_000,
        6 * 3_600_000,
        12 * 3_600_000,
        86_400_000,
        2 * 86_400_000,
        7 * 86_400_000,
        30 * 86_400_000,
    ];
    let span = (to - from).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 7)
        .unwrap_or(span / 6 + 1);
    let mut t = from.div_euclid(step) * step;
    if t < from {
        t += step;
    }
    let mut out = vec![];
    while t <= to && out.len() < 16 {
        out.push(t);
        t += step;
    }
    out
}

fn tick_label(t: i64, span: i64) -> String {
    let full = time::utc(t);
    // "2026-03-01 03:12:00 UTC": the date for long windows, the clock for short.
    if span > 2 * 86_400_000 {
        full.get(5..10).unwrap_or(&full).to_string()
    } else {
        full.get(11..16).unwrap_or(&full).to_string()
    }
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart, with its text alternative (title and description); the
/// page lists the runs in a table as well.
pub fn chart(t: &Timeline, env: &str) -> Markup {
    let scale = Scale {
        from: t.from,
        to: t.to,
    };
    // A lane per service (the name without its tag, as DORA counts
    // deployments: a new version continues its service's lane), and per
    // environment for a logical one; in the order they first ran.
    let mut lanes: BTreeMap<(String, String), Vec<&RuntimeOccurrence>> = BTreeMap::new();
    for r in &t.runs {
        lanes
            .entry((r.environment.clone(), service(&r.name).to_string()))
            .or_default()
            .push(r);
    }
    let mut order: Vec<_> = lanes.into_iter().collect();
    order.sort_by_key(|(_, runs)| runs.iter().map(|r| r.from).min().unwrap_or(0));
    let hidden = order.len().saturating_sub(MAX_LANES);
    order.truncate(MAX_LANES);
    let logical = t.runs.iter().any(|r| r.environment != env);
    let height = TOP + LANE * order.len().max(1) as f64 + 8.0;
    let span = t.to - t.from;
    let (nc, unk) = t
        .runs
        .iter()
        .fold((0, 0), |(nc, unk), r| match standing(t, r) {
            Standing::NonCompliant => (nc + 1, unk),
            Standing::Unknown => (nc, unk + 1),
            Standing::Known => (nc, unk),
        });
    let desc = format!(
        "{} runs of {} services from {} to {}; {} not compliant, {} unknown; {} snapshots; {} periods not observed.",
        t.runs.len(),
        order.len() + hidden,
        time::utc(t.from),
        time::utc(t.to),
        nc,
        unk,
        t.snapshots.len(),
        t.gaps.len()
    );
    let plot_bottom = height - 8.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (WIDTH) " " (fmt(height))}
            role="img" aria-labelledby="tl-title tl-desc" font-family="system-ui, sans-serif" font-size="12" {
            title id="tl-title" { "Timeline of " (env) }
            desc id="tl-desc" { (desc) }
            defs {
                pattern id="hatch-nc" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)" {
                    rect width="8" height="8" fill="#f4b4b4" {}
                    rect width="4" height="8" fill="#c62828" {}
                }
                pattern id="hatch-unk" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)" {
                    rect width="8" height="8" fill="#ffe28a" {}
                    rect width="4" height="8" fill="#8a6d00" {}
                }
            }
            // Periods not observed, behind everything.
            @for g in &t.gaps {
                @let (x1, x2) = (scale.x(g.from), scale.x(g.to.unwrap_or(t.to)));
                rect x=(fmt(x1)) y=(fmt(TOP - 6.0)) width=(fmt((x2 - x1).max(1.5))) height=(fmt(plot_bottom - TOP + 6.0))
                    fill="#e9e3f5" {
                    title { "Not observed " (time::utc(g.from)) " to " (time::utc(g.to.unwrap_or(t.to))) }
                }
            }
            // Axis.
            @for tick in axis_ticks(t.from, t.to) {
                @let x = scale.x(tick);
                line x1=(fmt(x)) x2=(fmt(x)) y1=(fmt(TOP - 8.0)) y2=(fmt(plot_bottom)) stroke="#d0d7de" {}
                text x=(fmt(x)) y="12" text-anchor="middle" fill="#57606a" { (tick_label(tick, span)) }
            }
            // A tick per snapshot.
            @for s in &t.snapshots {
                @let x = scale.x(s.timestamp);
                line x1=(fmt(x)) x2=(fmt(x)) y1="17" y2="25" stroke="#1b1f24" stroke-width="1.5" {
                    title { "Snapshot #" (s.index) " at " (time::utc(s.timestamp)) ": " (s.changes) " changes" }
                }
            }
            @for (i, ((lane_env, name), runs)) in order.iter().enumerate() {
                @let y = TOP + LANE * i as f64;
                @let label = if logical { format!("{lane_env}: {name}") } else { name.clone() };
                text x="6" y=(fmt(y + BAR - 2.0)) fill="#1b1f24" {
                    (shorten(&label, 27))
                    title { (label) }
                }
                @for r in runs {
                    @let x1 = scale.x(r.from);
                    @let x2 = scale.x(r.to.unwrap_or(t.to));
                    @let fill = match standing(t, r) {
                        Standing::Known => "#4f7bbf",
                        Standing::NonCompliant => "url(#hatch-nc)",
                        Standing::Unknown => "url(#hatch-unk)",
                    };
                    rect x=(fmt(x1)) y=(fmt(y)) width=(fmt((x2 - x1).max(4.0))) height=(fmt(BAR)) rx="2"
                        fill=(fill) stroke="#1b1f24" stroke-width="0.6" {
                        title { (run_title(t, r)) }
                    }
                }
            }
            @if order.is_empty() {
                text x=(fmt(LABEL)) y=(fmt(TOP + 12.0)) fill="#57606a" { "Nothing ran in this window." }
            }
        }
        @if hidden > 0 {
            p.note { (hidden) " more services ran in this window than the chart draws; the table below lists every run." }
        }
        ul.legend aria-label="Legend" {
            li { span class="swatch run" {} "Running, with provenance" }
            li { span class="swatch nc" {} "Provenance not compliant" }
            li { span class="swatch unk" {} "Unknown: no flow knows it" }
            li { span class="swatch gap" {} "Not observed (no report in time)" }
            li { "Ticks along the top: snapshots" }
        }
    }
}

fn run_title(t: &Timeline, r: &RuntimeOccurrence) -> String {
    let what = match standing(t, r) {
        Standing::Known => "",
        Standing::NonCompliant => " — NOT COMPLIANT",
        Standing::Unknown => " — UNKNOWN",
    };
    let fp = if r.fingerprint.is_empty() {
        "no fingerprint".to_string()
    } else {
        r.fingerprint.chars().take(12).collect()
    };
    format!(
        "{} ({fp}), {} instance(s){what}: {} to {}",
        r.name,
        r.instances,
        time::utc(r.from),
        r.to.map_or("still running".to_string(), time::utc)
    )
}

/// A lane label that fits: the end of a long name, where image references
/// differ (`…/payments-api:2`), not the registry they share.
fn shorten(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len <= n {
        s.to_string()
    } else {
        let tail: String = s.chars().skip(len - (n - 1)).collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_api::Gap;

    fn run(name: &str, fp: &str, from: i64, to: Option<i64>) -> RuntimeOccurrence {
        RuntimeOccurrence {
            environment: "prod".into(),
            name: name.into(),
            fingerprint: fp.into(),
            instances: 1,
            from,
            to,
            first_snapshot: 1,
            last_snapshot: None,
        }
    }

    fn timeline() -> Timeline {
        Timeline {
            environment: "prod".into(),
            from: 0,
            to: 86_400_000,
            runs: vec![
                run("api", "aa", 0, Some(40_000_000)),
                run("api", "bb", 40_000_000, None),
                run("miner<script>", "cc", 50_000_000, None),
            ],
            snapshots: vec![],
            truncated: false,
            unknown: vec!["cc".into()],
            non_compliant: vec!["bb".into()],
            gaps: vec![Gap {
                from: 10_000_000,
                to: Some(12_000_000),
                partial: vec![],
            }],
        }
    }

    #[test]
    fn bars_say_what_they_are_and_names_are_escaped() {
        let t = timeline();
        let svg = chart(&t, "prod").into_string();
        assert_eq!(svg.matches("url(#hatch-nc)").count(), 1);
        assert_eq!(svg.matches("url(#hatch-unk)").count(), 1);
        assert!(svg.contains("miner&lt;script&gt;"));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("Not observed"));
        assert!(svg.contains("3 runs of 2 services"));
    }

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(
            shorten("registry.example/payments-api:2", 16),
            "…/payments-api:2"
        );
        assert_eq!(shorten("api", 16), "api");
    }

    #[test]
    fn bars_stay_inside_the_plot() {
        let s = Scale { from: 100, to: 200 };
        assert_eq!(s.x(0), LABEL);
        assert_eq!(s.x(500), WIDTH - RIGHT);
    }

    #[test]
    fn axis_ticks_are_round_and_few() {
        let day = 86_400_000;
        let t = axis_ticks(5 * day + 1234, 6 * day + 1234);
        assert!(t.len() >= 4 && t.len() <= 8, "{t:?}");
        assert!(t.iter().all(|x| x % 3_600_000 == 0));
    }
}
