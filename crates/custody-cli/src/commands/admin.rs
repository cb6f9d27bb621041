use std::process::ExitCode;

use anyhow::{Context, bail};
use custody_api::{
    ApiKeyCreated, AttestationType, CreateApiKeyRequest, CreateAttestationTypeRequest,
    CreateOrgRequest, CreateServiceAccountRequest, Flow, OrgCreated, PutFlowRequest, Saved,
    ServiceAccount, WhoAmI,
};
use custody_domain::{FlowTemplate, custom_type, names};
use reqwest::Method;

use super::{Ctx, read_json_file, read_text_file};
use crate::cli::CreateCmd;
use crate::output;

pub async fn create(ctx: Ctx, cmd: CreateCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CreateCmd::Environment(a) => return super::environments::create(ctx, a).await,
        CreateCmd::Policy(a) => return super::controls::create_policy(ctx, a).await,
        CreateCmd::Control(a) => return super::controls::create_control(ctx, a).await,
        CreateCmd::Action(a) => return super::notifications::create_action(ctx, a).await,
        CreateCmd::Org { name } => {
            names::validate("org name", &name)?;
            let url = ctx.client.url(&["api", "v1", "orgs"]);
            let body = CreateOrgRequest { name };
            if ctx.dry_run("POST", &url, &body, &[])? {
                return Ok(ExitCode::SUCCESS);
            }
            let r: OrgCreated = ctx.client.send_json(Method::POST, url, &body).await?;
            output::either(ctx.global.output, &r, |r| {
                println!(
                    "org '{}' created; its admin API key (shown once):\n{}",
                    r.org, r.api_key
                )
            })?;
        }
        CreateCmd::ServiceAccount {
            name,
            role,
            description,
        } => {
            names::validate("service account name", &name)?;
            let url = ctx.org_url(&["service-accounts"]);
            let body = CreateServiceAccountRequest {
                name,
                role,
                description,
            };
            if ctx.dry_run("POST", &url, &body, &[])? {
                return Ok(ExitCode::SUCCESS);
            }
            let r: ServiceAccount = ctx.client.send_json(Method::POST, url, &body).await?;
            output::either(ctx.global.output, &r, |r| {
                println!("service account '{}' created with role {}", r.name, r.role)
            })?;
        }
        CreateCmd::ApiKey {
            account,
            service_account,
            description,
            expires_at,
            expires_in,
        } => {
            let service_account =
                crate::cli::either_form(account, service_account, "service-account")?;
            let expires_at = expires_at.as_deref().map(parse_time).transpose()?;
            let url = ctx.org_url(&["service-accounts", &service_account, "api-keys"]);
            let body = CreateApiKeyRequest {
                description,
                expires_at,
                expires_in_ms: expires_in.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            };
            if ctx.dry_run("POST", &url, &body, &[])? {
                return Ok(ExitCode::SUCCESS);
            }
            let r: ApiKeyCreated = ctx.client.send_json(Method::POST, url, &body).await?;
            output::either(ctx.global.output, &r, |r| match r.expires_at {
                Some(t) => println!(
                    "API key {} for '{}', valid until {} (shown once):\n{}",
                    r.id,
                    r.service_account,
                    output::time(t),
                    r.key
                ),
                None => println!(
                    "API key {} for '{}' (shown once):\n{}",
                    r.id, r.service_account, r.key
                ),
            })?;
        }
        CreateCmd::Flow {
            name,
            template_file,
            description,
        } => {
            names::validate("flow name", &name)?;
            let template_yaml = match &template_file {
                Some(f) => {
                    let yaml = read_text_file(f)?;
                    FlowTemplate::from_yaml(&yaml).with_context(|| format!("{}", f.display()))?;
                    Some(yaml)
                }
                None => None,
            };
            let url = ctx.org_url(&["flows"]);
            let body = PutFlowRequest {
                name,
                description,
                template_yaml,
            };
            if ctx.dry_run("PUT", &url, &body, &[])? {
                return Ok(ExitCode::SUCCESS);
            }
            let r: Saved<Flow> = ctx.client.send_json(Method::PUT, url, &body).await?;
            output::either(ctx.global.output, &r, |r| {
                let verb = if r.created { "created" } else { "updated" };
                match r.value.template_version {
                    Some(v) => {
                        println!("flow '{}' was {verb} (template version {v})", r.value.name)
                    }
                    None => println!("flow '{}' was {verb}", r.value.name),
                }
            })?;
        }
        CreateCmd::AttestationType {
            name,
            schema,
            jq,
            description,
        } => {
            names::validate("attestation type name", &name)?;
            let schema_json = read_json_file(&schema)?;
            custom_type::validate_definition(&schema_json, &jq)
                .with_context(|| format!("{}", schema.display()))?;
            let url = ctx.org_url(&["attestation-types"]);
            let body = CreateAttestationTypeRequest {
                name,
                description,
                schema: schema_json,
                jq_rules: jq,
            };
            if ctx.dry_run("POST", &url, &body, &[])? {
                return Ok(ExitCode::SUCCESS);
            }
            let r: AttestationType = ctx.client.send_json(Method::POST, url, &body).await?;
            output::either(ctx.global.output, &r, |r| {
                println!(
                    "attestation type '{}' version {} was created",
                    r.name, r.version
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn whoami(ctx: Ctx) -> anyhow::Result<ExitCode> {
    let r: WhoAmI = ctx
        .client
        .get(ctx.client.url(&["api", "v1", "whoami"]))
        .await?;
    output::either(ctx.global.output, &r, |r| {
        output::fields(&[
            ("org", r.org.clone()),
            ("service account", r.service_account.clone()),
            ("role", r.role.to_string()),
            ("server admin", r.server_admin.to_string()),
        ])
    })?;
    Ok(ExitCode::SUCCESS)
}

/// RFC 3339, `YYYY-MM-DD`, or seconds since the epoch → milliseconds.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs * 1000);
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return Ok(d
            .to_zoned(jiff::tz::TimeZone::UTC)?
            .timestamp()
            .as_millisecond());
    }
    bail!("invalid --expires-at '{s}': use RFC 3339, YYYY-MM-DD or seconds since the epoch")
}
