//! The ledger's proofs, fetched from the server and checked here: what the
//! server says is only believed once the hashes and signatures agree.
//! Exit 0 when everything checked holds, 1 when a proof or signature does
//! not, 2 for bad input, 3 for server trouble.

use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_api::{
    Checkpoint, ConsistencyProof, InclusionProof, LedgerAudit, LedgerEntries, LedgerKey,
};
use custody_ledger::merkle::{Hash, verify_consistency, verify_inclusion};
use custody_ledger::note::{SignedCheckpoint, VerifierKey};
use serde::Serialize;

use super::Ctx;
use crate::cli::{
    CheckpointArgs, ConsistencyArgs, EntriesArgs, ExportIntotoArgs, Global, KeyArgs, LedgerCmd,
    ProveArgs, VerifyArgs,
};
use crate::fail::NON_COMPLIANT;
use crate::output;

pub async fn run(ctx: Ctx, c: LedgerCmd) -> anyhow::Result<ExitCode> {
    match c {
        LedgerCmd::Checkpoint(a) => checkpoint(&ctx, a).await,
        LedgerCmd::PublicKey => public_key(&ctx).await,
        LedgerCmd::Prove(a) => prove(&ctx, a).await,
        LedgerCmd::Consistency(a) => consistency(&ctx, a).await,
        LedgerCmd::Entries(a) => entries(&ctx, a).await,
        LedgerCmd::Verify(_) => {
            let audit: LedgerAudit = ctx.client.get(ctx.org_url(&["ledger", "verify"])).await?;
            report_audits(ctx.global.output, vec![audit])
        }
    }
}

/// `ledger verify --database`: every organisation (or `--org`'s) of the
/// database, read directly. The server's signing key is not at hand, so
/// signatures are checked only with `--public-key`.
pub async fn verify_database(global: &Global, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let url = a.database.as_deref().unwrap_or_default();
    let key = verifier(&a.key)?;
    let store = custody_store::Store::open(url)
        .await
        .map_err(|e| crate::fail::Environment(format!("cannot open database: {e}")))?;
    let orgs = match &global.org {
        Some(o) => vec![o.clone()],
        None => store.org_names().await?,
    };
    let mut audits = Vec::new();
    for org in orgs {
        // A key names one organisation's log: it checks that one only.
        let key = key
            .as_ref()
            .filter(|k| k.name().ends_with(&format!("/custody/{org}")));
        audits.push(store.verify_ledger(&org, key).await?);
    }
    store.close().await;
    report_audits(global.output, audits)
}

fn report_audits(out: crate::cli::Output, audits: Vec<LedgerAudit>) -> anyhow::Result<ExitCode> {
    let clean = audits.iter().all(|a| a.problems.is_empty());
    output::either(out, &audits, |audits| {
        for a in audits {
            println!(
                "org {}: {} entries (root {}), {} checkpoints ({} signatures checked), {} records: {}",
                a.org,
                a.entries,
                a.root,
                a.checkpoints,
                a.signatures,
                a.records,
                if a.problems.is_empty() {
                    "the store is what its ledger says".to_string()
                } else {
                    format!("{} problems", a.problems.len())
                }
            );
            if !a.problems.is_empty() {
                let rows = a
                    .problems
                    .iter()
                    .map(|p| {
                        vec![
                            p.seq.map_or("-".into(), |s| s.to_string()),
                            p.table.clone(),
                            p.key.clone().unwrap_or_else(|| "-".into()),
                            p.what.clone(),
                        ]
                    })
                    .collect();
                output::table(&["SEQ", "TABLE", "KEY", "PROBLEM"], rows);
            }
        }
    })?;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NON_COMPLIANT)
    })
}

fn hash(b64: &str, what: &str) -> anyhow::Result<Hash> {
    B64.decode(b64)
        .ok()
        .and_then(|b| Hash::try_from(b).ok())
        .with_context(|| {
            format!("the server sent {what} '{b64}', which is not a base64 SHA-256 hash")
        })
}

fn hashes(list: &[String], what: &str) -> anyhow::Result<Vec<Hash>> {
    list.iter().map(|h| hash(h, what)).collect()
}

fn verifier(k: &KeyArgs) -> anyhow::Result<Option<VerifierKey>> {
    k.public_key
        .as_deref()
        .map(|t| VerifierKey::parse(t).map_err(|e| anyhow::anyhow!("--public-key: {e}")))
        .transpose()
}

async fn fetch_checkpoint(ctx: &Ctx, size: Option<u64>) -> anyhow::Result<Checkpoint> {
    let mut url = ctx.org_url(&["ledger", "checkpoint"]);
    if let Some(s) = size {
        url.query_pairs_mut().append_pair("size", &s.to_string());
    }
    Ok(ctx.client.get(url).await?)
}

/// What was checked about a checkpoint.
#[derive(Debug, Serialize)]
struct CheckpointCheck {
    signature: &'static str,
    witnesses: Vec<String>,
}

/// Checks the note against the key, when one is given, and that the note
/// says what the server's fields say.
fn check_checkpoint(cp: &Checkpoint, key: Option<&VerifierKey>) -> anyhow::Result<CheckpointCheck> {
    let Some(key) = key else {
        return Ok(CheckpointCheck {
            signature: "not checked (no --public-key)",
            witnesses: cp.witnesses.clone(),
        });
    };
    let opened = SignedCheckpoint::open(&cp.note, key, &[])
        .map_err(|e| anyhow::anyhow!("the checkpoint does not verify: {e}"))?;
    if opened.checkpoint.size != cp.size || B64.encode(opened.checkpoint.root) != cp.root {
        bail!(
            "the signed checkpoint says size {} root {}, the server's answer size {} root {}",
            opened.checkpoint.size,
            B64.encode(opened.checkpoint.root),
            cp.size,
            cp.root
        );
    }
    Ok(CheckpointCheck {
        signature: "verified",
        witnesses: cp.witnesses.clone(),
    })
}

fn hashes_count(n: usize) -> String {
    if n == 1 {
        "1 hash".into()
    } else {
        format!("{n} hashes")
    }
}

/// Prints why nothing can be believed and returns exit code 1.
fn refuted(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("NOT VERIFIED: {what}");
    ExitCode::from(NON_COMPLIANT)
}

async fn checkpoint(ctx: &Ctx, a: CheckpointArgs) -> anyhow::Result<ExitCode> {
    let key = verifier(&a.key)?;
    let cp = fetch_checkpoint(ctx, a.size).await?;
    let check = match check_checkpoint(&cp, key.as_ref()) {
        Ok(c) => c,
        Err(e) => return Ok(refuted(e)),
    };
    #[derive(Serialize)]
    struct Out<'a> {
        checkpoint: &'a Checkpoint,
        check: CheckpointCheck,
    }
    output::either(
        ctx.global.output,
        &Out {
            checkpoint: &cp,
            check,
        },
        |o| {
            output::fields(&[
                ("origin", o.checkpoint.origin.clone()),
                ("tree size", o.checkpoint.size.to_string()),
                ("root", o.checkpoint.root.clone()),
                ("signed at", output::time(o.checkpoint.created_at)),
                ("signature", o.check.signature.to_string()),
                (
                    "witnesses",
                    if o.check.witnesses.is_empty() {
                        "none".into()
                    } else {
                        o.check.witnesses.join(", ")
                    },
                ),
            ]);
            println!("\n{}", o.checkpoint.note);
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn public_key(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let k: LedgerKey = ctx.client.get(ctx.org_url(&["ledger", "key"])).await?;
    output::either(ctx.global.output, &k, |k| println!("{}", k.verifier_key))?;
    Ok(ExitCode::SUCCESS)
}

async fn prove(ctx: &Ctx, a: ProveArgs) -> anyhow::Result<ExitCode> {
    let key = verifier(&a.key)?;
    let cp = fetch_checkpoint(ctx, a.tree_size).await?;
    let check = match check_checkpoint(&cp, key.as_ref()) {
        Ok(c) => c,
        Err(e) => return Ok(refuted(e)),
    };
    let mut url = ctx.org_url(&["ledger", "inclusion"]);
    url.query_pairs_mut()
        .append_pair("seq", &a.seq.to_string())
        .append_pair("tree_size", &cp.size.to_string());
    let p: InclusionProof = ctx.client.get(url).await?;
    let root = hash(&cp.root, "a root")?;
    let leaf = hash(&p.leaf_hash, "a leaf hash")?;
    let proof = hashes(&p.proof, "a proof hash")?;
    if p.tree_size != cp.size || p.seq != a.seq {
        return Ok(refuted(format!(
            "asked for entry {} in tree {}, the server proved entry {} in tree {}",
            a.seq, cp.size, p.seq, p.tree_size
        )));
    }
    if let Err(e) = verify_inclusion(a.seq, cp.size, &leaf, &proof, &root) {
        return Ok(refuted(format!(
            "entry {} is not proven in the tree of {} entries: {e}",
            a.seq, cp.size
        )));
    }
    #[derive(Serialize)]
    struct Out<'a> {
        proof: &'a InclusionProof,
        root: &'a str,
        checkpoint: CheckpointCheck,
        verified: bool,
    }
    let out = Out {
        proof: &p,
        root: &cp.root,
        checkpoint: check,
        verified: true,
    };
    output::either(ctx.global.output, &out, |o| {
        println!(
            "entry {} is in the ledger of {} entries (root {}): inclusion proof of {} verified; checkpoint signature {}",
            o.proof.seq,
            o.proof.tree_size,
            o.root,
            hashes_count(o.proof.proof.len()),
            o.checkpoint.signature
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn consistency(ctx: &Ctx, a: ConsistencyArgs) -> anyhow::Result<ExitCode> {
    let key = verifier(&a.key)?;
    let old = fetch_checkpoint(ctx, Some(a.old)).await?;
    let new = fetch_checkpoint(ctx, a.new).await?;
    for cp in [&old, &new] {
        if let Err(e) = check_checkpoint(cp, key.as_ref()) {
            return Ok(refuted(e));
        }
    }
    let mut url = ctx.org_url(&["ledger", "consistency"]);
    url.query_pairs_mut()
        .append_pair("old", &old.size.to_string())
        .append_pair("new", &new.size.to_string());
    let p: ConsistencyProof = ctx.client.get(url).await?;
    let proof = hashes(&p.proof, "a proof hash")?;
    let (r1, r2) = (hash(&old.root, "a root")?, hash(&new.root, "a root")?);
    if let Err(e) = verify_consistency(old.size, new.size, &r1, &r2, &proof) {
        return Ok(refuted(format!(
            "the ledger of {} entries is not proven a prefix of the ledger of {}: {e}",
            old.size, new.size
        )));
    }
    output::either(ctx.global.output, &p, |p| {
        println!(
            "the ledger of {} entries is a prefix of the ledger of {} entries: consistency proof of {} verified{}",
            p.old_size,
            p.new_size,
            hashes_count(p.proof.len()),
            if key.is_some() {
                ", both checkpoints' signatures verified"
            } else {
                " (signatures not checked: no --public-key)"
            }
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn entries(ctx: &Ctx, a: EntriesArgs) -> anyhow::Result<ExitCode> {
    let to = a.to.unwrap_or(a.from.saturating_add(99));
    if to < a.from {
        bail!("--to {to} is before --from {}", a.from);
    }
    let mut all = Vec::new();
    let mut next = a.from;
    while next <= to {
        let mut url = ctx.org_url(&["ledger", "entries"]);
        url.query_pairs_mut()
            .append_pair("from", &next.to_string())
            .append_pair("to", &to.to_string());
        let page: LedgerEntries = ctx.client.get(url).await?;
        let Some(last) = page.entries.last().map(|e| e.seq) else {
            break;
        };
        for e in &page.entries {
            let leaf = hash(&e.leaf_hash, "a leaf hash")?;
            if let Err(err) = custody_ledger::verify(&e.entry, &leaf) {
                return Ok(refuted(format!("entry {}: {err}", e.seq)));
            }
        }
        all.extend(page.entries);
        // A server that sends nothing new ends the listing.
        match last.checked_add(1) {
            Some(n) if n > next => next = n,
            _ => break,
        }
    }
    output::either(ctx.global.output, &all, |all| {
        let rows = all
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    output::time(e.ts),
                    e.kind.clone(),
                    e.entry.clone(),
                ]
            })
            .collect();
        output::table(&["SEQ", "TIME", "KIND", "ENTRY"], rows);
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `export intoto`: the envelopes, checked against `--public-key` when one
/// is given (the checkpoints' verifier key: the same Ed25519 key signs both).
pub async fn export_intoto(ctx: &Ctx, a: ExportIntotoArgs) -> anyhow::Result<ExitCode> {
    let key = verifier(&a.key)?;
    let url = ctx.org_url(&["flows", &a.flow, "trails", &a.trail, "intoto"]);
    let export: custody_api::IntotoExport = ctx.client.get(url).await?;
    let public: [u8; 32] = hex::decode(&export.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| {
            format!(
                "the server sent public key '{}', which is not 32 bytes of hex",
                export.public_key
            )
        })?;
    if let Some(k) = &key
        && k.encode() != export.verifier_key
    {
        return Ok(refuted(format!(
            "the envelopes are signed with {}, not with the --public-key given",
            export.verifier_key
        )));
    }
    for (i, e) in export.envelopes.iter().enumerate() {
        if let Err(err) = e.verify(&public) {
            return Ok(refuted(format!("envelope {i}: {err}")));
        }
    }
    for s in &export.skipped {
        eprintln!("warning: not exported: {s}");
    }
    match &a.output_dir {
        None => output::json(&export.envelopes)?,
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (i, e) in export.envelopes.iter().enumerate() {
                let statement: serde_json::Value = B64
                    .decode(&e.payload)
                    .ok()
                    .and_then(|p| serde_json::from_slice(&p).ok())
                    .unwrap_or_default();
                let kind = statement["predicateType"]
                    .as_str()
                    .and_then(|t| t.strip_prefix("https://custody.dev/"))
                    .unwrap_or("statement")
                    .trim_end_matches("/v1")
                    .replace('/', "-");
                let path = dir.join(format!("{i:02}-{kind}.intoto.json"));
                let text = serde_json::to_string_pretty(e)?;
                std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!(
                "{} envelopes written to {} (keyid {}; signatures {})",
                export.envelopes.len(),
                dir.display(),
                export.keyid,
                if key.is_some() {
                    "checked against --public-key"
                } else {
                    "checked against the key the server sent"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
