//! `custody demo`: a new data directory filled with a week of a small
//! company's made-up history — 20 services built and deployed daily to
//! dev, staging and prod, one failing scan shipped and rolled back, one
//! unauthorised container, one reporter outage — to look around the web UI
//! and the CLI without wiring up real pipelines first.
//!
//! The history goes through a real server, run in this process on
//! loopback, over its HTTP API: every record is made, validated, judged and
//! entered in the ledger as a real one would be. Only the clock is
//! simulated (`custody_store::clock`), moving through the week.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use custody_api::{
    AttestationInput, BeginTrailRequest, CreatePolicyRequest, EnvironmentKind, GitCommitInfo,
    Instance, ObservedArtifact, PolicyAttachmentRequest, PutEnvironmentRequest, PutFlowRequest,
    Report, ReportArtifactRequest,
};
use custody_client::Client;
use custody_store::clock;
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cli::{DemoArgs, ServerCli};
use crate::fail::Environment;

const SERVICES: [&str; 20] = [
    "payments",
    "checkout",
    "cart",
    "catalog",
    "search",
    "accounts",
    "auth",
    "orders",
    "inventory",
    "shipping",
    "notifications",
    "pricing",
    "reviews",
    "recommendations",
    "gateway",
    "billing",
    "invoices",
    "ledger-sync",
    "reporting",
    "frontend",
];
const REGISTRY: &str = "registry.example.com/shop";
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// How often reporters report, in the simulated week.
const EVERY: i64 = 30 * MIN;

const TEMPLATE: &str = "version: 1\ntrail:\n  artifacts:\n    - name: image\n      attestations:\n        - name: tests\n          type: junit\n        - name: scan\n          type: trivy\n";
const POLICY: &str = "_schema: https://kosli.com/schemas/policy/environment/v1\nartifacts:\n  provenance:\n    required: true\n  trail-compliance:\n    required: true\n";

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A build of a service: what CI made.
#[derive(Clone, Debug)]
struct Build {
    service: &'static str,
    number: u32,
    fingerprint: String,
    commit_at: i64,
    /// Its scan finds a critical vulnerability.
    vulnerable: bool,
}

impl Build {
    fn image(&self) -> String {
        format!("{REGISTRY}/{}:1.{}", self.service, self.number)
    }
}

/// Something that happens at a moment of the week.
#[derive(Debug)]
enum Event {
    Ci(Build),
    Deploy { env: &'static str, build: Build },
    Intruder { start: bool },
}

/// What runs in each environment: service → (image, fingerprint, pods).
type Running = BTreeMap<String, (String, String, u32)>;

struct Player {
    client: Client,
    org: String,
    scratch: tempfile::TempDir,
}

impl Player {
    async fn put<B: serde::Serialize>(
        &self,
        method: Method,
        path: &[&str],
        body: &B,
    ) -> anyhow::Result<Value> {
        let url = self.client.org_url(&self.org, path);
        Ok(self.client.send_json(method, url, body).await?)
    }

    async fn ci(&self, b: &Build) -> anyhow::Result<()> {
        let trail = format!("{}-{}", b.service, b.number);
        let commit = GitCommitInfo {
            sha1: sha(&format!("commit {trail}"))[..40].to_string(),
            message: format!("{}: change {}", b.service, b.number),
            author: "Dev Eloper <dev@shop.example>".into(),
            timestamp: b.commit_at / 1000,
            branch: "main".into(),
            url: Some(format!(
                "https://git.example.com/shop/{}/commit/{}",
                b.service,
                &sha(&trail)[..12]
            )),
        };
        let begin = BeginTrailRequest {
            name: trail.clone(),
            description: Some(format!("Build {} of {}", b.number, b.service)),
            git_commit_info: Some(commit.clone()),
            ..Default::default()
        };
        self.put(Method::PUT, &["flows", b.service, "trails"], &begin)
            .await?;
        let artifact = ReportArtifactRequest {
            fingerprint: b.fingerprint.clone(),
            name: "image".into(),
            display_name: Some(b.image()),
            git_commit: Some(commit.sha1.clone()),
            git_commit_info: Some(commit),
            build_url: Some(format!(
                "https://ci.example.com/shop/{}/{}",
                b.service, b.number
            )),
            ..Default::default()
        };
        self.put(
            Method::POST,
            &["flows", b.service, "trails", &trail, "artifacts"],
            &artifact,
        )
        .await?;
        // Real tools' report formats, read by the same parsers as `attest`.
        let dir = self.scratch.path().join(&trail);
        std::fs::create_dir_all(dir.join("junit"))?;
        let tests = 40 + (b.number % 7) * 5;
        let cases: String = (0..tests)
            .map(|i| {
                format!(
                    "<testcase classname=\"shop.{}.Api\" name=\"case_{i}\" time=\"0.01\"/>",
                    b.service
                )
            })
            .collect();
        std::fs::write(
            dir.join("junit/results.xml"),
            format!(
                "<?xml version=\"1.0\"?><testsuite name=\"{}\" tests=\"{tests}\" failures=\"0\">{cases}</testsuite>",
                b.service
            ),
        )?;
        let vulns = if b.vulnerable {
            r#"[{"VulnerabilityID": "CVE-2024-3094", "PkgName": "xz-utils", "InstalledVersion": "5.6.0-0.2",
                "FixedVersion": "5.6.1+really5.4.5-1", "Severity": "CRITICAL",
                "Title": "xz: malicious code in distributed source"}]"#
        } else {
            "[]"
        };
        std::fs::write(
            dir.join("trivy.json"),
            format!(
                r#"{{"SchemaVersion": 2, "ArtifactName": "{}", "Results": [{{"Target": "{} (debian 12.5)", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": {vulns}}}]}}"#,
                b.image(),
                b.image()
            ),
        )?;
        let junit = crate::reports::junit(&dir.join("junit"))?;
        let trivy = crate::reports::single("trivy", &dir.join("trivy.json"), "--scan-results")?;
        for (name, kind, report) in [
            ("image.tests", "junit", junit),
            ("image.scan", "trivy", trivy),
        ] {
            let body = AttestationInput {
                name: name.into(),
                kind: kind.into(),
                results: Some(report.results),
                ..Default::default()
            };
            let url = self.client.org_url(
                &self.org,
                &["flows", b.service, "trails", &trail, "attestations"],
            );
            let _: Value = self
                .client
                .post_attestation(url, &body, &report.files, None)
                .await?;
        }
        Ok(())
    }

    async fn report(
        &self,
        env: &str,
        kind: EnvironmentKind,
        running: &Running,
    ) -> anyhow::Result<()> {
        let artifacts = running
            .iter()
            .map(|(svc, (image, fp, pods))| ObservedArtifact {
                name: image.clone(),
                fingerprint: Some(fp.clone()),
                instances: (0..*pods)
                    .map(|i| Instance {
                        id: format!("{svc}-{}-{i}", &fp[..6]),
                        started_at: None,
                        attributes: [("namespace".to_string(), "shop".to_string())].into(),
                    })
                    .collect(),
            })
            .collect();
        let report = Report {
            kind,
            artifacts,
            interval_s: Some((EVERY / 1000) as u64),
            warnings: vec![],
            unobserved: vec![],
            reporter: Some(format!("{env}-reporter")),
        };
        self.put(Method::PUT, &["environments", env, "report"], &report)
            .await?;
        Ok(())
    }
}

/// The week's events, in time order.
fn schedule(start: i64, days: u32) -> Vec<(i64, Event)> {
    let mut out = vec![];
    let mut numbers: BTreeMap<&str, u32> = BTreeMap::new();
    let mut last_good: BTreeMap<&str, Build> = BTreeMap::new();
    let days = i64::from(days);
    for day in 0..days {
        let morning = start + day * DAY + 9 * HOUR;
        for (i, svc) in SERVICES.iter().enumerate() {
            let vulnerable = *svc == "payments" && day == (days - 3).max(0);
            // Most services ship every day; a few skip a day now and then.
            if (day as usize + i) % 5 == 4 && !vulnerable {
                continue;
            }
            let n = numbers.entry(svc).or_insert(100);
            *n += 1;
            let build = Build {
                service: svc,
                number: *n,
                fingerprint: sha(&format!("{svc} build {n}")),
                commit_at: morning + i as i64 * 7 * MIN,
                vulnerable,
            };
            let ci = build.commit_at + 15 * MIN;
            out.push((ci, Event::Ci(build.clone())));
            out.push((
                ci + 10 * MIN,
                Event::Deploy {
                    env: "dev",
                    build: build.clone(),
                },
            ));
            out.push((
                ci + 40 * MIN,
                Event::Deploy {
                    env: "staging",
                    build: build.clone(),
                },
            ));
            // Prod in the afternoon; the vulnerable build went out anyway
            // and was rolled back within the hour.
            let prod = ci + 4 * HOUR + i as i64 * 3 * MIN;
            out.push((
                prod,
                Event::Deploy {
                    env: "prod",
                    build: build.clone(),
                },
            ));
            if vulnerable && let Some(previous) = last_good.get(svc) {
                out.push((
                    prod + 50 * MIN,
                    Event::Deploy {
                        env: "prod",
                        build: previous.clone(),
                    },
                ));
            }
            if !vulnerable {
                last_good.insert(svc, build);
            }
        }
    }
    // Someone started a miner in prod at night, two days before the end.
    let night = start + (days - 2) * DAY + 3 * HOUR + 12 * MIN;
    out.push((night, Event::Intruder { start: true }));
    out.push((night + 43 * MIN, Event::Intruder { start: false }));
    out.sort_by_key(|(t, _)| *t);
    out
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn empty_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: the demo writes a made-up history, so it only fills a new directory (give --data-dir another one)",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if !(1..=30).contains(&args.days) {
        bail!("--days must be between 1 and 30, not {}", args.days);
    }
    empty_dir(&args.data_dir)?;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    }
    let dir: PathBuf = std::fs::canonicalize(&args.data_dir)?;
    super::server::init_logs("warn", crate::cli::LogFormat::Text);
    let now = jiff::Timestamp::now().as_millisecond();
    // The week ends a few minutes ago; it starts at a midnight (UTC).
    let end = now - 5 * MIN;
    let start = (end - i64::from(args.days) * DAY).div_euclid(DAY) * DAY;
    clock::simulate(start);

    let token_file = dir.join(custody_server::BOOTSTRAP_TOKEN_FILE);
    let played = serve_while(&dir, "1s", |client| async move {
        let p = Player {
            client,
            org: "default".into(),
            scratch: tempfile::tempdir()?,
        };
        play(&p, start, end, args.days).await
    })
    .await;
    clock::real();
    let (builds, reports) = played?;
    println!(
        "A made-up history of {} days is in {}:",
        args.days,
        dir.display()
    );
    println!(
        "  {builds} builds of 20 services, each deployed to dev, staging and prod ({reports} reports)"
    );
    println!(
        "  a failing scan shipped to prod and rolled back; an unauthorised container in prod; a reporter outage in dev"
    );
    println!();
    println!("Look at it:");
    println!("  custody server --data-dir {}", dir.display());
    println!(
        "  then open http://127.0.0.1:8080 and sign in with the key in {}",
        token_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs a server on `dir` (SQLite and blobs there, whatever the
/// environment says) in this task, on a loopback port, while `f` talks to
/// it with the bootstrap key; then stops it.
pub async fn serve_while<F, Fut, T>(
    dir: &Path,
    checkpoint_interval: &str,
    f: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let port = free_port()?;
    let server = ServerCli::try_parse_from([
        "custody server".to_string(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--database".into(),
        format!("sqlite://{}", dir.join("custody.db").display()),
        "--blob-store".into(),
        format!("file://{}", dir.join("blobs").display()),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--checkpoint-interval".into(),
        checkpoint_interval.into(),
    ])
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = super::server::config(server.args, None)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = custody_server::run(cfg, async {
        let _ = stopped.await;
    });
    let token_file = dir.join(custody_server::BOOTSTRAP_TOKEN_FILE);
    let user = async {
        let done = async {
            let token = wait_for_token(&token_file).await?;
            f(Client::new(
                &format!("http://127.0.0.1:{port}"),
                Some(token),
            )?)
            .await
        }
        .await;
        // Whatever happened, the server stops.
        let _ = stop.send(());
        done
    };
    // Side by side in this task: the server, and what talks to it.
    let (served, done) = tokio::join!(server, user);
    served.map_err(|e| Environment(format!("the server: {e:#}")))?;
    done
}

/// The bootstrap key the server writes at its first start.
async fn wait_for_token(file: &Path) -> anyhow::Result<String> {
    for _ in 0..600 {
        if let Ok(t) = std::fs::read_to_string(file) {
            let t = t.trim().to_string();
            if !t.is_empty() {
                return Ok(t);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(Environment(
        "the demo's server did not start within a minute".into()
    ))
}

/// Plays the week; answers how many builds and reports were made.
async fn play(p: &Player, start: i64, end: i64, days: u32) -> anyhow::Result<(u32, u32)> {
    clock::simulate(start);
    for svc in SERVICES {
        let flow = PutFlowRequest {
            name: svc.into(),
            description: Some(format!("Builds of the {svc} service")),
            template_yaml: Some(TEMPLATE.into()),
        };
        p.put(Method::PUT, &["flows"], &flow).await?;
    }
    let envs = [
        (
            "dev",
            EnvironmentKind::Docker,
            "Developers' shared Docker host",
        ),
        ("staging", EnvironmentKind::K8s, "Staging cluster"),
        ("prod", EnvironmentKind::K8s, "Production cluster, eu-west"),
    ];
    for (name, kind, description) in envs {
        let body = PutEnvironmentRequest {
            kind,
            description: Some(description.into()),
            included_environments: None,
        };
        p.put(Method::PUT, &["environments", name], &body).await?;
    }
    let policy = CreatePolicyRequest {
        content: POLICY.into(),
        kind: Default::default(),
        description: Some("What may run in production-like environments".into()),
    };
    p.put(Method::PUT, &["policies", "production-provenance"], &policy)
        .await?;
    for env in ["staging", "prod"] {
        let body = PolicyAttachmentRequest {
            policy_names: vec!["production-provenance".into()],
        };
        p.put(Method::POST, &["environments", env, "policies"], &body)
            .await?;
    }

    let mut running: BTreeMap<&str, Running> =
        envs.iter().map(|(n, ..)| (*n, Running::new())).collect();
    let mut last_report: BTreeMap<&str, i64> = BTreeMap::new();
    let (mut builds, mut reports) = (0u32, 0u32);
    let events = schedule(start, days);
    let mut next = events.into_iter().peekable();
    // The dev reporter is down for three hours on the third day.
    let outage = (start + 2 * DAY + 13 * HOUR, start + 2 * DAY + 16 * HOUR);
    let mut t = start + 8 * HOUR;
    while t <= end {
        let mut changed: Vec<&str> = vec![];
        while let Some((at, _)) = next.peek() {
            if *at > t {
                break;
            }
            let Some((at, ev)) = next.next() else { break };
            clock::simulate(at);
            match ev {
                Event::Ci(b) => {
                    p.ci(&b)
                        .await
                        .with_context(|| format!("build {} of {}", b.number, b.service))?;
                    builds += 1;
                }
                Event::Deploy { env, build } => {
                    let pods = if env == "prod" { 3 } else { 1 };
                    if let Some(r) = running.get_mut(env) {
                        r.insert(
                            build.service.to_string(),
                            (build.image(), build.fingerprint.clone(), pods),
                        );
                    }
                    changed.push(env);
                }
                Event::Intruder { start } => {
                    if let Some(r) = running.get_mut("prod") {
                        if start {
                            r.insert(
                                "xmrig".into(),
                                ("docker.io/library/xmrig:6.21".into(), sha("xmrig 6.21"), 1),
                            );
                        } else {
                            r.remove("xmrig");
                        }
                    }
                    changed.push("prod");
                }
            }
        }
        clock::simulate(t);
        for (env, kind, _) in envs {
            let due = last_report.get(env).is_none_or(|l| t - l >= EVERY);
            let down = env == "dev" && (outage.0..outage.1).contains(&t);
            if (due || changed.contains(&env)) && !down {
                let r = running.get(env).cloned().unwrap_or_default();
                p.report(env, kind, &r)
                    .await
                    .with_context(|| format!("a report of {env}"))?;
                last_report.insert(env, t);
                reports += 1;
            }
        }
        t += 5 * MIN;
    }
    Ok((builds, reports))
}
