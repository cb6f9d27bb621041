//! A real `custody server` on a random loopback port, driven by the real
//! `custody` binary.
#![allow(dead_code)]

pub mod browser;
pub mod docker;
pub mod kube_api;
pub mod moto;
pub mod provider;
pub mod receiver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const TOKEN: &str = "test-bootstrap-token-0123456789";

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct Server {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    args: Vec<std::ffi::OsString>,
    env: Vec<(String, String)>,
}

fn spawn(args: &[std::ffi::OsString], env: &[(String, String)]) -> (Child, String) {
    let mut cmd = Command::new(bin());
    // Test receivers listen on loopback; tests of the address check turn
    // this off through `env`.
    cmd.env("CUSTODY_NOTIFY_ALLOW_PRIVATE", "true");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.args(args)
        .env("CUSTODY_BOOTSTRAP_TOKEN", TOKEN)
        .env_remove("CUSTODY_DATABASE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Some(u) = line.strip_prefix("custody server listening on ") {
            break u.to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `len` bytes that compress badly and differ by `seed`: evidence files
/// whose every byte matters.
pub fn noise(len: u32, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_custody")
}

/// A fresh PostgreSQL database, or None when no server is configured (the
/// test is then skipped, unless CUSTODY_REQUIRE_POSTGRES is set).
pub fn postgres_url() -> Option<String> {
    let Ok(base) = std::env::var("CUSTODY_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CUSTODY_REQUIRE_POSTGRES").is_err(),
            "CUSTODY_REQUIRE_POSTGRES is set but CUSTODY_TEST_POSTGRES_URL is not"
        );
        return None;
    };
    let name = format!("c_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    });
    let (prefix, _) = base.rsplit_once('/').unwrap();
    Some(format!("{prefix}/{name}"))
}

impl Server {
    /// Starts a server, or returns None for PostgreSQL when none is configured.
    pub fn start(db: Db) -> Option<Server> {
        Self::start_with(db, &[])
    }

    pub fn start_with(db: Db, extra: &[&str]) -> Option<Server> {
        Self::start_env(db, extra, &[])
    }

    pub fn start_env(db: Db, extra: &[&str], env: &[(&str, &str)]) -> Option<Server> {
        Self::start_in(tempfile::tempdir().unwrap(), db, extra, env)
    }

    /// A server on `dir/data`, which may hold data already.
    pub fn start_in(
        dir: tempfile::TempDir,
        db: Db,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Option<Server> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "server".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().join("data").into(),
        ];
        args.extend(extra.iter().map(Into::into));
        if let Db::Postgres = db {
            args.push("--database".into());
            args.push(postgres_url()?.into());
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, url) = spawn(&args, &env);
        Some(Server {
            child,
            url,
            dir,
            args,
            env,
        })
    }

    /// Kills the server at once (SIGKILL: no shutdown of any kind) and
    /// starts it again on the same data, on a new port.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url) = spawn(&self.args, &self.env);
        self.child = child;
        self.url = url;
    }

    /// Waits for the server to exit on its own (after a signal); its code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the server did not exit within 30 s");
    }

    /// The server process's id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server for good (what follows must not need it).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn custody(&self) -> Cli {
        Cli::new(&self.url, TOKEN, self.dir.path())
    }

    /// The environment's latest snapshot number; 0 while it has none (or
    /// does not exist yet).
    pub fn latest_snapshot(&self, env: &str) -> u64 {
        let r = self
            .custody()
            .run(&["get", "environment", env, "--output", "json"]);
        if r.code != 0 {
            return 0;
        }
        r.json()["latest_snapshot"].as_u64().unwrap_or(0)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }
}

/// A `custody` invocation with the server's host and a key.
pub struct Cli {
    host: String,
    token: String,
    cwd: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "expected '{needle}' in stderr: {}",
            self.stderr
        );
        self
    }
}

impl Cli {
    /// What a pipeline records for a build: the flow, a trail, and the
    /// artifact it made (by fingerprint) under its template name.
    pub fn built(&self, flow: &str, trail: &str, name: &str, fingerprint: &str) {
        self.run(&["create", "flow", flow]).ok();
        self.run(&["begin", "trail", trail, "--flow", flow]).ok();
        self.run(&[
            "attest",
            "artifact",
            "--fingerprint",
            fingerprint,
            "--name",
            name,
            "--flow",
            flow,
            "--trail",
            trail,
        ])
        .ok();
    }

    /// `attest artifact FILE --artifact-type file` as template artifact
    /// `name` of a trail.
    pub fn attest_file(&self, file: &Path, name: &str, flow: &str, trail: &str) {
        let file = file.to_str().unwrap();
        self.run(&[
            "attest",
            "artifact",
            file,
            "--artifact-type",
            "file",
            "--name",
            name,
            "--flow",
            flow,
            "--trail",
            trail,
        ])
        .ok();
    }

    /// A generic verdict `name` about the artifact `fingerprint`.
    pub fn attest_verdict(
        &self,
        name: &str,
        fingerprint: &str,
        flow: &str,
        trail: &str,
        compliant: bool,
    ) {
        let compliant = format!("--compliant={compliant}");
        self.run(&[
            "attest",
            "generic",
            "--name",
            name,
            "--fingerprint",
            fingerprint,
            "--flow",
            flow,
            "--trail",
            trail,
            &compliant,
        ])
        .ok();
    }

    /// A generic attestation `name` with `attachments` (`--attachments`'s
    /// comma-separated paths), as the server recorded it.
    pub fn attest_attachments(
        &self,
        name: &str,
        flow: &str,
        trail: &str,
        attachments: &str,
    ) -> serde_json::Value {
        self.run(&[
            "attest",
            "generic",
            "--name",
            name,
            "--flow",
            flow,
            "--trail",
            trail,
            "--output",
            "json",
            "--attachments",
            attachments,
        ])
        .ok()
        .json()
    }

    /// `custody fingerprint PATH --artifact-type KIND`.
    pub fn fingerprint(&self, path: &str, kind: &str) -> String {
        self.run(&["fingerprint", path, "--artifact-type", kind])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    pub fn new(host: &str, token: &str, cwd: &Path) -> Cli {
        Cli {
            host: host.into(),
            token: token.into(),
            cwd: cwd.into(),
        }
    }

    pub fn with_token(&self, token: &str) -> Cli {
        Cli {
            host: self.host.clone(),
            token: token.into(),
            cwd: self.cwd.clone(),
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(&self.cwd)
            .env("CUSTODY_HOST", &self.host)
            .env("CUSTODY_API_TOKEN", &self.token)
            .env("CUSTODY_NO_CI_DETECT", "1")
            .env("HOME", &self.cwd)
            .env_remove("CUSTODY_ORG")
            .env_remove("CUSTODY_CONFIG_FILE")
            .env_remove("XDG_CONFIG_HOME");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out: Output = self.command().args(args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Generates `name::sqlite` and `name::postgres` tests from `fn name(db: Db)`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::common::Db::Sqlite);
            }
            #[test]
            fn postgres() {
                super::$name($crate::common::Db::Postgres);
            }
        }
    };
}

/// A process the test started (a watching reporter): killed when dropped.
pub struct Background(pub Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` for up to 30 seconds.
#[track_caller]
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Whether Python has `modules`: a test that needs them is skipped
/// without, unless CUSTODY_REQUIRE_TOOLS says they must be there.
pub fn python_has(modules: &str) -> bool {
    let have = std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have || std::env::var("CUSTODY_REQUIRE_TOOLS").is_err(),
        "Python's {modules} required (scripts/test installs them)"
    );
    have
}
