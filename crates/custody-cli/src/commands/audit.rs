//! `custody audit`: bundles exported from the server, checked here before
//! they are written, and verified anywhere without a server.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use custody_api::{AuditBundleRequest, LedgerKey};
use custody_audit::verify::{CheckpointSeen, Report, Trust};
use custody_audit::{Claim, Unusable};
use custody_ledger::note::VerifierKey;

use super::Ctx;
use crate::cli::{AuditCmd, AuditVerifyArgs, Global, Output, WindowArgs};
use crate::fail::{Environment, INPUT, NON_COMPLIANT};
use crate::output;

pub async fn run(global: Global, c: AuditCmd) -> anyhow::Result<ExitCode> {
    match c {
        AuditCmd::Verify(a) => verify(global.output, a).await,
        AuditCmd::Export(a) => export(&Ctx::new(global).await?, a.window, !a.no_blobs, None).await,
        AuditCmd::ProveAbsent(a) => {
            let fp = a.fingerprint.trim().to_ascii_lowercase();
            let fp = fp.strip_prefix("sha256:").unwrap_or(&fp).to_string();
            if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "--fingerprint '{}' is not a SHA-256 (64 hex digits)",
                    a.fingerprint
                );
            }
            export(&Ctx::new(global).await?, a.window, false, Some(fp)).await
        }
    }
}

/// A key given inline, or the path of a file holding one.
fn key_arg(text: &str, what: &str) -> anyhow::Result<VerifierKey> {
    let path = Path::new(text);
    let text = if !text.contains('+') && path.exists() {
        std::fs::read_to_string(path)
            .with_context(|| format!("{what}: cannot read {}", path.display()))?
    } else {
        text.to_string()
    };
    VerifierKey::parse(text.trim()).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// A saved checkpoint: a signed note, or the JSON `ledger checkpoint`
/// prints (its `note`).
fn read_checkpoint(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--since-checkpoint: cannot read {}", path.display()))?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(note) = v.get("note").and_then(|n| n.as_str())
    {
        return Ok(note.to_string());
    }
    Ok(text)
}

async fn export(
    ctx: &Ctx,
    w: WindowArgs,
    blobs: bool,
    absent: Option<String>,
) -> anyhow::Result<ExitCode> {
    let now = jiff::Timestamp::now().as_millisecond();
    let from =
        custody_runtime::parse_time(&w.from, now).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to = custody_runtime::parse_time(&w.to, now).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    if from > to {
        bail!(
            "--from ({}) is after --to ({})",
            output::time(from),
            output::time(to)
        );
    }
    let since = w
        .since_checkpoint
        .as_deref()
        .map(read_checkpoint)
        .transpose()?;
    let mut key = w
        .public_key
        .as_deref()
        .map(|k| key_arg(k, "--public-key"))
        .transpose()?;
    let dir = match w.output_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // Written beside its destination and renamed into place once checked:
    // nothing half-written is ever left under the name asked for.
    let tmp = tempfile::Builder::new()
        .prefix(".custody-bundle-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let mut file = tokio::fs::File::from_std(tmp.reopen()?);
    let req = AuditBundleRequest {
        from,
        to,
        flow: w.flow.clone(),
        blobs,
        since_checkpoint: since.clone(),
        absent: absent.clone(),
    };
    let url = ctx.org_url(&["environments", &w.environment, "audit-bundle"]);
    ctx.client.post_to_file(url, &req, &mut file).await?;
    drop(file);

    if key.is_none() {
        let k: LedgerKey = ctx.client.get(ctx.org_url(&["ledger", "key"])).await?;
        eprintln!(
            "warning: checked with the key the server gave ({}); give --public-key with one kept apart from the server",
            k.verifier_key
        );
        key = Some(
            VerifierKey::parse(&k.verifier_key)
                .map_err(|e| Environment(format!("the server's key: {e}")))?,
        );
    }
    let trust = Trust {
        log_key: key.context("no key")?,
        witness_keys: Vec::new(),
        min_witnesses: 0,
        since,
    };
    let path = tmp.path().to_path_buf();
    let report =
        tokio::task::spawn_blocking(move || -> anyhow::Result<Result<Report, Unusable>> {
            let f = std::fs::File::open(&path)?;
            Ok(custody_audit::verify(f, &trust))
        })
        .await??
        .map_err(|e| Environment(format!("the server sent a bundle that cannot be read: {e}")))?;

    if !report.findings.problems.is_empty() {
        print_report(&report);
        return Err(Environment(format!(
            "the server sent a bundle that does not verify ({} problem(s) above); nothing was written",
            report.findings.problems.len()
        ))
        .into());
    }
    if absent.is_some() && !report.verified {
        print(ctx.global.output, &report)?;
        let why = match &report.findings.absent_refuted {
            Some(ran) => format!("the artifact ran: {ran}"),
            None => "the window's history is not complete (gaps above)".to_string(),
        };
        eprintln!("error: absence is not proven: {why}; nothing was written");
        return Ok(ExitCode::from(NON_COMPLIANT));
    }
    tmp.persist(&w.output_file)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", w.output_file.display(), e.error))?;
    print(ctx.global.output, &report)?;
    if !report.verified {
        eprintln!(
            "warning: the bundle was written, but the history it proves is not complete (gaps above): `custody audit verify` will say so"
        );
    }
    eprintln!("Wrote {}", w.output_file.display());
    Ok(ExitCode::SUCCESS)
}

async fn verify(out: Output, a: AuditVerifyArgs) -> anyhow::Result<ExitCode> {
    let log_key = key_arg(&a.public_key, "--public-key")?;
    let witness_keys = a
        .witness_keys
        .iter()
        .map(|k| key_arg(k, "--witness-key"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if a.min_witnesses > witness_keys.len() {
        bail!(
            "--min-witnesses {} asks for more witnesses than the {} --witness-key given",
            a.min_witnesses,
            witness_keys.len()
        );
    }
    let since = a
        .since_checkpoint
        .as_deref()
        .map(read_checkpoint)
        .transpose()?;
    let trust = Trust {
        log_key,
        witness_keys,
        min_witnesses: a.min_witnesses,
        since,
    };
    let bundle = a.bundle.clone();
    let result =
        tokio::task::spawn_blocking(move || -> anyhow::Result<Result<Report, Unusable>> {
            if bundle.as_os_str() == "-" {
                return Ok(custody_audit::verify(std::io::stdin().lock(), &trust));
            }
            let f = std::fs::File::open(&bundle)
                .with_context(|| format!("cannot open {}", bundle.display()))?;
            Ok(custody_audit::verify(f, &trust))
        })
        .await??;
    match result {
        Err(Unusable(why)) => {
            eprintln!("error: {}: unusable bundle: {why}", a.bundle.display());
            Ok(ExitCode::from(INPUT))
        }
        Ok(report) => {
            print(out, &report)?;
            Ok(if report.verified {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(NON_COMPLIANT)
            })
        }
    }
}

fn print(out: Output, r: &Report) -> anyhow::Result<()> {
    output::either(out, r, print_report)
}

fn fingerprint(f: &str) -> &str {
    if f.is_empty() { "(no fingerprint)" } else { f }
}

fn checkpoint_line(c: &CheckpointSeen) -> String {
    format!(
        "{}, {} entries, root {}{}",
        c.origin,
        c.size,
        c.root,
        if c.signed_by.is_empty() {
            " — signature NOT verified"
        } else {
            ", signature verified"
        }
    )
}

fn print_report(r: &Report) {
    let f = &r.findings;
    let mut rows: Vec<(&str, String)> = vec![
        (
            "Environment",
            if r.names.len() > 1 {
                format!(
                    "{} in {} (also named {})",
                    r.environment,
                    r.org,
                    r.names[..r.names.len() - 1].join(", ")
                )
            } else {
                format!("{} in {}", r.environment, r.org)
            },
        ),
        (
            "Window",
            format!("{} → {}", output::time(r.from), output::time(r.to)),
        ),
        (
            "Claim",
            match &r.claim {
                Claim::History => "what ran, complete, with its provenance".to_string(),
                Claim::Absent { fingerprint } => format!("{fingerprint} never ran"),
            },
        ),
    ];
    if let Some(c) = &r.checkpoint {
        rows.push(("Checkpoint", checkpoint_line(c)));
        let mut w: Vec<String> = c
            .witnesses
            .iter()
            .map(|(n, t)| format!("{n} (at {})", output::time(*t as i64 * 1000)))
            .collect();
        w.extend(
            c.unknown_signers
                .iter()
                .map(|n| format!("{n} (key not given: not counted)")),
        );
        rows.push((
            "Witnesses",
            if w.is_empty() {
                "none".into()
            } else {
                w.join(", ")
            },
        ));
    }
    if let Some(s) = &r.since {
        rows.push(("Grew from", checkpoint_line(s)));
    }
    rows.push((
        "Entries",
        format!("{}, each checked against the checkpoint", r.entries),
    ));
    rows.push((
        "Snapshots",
        format!(
            "#{} (in force at the start) to #{}: {} in the window",
            f.first_snapshot, f.last_snapshot, f.snapshots
        ),
    ));
    rows.push((
        "Coverage",
        if f.gaps.is_empty() {
            format!("complete ({} reports)", f.observations)
        } else {
            format!("{} gap(s)", f.gaps.len() as u64 + f.gaps_unlisted)
        },
    ));
    let with = f.ran.iter().filter(|x| x.provenance).count();
    rows.push((
        "Ran",
        format!(
            "{} artifact(s): {with} with provenance, {} unknown",
            f.ran.len(),
            f.unknown.len()
        ),
    ));
    rows.push((
        "Evidence",
        if r.blobs_included {
            format!("{} file(s), each matching its digest", r.blobs_checked)
        } else {
            format!("{} file(s) referenced, not included", f.evidence.len())
        },
    ));
    rows.push((
        "Evaluations",
        match &f.latest_evaluation {
            None => "none in the window".into(),
            Some(l) => format!(
                "{} ({} not compliant); the latest {} at snapshot #{}",
                f.evaluations, f.non_compliant_evaluations, l.status, l.snapshot
            ),
        },
    ));
    output::fields(
        &rows
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect::<Vec<_>>(),
    );
    if !f.gaps.is_empty() {
        println!("\nGaps in coverage:");
        for g in &f.gaps {
            println!(
                "  {} → {}: {}",
                output::time(g.from),
                output::time(g.to),
                g.why
            );
        }
        if f.gaps_unlisted > 0 {
            println!("  … and {} more", f.gaps_unlisted);
        }
    }
    if !f.unknown.is_empty() {
        println!("\nRan without provenance (unknown):");
        for u in &f.unknown {
            println!("  {}  {}", u.name, fingerprint(&u.fingerprint));
        }
    }
    if let Some(why) = &f.absent_refuted {
        println!("\nThe artifact claimed absent ran: {why}");
    }
    if !f.problems.is_empty() {
        println!("\nProblems:");
        for p in &f.problems {
            match p.seq {
                Some(s) => println!("  entry {s}: {}", p.what),
                None => println!("  {}", p.what),
            }
        }
    }
    println!(
        "\n{}",
        if r.verified {
            "VERIFIED"
        } else {
            "NOT VERIFIED"
        }
    );
}
