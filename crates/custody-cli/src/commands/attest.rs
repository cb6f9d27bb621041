use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use custody_api::{Artifact, Attestation, AttestationInput, ReportArtifactRequest};
use custody_client::{Attachment, Progress};
use custody_domain::{AttestationName, Fingerprint, names};
use reqwest::Method;

use super::Ctx;
use super::provenance::{annotations, gather};
use crate::cli::{
    AttestArtifactArgs, AttestCmd, AttestIntotoArgs, AttestSeverityArgs, EvidenceArgs, Target,
};
use crate::output;
use crate::reports;

pub async fn run(ctx: Ctx, cmd: AttestCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AttestCmd::Artifact(a) => artifact(ctx, a).await,
        AttestCmd::Generic(a) => {
            let extra = Extra {
                compliant: Some(a.compliant),
                ..Extra::new("generic")
            };
            evidence(ctx, a.path, a.target, a.evidence, extra).await
        }
        AttestCmd::Custom(a) => {
            let data = super::read_raw_json_file(&a.attestation_data)?;
            let extra = Extra {
                type_name: Some(a.type_name),
                data: Some(data),
                ..Extra::new("custom")
            };
            evidence(ctx, a.path, a.target, a.evidence, extra).await
        }
        AttestCmd::Junit(a) => {
            check_target(&a.target)?;
            let report = reports::junit(&a.results_dir)?;
            let extra = Extra::report("junit", report, a.upload.upload_results);
            evidence(ctx, a.path, a.target, a.evidence, extra).await
        }
        AttestCmd::Sarif(a) => {
            check_target(&a.target)?;
            let report = reports::single("sarif", &a.scan_results, "--scan-results")?;
            let extra = Extra {
                fail_on: Some(a.fail_on),
                ..Extra::report("sarif", report, a.upload.upload_results)
            };
            evidence(ctx, a.path, a.target, a.evidence, extra).await
        }
        AttestCmd::Snyk(a) => severity(ctx, "snyk", a).await,
        AttestCmd::Trivy(a) => severity(ctx, "trivy", a).await,
        AttestCmd::Grype(a) => severity(ctx, "grype", a).await,
        AttestCmd::Decision(a) => {
            let extra = Extra {
                compliant: Some(a.compliant),
                control: a.control,
                ..Extra::new("decision")
            };
            evidence(ctx, a.path, a.target, a.evidence, extra).await
        }
        AttestCmd::Intoto(a) => intoto(ctx, a).await,
        AttestCmd::Pullrequest(c) => super::change::attest_pr(ctx, c).await,
        AttestCmd::Jira(a) => super::change::attest_jira(ctx, a).await,
        AttestCmd::Sonar(a) => super::change::attest_sonar(ctx, a).await,
        AttestCmd::Override(a) => {
            let extra = Extra {
                compliant: Some(a.new_compliance_status),
                reason: Some(a.reason),
                ..Extra::new("override")
            };
            evidence(ctx, a.path, a.target, a.evidence, extra).await
        }
        AttestCmd::Sbom(a) => {
            check_target(&a.target)?;
            let report = reports::single("sbom", &a.file, "--file")?;
            let extra = Extra::report("sbom", report, a.upload.upload_results);
            evidence(ctx, a.path, a.target, a.evidence, extra).await
        }
    }
}

async fn severity(ctx: Ctx, kind: &'static str, a: AttestSeverityArgs) -> anyhow::Result<ExitCode> {
    check_target(&a.target)?;
    let report = reports::single(kind, &a.scan_results, "--scan-results")?;
    let extra = Extra {
        severity_threshold: a.severity_threshold,
        ..Extra::report(kind, report, a.upload.upload_results)
    };
    evidence(ctx, a.path, a.target, a.evidence, extra).await
}

fn check_target(t: &Target) -> anyhow::Result<AttestationName> {
    names::validate("flow name", &t.flow)?;
    names::validate("trail name", &t.trail)?;
    Ok(AttestationName::parse(&t.name)?)
}

/// The fingerprint from --fingerprint, or computed from PATH.
async fn fingerprint(path: Option<&str>, t: &Target) -> anyhow::Result<Option<String>> {
    match (path, &t.fingerprint) {
        (Some(_), Some(_)) => {
            bail!("give either PATH (with --artifact-type) or --fingerprint, not both")
        }
        (Some(p), None) => Ok(Some(super::fingerprint::compute(p, &t.fp).await?)),
        (None, Some(fp)) => Ok(Some(Fingerprint::parse(fp)?.to_string())),
        (None, None) => {
            if t.fp.artifact_type.is_some() {
                bail!("--artifact-type needs a PATH to fingerprint");
            }
            Ok(None)
        }
    }
}

async fn artifact(ctx: Ctx, a: AttestArtifactArgs) -> anyhow::Result<ExitCode> {
    let name = check_target(&a.target)?;
    if name.artifact.is_some() {
        bail!("--name for an artifact is its template name, without a '.'");
    }
    let Some(fp) = fingerprint(a.path.as_deref(), &a.target).await? else {
        bail!("attest artifact needs PATH with --artifact-type, or --fingerprint");
    };
    let p = gather(&a.provenance)?;
    let ci = p.ci.clone().unwrap_or_default();
    let display_name = a.display_name.or_else(|| {
        a.path.as_ref().map(|p| {
            std::path::Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.clone())
        })
    });
    let commit_url = a
        .commit_url
        .or(ci.commit_url)
        .or_else(|| p.git_commit_info.as_ref().and_then(|g| g.url.clone()));
    let body = ReportArtifactRequest {
        fingerprint: fp,
        name: name.name,
        display_name,
        git_commit: p.git_commit_info.as_ref().map(|g| g.sha1.clone()),
        git_commit_info: p.git_commit_info,
        repo_info: p.repo_info,
        build_url: a.build_url.or(ci.build_url),
        commit_url,
        external_urls: p.external_urls,
        annotations: annotations(&a.annotate)?,
    };
    let url = ctx.org_url(&[
        "flows",
        &a.target.flow,
        "trails",
        &a.target.trail,
        "artifacts",
    ]);
    if ctx.dry_run("POST", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: Artifact = ctx.client.send_json(Method::POST, url, &body).await?;
    output::either(ctx.global.output, &r, |r| {
        println!(
            "artifact {} was attested with fingerprint: {}",
            r.display_name, r.fingerprint
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Checks the envelope here, so a statement that does not verify is
/// refused before anything is sent; the server checks it again.
async fn intoto(ctx: Ctx, mut a: AttestIntotoArgs) -> anyhow::Result<ExitCode> {
    use custody_ledger::foreign::{PublicKey, Statement};
    let text = std::fs::read_to_string(&a.envelope)
        .with_context(|| format!("cannot read --envelope {}", a.envelope.display()))?;
    let envelope: custody_ledger::dsse::Envelope = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a DSSE envelope", a.envelope.display()))?;
    let key_text = match std::fs::read_to_string(&a.public_key) {
        Ok(t) => t,
        Err(_) => a.public_key.clone(),
    };
    let key = PublicKey::parse(&key_text).map_err(|e| anyhow::anyhow!("--public-key: {e}"))?;
    let payload = key.verify(&envelope).map_err(|e| {
        anyhow::anyhow!(
            "{}: the signature does not verify with --public-key ({e})",
            a.envelope.display()
        )
    })?;
    let statement =
        Statement::parse(&payload).map_err(|e| anyhow::anyhow!("{}: {e}", a.envelope.display()))?;
    if let Some(fp) = &a.target.fingerprint {
        let fp = Fingerprint::parse(fp)?.to_string();
        if !statement.subjects.iter().any(|(_, d)| *d == fp) {
            bail!(
                "{}: the statement is not about --fingerprint {fp} (its subjects: {})",
                a.envelope.display(),
                statement
                    .subjects
                    .iter()
                    .map(|(n, d)| format!("{n} {d}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let data = serde_json::json!({"envelope": envelope, "public_key": key_text.trim()});
    let data = serde_json::value::RawValue::from_string(data.to_string())?;
    a.evidence
        .attachments
        .push(a.envelope.to_string_lossy().into_owned());
    let extra = Extra {
        data: Some(data),
        ..Extra::new("intoto")
    };
    evidence(ctx, None, a.target, a.evidence, extra).await
}

/// What a type adds to the common attestation fields.
pub(super) struct Extra {
    pub kind: &'static str,
    pub compliant: Option<bool>,
    pub type_name: Option<String>,
    pub data: Option<Box<serde_json::value::RawValue>>,
    pub results: Option<Box<serde_json::value::RawValue>>,
    pub fail_on: Option<String>,
    pub severity_threshold: Option<String>,
    pub require_approvals: Option<u32>,
    pub allow_open: Option<bool>,
    /// An override's reason.
    pub reason: Option<String>,
    pub control: Option<String>,
    /// The report files, uploaded next to --attachments.
    pub files: Vec<Attachment>,
    /// `--assert`: exit 1 when what was recorded is non-compliant.
    pub assert: bool,
}

impl Extra {
    pub(super) fn new(kind: &'static str) -> Self {
        Extra {
            kind,
            compliant: None,
            type_name: None,
            data: None,
            results: None,
            fail_on: None,
            severity_threshold: None,
            require_approvals: None,
            allow_open: None,
            reason: None,
            control: None,
            files: vec![],
            assert: false,
        }
    }

    fn report(kind: &'static str, r: reports::Report, upload: bool) -> Self {
        Extra {
            results: Some(r.results),
            files: if upload { r.files } else { vec![] },
            ..Extra::new(kind)
        }
    }
}

pub(super) async fn evidence(
    ctx: Ctx,
    path: Option<String>,
    t: Target,
    e: EvidenceArgs,
    extra: Extra,
) -> anyhow::Result<ExitCode> {
    let name = check_target(&t)?;
    let fp = fingerprint(path.as_deref(), &t).await?;
    if fp.is_some() && name.artifact.is_some() {
        bail!("bind to an artifact either by --name ARTIFACT.NAME or by fingerprint, not both");
    }
    let mut attachments = crate::attach::collect(&e.attachments)?;
    for f in extra.files {
        if attachments.iter().any(|a| a.name == f.name) {
            bail!(
                "attachment '{}' clashes with the uploaded report of the same name",
                f.name
            );
        }
        attachments.push(f);
    }
    let p = gather(&e.provenance)?;
    let body = AttestationInput {
        name: t.name.clone(),
        kind: extra.kind.to_string(),
        fingerprint: fp,
        compliant: extra.compliant,
        type_name: extra.type_name,
        attestation_data: extra.data,
        results: extra.results,
        fail_on: extra.fail_on,
        severity_threshold: extra.severity_threshold,
        require_approvals: extra.require_approvals,
        allow_open: extra.allow_open,
        reason: extra.reason,
        control: extra.control,
        user_data: p.user_data,
        annotations: annotations(&e.annotate)?,
        external_urls: p.external_urls,
        description: e.description,
        origin_url: p.origin_url,
        git_commit_info: p.git_commit_info,
        repo_info: p.repo_info,
    };
    let url = ctx.org_url(&["flows", &t.flow, "trails", &t.trail, "attestations"]);
    if ctx.dry_run("POST", &url, &body, &attachments)? {
        return Ok(ExitCode::SUCCESS);
    }
    let (progress, bar) = upload_progress(&attachments);
    let r: Attestation = ctx
        .client
        .post_attestation(url, &body, &attachments, progress)
        .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    output::either(ctx.global.output, &r, |r| {
        let verdict = if r.compliant { "" } else { " (non-compliant)" };
        if let Some(note) = super::flows::override_note(r) {
            println!("in trail {}: {note}", r.trail);
        } else {
            println!(
                "{} attestation '{}' is reported to trail: {}{verdict}",
                r.kind, t.name, r.trail
            );
        }
        for reason in &r.reasons {
            println!("  {reason}");
        }
    })?;
    if extra.assert && !r.compliant {
        eprintln!(
            "assert failed: {} attestation '{}' is non-compliant",
            r.kind, t.name
        );
        return Ok(ExitCode::from(crate::fail::NON_COMPLIANT));
    }
    Ok(ExitCode::SUCCESS)
}

/// A byte-count progress bar for uploads big enough to notice, on a
/// terminal only.
fn upload_progress(
    attachments: &[Attachment],
) -> (Option<Progress>, Option<indicatif::ProgressBar>) {
    let total: u64 = attachments.iter().map(|a| a.size).sum();
    if total < (8 << 20) || !std::io::stderr().is_terminal() {
        return (None, None);
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("uploading {bytes}/{total_bytes} {wide_bar} {eta}")
    {
        bar.set_style(style);
    }
    let b = bar.clone();
    let progress: Progress = Arc::new(move |n| b.inc(n));
    (Some(progress), Some(bar))
}
