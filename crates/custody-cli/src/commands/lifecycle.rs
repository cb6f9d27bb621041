//! Renaming, archiving, restoring and regrouping what exists: `rename`,
//! `archive`, `unarchive`, `join`, `leave`. Each is one request; history is
//! never touched.

use std::process::ExitCode;

use custody_api::{AttestationType, Control, Environment, Flow, MembershipRequest, RenameRequest};
use custody_domain::names;
use custody_runtime::validate_environment_name;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Ctx;
use crate::cli::{ArchiveCmd, JoinCmd, LeaveCmd, MembershipArgs, RenameCmd, UnarchiveCmd};
use crate::output;

/// POSTs `body` to `path` and says `done` (or prints the answer as JSON).
async fn act<T: DeserializeOwned + Serialize>(
    ctx: &Ctx,
    path: &[&str],
    body: &impl Serialize,
    done: &str,
) -> anyhow::Result<ExitCode> {
    let url = ctx.org_url(path);
    if ctx.dry_run("POST", &url, body, &[])? {
        return Ok(ExitCode::SUCCESS);
    }
    let answer: T = ctx.client.send_json(Method::POST, url, body).await?;
    output::either(ctx.global.output, &answer, |_| println!("{done}"))?;
    Ok(ExitCode::SUCCESS)
}

fn nothing() -> serde_json::Value {
    serde_json::json!({})
}

pub async fn rename(ctx: Ctx, cmd: RenameCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RenameCmd::Environment { old, new } => {
            validate_environment_name(&old)?;
            validate_environment_name(&new)?;
            let body = RenameRequest {
                new_name: new.clone(),
            };
            let done = format!("environment '{old}' was renamed to '{new}'");
            act::<Environment>(&ctx, &["environments", &old, "rename"], &body, &done).await
        }
        RenameCmd::Flow { old, new } => {
            names::validate("flow name", &old)?;
            names::validate("flow name", &new)?;
            let body = RenameRequest {
                new_name: new.clone(),
            };
            let done = format!("flow '{old}' was renamed to '{new}'");
            act::<Flow>(&ctx, &["flows", &old, "rename"], &body, &done).await
        }
    }
}

pub async fn archive(ctx: Ctx, cmd: ArchiveCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ArchiveCmd::Environment { name } => {
            validate_environment_name(&name)?;
            let done = format!("environment '{name}' was archived");
            act::<Environment>(&ctx, &["environments", &name, "archive"], &nothing(), &done).await
        }
        ArchiveCmd::Flow { name } => {
            names::validate("flow name", &name)?;
            let done = format!("flow '{name}' was archived");
            act::<Flow>(&ctx, &["flows", &name, "archive"], &nothing(), &done).await
        }
        ArchiveCmd::AttestationType { name } => {
            names::validate("attestation type name", &name)?;
            let done = format!("attestation type '{name}' was archived");
            act::<AttestationType>(
                &ctx,
                &["attestation-types", &name, "archive"],
                &nothing(),
                &done,
            )
            .await
        }
        ArchiveCmd::Control { id } => {
            names::validate("control identifier", &id)?;
            let done = format!("control '{id}' was archived");
            act::<Control>(&ctx, &["controls", &id, "archive"], &nothing(), &done).await
        }
    }
}

pub async fn unarchive(ctx: Ctx, cmd: UnarchiveCmd) -> anyhow::Result<ExitCode> {
    let UnarchiveCmd::Control { id } = cmd;
    names::validate("control identifier", &id)?;
    let done = format!("control '{id}' was unarchived");
    act::<Control>(&ctx, &["controls", &id, "unarchive"], &nothing(), &done).await
}

async fn membership(ctx: Ctx, a: MembershipArgs, join: bool) -> anyhow::Result<ExitCode> {
    validate_environment_name(&a.logical)?;
    validate_environment_name(&a.physical)?;
    let body = MembershipRequest {
        physical_env_name: a.physical.clone(),
    };
    let (verb, done) = if join {
        (
            "join",
            format!("environment '{}' joined '{}'", a.physical, a.logical),
        )
    } else {
        (
            "leave",
            format!("environment '{}' left '{}'", a.physical, a.logical),
        )
    };
    act::<Environment>(&ctx, &["environments", &a.logical, verb], &body, &done).await
}

pub async fn join(ctx: Ctx, cmd: JoinCmd) -> anyhow::Result<ExitCode> {
    let JoinCmd::Environment(a) = cmd;
    membership(ctx, a, true).await
}

pub async fn leave(ctx: Ctx, cmd: LeaveCmd) -> anyhow::Result<ExitCode> {
    let LeaveCmd::Environment(a) = cmd;
    membership(ctx, a, false).await
}
