//! API keys and service accounts: list, revoke, rotate, delete, change.

use std::process::ExitCode;

use custody_api::{
    ApiKeyInfo, ApiKeyRotated, OrgSettings, RotateApiKeyRequest, ServiceAccount,
    UpdateServiceAccountRequest,
};
use reqwest::Method;

use super::Ctx;
use crate::cli::{DeleteCmd, Lifetime, RevokeCmd, RotateCmd, UpdateCmd};
use crate::output::{self, opt, time};

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn when(t: Option<i64>) -> String {
    t.map(time).unwrap_or_else(|| "-".into())
}

pub async fn list(ctx: &Ctx, service_account: Option<String>) -> anyhow::Result<ExitCode> {
    let mut url = ctx.org_url(&["api-keys"]);
    if let Some(a) = &service_account {
        url.query_pairs_mut().append_pair("service_account", a);
    }
    let keys: Vec<ApiKeyInfo> = ctx.client.get(url).await?;
    output::either(ctx.global.output, &keys, |l| {
        output::table(
            &[
                "ID",
                "SERVICE ACCOUNT",
                "DESCRIPTION",
                "CREATED",
                "LAST USED",
                "EXPIRES",
                "REVOKED",
            ],
            l.iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.service_account.clone(),
                        opt(&k.description),
                        time(k.created_at),
                        when(k.last_used_at),
                        when(k.expires_at),
                        when(k.revoked_at),
                    ]
                })
                .collect(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn revoke(ctx: Ctx, cmd: RevokeCmd) -> anyhow::Result<ExitCode> {
    let RevokeCmd::ApiKey { id } = cmd;
    let url = ctx.org_url(&["api-keys", &id]);
    if ctx.dry_run("DELETE", &url, &serde_json::json!({}), &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let k: ApiKeyInfo = ctx.client.delete(url).await?;
    output::either(ctx.global.output, &k, |k| {
        println!("API key {} of '{}' is revoked", k.id, k.service_account)
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn rotate(ctx: Ctx, cmd: RotateCmd) -> anyhow::Result<ExitCode> {
    let RotateCmd::ApiKey {
        id,
        grace_period,
        expires_in,
        description,
    } = cmd;
    let url = ctx.org_url(&["api-keys", &id, "rotate"]);
    let body = RotateApiKeyRequest {
        grace_period_ms: ms(grace_period),
        expires_in_ms: expires_in.map(ms),
        description,
    };
    if ctx.dry_run("POST", &url, &body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let r: ApiKeyRotated = ctx.client.send_json(Method::POST, url, &body).await?;
    output::either(ctx.global.output, &r, |r| {
        let until = match (r.old.revoked_at, r.old.expires_at) {
            (Some(_), _) => "is revoked".to_string(),
            (None, Some(t)) => format!("works until {}", time(t)),
            (None, None) => "still works".to_string(),
        };
        println!(
            "API key {} of '{}' replaces {} (which {until}); the new key (shown once):\n{}",
            r.new.id, r.new.service_account, r.old.id, r.new.key
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(ctx: Ctx, cmd: DeleteCmd) -> anyhow::Result<ExitCode> {
    let DeleteCmd::ServiceAccount { name } = cmd;
    let url = ctx.org_url(&["service-accounts", &name]);
    if ctx.dry_run("DELETE", &url, &serde_json::json!({}), &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let a: ServiceAccount = ctx.client.delete(url).await?;
    output::either(ctx.global.output, &a, |a| {
        println!(
            "service account '{}' is deleted and its keys revoked",
            a.name
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn update(ctx: Ctx, cmd: UpdateCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        UpdateCmd::Control(a) => return super::controls::create_control(ctx, a).await,
        UpdateCmd::ServiceAccount { name, role } => {
            let url = ctx.org_url(&["service-accounts", &name]);
            let body = UpdateServiceAccountRequest { role };
            if ctx.dry_run("PATCH", &url, &body, &[])? {
                return Ok(ExitCode::SUCCESS);
            }
            let a: ServiceAccount = ctx.client.send_json(Method::PATCH, url, &body).await?;
            output::either(ctx.global.output, &a, |a| {
                println!("service account '{}' now has role {}", a.name, a.role)
            })?;
        }
        UpdateCmd::Org { max_key_lifetime } => {
            let url = ctx.org_url(&["settings"]);
            let mut settings: OrgSettings = ctx.client.get(url.clone()).await?;
            match max_key_lifetime {
                Some(Lifetime::Unlimited) => settings.max_key_lifetime_ms = None,
                Some(Lifetime::Limited(d)) => settings.max_key_lifetime_ms = Some(ms(d)),
                None => {}
            }
            if ctx.dry_run("PUT", &url, &settings, &[])? {
                return Ok(ExitCode::SUCCESS);
            }
            let s: OrgSettings = ctx.client.send_json(Method::PUT, url, &settings).await?;
            output::either(ctx.global.output, &s, |s| match s.max_key_lifetime_ms {
                Some(m) => println!("org '{}': new API keys live at most {}", ctx.org, human(m)),
                None => println!("org '{}': API keys may live forever", ctx.org),
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn human(ms: i64) -> String {
    const DAY: i64 = 86_400_000;
    if ms % DAY == 0 {
        format!("{} days", ms / DAY)
    } else {
        format!("{} s", ms / 1000)
    }
}

/// Accounts, with whether they are deleted.
pub fn account_rows(l: &[ServiceAccount]) -> Vec<Vec<String>> {
    l.iter()
        .map(|s| {
            let mut role = s.role.to_string();
            if s.server_admin {
                role.push_str(" (server admin)");
            }
            vec![
                s.name.clone(),
                role,
                opt(&s.description),
                time(s.created_at),
                when(s.deleted_at),
            ]
        })
        .collect()
}
