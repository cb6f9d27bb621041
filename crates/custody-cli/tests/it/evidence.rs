//! The evidence vault and the server's surface: uploads, downloads,
//! limits, health, OpenAPI; and client behaviours (dry run, config file,
//! git commit details, exit codes).

use crate::common;

use common::{Cli, Db, Server};
use sha2::{Digest, Sha256};

fn setup(s: &Server) {
    let c = s.custody();
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
}

both!(attachments_are_stored_deduplicated_and_downloadable);
fn attachments_are_stored_deduplicated_and_downloadable(db: Db) {
    let Some(s) = Server::start(db) else { return };
    setup(&s);
    let c = s.custody();
    let big = common::noise(3_000_000, 0);
    std::fs::create_dir_all(s.path("reports/nested")).unwrap();
    std::fs::write(s.path("reports/big.bin"), &big).unwrap();
    std::fs::write(s.path("reports/nested/a.txt"), "alpha").unwrap();
    let single = s.write("single.txt", "alpha");
    let reports = s.path("reports");
    let a = c.attest_attachments(
        "scan",
        "f",
        "t",
        &format!("{},{}", reports.display(), single.display()),
    );
    let ev = a["evidence"].as_array().unwrap();
    let names: Vec<&str> = ev.iter().map(|e| e["filename"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["reports/big.bin", "reports/nested/a.txt", "single.txt"]
    );
    let big_sha = hex::encode(Sha256::digest(&big));
    assert_eq!(ev[0]["sha256"], big_sha.as_str());
    assert_eq!(ev[0]["size"], big.len() as u64);
    // Same content, one blob.
    assert_eq!(ev[1]["sha256"], ev[2]["sha256"]);
    let blob_files = walk(&s.path("data/blobs"));
    assert_eq!(blob_files.len(), 2, "{blob_files:?}");

    let out = s.path("downloaded.bin");
    c.run(&["get", "evidence", &big_sha, "-o", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&out).unwrap(), big);

    // Another organisation cannot read it, even knowing the hash.
    let key = c
        .run(&["create", "org", "other", "--output", "json"])
        .ok()
        .json()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    c.with_token(&key)
        .run(&[
            "--org",
            "other",
            "get",
            "evidence",
            &big_sha,
            "-o",
            s.path("stolen").to_str().unwrap(),
        ])
        .fails(2, "does not exist");
    assert!(!s.path("stolen").exists());

    // A corrupted blob is refused on download and no file is left.
    let stored = blob_files.iter().find(|p| p.ends_with(&big_sha)).unwrap();
    std::fs::write(stored, b"tampered").unwrap();
    let out2 = s.path("corrupt.bin");
    let r = c.run(&["get", "evidence", &big_sha, "-o", out2.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(!out2.exists());

    // Each file name leads to the blob its entry says.
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

/// The evidence vault on S3-compatible storage: moto's S3 server on loopback.
#[test]
fn evidence_in_s3_compatible_storage() {
    let moto = common::moto::Moto::start();
    moto.python("aws('s3').create_bucket(Bucket='evidence-bucket')");
    let endpoint = moto.endpoint.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let s = Server::start_env(
        Db::Sqlite,
        &["--blob-store", "s3://evidence-bucket/vault"],
        &env,
    )
    .unwrap();
    setup(&s);
    let c = s.custody();
    let data: Vec<u8> = (0..12_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(s.path("big.bin"), &data).unwrap();
    let copy = s.path("copy.bin");
    std::fs::write(&copy, &data).unwrap();
    let a = c.attest_attachments(
        "s3",
        "f",
        "t",
        &format!("{},{}", s.path("big.bin").display(), copy.display()),
    );
    let sha = hex::encode(Sha256::digest(&data));
    assert_eq!(a["evidence"][0]["sha256"], sha.as_str());
    let out = s.path("back.bin");
    c.run(&["get", "evidence", &sha, "-o", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let listing = rt.block_on(async {
        http.get(format!("{endpoint}/evidence-bucket?list-type=2"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let keys: Vec<&str> = listing
        .split("<Key>")
        .skip(1)
        .map(|k| k.split("</Key>").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [format!("vault/sha256/{}/{sha}", &sha[..2]).as_str()],
        "one object, no staging left"
    );
}

#[test]
fn uploads_over_the_limit_get_413_and_leave_nothing() {
    let s = Server::start_with(Db::Sqlite, &["--max-upload", "64KiB"]).unwrap();
    setup(&s);
    let c = s.custody();
    let small = s.write("small.txt", "ok");
    std::fs::write(s.path("big.bin"), vec![1u8; 200_000]).unwrap();
    c.run(&[
        "attest",
        "generic",
        "--name",
        "a",
        "--flow",
        "f",
        "--trail",
        "t",
        "--attachments",
        s.path("big.bin").to_str().unwrap(),
    ])
    .fails(2, "exceeds the limit of 65536 bytes");
    c.run(&[
        "attest",
        "generic",
        "--name",
        "a",
        "--flow",
        "f",
        "--trail",
        "t",
        "--attachments",
        small.to_str().unwrap(),
    ])
    .ok();
    let v = c
        .run(&["get", "trail", "t", "--flow", "f", "--output", "json"])
        .ok()
        .json();
    assert_eq!(v["attestations"].as_array().unwrap().len(), 1);
    assert_eq!(
        walk(&s.path("data/blobs")).len(),
        1,
        "no staging left behind"
    );
}

#[test]
fn health_readiness_and_openapi() {
    let s = Server::start(Db::Sqlite).unwrap();
    let get = |path: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let r = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    assert_eq!(get("/healthz").0, 200);
    let (code, body) = get("/readyz");
    assert_eq!(code, 200, "{body}");
    let (code, body) = get("/api/v1/openapi.json");
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/orgs/{org}/flows",
        "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}",
        "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/attestations",
        "/api/v1/orgs/{org}/evidence/{sha256}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let (code, body) = get("/api/v1/orgs/default/flows");
    assert_eq!(code, 401);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(err["error"].as_str().unwrap().contains("Authorization"));
}

#[test]
fn bootstrap_key_is_generated_once_and_kept_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = || {
        let mut child = std::process::Command::new(common::bin())
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env_remove("CUSTODY_BOOTSTRAP_TOKEN")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = String::new();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            out.push_str(&line);
            if line.contains("listening on") || line.is_empty() {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        out
    };
    let first = start();
    let token_file = data.join("bootstrap-token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    // Not a terminal here (container logs would keep it): only where the
    // key is is said.
    assert!(
        !first.contains(&token),
        "the key is not printed to a pipe: {first}"
    );
    assert!(first.contains("bootstrap-token"), "{first}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let second = start();
    assert!(!second.contains(&token), "not printed again: {second}");
}

#[test]
fn dry_run_sends_nothing_and_config_file_precedence() {
    let s = Server::start(Db::Sqlite).unwrap();
    let c = s.custody();
    let r = c.run(&["create", "flow", "dry", "--dry-run"]).ok();
    assert!(r.stdout.contains("DRY RUN: PUT"), "{}", r.stdout);
    c.run(&["get", "flow", "dry"]).fails(2, "does not exist");

    // Flags beat the environment, which beats the config file.
    let cfg = s.write(
        "custody.toml",
        "org = \"from-file\"\nhost = \"http://127.0.0.1:1\"\n",
    );
    let mut cmd = c.command();
    let out = cmd
        .env_remove("CUSTODY_HOST")
        .args(["--config-file", cfg.to_str().unwrap(), "list", "flows"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "unreachable host from the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"));
    let out = c
        .command()
        .env("CUSTODY_ORG", "default")
        .args(["--config-file", cfg.to_str().unwrap(), "list", "flows"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "env host and org win: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = s.write("bad.toml", "no-such-flag = 1\n");
    c.run(&["--config-file", bad.to_str().unwrap(), "list", "flows"])
        .fails(2, "unknown key 'no-such-flag'");
    // An empty variable counts as unset.
    let out = c
        .command()
        .env("CUSTODY_ORG", "")
        .args(["list", "flows"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn unreachable_server_and_missing_token_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cli::new("http://127.0.0.1:9", "k", dir.path());
    c.run(&["list", "flows"])
        .fails(3, "cannot reach http://127.0.0.1:9");
    let out = c
        .command()
        .env_remove("CUSTODY_API_TOKEN")
        .args(["list", "flows"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-token is not set"));
    c.run(&["no-such-command"])
        .fails(2, "unrecognized subcommand");
}

#[test]
fn git_commit_details_are_read_from_the_repository() {
    let s = Server::start(Db::Sqlite).unwrap();
    let repo = s.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .status()
            .unwrap();
        assert!(st.success());
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["remote", "add", "origin", "git@github.com:acme/app.git"]);
    std::fs::write(repo.join("f"), "x").unwrap();
    git(&["add", "f"]);
    git(&["commit", "-q", "-m", "Add f\n\nbody"]);
    let c = s.custody();
    c.run(&["create", "flow", "f"]).ok();
    c.run(&[
        "begin",
        "trail",
        "t",
        "--flow",
        "f",
        "--commit",
        "HEAD",
        "--repo-root",
        repo.to_str().unwrap(),
    ])
    .ok();
    let v = c
        .run(&["get", "trail", "t", "--flow", "f", "--output", "json"])
        .ok()
        .json();
    let g = &v["trail"]["git_commit_info"];
    assert_eq!(g["author"], "Ada <ada@example.com>");
    assert_eq!(g["branch"], "main");
    assert!(g["message"].as_str().unwrap().starts_with("Add f"));
    let sha = g["sha1"].as_str().unwrap();
    assert_eq!(sha.len(), 40);
    assert_eq!(
        g["url"],
        format!("https://github.com/acme/app/commit/{sha}").as_str()
    );
    c.run(&[
        "begin",
        "trail",
        "t2",
        "--flow",
        "f",
        "--commit",
        "deadbeef",
        "--repo-root",
        repo.to_str().unwrap(),
    ])
    .fails(2, "commit 'deadbeef' is not in the repository");
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
