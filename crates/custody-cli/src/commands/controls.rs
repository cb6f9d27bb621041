//! Policies, controls, the allowlist, asserts and flow tags.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use custody_api::{
    AllowRequest, AllowlistEntry, AssertArtifactRequest, AssertResult, ComplianceStatus, Control,
    CreatePolicyRequest, EnvironmentCompliance, Flow, Policy, PolicyAttachmentRequest, PolicyKind,
    PutControlRequest, Saved, Snapshot,
};
use custody_domain::{Fingerprint, names};
use custody_runtime::{SnapshotRef, validate_environment_name};
use reqwest::Method;
use serde_json::json;

use super::Ctx;
use crate::cli::{
    AllowArtifactArgs, ArtifactRef, AssertArtifactArgs, AttachPolicyArgs, CreateControlArgs,
    CreatePolicyArgs, PolicyType,
};
use crate::output::{self, time};

/// The fingerprint from --fingerprint, or computed from PATH.
pub async fn fingerprint_of(a: &ArtifactRef) -> anyhow::Result<String> {
    match (&a.path, &a.fingerprint) {
        (Some(_), Some(_)) => {
            bail!("give either PATH (with --artifact-type) or --fingerprint, not both")
        }
        (Some(p), None) => super::fingerprint::compute(p, &a.fp).await,
        (None, Some(fp)) => Ok(Fingerprint::parse(fp)?.to_string()),
        (None, None) => bail!("name the artifact: PATH with --artifact-type, or --fingerprint"),
    }
}

/// KEY=VALUE pairs, refusing anything else.
pub fn key_values(flag: &str, items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("{flag} '{kv}' is not KEY=VALUE"),
        })
        .collect()
}

/// A `.rego` file, or text whose first statement is a `package`.
fn looks_like_rego(file: &std::path::Path, text: &str) -> bool {
    file.extension().is_some_and(|e| e == "rego")
        || text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .is_some_and(|l| l.starts_with("package "))
}

pub async fn create_policy(ctx: Ctx, a: CreatePolicyArgs) -> anyhow::Result<ExitCode> {
    names::validate("policy name", &a.name)?;
    let content = super::read_text_file(&a.file)?;
    let kind = match a.kind {
        Some(PolicyType::Kosli) => PolicyKind::Kosli,
        Some(PolicyType::Rego) => PolicyKind::Rego,
        None if looks_like_rego(&a.file, &content) => PolicyKind::Rego,
        None => PolicyKind::Kosli,
    };
    // Checked here too, so a bad file is named before anything is sent.
    let what = a.file.display();
    match kind {
        PolicyKind::Kosli => {
            custody_policy::Policy::from_yaml(&content).with_context(|| {
                if looks_like_rego(&a.file, &content) {
                    format!("{what} looks like Rego: use --type rego")
                } else {
                    format!("{what}")
                }
            })?;
        }
        PolicyKind::Rego => {
            crate::rego::LocalRego::load(&a.file, content.clone(), None).await?;
        }
    }
    let body = CreatePolicyRequest {
        content,
        kind,
        description: a.description,
    };
    let url = ctx.org_url(&["policies", &a.name]);
    if ctx.dry_run("PUT", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: Saved<Policy> = ctx.client.send_json(Method::PUT, url, &body).await?;
    output::either(ctx.global.output, &r, |r| {
        let p = &r.value;
        if r.created {
            println!("policy '{}' was created (version {})", p.name, p.version);
        } else {
            println!("policy '{}' is at version {}", p.name, p.version);
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Creates a control, or its next version with what was given changed and
/// everything else kept (as Kosli's `update control` sends only what
/// changed); says what changed.
pub async fn create_control(ctx: Ctx, a: CreateControlArgs) -> anyhow::Result<ExitCode> {
    names::validate("control identifier", &a.identifier)?;
    let url = ctx.org_url(&["controls", &a.identifier]);
    let current: Option<Control> = match ctx.client.get(url.clone()).await {
        Ok(c) => Some(c),
        Err(custody_client::ClientError::Api { status, .. })
            if status == reqwest::StatusCode::NOT_FOUND =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    let before = current.as_ref().map(|c| c.fields.clone());
    let mut body = match (before.clone(), &a.name) {
        (Some(f), _) => f,
        (None, Some(name)) => PutControlRequest {
            name: name.clone(),
            description: None,
            links: vec![],
            tags: Default::default(),
        },
        (None, None) => anyhow::bail!(
            "control '{}' does not exist: creating it needs --name",
            a.identifier
        ),
    };
    if let Some(n) = a.name {
        body.name = n;
    }
    if a.description.is_some() {
        body.description = a.description;
    }
    if !a.link.is_empty() {
        body.links = a.link;
    }
    body.tags.extend(key_values("--tag", &a.tag)?);
    for k in &a.untag {
        body.tags.remove(k);
    }
    if ctx.dry_run("PUT", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: Saved<Control> = ctx.client.send_json(Method::PUT, url, &body).await?;
    let changed: Vec<&str> = match &before {
        None => vec![],
        Some(b) => [
            ("name", b.name != body.name),
            ("description", b.description != body.description),
            ("links", b.links != body.links),
            ("tags", b.tags != body.tags),
        ]
        .into_iter()
        .filter(|(_, c)| *c)
        .map(|(n, _)| n)
        .collect(),
    };
    output::either(ctx.global.output, &r, |r| match (&before, r.created) {
        (None, _) | (_, true) => println!(
            "control '{}' was created (version {})",
            r.value.identifier, r.value.version
        ),
        (Some(_), false) if changed.is_empty() => println!(
            "control '{}' is unchanged (version {})",
            r.value.identifier, r.value.version
        ),
        (Some(_), false) => println!(
            "control '{}' is now version {}: {} changed",
            r.value.identifier,
            r.value.version,
            changed.join(", ")
        ),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn tags_text(tags: &std::collections::BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        "-".into()
    } else {
        tags.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub async fn attach(ctx: Ctx, a: AttachPolicyArgs, attach: bool) -> anyhow::Result<ExitCode> {
    for p in &a.policies {
        names::validate("policy name", p)?;
    }
    for e in &a.environment {
        validate_environment_name(e)?;
    }
    let body = PolicyAttachmentRequest {
        policy_names: a.policies.clone(),
    };
    let method = if attach { Method::POST } else { Method::DELETE };
    for env in &a.environment {
        let url = ctx.org_url(&["environments", env, "policies"]);
        if ctx.dry_run(method.as_str(), &url, &body, &[])? {
            continue;
        }
        let now: Vec<String> = ctx.client.send_json(method.clone(), url, &body).await?;
        output::either(
            ctx.global.output,
            &json!({"environment": env, "policies": now}),
            |_| {
                let verb = if attach {
                    "attached to"
                } else {
                    "detached from"
                };
                println!(
                    "policy {} {verb} environment '{env}'; attached now: {}",
                    a.policies.join(", "),
                    if now.is_empty() {
                        "none (compliance UNKNOWN)".into()
                    } else {
                        now.join(", ")
                    }
                );
            },
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn allow(ctx: Ctx, a: AllowArtifactArgs) -> anyhow::Result<ExitCode> {
    validate_environment_name(&a.environment)?;
    let fingerprint = fingerprint_of(&a.artifact).await?;
    let body = AllowRequest {
        fingerprint,
        artifact_name: a.artifact_name.or_else(|| a.artifact.path.clone()),
        reason: a.reason,
    };
    let url = ctx.org_url(&["environments", &a.environment, "allowlist"]);
    if ctx.dry_run("POST", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: AllowlistEntry = ctx.client.send_json(Method::POST, url, &body).await?;
    output::either(ctx.global.output, &r, |r| {
        println!(
            "artifact {} is allowlisted in environment '{}'",
            r.fingerprint, r.environment
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn tag_flow(
    ctx: Ctx,
    name: String,
    set: Vec<String>,
    unset: Vec<String>,
) -> anyhow::Result<ExitCode> {
    names::validate("flow name", &name)?;
    if set.is_empty() && unset.is_empty() {
        bail!("give --set KEY=VALUE or --unset KEY");
    }
    let body = json!({"set": key_values("--set", &set)?, "unset": unset});
    let url = ctx.org_url(&["flows", &name, "tags"]);
    if ctx.dry_run("PATCH", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let f: Flow = ctx.client.send_json(Method::PATCH, url, &body).await?;
    output::either(ctx.global.output, &f, |f| {
        let tags: Vec<String> = f.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "flow '{}' tags: {}",
            f.name,
            if tags.is_empty() {
                "none".into()
            } else {
                tags.join(", ")
            }
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn get_policy(ctx: &Ctx, name: &str, version: Option<i64>) -> anyhow::Result<ExitCode> {
    let mut url = ctx.org_url(&["policies", name]);
    if let Some(v) = version {
        url.query_pairs_mut().append_pair("version", &v.to_string());
    }
    let p: Policy = ctx.client.get(url).await?;
    output::either(ctx.global.output, &p, |p| {
        output::fields(&[
            ("name", p.name.clone()),
            ("type", p.kind.as_str().into()),
            ("version", p.version.to_string()),
            ("sha256", p.sha256.clone()),
            ("created", time(p.created_at)),
            ("description", output::opt(&p.description)),
            (
                "environments",
                if p.environments.is_empty() {
                    "-".into()
                } else {
                    p.environments.join(", ")
                },
            ),
        ]);
        println!();
        print!("{}", p.content);
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list_policies(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let ps: Vec<Policy> = ctx.client.get(ctx.org_url(&["policies"])).await?;
    output::either(ctx.global.output, &ps, |ps| {
        output::table(
            &["NAME", "TYPE", "VERSION", "ENVIRONMENTS", "CREATED"],
            ps.iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.kind.as_str().into(),
                        p.version.to_string(),
                        p.environments.join(", "),
                        time(p.created_at),
                    ]
                })
                .collect(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn get_control(ctx: &Ctx, id: &str) -> anyhow::Result<ExitCode> {
    let versions: Vec<Control> = ctx
        .client
        .get(ctx.org_url(&["controls", id, "versions"]))
        .await?;
    output::either(ctx.global.output, &versions, |vs| {
        if let Some(c) = vs.last() {
            output::fields(&[
                ("identifier", c.identifier.clone()),
                ("name", c.fields.name.clone()),
                ("description", output::opt(&c.fields.description)),
                ("version", c.version.to_string()),
                ("links", c.fields.links.join(", ")),
                ("tags", tags_text(&c.fields.tags)),
                ("archived", c.archived.to_string()),
            ]);
        }
        println!();
        output::table(
            &["VERSION", "NAME", "AT"],
            vs.iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        v.fields.name.clone(),
                        time(v.updated_at),
                    ]
                })
                .collect(),
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list_controls(ctx: &Ctx, archived: bool) -> anyhow::Result<ExitCode> {
    let mut url = ctx.org_url(&["controls"]);
    if archived {
        url.query_pairs_mut().append_pair("archived", "true");
    }
    let cs: Vec<Control> = ctx.client.get(url).await?;
    output::either(ctx.global.output, &cs, |cs| {
        output::table(
            &["IDENTIFIER", "NAME", "VERSION", "ARCHIVED"],
            cs.iter()
                .map(|c| {
                    vec![
                        c.identifier.clone(),
                        c.fields.name.clone(),
                        c.version.to_string(),
                        if c.archived { "yes" } else { "-" }.into(),
                    ]
                })
                .collect(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list_allowlist(ctx: &Ctx, env: &str) -> anyhow::Result<ExitCode> {
    validate_environment_name(env)?;
    let es: Vec<AllowlistEntry> = ctx
        .client
        .get(ctx.org_url(&["environments", env, "allowlist"]))
        .await?;
    output::either(ctx.global.output, &es, |es| {
        output::table(
            &["FINGERPRINT", "NAME", "REASON", "BY", "AT"],
            es.iter()
                .map(|e| {
                    vec![
                        e.fingerprint.clone(),
                        output::opt(&e.artifact_name),
                        e.reason.clone(),
                        e.created_by.clone(),
                        time(e.created_at),
                    ]
                })
                .collect(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn get_compliance(ctx: &Ctx, env: &str) -> anyhow::Result<ExitCode> {
    validate_environment_name(env)?;
    let c: EnvironmentCompliance = ctx
        .client
        .get(ctx.org_url(&["environments", env, "compliance"]))
        .await?;
    output::either(ctx.global.output, &c, print_compliance)?;
    Ok(ExitCode::SUCCESS)
}

/// An evaluation: its status and, for what failed, every reason.
pub fn print_compliance(c: &EnvironmentCompliance) {
    output::fields(&[
        ("compliance", c.status.as_str().into()),
        (
            "evaluated",
            format!(
                "{} (evaluation {}, because of {}, snapshot #{})",
                time(c.evaluated_at),
                c.evaluation,
                c.cause,
                c.snapshot
            ),
        ),
        (
            "policies",
            c.policies
                .iter()
                .map(|p| format!("{}@v{}", p.policy, p.version))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ]);
    let rows: Vec<Vec<String>> = c
        .policies
        .iter()
        .flat_map(|p| {
            p.artifacts
                .iter()
                .filter(|a| !a.compliant)
                .flat_map(move |a| {
                    a.reasons()
                        .map(|r| vec![p.policy.clone(), a.name.clone(), r.to_string()])
                        .collect::<Vec<_>>()
                })
        })
        .collect();
    if !rows.is_empty() {
        println!();
        output::table(&["POLICY", "ARTIFACT", "REASON"], rows);
    }
}

pub async fn assert_artifact(ctx: Ctx, a: AssertArtifactArgs) -> anyhow::Result<ExitCode> {
    if let Some(e) = &a.environment {
        validate_environment_name(e)?;
    }
    for p in &a.policy {
        names::validate("policy name", p)?;
    }
    if let Some(f) = &a.flow {
        names::validate("flow name", f)?;
    }
    let body = AssertArtifactRequest {
        fingerprint: fingerprint_of(&a.artifact).await?,
        environment: a.environment,
        policies: a.policy,
        flow: a.flow,
    };
    let url = ctx.org_url(&["assert", "artifact"]);
    if ctx.dry_run("POST", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: AssertResult = ctx.client.send_json(Method::POST, url, &body).await?;
    output::either(ctx.global.output, &r, print_assert)?;
    Ok(verdict(r.compliant))
}

fn verdict(compliant: bool) -> ExitCode {
    if compliant {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::fail::NON_COMPLIANT)
    }
}

fn print_assert(r: &AssertResult) {
    if r.compliant {
        println!("COMPLIANT");
    } else {
        eprintln!("Error: NON-COMPLIANT");
    }
    if !r.policy_evaluations.is_empty() {
        let mut rows = Vec::new();
        for p in &r.policy_evaluations {
            for a in &p.artifacts {
                for rule in &a.rules {
                    let result = if rule.ignored {
                        "ignored"
                    } else if rule.satisfied {
                        "satisfied"
                    } else {
                        "FAILED"
                    };
                    rows.push(vec![
                        format!("{}@v{}", p.policy, p.version),
                        rule.rule.clone(),
                        result.into(),
                        rule.reason.clone().unwrap_or_default(),
                    ]);
                }
            }
        }
        output::table(&["POLICY", "RULE", "RESULT", "REASON"], rows);
    }
    for f in &r.flows {
        println!(
            "flow '{}' trail '{}': {}",
            f.flow,
            f.trail,
            f.status.as_str()
        );
        for reason in &f.reasons {
            println!("  {reason}");
        }
        println!("See more details at {}", f.url);
    }
    for reason in r.reasons.iter().filter(|_| r.policy_evaluations.is_empty()) {
        println!("{reason}");
    }
}

pub async fn assert_snapshot(ctx: Ctx, expr: &str) -> anyhow::Result<ExitCode> {
    let r = SnapshotRef::parse(expr, jiff::Timestamp::now().as_millisecond())?;
    let mut url = ctx.org_url(&["environments", &r.environment, "snapshot"]);
    let at = &expr[r.environment.len()..];
    if !at.is_empty() {
        url.query_pairs_mut().append_pair("at", at);
    }
    if ctx.dry_run("GET", &url, &json!({}), &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let s: Snapshot = ctx.client.get(url).await?;
    let status = s
        .compliance
        .as_ref()
        .map_or(ComplianceStatus::Unknown, |c| c.status);
    let compliant = status == ComplianceStatus::Compliant;
    output::either(
        ctx.global.output,
        &json!({"environment": s.environment, "snapshot": s.index, "compliant": compliant, "status": status, "compliance": s.compliance}),
        |_| {
            if compliant {
                println!("COMPLIANT");
            } else {
                eprintln!("Error: NON-COMPLIANT");
            }
            match &s.compliance {
                Some(c) => print_compliance(c),
                None => println!(
                    "no policy judged {}#{}: its compliance is UNKNOWN (attach one with `custody attach-policy NAME --environment {}`)",
                    s.environment, s.index, s.environment
                ),
            }
        },
    )?;
    Ok(verdict(compliant))
}
