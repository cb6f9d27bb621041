use std::process::ExitCode;

use anyhow::{Context, bail};
use custody_api::{
    Artifact, Attestation, AttestationType, BeginTrailRequest, ComponentUse, Flow, Page, Saved,
    SearchResult, ServiceAccount, Trail, TrailSummary, TrailView,
};
use custody_domain::{FlowTemplate, names};
use reqwest::Method;

use super::Ctx;
use super::provenance::gather;
use crate::cli::{BeginTrailArgs, GetCmd, ListCmd, Output, SearchArgs};
use crate::output::{self, opt, time};

pub async fn begin_trail(ctx: Ctx, a: BeginTrailArgs) -> anyhow::Result<ExitCode> {
    names::validate("trail name", &a.name)?;
    names::validate("flow name", &a.flow)?;
    let template_yaml = match &a.template_file {
        Some(f) => {
            let yaml = super::read_text_file(f)?;
            FlowTemplate::from_yaml(&yaml).with_context(|| format!("{}", f.display()))?;
            Some(yaml)
        }
        None => None,
    };
    let p = gather(&a.provenance)?;
    let body = BeginTrailRequest {
        name: a.name,
        description: a.description,
        template_yaml,
        git_commit_info: p.git_commit_info,
        repo_info: p.repo_info,
        user_data: p.user_data,
        origin_url: p.origin_url,
        external_urls: p.external_urls,
    };
    let url = ctx.org_url(&["flows", &a.flow, "trails"]);
    if ctx.dry_run("PUT", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: Saved<Trail> = ctx.client.send_json(Method::PUT, url, &body).await?;
    output::either(ctx.global.output, &r, |r| {
        let verb = if r.created { "begun" } else { "updated" };
        println!("trail '{}' was {verb}", r.value.name)
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn get(ctx: Ctx, cmd: GetCmd) -> anyhow::Result<ExitCode> {
    let out = ctx.global.output;
    match cmd {
        GetCmd::Repo { name } => {
            let r: custody_api::RepoDetail = ctx.client.get(ctx.org_url(&["repos", &name])).await?;
            output::either(out, &r, |r| {
                output::fields(&[
                    ("name", r.repo.name.clone()),
                    ("url", r.repo.url.clone()),
                    ("id", r.repo.id.clone()),
                    ("provider", opt(&r.repo.provider)),
                    ("flows", r.repo.flows.join(", ")),
                    ("trails", r.repo.trails.to_string()),
                    ("first trail", time(r.repo.first_seen)),
                    ("last trail", time(r.repo.last_seen)),
                ]);
                println!();
                output::table(
                    &["FLOW", "TRAIL", "COMMIT", "STARTED"],
                    r.recent_trails
                        .iter()
                        .map(|t| {
                            vec![
                                t.flow.clone(),
                                t.trail.clone(),
                                opt(&t.commit),
                                time(t.created_at),
                            ]
                        })
                        .collect(),
                );
            })?;
        }
        GetCmd::Flow { name } => {
            let f: Flow = ctx.client.get(ctx.org_url(&["flows", &name])).await?;
            output::either(out, &f, |f| {
                output::fields(&[
                    ("name", f.name.clone()),
                    ("description", opt(&f.description)),
                    (
                        "template version",
                        f.template_version
                            .map(|v| v.to_string())
                            .unwrap_or("-".into()),
                    ),
                    (
                        "tags",
                        if f.tags.is_empty() {
                            "-".into()
                        } else {
                            f.tags
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                    ),
                    ("created", time(f.created_at)),
                    ("updated", time(f.updated_at)),
                ]);
                if let Some(y) = &f.template_yaml {
                    println!("\ntemplate:\n{y}");
                }
            })?;
        }
        GetCmd::Trail { name, flow } => {
            let t: TrailView = ctx
                .client
                .get(ctx.org_url(&["flows", &flow, "trails", &name]))
                .await?;
            if out == Output::Markdown {
                print!("{}", crate::markdown::trail(&t));
            } else {
                output::either(out, &t, print_trail)?;
            }
        }
        GetCmd::Artifact { expression } => {
            let (flow, sha) = expression
                .split_once('@')
                .or_else(|| expression.split_once(':'))
                .with_context(|| {
                    format!("'{expression}' must be FLOW@FINGERPRINT or FLOW:COMMIT")
                })?;
            let found: Vec<Artifact> = ctx
                .client
                .get(ctx.org_url(&["flows", flow, "artifacts", sha]))
                .await?;
            output::either(out, &found, |a| print_artifacts(a))?;
        }
        GetCmd::Attestation {
            name,
            flow,
            trail,
            id,
        } => {
            let list: Vec<Attestation> = match (id, name) {
                (Some(id), None) => {
                    vec![ctx.client.get(ctx.org_url(&["attestations", &id])).await?]
                }
                (None, Some(name)) => {
                    let (Some(flow), Some(trail)) = (flow, trail) else {
                        bail!("get attestation NAME needs --flow and --trail (or use --id)");
                    };
                    let mut url =
                        ctx.org_url(&["flows", &flow, "trails", &trail, "attestations", &name]);
                    url.query_pairs_mut().append_pair("per_page", "500");
                    let page: Page<Attestation> = ctx.client.get(url).await?;
                    if page.total > page.items.len() as u64 {
                        eprintln!(
                            "showing the newest {} of {} attestations named '{name}'",
                            page.items.len(),
                            page.total
                        );
                    }
                    page.items
                }
                _ => bail!("give an attestation NAME (with --flow and --trail) or --id, not both"),
            };
            match out {
                Output::Json if list.len() == 1 => output::json(&list[0])?,
                Output::Json => output::json(&list)?,
                Output::Markdown => return Err(output::markdown_not_here()),
                Output::Table => {
                    for (i, a) in list.iter().enumerate() {
                        if i > 0 {
                            println!();
                        }
                        print_attestation(a);
                    }
                }
            }
        }
        GetCmd::AttestationType { name } => {
            let (n, version) = match name.split_once("@v") {
                Some((n, v)) => (
                    n.to_string(),
                    Some(
                        v.parse::<i64>()
                            .with_context(|| format!("invalid version in '{name}'"))?,
                    ),
                ),
                None => (name.clone(), None),
            };
            let mut url = ctx.org_url(&["attestation-types", &n]);
            if let Some(v) = version {
                url.query_pairs_mut().append_pair("version", &v.to_string());
            }
            let t: AttestationType = ctx.client.get(url).await?;
            output::either(out, &t, |t| {
                output::fields(&[
                    ("name", t.name.clone()),
                    ("version", t.version.to_string()),
                    ("description", opt(&t.description)),
                    ("jq rules", t.jq_rules.join(" ; ")),
                    ("schema", t.schema.to_string()),
                ])
            })?;
        }
        GetCmd::Environment { name } => return super::environments::get(&ctx, &name).await,
        GetCmd::Snapshot { expression } => {
            return super::environments::get_snapshot(&ctx, &expression).await;
        }
        GetCmd::Policy { name, version } => {
            return super::controls::get_policy(&ctx, &name, version).await;
        }
        GetCmd::Control { identifier } => {
            return super::controls::get_control(&ctx, &identifier).await;
        }
        GetCmd::Dora {
            environment,
            since,
            until,
            failure_window_hours,
        } => {
            return super::environments::get_dora(
                &ctx,
                &environment,
                &since,
                until.as_deref(),
                failure_window_hours,
            )
            .await;
        }
        GetCmd::Compliance { environment } => {
            return super::controls::get_compliance(&ctx, &environment).await;
        }
        GetCmd::Evidence {
            sha256,
            output_file,
        } => {
            let size = ctx
                .client
                .download_evidence(&ctx.org, &sha256, &output_file)
                .await?;
            output::either(
                out,
                &serde_json::json!({"sha256": sha256, "size": size, "file": output_file}),
                |_| {
                    println!(
                        "evidence {sha256} ({size} bytes) written to {}",
                        output_file.display()
                    )
                },
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn list(ctx: Ctx, cmd: ListCmd) -> anyhow::Result<ExitCode> {
    let out = ctx.global.output;
    match cmd {
        ListCmd::Flows { archived } => {
            let mut url = ctx.org_url(&["flows"]);
            if archived {
                url.query_pairs_mut().append_pair("archived", "true");
            }
            let flows: Vec<Flow> = ctx.client.get(url).await?;
            output::either(out, &flows, |flows| {
                output::table(
                    &["NAME", "DESCRIPTION", "TEMPLATE", "UPDATED", "ARCHIVED"],
                    flows
                        .iter()
                        .map(|f| {
                            vec![
                                f.name.clone(),
                                opt(&f.description),
                                f.template_version
                                    .map(|v| format!("v{v}"))
                                    .unwrap_or("-".into()),
                                time(f.updated_at),
                                f.archived_at.map(time).unwrap_or_else(|| "-".into()),
                            ]
                        })
                        .collect(),
                )
            })?;
        }
        ListCmd::Trails { flow, paging } => {
            let mut url = ctx.org_url(&["flows", &flow, "trails"]);
            url.query_pairs_mut()
                .append_pair("page", &paging.page.to_string())
                .append_pair("per_page", &paging.page_limit.to_string());
            let page: Page<TrailSummary> = ctx.client.get(url).await?;
            output::either(out, &page, |p| {
                output::table(
                    &["NAME", "DESCRIPTION", "COMMIT", "CREATED"],
                    p.items
                        .iter()
                        .map(|t| {
                            vec![
                                t.name.clone(),
                                opt(&t.description),
                                opt(&t.git_commit),
                                time(t.created_at),
                            ]
                        })
                        .collect(),
                );
                page_line(p.page, p.per_page, p.total);
            })?;
        }
        ListCmd::Artifacts { flow, paging } => {
            let mut url = ctx.org_url(&["artifacts"]);
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("page", &paging.page.to_string())
                    .append_pair("per_page", &paging.page_limit.to_string());
                if let Some(f) = &flow {
                    q.append_pair("flow", f);
                }
            }
            let page: Page<Artifact> = ctx.client.get(url).await?;
            output::either(out, &page, |p| {
                print_artifacts(&p.items);
                page_line(p.page, p.per_page, p.total);
            })?;
        }
        ListCmd::ServiceAccounts => {
            let list: Vec<ServiceAccount> =
                ctx.client.get(ctx.org_url(&["service-accounts"])).await?;
            output::either(out, &list, |l| {
                output::table(
                    &["NAME", "ROLE", "DESCRIPTION", "CREATED", "DELETED"],
                    super::keys::account_rows(l),
                )
            })?;
        }
        ListCmd::ApiKeys { service_account } => {
            return super::keys::list(&ctx, service_account).await;
        }
        ListCmd::Policies => return super::controls::list_policies(&ctx).await,
        ListCmd::Controls { archived } => {
            return super::controls::list_controls(&ctx, archived).await;
        }
        ListCmd::Repos => {
            let repos: Vec<custody_api::Repo> = ctx.client.get(ctx.org_url(&["repos"])).await?;
            output::either(out, &repos, |repos| {
                output::table(
                    &["NAME", "URL", "FLOWS", "TRAILS", "LAST TRAIL"],
                    repos
                        .iter()
                        .map(|r| {
                            vec![
                                r.name.clone(),
                                r.url.clone(),
                                r.flows.join(", "),
                                r.trails.to_string(),
                                time(r.last_seen),
                            ]
                        })
                        .collect(),
                )
            })?;
        }
        ListCmd::Actions => return super::notifications::list_actions(&ctx).await,
        ListCmd::Deliveries { action, limit } => {
            return super::notifications::list_deliveries(&ctx, action.as_deref(), limit).await;
        }
        ListCmd::Allowlist { env, environment } => {
            let environment = crate::cli::either_form(env, environment, "environment")?;
            return super::controls::list_allowlist(&ctx, &environment).await;
        }
        ListCmd::Environments { archived } => {
            return super::environments::list(&ctx, archived).await;
        }
        ListCmd::Snapshots {
            environment,
            interval,
            paging,
        } => {
            return super::environments::list_snapshots(
                &ctx,
                &environment,
                interval.as_deref(),
                paging,
            )
            .await;
        }
        ListCmd::AttestationTypes { archived } => {
            let mut url = ctx.org_url(&["attestation-types"]);
            if archived {
                url.query_pairs_mut().append_pair("archived", "true");
            }
            let list: Vec<AttestationType> = ctx.client.get(url).await?;
            output::either(out, &list, |l| {
                output::table(
                    &["NAME", "VERSION", "DESCRIPTION", "RULES"],
                    l.iter()
                        .map(|t| {
                            vec![
                                t.name.clone(),
                                t.version.to_string(),
                                opt(&t.description),
                                t.jq_rules.len().to_string(),
                            ]
                        })
                        .collect(),
                )
            })?;
        }
        ListCmd::Components {
            name,
            purl,
            component_version,
            limit,
        } => {
            let mut url = ctx.org_url(&["components"]);
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in [
                    ("name", &name),
                    ("purl", &purl),
                    ("version", &component_version),
                ] {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
                q.append_pair("limit", &limit.to_string());
            }
            let list: Vec<ComponentUse> = ctx.client.get(url).await?;
            output::either(out, &list, |l| {
                output::table(
                    &[
                        "NAME",
                        "VERSION",
                        "FLOW",
                        "TRAIL",
                        "ARTIFACT",
                        "FINGERPRINT",
                        "REPORTED",
                    ],
                    l.iter()
                        .map(|c| {
                            vec![
                                c.name.clone(),
                                opt(&c.version),
                                c.flow.clone(),
                                c.trail.clone(),
                                opt(&c.artifact),
                                opt(&c.fingerprint),
                                time(c.reported_at),
                            ]
                        })
                        .collect(),
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn search(ctx: Ctx, a: SearchArgs) -> anyhow::Result<ExitCode> {
    let r: SearchResult = ctx.client.get(ctx.org_url(&["search", &a.sha])).await?;
    output::either(ctx.global.output, &r, |r| {
        if r.artifacts.is_empty() {
            println!("no artifact matches '{}'", r.query);
        } else {
            print_artifacts(&r.artifacts);
        }
        if !r.runtime.is_empty() {
            println!("\nran in:");
            output::table(
                &[
                    "ENVIRONMENT",
                    "NAME",
                    "FINGERPRINT",
                    "INSTANCES",
                    "FROM",
                    "TO",
                ],
                r.runtime
                    .iter()
                    .map(|o| {
                        vec![
                            o.environment.clone(),
                            o.name.clone(),
                            o.fingerprint.clone(),
                            o.instances.to_string(),
                            time(o.from),
                            o.to.map_or("still running".into(), time),
                        ]
                    })
                    .collect(),
            );
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn page_line(page: u32, per_page: u32, total: u64) {
    let pages = total.div_ceil(u64::from(per_page.max(1))).max(1);
    println!("Showing page {page} of {pages}, total {total} items");
}

fn print_artifacts(list: &[Artifact]) {
    output::table(
        &["FLOW", "TRAIL", "NAME", "FINGERPRINT", "COMMIT", "REPORTED"],
        list.iter()
            .map(|a| {
                vec![
                    a.flow.clone(),
                    a.trail.clone(),
                    a.name.clone(),
                    a.fingerprint.clone(),
                    opt(&a.git_commit),
                    time(a.created_at),
                ]
            })
            .collect(),
    );
}

/// Who made a record; records older than actors show a dash.
pub fn by(actor: &Option<custody_api::Actor>) -> String {
    actor
        .as_ref()
        .map_or_else(|| "-".to_string(), |a| a.to_string())
}

/// "overridden to compliant by X: reason (it was non-compliant)", for an
/// override.
pub fn override_note(a: &Attestation) -> Option<String> {
    let o = a.override_note()?;
    let status = |c: bool| if c { "compliant" } else { "non-compliant" };
    Some(format!(
        "'{}' overridden to {} by {}: {} (it was {})",
        a.name,
        status(a.compliant),
        by(&a.reported_by),
        o.reason,
        status(o.was_compliant)
    ))
}

fn print_attestation(a: &Attestation) {
    let target = match (&a.artifact, &a.fingerprint) {
        (Some(n), Some(fp)) => format!("artifact {n} ({fp})"),
        (Some(n), None) => format!("artifact {n}"),
        _ => "trail".to_string(),
    };
    let mut rows = vec![
        ("id", a.id.clone()),
        ("name", a.name.clone()),
        ("type", a.kind.clone()),
        ("flow / trail", format!("{} / {}", a.flow, a.trail)),
        ("on", target),
        ("compliant", a.compliant.to_string()),
        ("reported", time(a.created_at)),
        ("reported by", by(&a.reported_by)),
    ];
    for r in &a.reasons {
        rows.push(("reason", r.clone()));
    }
    if let Some(n) = override_note(a) {
        rows.push(("override", n));
    }
    for e in &a.evidence {
        rows.push((
            "evidence",
            format!("{} {} ({} bytes)", e.sha256, e.filename, e.size),
        ));
    }
    output::fields(&rows);
}

fn print_trail(t: &TrailView) {
    output::fields(&[
        ("trail", t.name.clone()),
        ("flow", t.flow.clone()),
        ("compliance", t.status.as_str().to_string()),
        (
            "commit",
            t.trail
                .git_commit_info
                .as_ref()
                .map(|g| g.sha1.clone())
                .unwrap_or("-".into()),
        ),
        ("started", time(t.trail.created_at)),
        ("started by", by(&t.trail.created_by)),
        ("changed by", by(&t.trail.updated_by)),
    ]);
    let mut rows: Vec<Vec<String>> = t
        .compliance
        .attestations
        .iter()
        .map(|s| {
            vec![
                "(trail)".into(),
                s.name.clone(),
                s.required_type
                    .clone()
                    .or(s.attestation_type.clone())
                    .unwrap_or_default(),
                s.status.as_str().into(),
            ]
        })
        .collect();
    for a in &t.compliance.artifacts {
        rows.push(vec![
            a.name.clone(),
            "(artifact)".into(),
            a.fingerprint
                .clone()
                .unwrap_or_else(|| "not reported".into()),
            a.status.as_str().into(),
        ]);
        for s in &a.attestations {
            rows.push(vec![
                a.name.clone(),
                s.name.clone(),
                s.required_type
                    .clone()
                    .or(s.attestation_type.clone())
                    .unwrap_or_default(),
                s.status.as_str().into(),
            ]);
        }
    }
    if !rows.is_empty() {
        println!();
        output::table(&["ON", "ATTESTATION", "TYPE / FINGERPRINT", "STATUS"], rows);
    }
    for r in &t.reasons {
        println!("- {r}");
    }
    for n in t.attestations.iter().filter_map(override_note) {
        println!("- {n}");
    }
}
