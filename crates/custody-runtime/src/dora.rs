//! DORA's four key metrics, from what was observed running — not from
//! what pipelines say they deployed.
//!
//! The definitions (also on the web UI's page and in docs/runtime.md):
//! - A **service** is an artifact name without its tag or digest
//!   (`registry/payments-api:2` → `registry/payments-api`); names without
//!   a tag (functions, paths) are their own service.
//! - A **version** of a service is a stretch of time during which one
//!   fingerprint ran under it; rescaling does not end a version.
//! - A **deployment** is the start of a version whose fingerprint is not
//!   the one that ran under the service before it (a restart of the same
//!   fingerprint, after a crash or a gap, is not one). The first version
//!   ever seen is a deployment too, when it starts inside the window.
//! - **Deployment frequency**: deployments in the window, per day.
//! - **Lead time for changes**: from the commit (its git timestamp, as the
//!   trail that built the fingerprint reported it) to the deployment,
//!   median and 90th percentile over deployments whose commit is known.
//! - **Change failure rate**: the share of deployments that failed. A
//!   deployment failed when, within the failure window after it, the
//!   environment was running something non-compliant because of it (the
//!   new version is unknown or its provenance non-compliant), or the
//!   service rolled back to the fingerprint it replaced.
//! - **Time to restore**: for each failed deployment, how long the failing
//!   version ran — until it was replaced (the fix or the rollback) or
//!   stopped; median. A failing version still running is counted as open.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const DAY_MS: f64 = 86_400_000.0;
/// Deployments listed in an answer at most (the newest).
pub const LISTED: usize = 500;

/// A stretch of time one fingerprint ran under one name with one count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub name: String,
    /// Empty when the platform gave none.
    pub fingerprint: String,
    pub from: i64,
    /// None while it still runs.
    pub to: Option<i64>,
}

/// What is known about a fingerprint from its provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Known {
    /// Some trail reported it and it is compliant there.
    pub compliant: bool,
    /// Some trail reported it.
    pub known: bool,
    /// The commit's time, ms, when a trail said.
    pub commit_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Spread {
    /// How many values the figures are of.
    pub count: u64,
    #[serde(default)]
    pub median_ms: Option<i64>,
    #[serde(default)]
    pub p90_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    pub service: String,
    /// The name it ran under.
    pub name: String,
    pub fingerprint: String,
    pub at: i64,
    /// The fingerprint it replaced; absent for a service's first version.
    #[serde(default)]
    pub replaced: Option<String>,
    #[serde(default)]
    pub lead_time_ms: Option<i64>,
    /// Why it counts as failed, when it does.
    #[serde(default)]
    pub failure: Option<String>,
    /// For a failed deployment: how long the failing version ran; absent
    /// while it still runs.
    #[serde(default)]
    pub restored_after_ms: Option<i64>,
}

/// The four metrics of one environment over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Dora {
    pub environment: String,
    pub since: i64,
    pub until: i64,
    pub failure_window_ms: i64,
    pub deployments: u64,
    pub deployments_per_day: f64,
    pub lead_time: Spread,
    pub failed_deployments: u64,
    /// Failed deployments / deployments; absent with no deployment.
    #[serde(default)]
    pub change_failure_rate: Option<f64>,
    pub time_to_restore: Spread,
    /// Failed deployments whose failing version still runs.
    pub unrestored: u64,
    /// The newest deployments, at most [`LISTED`].
    pub recent: Vec<Deployment>,
    /// The history read was cut short (too many runs): the figures are of
    /// what was read. Choose a shorter window.
    #[serde(default)]
    pub truncated: bool,
}

/// `registry/payments-api:2` → `registry/payments-api`; `app@sha256:…` →
/// `app`; a port in a registry host (`host:5000/app`) is kept.
pub fn service(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].rfind(':') {
        Some(i) => &name[..last + i],
        None => name,
    }
}

/// One fingerprint's time under a service.
#[derive(Debug, Clone)]
struct Version {
    name: String,
    fingerprint: String,
    from: i64,
    to: Option<i64>,
}

/// The versions of each service, oldest first: runs of one fingerprint
/// that touch or overlap (a rescale ends one run at the snapshot where the
/// next starts) are merged.
fn versions(runs: &[Run]) -> BTreeMap<&str, Vec<Version>> {
    let mut by_service: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        by_service.entry(service(&r.name)).or_default().push(r);
    }
    let mut out = BTreeMap::new();
    for (svc, mut rs) in by_service {
        rs.sort_by_key(|r| (r.from, r.to.unwrap_or(i64::MAX)));
        let mut vs: Vec<Version> = vec![];
        for r in rs {
            // A run continues an open-ended version of its fingerprint that
            // was still running (or had just stopped) when it began.
            let cont = vs
                .iter_mut()
                .rev()
                .find(|v| v.fingerprint == r.fingerprint && v.to.is_none_or(|t| t >= r.from));
            match cont {
                Some(v) => {
                    v.to = match (v.to, r.to) {
                        (None, _) | (_, None) => None,
                        (Some(a), Some(b)) => Some(a.max(b)),
                    };
                }
                None => vs.push(Version {
                    name: r.name.clone(),
                    fingerprint: r.fingerprint.clone(),
                    from: r.from,
                    to: r.to,
                }),
            }
        }
        out.insert(svc, vs);
    }
    out
}

fn spread(mut v: Vec<i64>) -> Spread {
    v.sort_unstable();
    let at = |q: f64| -> Option<i64> {
        if v.is_empty() {
            return None;
        }
        // Nearest rank.
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    };
    Spread {
        count: v.len() as u64,
        median_ms: at(0.5),
        p90_ms: at(0.9),
    }
}

/// The metrics of `environment` over [since, until], from the runs that
/// overlap [since − failure window, until + failure window] (earlier runs
/// tell what a deployment replaced; later ones whether it failed).
pub fn compute(
    environment: &str,
    runs: &[Run],
    since: i64,
    until: i64,
    failure_window_ms: i64,
    known: impl Fn(&str) -> Known,
) -> Dora {
    let mut deployments: Vec<Deployment> = vec![];
    for (svc, vs) in versions(runs) {
        for (i, v) in vs.iter().enumerate() {
            if v.from < since || v.from > until {
                continue;
            }
            // What ran under the service before: the version that started
            // last before this one.
            let before = vs[..i].iter().rev().find(|p| p.from < v.from);
            if before.is_some_and(|p| p.fingerprint == v.fingerprint) {
                continue;
            }
            let k = known(&v.fingerprint);
            let next = vs[i + 1..]
                .iter()
                .find(|n| n.fingerprint != v.fingerprint && n.from > v.from);
            let within = |t: i64| t - v.from <= failure_window_ms;
            let failure = if v.fingerprint.is_empty() || !k.known {
                Some("it runs an artifact no flow knows".to_string())
            } else if !k.compliant {
                Some("its provenance is not compliant".to_string())
            } else {
                match (next, before) {
                    (Some(n), Some(b)) if within(n.from) && n.fingerprint == b.fingerprint => {
                        Some("rolled back to the version it replaced".to_string())
                    }
                    _ => None,
                }
            };
            let restored_after_ms = failure.as_ref().and(v.to).map(|t| t - v.from);
            deployments.push(Deployment {
                service: svc.to_string(),
                name: v.name.clone(),
                fingerprint: v.fingerprint.clone(),
                at: v.from,
                replaced: before.map(|b| b.fingerprint.clone()),
                lead_time_ms: k.commit_at.map(|c| v.from - c).filter(|l| *l >= 0),
                failure,
                restored_after_ms,
            });
        }
    }
    deployments.sort_by(|a, b| (a.at, &a.service).cmp(&(b.at, &b.service)));
    let n = deployments.len() as u64;
    let failed: Vec<&Deployment> = deployments.iter().filter(|d| d.failure.is_some()).collect();
    let days = ((until - since).max(1) as f64) / DAY_MS;
    let dora = Dora {
        environment: environment.to_string(),
        since,
        until,
        failure_window_ms,
        deployments: n,
        deployments_per_day: n as f64 / days,
        lead_time: spread(deployments.iter().filter_map(|d| d.lead_time_ms).collect()),
        failed_deployments: failed.len() as u64,
        change_failure_rate: (n > 0).then(|| failed.len() as f64 / n as f64),
        time_to_restore: spread(failed.iter().filter_map(|d| d.restored_after_ms).collect()),
        unrestored: failed
            .iter()
            .filter(|d| d.restored_after_ms.is_none())
            .count() as u64,
        recent: vec![],
        truncated: false,
    };
    let skip = deployments.len().saturating_sub(LISTED);
    Dora {
        recent: deployments.into_iter().skip(skip).rev().collect(),
        ..dora
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;

    fn run(name: &str, fp: &str, from: i64, to: Option<i64>) -> Run {
        Run {
            name: name.into(),
            fingerprint: fp.into(),
            from,
            to,
        }
    }

    fn good(fp: &str) -> Known {
        Known {
            compliant: true,
            known: true,
            commit_at: (fp != "nocommit").then_some(0),
        }
    }

    #[test]
    fn services_drop_tags_and_digests_but_not_ports() {
        assert_eq!(service("registry/payments-api:2"), "registry/payments-api");
        assert_eq!(service("host:5000/app:1.2"), "host:5000/app");
        assert_eq!(service("app@sha256:abcd"), "app");
        assert_eq!(service("my-function"), "my-function");
        assert_eq!(service("host:5000/app"), "host:5000/app");
    }

    #[test]
    fn deploys_are_new_fingerprints_and_rescales_are_not() {
        let runs = vec![
            run("api:1", "a", D, Some(2 * D)),
            // Rescaled: same fingerprint, a new run at once.
            run("api:1", "a", 2 * D, Some(3 * D)),
            run("api:2", "b", 3 * D, None),
            run("web:1", "w", 0, None),
        ];
        let m = compute("prod", &runs, 0, 10 * D, D, good);
        // api:1 at D, api:2 at 3D, web at 0; the rescale is not one.
        assert_eq!(m.deployments, 3);
        assert!((m.deployments_per_day - 0.3).abs() < 1e-9);
        let b = m.recent.iter().find(|d| d.fingerprint == "b").unwrap();
        assert_eq!(b.replaced.as_deref(), Some("a"));
        assert_eq!(b.lead_time_ms, Some(3 * D));
        assert_eq!(m.change_failure_rate, Some(0.0));
    }

    #[test]
    fn a_rollback_fails_the_change_and_restores_it() {
        let runs = vec![
            run("api:1", "a", 0, Some(5 * D)),
            run("api:2", "b", 5 * D, Some(5 * D + 2 * H)),
            run("api:1", "a", 5 * D + 2 * H, None),
        ];
        let m = compute("prod", &runs, D, 10 * D, D, good);
        // Deployments in the window: b, then a again (the rollback).
        assert_eq!(m.deployments, 2);
        let b = m.recent.iter().find(|d| d.fingerprint == "b").unwrap();
        assert_eq!(
            b.failure.as_deref(),
            Some("rolled back to the version it replaced")
        );
        assert_eq!(b.restored_after_ms, Some(2 * H));
        assert_eq!(m.failed_deployments, 1);
        assert_eq!(m.change_failure_rate, Some(0.5));
        assert_eq!(m.time_to_restore.median_ms, Some(2 * H));
        assert_eq!(m.unrestored, 0);
    }

    #[test]
    fn a_restart_of_the_same_fingerprint_is_no_deployment() {
        let runs = vec![
            run("api:1", "a", 0, Some(D)),
            // Gone for an hour (crashed, or not observed), then back.
            run("api:1", "a", D + H, None),
        ];
        let m = compute("prod", &runs, 0, 10 * D, D, good);
        assert_eq!(m.deployments, 1);
    }

    #[test]
    fn a_rollback_after_the_window_is_not_a_failure() {
        let runs = vec![
            run("api:1", "a", 0, Some(D)),
            run("api:2", "b", D, Some(3 * D)),
            run("api:1", "a", 3 * D, None),
        ];
        let m = compute("prod", &runs, D, 10 * D, D, good);
        assert_eq!(m.failed_deployments, 0);
    }

    #[test]
    fn unknown_and_non_compliant_versions_fail_until_replaced() {
        let runs = vec![
            run("miner", "x", 2 * H, None),
            run("api:1", "a", 0, Some(D)),
            run("api:2", "bad", D, Some(D + 3 * H)),
            run("api:3", "c", D + 3 * H, None),
        ];
        let known = |fp: &str| match fp {
            "x" => Known::default(),
            "bad" => Known {
                known: true,
                ..Known::default()
            },
            other => good(other),
        };
        let m = compute("prod", &runs, H, 10 * D, D, known);
        let miner = m.recent.iter().find(|d| d.fingerprint == "x").unwrap();
        assert_eq!(
            miner.failure.as_deref(),
            Some("it runs an artifact no flow knows")
        );
        assert_eq!(miner.restored_after_ms, None);
        let bad = m.recent.iter().find(|d| d.fingerprint == "bad").unwrap();
        assert_eq!(
            bad.failure.as_deref(),
            Some("its provenance is not compliant")
        );
        assert_eq!(bad.restored_after_ms, Some(3 * H));
        assert_eq!(m.unrestored, 1);
        // The first version (a, at 0) began before the window.
        assert_eq!(m.deployments, 3);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = spread(vec![5, 1, 4, 2, 3]);
        assert_eq!((s.count, s.median_ms, s.p90_ms), (5, Some(3), Some(5)));
        assert_eq!(spread(vec![]).median_ms, None);
    }
}
