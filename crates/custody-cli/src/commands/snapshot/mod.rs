//! Reporters: observe what runs and report it, once or continuously.
//!
//! Each source (Docker, Kubernetes, ECS, Lambda, S3, paths) knows how to
//! list what runs and, where the platform can tell, how to wait for a
//! change (Docker events, a Kubernetes watch, inotify). The loop here does
//! the rest the same way for all of them: `--auto-environment`, sending,
//! printing, and in `--watch` mode a report on every change plus a
//! heartbeat every `--interval`, retrying transient failures with backoff
//! and never exiting on one.

#[cfg(feature = "aws")]
mod aws;
mod docker;
mod k8s;
mod paths;
#[cfg(feature = "aws")]
mod s3;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use custody_api::{
    Environment, EnvironmentView, ObservedArtifact, PutEnvironmentRequest, Report, ReportOutcome,
    Saved,
};
use custody_client::ClientError;
use custody_runtime::EnvironmentKind;
use reqwest::Method;

use super::Ctx;
use crate::cli::{ReporterArgs, SnapshotCmd};
use crate::output;

/// What one look at a platform found for one environment.
#[derive(Debug, Clone)]
pub struct Observation {
    pub environment: String,
    pub artifacts: Vec<ObservedArtifact>,
    /// What the reporter noticed; reported, never fatal.
    pub warnings: Vec<String>,
    /// What it could not observe: the report is then partial.
    pub unobserved: Vec<custody_runtime::Unobserved>,
}

/// A platform a reporter reads.
pub trait Source {
    fn kind(&self) -> EnvironmentKind;
    /// The environments it reports to.
    fn environments(&self) -> Vec<String>;
    /// Lists what runs now.
    async fn observe(&mut self) -> anyhow::Result<Vec<Observation>>;
    /// Returns when something may have changed. A source the platform does
    /// not notify about never returns; the interval polls it instead.
    async fn changed(&mut self);
    /// The last observation reached the server: changes held back until
    /// it did may now be applied.
    fn reported(&mut self) {}
}

pub async fn run(ctx: Ctx, cmd: SnapshotCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SnapshotCmd::Docker {
            environment,
            reporter,
        } => {
            let source = docker::Docker::connect(environment, reporter.watch).await?;
            drive(ctx, source, reporter).await
        }
        SnapshotCmd::Paths {
            environment,
            paths_file,
            dir_algorithm,
            reporter,
        } => {
            let source =
                paths::Paths::from_file(environment, &paths_file, dir_algorithm, reporter.watch)?;
            drive(ctx, source, reporter).await
        }
        SnapshotCmd::Path {
            environment,
            path,
            name,
            exclude,
            dir_algorithm,
            reporter,
        } => {
            let source = paths::Paths::single(
                environment,
                name,
                path,
                exclude,
                dir_algorithm,
                reporter.watch,
            )?;
            drive(ctx, source, reporter).await
        }
        SnapshotCmd::K8s(a) => {
            let source = k8s::K8s::connect(&a).await?;
            drive(ctx, source, a.reporter).await
        }
        #[cfg(feature = "aws")]
        SnapshotCmd::Ecs(a) => {
            let source = aws::Ecs::connect(&a).await?;
            drive(ctx, source, a.reporter).await
        }
        #[cfg(feature = "aws")]
        SnapshotCmd::Lambda(a) => {
            let source = aws::Lambda::connect(&a).await?;
            drive(ctx, source, a.reporter).await
        }
        #[cfg(feature = "aws")]
        SnapshotCmd::S3(a) => {
            let source = s3::S3::connect(&a).await?;
            drive(ctx, source, a.reporter).await
        }
        #[cfg(not(feature = "aws"))]
        SnapshotCmd::Ecs(_) | SnapshotCmd::Lambda(_) | SnapshotCmd::S3(_) => {
            bail!("this custody was built without AWS support (cargo feature 'aws')")
        }
    }
}

/// The reporter's name in the ledger: given, or the host's.
fn reporter_name(args: &ReporterArgs) -> String {
    args.reporter_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "custody".into())
    })
}

async fn drive<S: Source>(ctx: Ctx, mut source: S, args: ReporterArgs) -> anyhow::Result<ExitCode> {
    let kind = source.kind();
    for env in source.environments() {
        custody_runtime::validate_environment_name(&env)?;
    }
    // Environments to create with their first report: only once something
    // was observed, so a reporter that cannot reach its platform leaves no
    // empty environment behind.
    let mut to_create = BTreeSet::new();
    if !ctx.global.dry_run {
        for env in source.environments() {
            // A watching reporter may start before the server does.
            let mut backoff = Duration::from_secs(1);
            loop {
                match check_environment(&ctx, &env, kind, &args).await {
                    Ok(true) => break,
                    Ok(false) => {
                        to_create.insert(env.clone());
                        break;
                    }
                    Err(e) if args.watch && transient(&e) => {
                        eprintln!(
                            "warning: {} (retrying in {}s)",
                            crate::fail::message(&e),
                            backoff.as_secs()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let reporter = Reporter {
        name: reporter_name(&args),
        kind,
        description: args.environment_description.clone(),
        to_create,
    };
    if !args.watch {
        let interval = args.interval.map(|d| d.as_secs());
        let observations = source.observe().await?;
        let mut reporter = reporter;
        for o in observations {
            send(&ctx, &mut reporter, o, interval).await?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let interval = args.interval.unwrap_or(Duration::from_secs(60));
    watch(&ctx, &mut source, interval, reporter).await
}

/// Who reports, and the environments still to create.
struct Reporter {
    name: String,
    kind: EnvironmentKind,
    description: Option<String>,
    to_create: BTreeSet<String>,
}

/// Whether the environment exists (refusing one of another type before
/// anything is observed); a missing one is an error unless
/// `--auto-environment` asks for it to be created with the first report.
async fn check_environment(
    ctx: &Ctx,
    env: &str,
    kind: EnvironmentKind,
    args: &ReporterArgs,
) -> anyhow::Result<bool> {
    let url = ctx.org_url(&["environments", env]);
    match ctx.client.get::<EnvironmentView>(url).await {
        Ok(v) => {
            let e = v.environment;
            if e.kind.is_logical() {
                bail!("environment '{env}' is logical and cannot be reported to");
            }
            if e.kind != kind {
                bail!(
                    "environment '{env}' is of type {}; a {kind} reporter cannot report to it",
                    e.kind
                );
            }
            Ok(true)
        }
        Err(ClientError::Api { status, .. })
            if status == reqwest::StatusCode::NOT_FOUND && args.auto_environment =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

async fn create_environment(ctx: &Ctx, env: &str, r: &Reporter) -> anyhow::Result<()> {
    let body = PutEnvironmentRequest {
        kind: r.kind,
        description: Some(
            r.description
                .clone()
                .unwrap_or_else(|| "Auto-created by custody snapshot".into()),
        ),
        included_environments: None,
    };
    let url = ctx.org_url(&["environments", env]);
    let _: Saved<Environment> = ctx.client.send_json(Method::PUT, url, &body).await?;
    eprintln!("environment '{env}' was created");
    Ok(())
}

async fn send(
    ctx: &Ctx,
    r: &mut Reporter,
    o: Observation,
    interval_s: Option<u64>,
) -> anyhow::Result<()> {
    let kind = r.kind;
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
    for u in &o.unobserved {
        eprintln!("warning: not observed: {}: {}", u.scope, u.reason);
    }
    // Distinct instances: a pod's containers are several artifacts of one
    // pod.
    let instances = o
        .artifacts
        .iter()
        .flat_map(|a| a.instances.iter().map(|i| i.id.as_str()))
        .collect::<std::collections::HashSet<_>>()
        .len();
    let report = Report {
        kind,
        artifacts: o.artifacts,
        interval_s,
        warnings: o.warnings,
        unobserved: o.unobserved,
        reporter: Some(r.name.clone()),
    };
    // The server would refuse it too; this names the problem first.
    report.validate()?;
    let url = ctx.org_url(&["environments", &o.environment, "report"]);
    if ctx.dry_run("PUT", &url, &report, &[])? {
        return Ok(());
    }
    if r.to_create.contains(&o.environment) {
        create_environment(ctx, &o.environment, r).await?;
        r.to_create.remove(&o.environment);
    }
    let r: ReportOutcome = ctx.client.send_json(Method::PUT, url, &report).await?;
    output::either(ctx.global.output, &r, |r| {
        println!(
            "[{instances}] {}s were reported to environment {}",
            kind.instance_noun(),
            r.environment
        );
        if r.changed {
            println!("snapshot #{}:", r.snapshot);
            for c in &r.changes {
                println!("  {}: {}", c.name, c.description);
            }
        } else {
            println!("no change (snapshot #{})", r.snapshot);
        }
        for u in &r.unknown {
            println!("  UNKNOWN: {u} has no provenance in any flow");
        }
    })?;
    Ok(())
}

/// Whether a failure may pass by itself (network, server trouble) rather
/// than needing the user (an unknown environment, a bad report).
fn transient(e: &anyhow::Error) -> bool {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return !c.is_input_error();
        }
        if cause.downcast_ref::<crate::fail::Environment>().is_some() {
            return true;
        }
    }
    false
}

async fn watch<S: Source>(
    ctx: &Ctx,
    source: &mut S,
    interval: Duration,
    mut reporter: Reporter,
) -> anyhow::Result<ExitCode> {
    let mut backoff = Duration::from_secs(1);
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let round = async {
            for o in source.observe().await? {
                send(ctx, &mut reporter, o, Some(interval.as_secs())).await?;
            }
            source.reported();
            anyhow::Ok(())
        };
        let wait = match round.await {
            Ok(()) => {
                backoff = Duration::from_secs(1);
                interval
            }
            Err(e) if transient(&e) => {
                eprintln!(
                    "warning: {} (retrying in {}s)",
                    crate::fail::message(&e),
                    backoff.as_secs()
                );
                let w = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                w
            }
            Err(e) => return Err(e),
        };
        tokio::select! {
            _ = source.changed() => {
                // Changes come in bursts (a rollout): take them together.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
