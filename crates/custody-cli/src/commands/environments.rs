//! Environments and what ran in them: create, show, list, rename,
//! archive; snapshots, their differences, and the change log.

use std::process::ExitCode;

use anyhow::bail;
use custody_api::{
    Environment, EnvironmentEvent, EnvironmentView, Page, PutEnvironmentRequest, Saved, Snapshot,
    SnapshotDiff, SnapshotSummary,
};
use custody_runtime::{EnvironmentKind, Range, SnapshotRef, validate_environment_name};
use reqwest::Method;

use super::Ctx;
use crate::cli::{CreateEnvironmentArgs, DiffCmd, LogCmd, PagingArgs};
use crate::output::{self, time};

pub async fn create(ctx: Ctx, a: CreateEnvironmentArgs) -> anyhow::Result<ExitCode> {
    validate_environment_name(&a.name)?;
    let logical = a.kind == EnvironmentKind::Logical;
    if !logical && !a.included_environments.is_empty() {
        bail!("--included-environments is only for --type logical");
    }
    for e in &a.included_environments {
        validate_environment_name(e)?;
    }
    let body = PutEnvironmentRequest {
        kind: a.kind,
        description: a.description,
        included_environments: logical.then_some(a.included_environments),
    };
    let url = ctx.org_url(&["environments", &a.name]);
    if ctx.dry_run("PUT", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: Saved<Environment> = ctx.client.send_json(Method::PUT, url, &body).await?;
    output::either(ctx.global.output, &r, |r| {
        let verb = if r.created { "created" } else { "updated" };
        println!("environment '{}' was {verb}", r.value.name);
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn get(ctx: &Ctx, name: &str) -> anyhow::Result<ExitCode> {
    validate_environment_name(name)?;
    let v: EnvironmentView = ctx.client.get(ctx.org_url(&["environments", name])).await?;
    output::either(ctx.global.output, &v, |v| {
        let e = &v.environment;
        let mut pairs = vec![
            ("name", e.name.clone()),
            ("type", e.kind.to_string()),
            ("description", output::opt(&e.description)),
            ("latest snapshot", snapshot_label(e.latest_snapshot)),
            (
                "last reported",
                e.last_reported_at.map_or("never".into(), time),
            ),
            (
                "last changed",
                e.last_changed_at.map_or("never".into(), time),
            ),
        ];
        if !e.included_environments.is_empty() {
            pairs.push(("includes", e.included_environments.join(", ")));
        }
        if let Some(r) = &e.last_report {
            pairs.push((
                "last report",
                format!(
                    "{} from {}: {} artifacts, {} instances",
                    time(r.at),
                    r.reporter.as_deref().unwrap_or("an unnamed reporter"),
                    r.artifacts,
                    r.instances
                ),
            ));
            for w in &r.warnings {
                pairs.push(("  warning", w.clone()));
            }
            for u in &r.unobserved {
                pairs.push(("  not observed", format!("{}: {}", u.scope, u.reason)));
            }
        }
        if e.archived {
            pairs.push(("archived", "yes".into()));
        }
        pairs.push((
            "observed",
            if e.last_report
                .as_ref()
                .is_some_and(|r| !r.unobserved.is_empty())
            {
                "not everything: the last report could not observe some parts".into()
            } else if v.coverage.observed.is_empty() {
                "never".into()
            } else if v.coverage.overdue {
                "not now: the last reporter is late".into()
            } else {
                "yes".into()
            },
        ));
        output::fields(&pairs);
        if !v.coverage.observed.is_empty() {
            println!("\ncoverage:");
            let rows = v
                .coverage
                .observed
                .iter()
                .map(|o| {
                    vec![
                        time(o.from),
                        time(o.to),
                        o.reports.to_string(),
                        if o.interval_s == 0 {
                            "one-shot".into()
                        } else {
                            format!("{}s", o.interval_s)
                        },
                    ]
                })
                .collect();
            output::table(&["FROM", "TO", "REPORTS", "INTERVAL"], rows);
        }
        if !v.coverage.gaps.is_empty() {
            println!("\ngaps (not observed):");
            let rows = v
                .coverage
                .gaps
                .iter()
                .map(|g| {
                    let why = match g.partial.last() {
                        None => "no report in time".to_string(),
                        Some(p) => format!(
                            "{} partial report{}; last missed {}",
                            g.partial.len(),
                            if g.partial.len() == 1 { "" } else { "s" },
                            p.unobserved
                                .iter()
                                .map(|u| format!("{} ({})", u.scope, u.reason))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    vec![time(g.from), g.to.map_or("now".into(), time), why]
                })
                .collect();
            output::table(&["FROM", "TO", "WHY"], rows);
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn snapshot_label(n: u64) -> String {
    if n == 0 {
        "none".into()
    } else {
        format!("#{n}")
    }
}

pub async fn list(ctx: &Ctx, archived: bool) -> anyhow::Result<ExitCode> {
    let mut url = ctx.org_url(&["environments"]);
    if archived {
        url.query_pairs_mut().append_pair("archived", "true");
    }
    let envs: Vec<Environment> = ctx.client.get(url).await?;
    output::either(ctx.global.output, &envs, |envs| {
        // Only --archived lists archived environments, so only then is the
        // column worth its width.
        let rows = envs
            .iter()
            .map(|e| {
                let mut row = vec![e.name.clone(), e.kind.to_string()];
                if archived {
                    row.push(if e.archived { "archived" } else { "active" }.into());
                }
                row.extend([
                    snapshot_label(e.latest_snapshot),
                    e.last_reported_at.map_or("never".into(), time),
                    output::opt(&e.description),
                ]);
                row
            })
            .collect();
        let mut headers = vec!["NAME", "TYPE"];
        if archived {
            headers.push("STATE");
        }
        headers.extend(["LATEST", "LAST REPORTED", "DESCRIPTION"]);
        output::table(&headers, rows);
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Checks an expression here, so a typo is refused before anything is sent.
fn check_expression(expr: &str) -> anyhow::Result<SnapshotRef> {
    Ok(SnapshotRef::parse(
        expr,
        jiff::Timestamp::now().as_millisecond(),
    )?)
}

pub async fn get_snapshot(ctx: &Ctx, expr: &str) -> anyhow::Result<ExitCode> {
    let r = check_expression(expr)?;
    let mut url = ctx.org_url(&["environments", &r.environment, "snapshot"]);
    let at = &expr[r.environment.len()..];
    if !at.is_empty() {
        url.query_pairs_mut().append_pair("at", at);
    }
    let s: Snapshot = ctx.client.get(url).await?;
    output::either(ctx.global.output, &s, print_snapshot)?;
    Ok(ExitCode::SUCCESS)
}

fn print_snapshot(s: &Snapshot) {
    if s.index == 0 {
        println!("environment '{}' had no snapshot then", s.environment);
        return;
    }
    output::fields(&[
        ("environment", s.environment.clone()),
        ("snapshot", format!("#{}", s.index)),
        ("taken", time(s.timestamp)),
        (
            "replaced",
            s.replaced_at.map_or("no (current)".into(), time),
        ),
        ("artifacts", s.artifacts.len().to_string()),
        ("unknown", s.unknown.to_string()),
    ]);
    match &s.compliance {
        Some(c) => super::controls::print_compliance(c),
        None => println!("compliance   UNKNOWN (no policy judged this snapshot)"),
    }
    if !s.members.is_empty() {
        let m: Vec<String> = s
            .members
            .iter()
            .map(|m| format!("{}#{}", m.environment, m.index))
            .collect();
        println!("members      {}", m.join(", "));
    }
    // The report could not see everything: this is only what it saw.
    for u in &s.unobserved {
        println!("not observed {}: {}", u.scope, u.reason);
    }
    println!();
    let rows = s
        .artifacts
        .iter()
        .map(|a| {
            let origin = match a.provenance.first() {
                None => "UNKNOWN".to_string(),
                Some(p) => format!(
                    "{}/{} ({})",
                    p.flow,
                    p.trail,
                    if p.compliant {
                        "compliant"
                    } else {
                        "non-compliant"
                    }
                ),
            };
            vec![
                a.name.clone(),
                a.fingerprint
                    .as_deref()
                    .map_or("-".into(), |f| f[..12.min(f.len())].to_string()),
                a.instance_count.to_string(),
                format!("#{} {}", a.since_snapshot, time(a.running_since)),
                origin,
            ]
        })
        .collect();
    output::table(
        &[
            "ARTIFACT",
            "FINGERPRINT",
            "INSTANCES",
            "RUNNING SINCE",
            "PROVENANCE",
        ],
        rows,
    );
    for c in &s.stopped {
        println!("stopped: {} ({})", c.name, c.description);
    }
}

pub async fn list_snapshots(
    ctx: &Ctx,
    env: &str,
    interval: Option<&str>,
    paging: PagingArgs,
) -> anyhow::Result<ExitCode> {
    validate_environment_name(env)?;
    if let Some(i) = interval {
        Range::parse(i)?;
    }
    let mut url = ctx.org_url(&["environments", env, "snapshots"]);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("page", &paging.page.to_string());
        q.append_pair("per_page", &paging.page_limit.to_string());
        if let Some(i) = interval {
            q.append_pair("interval", i);
        }
    }
    let page: Page<SnapshotSummary> = ctx.client.get(url).await?;
    output::either(ctx.global.output, &page, |p| {
        let rows = p
            .items
            .iter()
            .map(|s| {
                vec![
                    format!("#{}", s.index),
                    time(s.timestamp),
                    s.replaced_at.map_or("now".into(), time),
                    s.artifacts.to_string(),
                    s.instances.to_string(),
                    s.changes.to_string(),
                ]
            })
            .collect();
        output::table(
            &[
                "SNAPSHOT",
                "FROM",
                "TO",
                "ARTIFACTS",
                "INSTANCES",
                "CHANGES",
            ],
            rows,
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn diff(ctx: Ctx, cmd: DiffCmd) -> anyhow::Result<ExitCode> {
    let DiffCmd::Snapshots {
        first,
        second,
        show_unchanged,
    } = cmd;
    check_expression(&first)?;
    check_expression(&second)?;
    let mut url = ctx.org_url(&["snapshot-diff"]);
    url.query_pairs_mut()
        .append_pair("first", &first)
        .append_pair("second", &second)
        .append_pair("unchanged", if show_unchanged { "true" } else { "false" });
    let d: SnapshotDiff = ctx.client.get(url).await?;
    output::either(ctx.global.output, &d, |d| {
        let label = |s: &custody_api::SnapshotId| format!("{}#{}", s.environment, s.index);
        let (a, b) = (label(&d.first), label(&d.second));
        let section = |title: String, entries: &[custody_api::DiffEntry]| {
            if entries.is_empty() {
                return;
            }
            println!("{title}:");
            let rows = entries
                .iter()
                .map(|e| {
                    vec![
                        e.name.clone(),
                        e.fingerprint
                            .as_deref()
                            .map_or("-".into(), |f| f[..12.min(f.len())].to_string()),
                        e.first_instances.to_string(),
                        e.second_instances.to_string(),
                        if e.flows.is_empty() {
                            "UNKNOWN".into()
                        } else {
                            e.flows.join(", ")
                        },
                    ]
                })
                .collect();
            output::table(&["ARTIFACT", "FINGERPRINT", &a, &b, "FLOWS"], rows);
        };
        if d.only_in_first.is_empty() && d.only_in_second.is_empty() && d.scaled.is_empty() {
            println!("{a} and {b} run the same artifacts");
        }
        section(format!("only in {a}"), &d.only_in_first);
        section(format!("only in {b}"), &d.only_in_second);
        section("scaled".into(), &d.scaled);
        section("unchanged".into(), &d.unchanged);
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn log(ctx: Ctx, cmd: LogCmd) -> anyhow::Result<ExitCode> {
    let LogCmd::Environment {
        name,
        since,
        until,
        paging,
    } = cmd;
    validate_environment_name(&name)?;
    let now = jiff::Timestamp::now().as_millisecond();
    for t in [&since, &until].into_iter().flatten() {
        custody_runtime::parse_time(t, now)?;
    }
    let mut url = ctx.org_url(&["environments", &name, "events"]);
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("page", &paging.page.to_string());
        q.append_pair("per_page", &paging.page_limit.to_string());
        if let Some(s) = &since {
            q.append_pair("since", s);
        }
        if let Some(u) = &until {
            q.append_pair("until", u);
        }
    }
    let page: Page<EnvironmentEvent> = ctx.client.get(url).await?;
    output::either(ctx.global.output, &page, |p| {
        let rows = p
            .items
            .iter()
            .map(|e| {
                vec![
                    format!("{}#{}", e.environment, e.snapshot),
                    time(e.timestamp),
                    e.name.clone(),
                    e.description.clone(),
                    if e.flows.is_empty() {
                        "UNKNOWN".into()
                    } else {
                        e.flows.join(", ")
                    },
                    super::flows::by(&e.reported_by),
                ]
            })
            .collect();
        output::table(
            &[
                "SNAPSHOT",
                "TIME",
                "ARTIFACT",
                "CHANGE",
                "FLOWS",
                "REPORTED BY",
            ],
            rows,
        );
        println!(
            "page {} of {} ({} changes)",
            p.page,
            p.total.div_ceil(u64::from(p.per_page.max(1))).max(1),
            p.total
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn get_dora(
    ctx: &Ctx,
    env: &str,
    since: &str,
    until: Option<&str>,
    failure_window_hours: u32,
) -> anyhow::Result<ExitCode> {
    let mut url = ctx.org_url(&["environments", env, "dora"]);
    url.query_pairs_mut()
        .append_pair("since", since)
        .append_pair("failure_window_hours", &failure_window_hours.to_string());
    if let Some(u) = until {
        url.query_pairs_mut().append_pair("until", u);
    }
    let d: custody_runtime::dora::Dora = ctx.client.get(url).await?;
    output::either(ctx.global.output, &d, print_dora)?;
    Ok(ExitCode::SUCCESS)
}

/// A duration for people: "3 h 20 min", "2 d 4 h".
fn span(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, h) => format!("{h} h {m} min"),
        (d, h) => format!("{d} d {h} h"),
    }
}

fn print_dora(d: &custody_runtime::dora::Dora) {
    output::fields(&[
        ("environment", d.environment.clone()),
        ("window", format!("{} to {}", time(d.since), time(d.until))),
        (
            "deployments",
            format!("{} ({:.2} per day)", d.deployments, d.deployments_per_day),
        ),
        (
            "lead time",
            format!(
                "median {}, 90th percentile {} (of {} with a known commit)",
                span(d.lead_time.median_ms),
                span(d.lead_time.p90_ms),
                d.lead_time.count
            ),
        ),
        (
            "change failure",
            match d.change_failure_rate {
                Some(r) => format!(
                    "{:.1}% ({} of {} deployments, failure window {} h)",
                    r * 100.0,
                    d.failed_deployments,
                    d.deployments,
                    d.failure_window_ms / 3_600_000
                ),
                None => "- (no deployment)".into(),
            },
        ),
        (
            "time to restore",
            format!(
                "median {}, 90th percentile {} ({} not restored yet)",
                span(d.time_to_restore.median_ms),
                span(d.time_to_restore.p90_ms),
                d.unrestored
            ),
        ),
    ]);
    if d.truncated {
        println!("warning: the window holds more runs than are read; choose a shorter one");
    }
    let failed: Vec<Vec<String>> = d
        .recent
        .iter()
        .filter(|x| x.failure.is_some())
        .map(|x| {
            vec![
                time(x.at),
                x.name.clone(),
                x.failure.clone().unwrap_or_default(),
                span(x.restored_after_ms),
            ]
        })
        .collect();
    if !failed.is_empty() {
        println!();
        output::table(
            &["DEPLOYED", "NAME", "FAILED BECAUSE", "RESTORED AFTER"],
            failed,
        );
    }
}
