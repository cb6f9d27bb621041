//! Notification actions and their deliveries.

use std::process::ExitCode;

use anyhow::bail;
use custody_api::{Action, Delivery, PutActionRequest, Saved, Target, TargetKind, Trigger};
use custody_domain::names;
use custody_runtime::validate_environment_name;
use reqwest::Method;

use super::Ctx;
use crate::cli::CreateActionArgs;
use crate::output::{self, time};

pub async fn create_action(ctx: Ctx, a: CreateActionArgs) -> anyhow::Result<ExitCode> {
    names::validate("action name", &a.name)?;
    for e in &a.environment {
        validate_environment_name(e)?;
    }
    let triggers =
        a.on.iter()
            .map(|t| {
                Trigger::parse(t).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown trigger '{t}' in --on: expected {}",
                        Trigger::ALL.map(|t| t.as_str()).join(", ")
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
    let target = match (a.webhook, a.slack) {
        (Some(url), None) => Target {
            kind: TargetKind::Webhook,
            url,
        },
        (None, Some(url)) => {
            if a.secret.is_some() {
                bail!("--secret signs webhook bodies; Slack messages are not signed");
            }
            Target {
                kind: TargetKind::Slack,
                url,
            }
        }
        _ => bail!("give exactly one of --webhook URL or --slack URL"),
    };
    if url::Url::parse(&target.url).map(|u| u.scheme().starts_with("http")) != Ok(true) {
        bail!("'{}' is not an http(s) URL", target.url);
    }
    let body = PutActionRequest {
        environments: a.environment,
        triggers,
        target,
        secret: a.secret,
        silent_intervals: a.silent_intervals,
    };
    let url = ctx.org_url(&["actions", &a.name]);
    if ctx.dry_run("PUT", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: Saved<Action> = ctx.client.send_json(Method::PUT, url, &body).await?;
    output::either(ctx.global.output, &r, |r| {
        let verb = if r.created { "created" } else { "updated" };
        println!("action '{}' was {verb}", r.value.name);
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list_actions(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let list: Vec<Action> = ctx.client.get(ctx.org_url(&["actions"])).await?;
    output::either(ctx.global.output, &list, |list| {
        output::table(
            &["NAME", "ENVIRONMENTS", "ON", "TARGET", "SIGNED"],
            list.iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.environments.join(", "),
                        a.triggers
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        format!("{:?} {}", a.target.kind, a.target.url).to_lowercase(),
                        a.signed.to_string(),
                    ]
                })
                .collect(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list_deliveries(
    ctx: &Ctx,
    action: Option<&str>,
    limit: u32,
) -> anyhow::Result<ExitCode> {
    let mut url = ctx.org_url(&["deliveries"]);
    if let Some(a) = action {
        url.query_pairs_mut().append_pair("action", a);
    }
    url.query_pairs_mut()
        .append_pair("limit", &limit.to_string());
    let list: Vec<Delivery> = ctx.client.get(url).await?;
    output::either(ctx.global.output, &list, |list| {
        output::table(
            &[
                "EVENT",
                "ACTION",
                "TRIGGER",
                "ENVIRONMENT",
                "STATE",
                "ATTEMPTS",
                "LAST",
            ],
            list.iter()
                .map(|d| {
                    let last = d.attempts.last().map_or("-".to_string(), |a| {
                        let what = match (a.status_code, &a.error) {
                            (_, Some(e)) => e.clone(),
                            (Some(s), None) => format!("HTTP {s}"),
                            (None, None) => "-".into(),
                        };
                        format!("{} {what} ({} ms)", time(a.at), a.duration_ms)
                    });
                    vec![
                        d.event_id.clone(),
                        d.action.clone(),
                        d.trigger.as_str().into(),
                        d.environment.clone(),
                        d.state.as_str().into(),
                        d.attempts.len().to_string(),
                        last,
                    ]
                })
                .collect(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
