//! `custody evaluate`: Rego policies evaluated here, under Kosli's contract,
//! against trails fetched from the server (in Kosli's trail document shape)
//! or any JSON.
//!
//! Exit codes: 0 allowed; 1 denied (unless --no-assert); 2 when the policy
//! does not compile or breaks the contract, `allow` is undefined, or the
//! input or params are not JSON.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use custody_api::{Attestation, SlotStatus, TrailView};
use serde_json::{Map, Value, json};

use super::Ctx;
use crate::cli::{EvaluateCmd, Global, Output, RegoArgs};
use crate::output;
use crate::rego::LocalRego;

pub async fn run(global: Global, cmd: EvaluateCmd) -> anyhow::Result<ExitCode> {
    let out = global.output;
    match cmd {
        EvaluateCmd::Input { input_file, rego } => {
            let text = match input_file.as_deref() {
                None => read_stdin()?,
                Some(p) if p.as_os_str() == "-" => read_stdin()?,
                Some(p) => super::read_text_file(p)?,
            };
            let input: Value = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not valid JSON: {e}",
                    input_file
                        .as_deref()
                        .map_or("standard input".into(), |p| p.display().to_string())
                )
            })?;
            let loaded = load(&rego).await?;
            evaluate(out, &rego, loaded, input).await
        }
        EvaluateCmd::Trail {
            name,
            flow,
            rego,
            attestations,
        } => {
            // Compile first: a bad policy fails before anything is fetched.
            let loaded = load(&rego).await?;
            let ctx = Ctx::new(global).await?;
            let doc = trail_document(&ctx, &flow, &name, &attestations).await?;
            evaluate(out, &rego, loaded, json!({ "trail": doc })).await
        }
        EvaluateCmd::Trails {
            names,
            flow,
            rego,
            attestations,
        } => {
            let loaded = load(&rego).await?;
            let ctx = Ctx::new(global).await?;
            let mut docs = Vec::with_capacity(names.len());
            for n in &names {
                docs.push(trail_document(&ctx, &flow, n, &attestations).await?);
            }
            evaluate(out, &rego, loaded, json!({ "trails": docs })).await
        }
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("cannot read the input from standard input")?;
    Ok(s)
}

async fn load(a: &RegoArgs) -> anyhow::Result<LocalRego> {
    let text = super::read_text_file(&a.policy)?;
    let params = match a.params.as_deref() {
        None => None,
        Some(p) => {
            let text = match p.strip_prefix('@') {
                Some(file) => super::read_text_file(std::path::Path::new(file))?,
                None => p.to_string(),
            };
            Some(
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("failed to parse --params: {e}"))?,
            )
        }
    };
    LocalRego::load(&a.policy, text, params).await
}

async fn evaluate(
    out: Output,
    a: &RegoArgs,
    policy: LocalRego,
    input: Value,
) -> anyhow::Result<ExitCode> {
    let d = policy.evaluate(input.clone()).await?;
    let mut doc = json!({
        "allow": d.allow,
        "violations": if d.allow { Value::Null } else { json!(d.violations) },
    });
    if a.show_input {
        doc["input"] = input;
        doc["params"] = policy.params().cloned().unwrap_or(Value::Null);
    }
    output::either(out, &doc, |doc| {
        if a.show_input {
            println!(
                "INPUT: {}",
                serde_json::to_string_pretty(&doc["input"]).unwrap_or_default()
            );
        }
        if d.allow {
            println!("RESULT: ALLOWED");
        } else {
            println!("RESULT: DENIED");
            if !d.violations.is_empty() {
                println!("VIOLATIONS:");
                for v in &d.violations {
                    println!("  {v}");
                }
            }
        }
    })?;
    Ok(if d.allow || a.no_assert {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::fail::NON_COMPLIANT)
    })
}

/// A trail in the shape Kosli's `evaluate` gives policies: attestation
/// statuses as maps keyed by name (at trail level and per artifact), each
/// merged with the fields of its attestation, without overwriting.
async fn trail_document(
    ctx: &Ctx,
    flow: &str,
    trail: &str,
    keep: &[String],
) -> anyhow::Result<Value> {
    custody_domain::names::validate("flow name", flow)?;
    custody_domain::names::validate("trail name", trail)?;
    let t: TrailView = ctx
        .client
        .get(ctx.org_url(&["flows", flow, "trails", trail]))
        .await?;
    check_kept(&t, keep)?;
    Ok(document(&t, keep))
}

/// `--attestations` names what the trail has: a name it lacks would
/// silently leave the policy an empty map to judge.
fn check_kept(t: &TrailView, keep: &[String]) -> anyhow::Result<()> {
    let c = &t.compliance;
    let has: Vec<String> = c
        .attestations
        .iter()
        .map(|s| s.name.clone())
        .chain(c.artifacts.iter().flat_map(|a| {
            a.attestations
                .iter()
                .map(|s| format!("{}.{}", a.name, s.name))
        }))
        .collect();
    let lacking: Vec<&str> = keep
        .iter()
        .filter(|k| !has.contains(k))
        .map(String::as_str)
        .collect();
    if lacking.is_empty() {
        return Ok(());
    }
    let plural = if lacking.len() == 1 { "" } else { "s" };
    anyhow::bail!(
        "trail '{}' of flow '{}' has no attestation{plural} {} (it has: {})",
        t.name,
        t.flow,
        lacking
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", "),
        if has.is_empty() {
            "none".to_string()
        } else {
            has.join(", ")
        }
    )
}

pub fn document(t: &TrailView, keep: &[String]) -> Value {
    let keep_trail = |name: &str| keep.is_empty() || keep.iter().any(|k| k == name);
    let keep_artifact = |artifact: &str, name: &str| {
        keep.is_empty() || keep.iter().any(|k| *k == format!("{artifact}.{name}"))
    };
    let by_id = |id: &Option<String>| -> Option<&Attestation> {
        id.as_ref()
            .and_then(|id| t.attestations.iter().find(|a| a.id == *id))
    };
    let status = |slot: &SlotStatus| -> Value {
        let mut m = Map::new();
        m.insert("attestation_name".into(), json!(slot.name));
        m.insert(
            "attestation_type".into(),
            json!(slot.attestation_type.clone().or(slot.required_type.clone())),
        );
        m.insert("attestation_id".into(), json!(slot.attestation_id));
        m.insert("status".into(), json!(slot.status.as_str()));
        m.insert(
            "is_compliant".into(),
            json!(slot.status == custody_api::Status::Compliant),
        );
        m.insert("unexpected".into(), json!(slot.unexpected));
        if let Some(a) = by_id(&slot.attestation_id)
            && let Ok(Value::Object(fields)) = serde_json::to_value(a)
        {
            for (k, v) in fields {
                m.entry(k).or_insert(v);
            }
        }
        Value::Object(m)
    };
    let c = &t.compliance;
    let trail_atts: Map<String, Value> = c
        .attestations
        .iter()
        .filter(|s| keep_trail(&s.name))
        .map(|s| (s.name.clone(), status(s)))
        .collect();
    let artifacts: Map<String, Value> = c
        .artifacts
        .iter()
        .map(|a| {
            let atts: Map<String, Value> = a
                .attestations
                .iter()
                .filter(|s| keep_artifact(&a.name, &s.name))
                .map(|s| (s.name.clone(), status(s)))
                .collect();
            (
                a.name.clone(),
                json!({
                    "artifact_fingerprint": a.fingerprint,
                    "status": a.status.as_str(),
                    "is_compliant": a.compliant,
                    "unexpected": a.unexpected,
                    "attestations_statuses": atts,
                }),
            )
        })
        .collect();
    json!({
        "name": t.name,
        "flow": t.flow,
        "description": t.trail.description,
        "compliance_state": t.status.as_str(),
        "last_modified_at": t.trail.updated_at / 1000,
        "origin_url": t.trail.origin_url,
        "git_commit_info": t.trail.git_commit_info,
        "compliance_status": {
            "status": t.status.as_str(),
            "is_compliant": t.compliant,
            "attestations_statuses": trail_atts,
            "artifacts_statuses": artifacts,
        },
    })
}
