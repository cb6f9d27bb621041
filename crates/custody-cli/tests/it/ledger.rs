//! The ledger's proofs end to end: signed checkpoints issued as the ledger
//! grows, inclusion and consistency proofs checked by the CLI, signatures
//! checked independently (Python's `cryptography`), and a witness that
//! cosigns the real log and refuses a forked one.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common;

use common::{Background, Db, Server, wait_for};
use custody_ledger::merkle::{Hash, consistency_proof_len};
use custody_ledger::note::{
    AddCheckpoint, Checkpoint, Note, SignedCheckpoint, SignerKey, VerifierKey,
};
use serde_json::Value;

fn ledger_size(c: &common::Cli) -> u64 {
    let v = c
        .run(&[
            "ledger", "entries", "--from", "0", "--to", "100000", "--output", "json",
        ])
        .ok()
        .json();
    v.as_array().unwrap().len() as u64
}

fn latest_checkpoint(c: &common::Cli) -> Option<Value> {
    let r = c.run(&["ledger", "checkpoint", "--output", "json"]);
    (r.code == 0).then(|| r.json()["checkpoint"].clone())
}

/// Waits for a checkpoint that covers the whole ledger as it is now.
pub(crate) fn checkpoint_of_everything(c: &common::Cli) -> Value {
    let size = ledger_size(c);
    let mut cp = Value::Null;
    wait_for("a checkpoint of the whole ledger", || {
        cp = latest_checkpoint(c).unwrap_or(Value::Null);
        cp["size"].as_u64().is_some_and(|s| s >= size)
    });
    cp
}

fn checkpoints_and_proofs(db: Db) {
    let Some(s) = Server::start_with(db, &["--checkpoint-interval", "100ms"]) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "flow", "backend"]).ok();
    for i in 0..6 {
        c.run(&["begin", "trail", &format!("t{i}"), "--flow", "backend"])
            .ok();
    }
    let key = c
        .run(&["ledger", "public-key"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let origin = key.split('+').next().unwrap().to_string();
    assert!(origin.ends_with("/custody/default"), "{key}");

    let cp = checkpoint_of_everything(&c);
    let size = cp["size"].as_u64().unwrap();
    assert_eq!(cp["origin"], origin.as_str());
    let note = cp["note"].as_str().unwrap();
    assert!(note.starts_with(&format!("{origin}\n{size}\n")), "{note}");

    // The CLI checks the signature with the key, and refuses another key.
    let r = c.run(&["ledger", "checkpoint", "--public-key", &key]).ok();
    assert!(r.stdout.contains("verified"), "{}", r.stdout);
    let other = SignerKey::from_seed(&origin, [1u8; 32])
        .unwrap()
        .verifier()
        .encode();
    c.run(&["ledger", "checkpoint", "--public-key", &other])
        .fails(1, "NOT VERIFIED");

    // Independently: Python's Ed25519 over the note text, key id and all.
    python_verifies_note(note, &key);

    // Every entry is proven in the signed tree.
    for seq in 0..size {
        let r = c
            .run(&[
                "ledger",
                "prove",
                &seq.to_string(),
                "--public-key",
                &key,
                "--output",
                "json",
            ])
            .ok();
        assert_eq!(r.json()["verified"], true);
    }
    c.run(&["ledger", "prove", &(size + 100).to_string()])
        .fails(2, "is not in a tree of");

    // The tree grows; the old checkpoint is a prefix of the new one.
    for i in 6..9 {
        c.run(&["begin", "trail", &format!("t{i}"), "--flow", "backend"])
            .ok();
    }
    let newer = checkpoint_of_everything(&c);
    assert!(newer["size"].as_u64().unwrap() > size);
    let r = c
        .run(&[
            "ledger",
            "consistency",
            &size.to_string(),
            "--public-key",
            &key,
        ])
        .ok();
    assert!(r.stdout.contains("is a prefix of"), "{}", r.stdout);
    // Any kept checkpoint can be fetched by size.
    let again = c
        .run(&[
            "ledger",
            "checkpoint",
            "--size",
            &size.to_string(),
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(again["checkpoint"]["root"], cp["root"]);

    // Entries come back checked against their leaf hashes.
    let entries = c
        .run(&[
            "ledger", "entries", "--from", "1", "--to", "3", "--output", "json",
        ])
        .ok()
        .json();
    let seqs: Vec<u64> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    // Numbers at the end of the range name nothing, and break nothing.
    for from in ["9223372036854775807", "18446744073709551615"] {
        let none = c
            .run(&["ledger", "entries", "--from", from, "--output", "json"])
            .ok()
            .json();
        assert_eq!(none, serde_json::json!([]));
    }

    // The whole store audited against its ledger, through the server (its
    // key checks the checkpoints' signatures)...
    let r = c.run(&["ledger", "verify"]).ok();
    assert!(
        r.stdout.contains("the store is what its ledger says"),
        "{}",
        r.stdout
    );
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert!(audit[0]["signatures"].as_u64().unwrap() >= 2, "{audit}");
    // ...and straight from the database, as an auditor with a copy would.
    if let Db::Sqlite = db {
        let url = format!(
            "sqlite://{}",
            s.dir.path().join("data/custody.db").display()
        );
        let r = c
            .run(&["ledger", "verify", "--database", &url, "--public-key", &key])
            .ok();
        assert!(r.stdout.contains("org default:"), "{}", r.stdout);
        assert!(
            r.stdout.contains("the store is what its ledger says"),
            "{}",
            r.stdout
        );
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&url).await.unwrap();
                sqlx::query("UPDATE ledger SET entry = REPLACE(entry, '\"t1\"', '\"tX\"') WHERE kind = 'trail'")
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            });
        let r = c.run(&["ledger", "verify", "--database", &url]);
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("leaf hash does not match the entry"),
            "{}",
            r.stdout
        );
    }
}
both!(checkpoints_and_proofs);

/// Verifies the note's signature with Python's `cryptography`, from the
/// verifier key alone, as an auditor's own tool would.
fn python_verifies_note(note: &str, vkey: &str) {
    let script = r#"
import base64, hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
note, vkey = sys.argv[1], sys.argv[2]
name, keyid, material = vkey.split('+', 2)
material = base64.b64decode(material)
assert material[0] == 1
pub = material[1:]
assert hashlib.sha256(name.encode() + b'\n\x01' + pub).digest()[:4].hex() == keyid
text, sigs = note.rsplit('\n\n', 1)
text += '\n'
for line in sigs.splitlines():
    signer, sig = line[2:].split(' ')
    raw = base64.b64decode(sig)
    if signer == name and raw[:4].hex() == keyid:
        Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], text.encode())
        print('ok')
        sys.exit(0)
sys.exit('no signature by ' + name)
"#;
    if !common::python_has("cryptography") {
        return;
    }
    let out = std::process::Command::new("python3")
        .args(["-c", script, note, vkey])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn post(url: &str, body: String) -> (u16, String) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let r = reqwest::Client::new()
                .post(url)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
}

fn witnessed_checkpoints(db: Db) {
    let seed = [7u8; 32];
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("signing.key");
    std::fs::write(&key_file, hex::encode(seed)).unwrap();
    let wdir = keys.path().join("witness");
    let wdir_s = wdir.to_str().unwrap();
    let bin = common::bin();
    let out = std::process::Command::new(bin)
        .args([
            "witness",
            "--print-key",
            "--data-dir",
            wdir_s,
            "--name",
            "witness.test/w1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wkey = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let port = free_port();
    let witness_url = format!("http://127.0.0.1:{port}");
    let Some(s) = Server::start_with(
        db,
        &[
            "--checkpoint-interval",
            "100ms",
            "--signing-key",
            key_file.to_str().unwrap(),
            "--public-url",
            "http://custody.test",
            "--witness",
            &format!("{witness_url}={wkey}"),
        ],
    ) else {
        return;
    };
    let c = s.custody();
    let log_key = c
        .run(&["ledger", "public-key"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(
        log_key.starts_with("custody.test/custody/default+"),
        "{log_key}"
    );

    let mut child = std::process::Command::new(bin)
        .args([
            "witness",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-key",
            &log_key,
        ])
        .args(["--data-dir", wdir_s, "--name", "witness.test/w1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("custody witness listening on"), "{first}");
    std::thread::spawn(move || for _ in lines {});
    let _witness = Background(child);

    // New entries after the witness is up get a cosigned checkpoint.
    c.run(&["create", "flow", "backend"]).ok();
    let mut cp = Value::Null;
    let mut n = 0;
    wait_for("a witnessed checkpoint", || {
        n += 1;
        c.run(&["begin", "trail", &format!("t{n}"), "--flow", "backend"])
            .ok();
        cp = latest_checkpoint(&c).unwrap_or(Value::Null);
        cp["witnesses"] == serde_json::json!(["witness.test/w1"])
    });
    let log_v = VerifierKey::parse(&log_key).unwrap();
    let w_v = VerifierKey::parse(&wkey).unwrap();
    let opened = SignedCheckpoint::open(cp["note"].as_str().unwrap(), &log_v, &[w_v]).unwrap();
    assert_eq!(opened.verified.cosigners.len(), 1, "{cp}");

    // Let the log settle: its whole ledger checkpointed and cosigned.
    let settled = checkpoint_of_everything(&c);
    wait_for("the settled checkpoint cosigned", || {
        let cp = latest_checkpoint(&c).unwrap_or(Value::Null);
        cp["size"] == settled["size"] && !cp["witnesses"].as_array().unwrap().is_empty()
    });

    // A forked log: the operator signs a checkpoint that does not extend
    // what the witness cosigned. The witness says where it is (409), then
    // refuses the fork (422), of the same size or a larger one.
    let add = format!("{witness_url}/add-checkpoint");
    let log = SignerKey::from_seed("custody.test/custody/default", seed).unwrap();
    let sign = |key: &SignerKey, size: u64, root: Hash| {
        let cp = Checkpoint {
            origin: key.name().to_string(),
            size,
            root,
            extensions: vec![],
        };
        let mut n = Note::new(&cp.text()).unwrap();
        n.signatures.push(key.sign(&n.text));
        n.encode()
    };
    let (status, body) = post(
        &add,
        AddCheckpoint {
            old: 0,
            proof: vec![],
            checkpoint: sign(&log, 1_000_000, [9u8; 32]),
        }
        .encode(),
    );
    assert_eq!(status, 409, "{body}");
    let at: u64 = body.trim().parse().unwrap();
    assert_eq!(at, settled["size"].as_u64().unwrap());
    let (status, body) = post(
        &add,
        AddCheckpoint {
            old: at,
            proof: vec![],
            checkpoint: sign(&log, at, [9u8; 32]),
        }
        .encode(),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("different roots"), "{body}");
    let bigger = at + 5;
    let proof = vec![[3u8; 32]; consistency_proof_len(at, bigger)];
    let (status, body) = post(
        &add,
        AddCheckpoint {
            old: at,
            proof,
            checkpoint: sign(&log, bigger, [9u8; 32]),
        }
        .encode(),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("not consistent") && body.contains("root"),
        "{body}"
    );
    // Signed by a key it does not trust for that origin: 403; an origin it
    // does not witness: 404.
    let stranger = SignerKey::from_seed("custody.test/custody/default", [5u8; 32]).unwrap();
    let (status, _) = post(
        &add,
        AddCheckpoint {
            old: at,
            proof: vec![],
            checkpoint: sign(&stranger, at, [0u8; 32]),
        }
        .encode(),
    );
    assert_eq!(status, 403);
    let elsewhere = SignerKey::from_seed("elsewhere.test/log", seed).unwrap();
    let (status, _) = post(
        &add,
        AddCheckpoint {
            old: 0,
            proof: vec![],
            checkpoint: sign(&elsewhere, 1, [0u8; 32]),
        }
        .encode(),
    );
    assert_eq!(status, 404);
    // The witness did not move: the real log is still cosigned after all this.
    let before = cp["size"].as_u64().unwrap();
    wait_for("a later witnessed checkpoint", || {
        n += 1;
        c.run(&["begin", "trail", &format!("t{n}"), "--flow", "backend"])
            .ok();
        let cp = latest_checkpoint(&c).unwrap_or(Value::Null);
        cp["size"].as_u64().is_some_and(|s| s > before.max(at))
            && !cp["witnesses"].as_array().unwrap().is_empty()
    });
}
both!(witnessed_checkpoints);

/// Python's securesystemslib verifies every envelope with the public key
/// alone, and in-toto-attestation validates every statement.
fn python_verifies_envelopes(
    dir: &std::path::Path,
    keyid: &str,
    public_hex: &str,
) -> Option<String> {
    let script = r#"
import glob, json, sys, base64
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from in_toto_attestation.v1.statement import Statement
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
directory, keyid, public = sys.argv[1:4]
key = SSlibKey(keyid, "ed25519", "ed25519", {"public": public})
out = []
for path in sorted(glob.glob(directory + "/*.intoto.json")):
    envelope = Envelope.from_dict(json.load(open(path)))
    envelope.verify([key], 1)
    pb = json_format.Parse(envelope.payload, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    st = json.loads(envelope.payload)
    out.append(st["predicateType"] + " " + ",".join(s["digest"]["sha256"][:8] for s in st["subject"]))
print("\n".join(out))
"#;
    if !common::python_has("securesystemslib, in_toto_attestation") {
        return None;
    }
    let out = std::process::Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap(), keyid, public_hex])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn a_trail_exports_as_signed_in_toto(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let file = s.write("app.bin", "the build");
    let fp = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(b"the build"))
    };
    c.run(&["create", "flow", "backend"]).ok();
    c.run(&["begin", "trail", "t1", "--flow", "backend"]).ok();
    c.attest_file(&file, "app", "backend", "t1");
    c.attest_verdict("tests", &fp, "backend", "t1", false);
    // Evidence about the trail, not an artifact: its subjects are the
    // trail's artifacts.
    c.run(&[
        "attest", "generic", "--name", "review", "--flow", "backend", "--trail", "t1",
    ])
    .ok();
    let key = c
        .run(&["ledger", "public-key"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let dir = s.path("intoto");
    let r = c
        .run(&[
            "export",
            "intoto",
            "--flow",
            "backend",
            "--trail",
            "t1",
            "--output-dir",
            dir.to_str().unwrap(),
            "--public-key",
            &key,
        ])
        .ok();
    assert!(r.stdout.contains("3 envelopes written"), "{}", r.stdout);
    // Another key: refused.
    let other = SignerKey::from_seed(key.split('+').next().unwrap(), [1u8; 32])
        .unwrap()
        .verifier()
        .encode();
    c.run(&[
        "export",
        "intoto",
        "--flow",
        "backend",
        "--trail",
        "t1",
        "--public-key",
        &other,
    ])
    .fails(1, "NOT VERIFIED");
    let all = c
        .run(&["export", "intoto", "--flow", "backend", "--trail", "t1"])
        .ok()
        .json();
    assert_eq!(all.as_array().unwrap().len(), 3);

    // The key as securesystemslib wants it: the same Ed25519 key.
    let vk = VerifierKey::parse(&key).unwrap();
    let public = {
        use base64::Engine;
        let material = base64::engine::general_purpose::STANDARD
            .decode(key.splitn(3, '+').nth(2).unwrap())
            .unwrap();
        assert_eq!(material[0], 1);
        material[1..].to_vec()
    };
    assert_eq!(vk.name(), key.split('+').next().unwrap());
    let keyid = custody_ledger::dsse::key_id(&public.clone().try_into().unwrap());
    if let Some(listing) = python_verifies_envelopes(&dir, &keyid, &hex::encode(&public)) {
        let short = &fp[..8];
        assert!(
            listing.contains(&format!("https://custody.dev/artifact/v1 {short}")),
            "{listing}"
        );
        assert!(
            listing.contains(&format!(
                "https://custody.dev/attestation/generic/v1 {short}"
            )),
            "{listing}"
        );
        assert_eq!(listing.lines().count(), 3, "{listing}");
    }
}
both!(a_trail_exports_as_signed_in_toto);

/// Statements signed by other tools' keys (securesystemslib's own signers,
/// Ed25519 and ECDSA P-256), written to `dir`: for `fp`, for another
/// digest, and one altered after signing.
fn python_signs_statements(dir: &std::path::Path, fp: &str) -> bool {
    let script = r#"
import json, sys
from securesystemslib.signer import CryptoSigner
from securesystemslib.dsse import Envelope
from cryptography.hazmat.primitives import serialization
d, fp = sys.argv[1:3]
def statement(digest):
    return json.dumps({"_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": digest}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://example.com/ci"}}}).encode()
ed, ec = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ecdsa()
def write(name, signer, payload):
    e = Envelope(payload=payload, payload_type="application/vnd.in-toto+json", signatures={})
    e.sign(signer)
    json.dump(e.to_dict(), open(f"{d}/{name}", "w"))
write("ed.json", ed, statement(fp))
write("ec.json", ec, statement(fp))
write("other.json", ed, statement("cd" * 32))
e = json.load(open(f"{d}/ed.json"))
e["payload"] = Envelope(payload=statement("ef" * 32), payload_type="x", signatures={}).to_dict()["payload"]
json.dump(e, open(f"{d}/altered.json", "w"))
json.dump(ed.public_key.to_dict(), open(f"{d}/ed.key.json", "w"))
open(f"{d}/ec.pem", "wb").write(ec._private_key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
"#;
    if !common::python_has("securesystemslib, cryptography") {
        return false;
    }
    std::fs::create_dir_all(dir).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap(), fp])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

both!(statements_signed_by_other_tools_are_imported);
fn statements_signed_by_other_tools_are_imported(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let c = s.custody();
    let file = s.write("app.bin", "app\n");
    let fp = c.fingerprint(file.to_str().unwrap(), "file");
    let dir = s.path("signed");
    if !python_signs_statements(&dir, &fp) {
        return;
    }
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    c.built("backend", "t1", "app", &fp);
    let attest = |envelope: &str, key: &str| {
        c.run(&[
            "attest",
            "intoto",
            "--name",
            "provenance",
            "--flow",
            "backend",
            "--trail",
            "t1",
            "--envelope",
            &p(envelope),
            "--public-key",
            &p(key),
            "--output",
            "json",
        ])
    };
    // Ed25519, key as securesystemslib writes it; ECDSA P-256, as PEM.
    for (envelope, key, algorithm) in [
        ("ed.json", "ed.key.json", "ed25519"),
        ("ec.json", "ec.pem", "ecdsa-p256-sha256"),
    ] {
        let a = attest(envelope, key).ok().json();
        assert_eq!(a["type"], "intoto");
        assert_eq!(a["compliant"], true);
        assert_eq!(a["fingerprint"], fp.as_str(), "{a}");
        assert_eq!(
            a["data"]["predicate_type"],
            "https://slsa.dev/provenance/v1"
        );
        assert_eq!(a["data"]["signed_by"]["algorithm"], algorithm);
        assert_eq!(
            a["attestation_data"]["predicate"]["buildDefinition"]["buildType"],
            "https://example.com/ci"
        );
        // The envelope itself is in the vault, for anyone to check again.
        assert_eq!(a["evidence"][0]["filename"], envelope, "{a}");
    }
    // The wrong key, an altered statement, a statement about something
    // else: refused, nothing recorded.
    attest("ed.json", "ec.pem").fails(2, "does not verify with --public-key");
    attest("altered.json", "ed.key.json").fails(2, "does not verify");
    c.run(&[
        "attest",
        "intoto",
        "--name",
        "provenance",
        "--flow",
        "backend",
        "--trail",
        "t1",
        "--envelope",
        &p("other.json"),
        "--public-key",
        &p("ed.key.json"),
        "--fingerprint",
        &fp,
    ])
    .fails(2, "the statement is not about --fingerprint");
    // Sent straight to the server (no CLI checks), it refuses as well.
    let body = serde_json::json!({
        "name": "provenance", "type": "intoto",
        "attestation_data": {
            "envelope": serde_json::from_str::<Value>(&std::fs::read_to_string(p("altered.json")).unwrap()).unwrap(),
            "public_key": std::fs::read_to_string(p("ed.key.json")).unwrap(),
        }
    });
    let r = crate::security::call(
        &s,
        "post",
        "/api/v1/orgs/default/flows/backend/trails/t1/attestations",
        common::TOKEN,
        Some(body.to_string().into_bytes()),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("does not verify"), "{}", r.body);
    let trail = c
        .run(&[
            "get", "trail", "t1", "--flow", "backend", "--output", "json",
        ])
        .ok()
        .json();
    let n = trail.to_string().matches("\"intoto\"").count();
    assert!(n >= 1, "{trail}");
}
