//! What the people who run Custody use: whether a server is up, versions,
//! shell completion and manual pages.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use std::process::Command;

use crate::common::{Cli, Db, Server, bin};

#[test]
fn status_and_version_say_whether_the_server_is_up() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    let up = c.run(&["status", "--output", "json"]).ok().json();
    assert_eq!(up["ready"], true);
    assert_eq!(up["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(up["checks"]["database"], "ok");
    let text = c.run(&["status"]).ok().stdout;
    assert!(text.contains("is ready"), "{text}");
    // No key is needed to ask.
    let keyless = c.with_token("");
    let mut cmd = keyless.command();
    cmd.env_remove("CUSTODY_API_TOKEN").arg("status");
    assert!(cmd.output().unwrap().status.success());

    let v = c.run(&["version", "--output", "json"]).ok().json();
    assert_eq!(v["client"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["server"], env!("CARGO_PKG_VERSION"));

    // A port nothing listens on: down, exit 1, saying where it looked.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let gone = Cli::new(&format!("http://127.0.0.1:{port}"), "k", dir.path());
    let down = gone.run(&["status"]);
    assert_eq!(down.code, 1, "{}{}", down.stdout, down.stderr);
    assert!(down.stdout.contains("is down"), "{}", down.stdout);
    assert!(down.stdout.contains(&port.to_string()), "{}", down.stdout);
    let v = gone.run(&["version", "--output", "json"]).ok().json();
    assert_eq!(v["server"], serde_json::Value::Null);
}

#[test]
fn completion_scripts_are_valid_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = Command::new(bin())
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("custody") && script.contains("attest") && script.contains("snapshot"),
            "{shell}: {script:.200}"
        );
    }
    // bash itself reads the bash script: no syntax error, and it
    // completes a subcommand.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("custody.bash");
    let out = Command::new(bin())
        .args(["completion", "bash"])
        .output()
        .unwrap();
    std::fs::write(&script, out.stdout).unwrap();
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && COMP_WORDS=(custody att); COMP_CWORD=1; COMP_LINE='custody att'; COMP_POINT=11; _custody custody att custody && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        words.lines().any(|w| w == "attest") && words.lines().any(|w| w == "attach-policy"),
        "{words}"
    );
    let bad = Command::new(bin())
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("tcsh"));
}

#[test]
fn manual_pages_render() {
    let out = Command::new(bin()).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH custody 1"), "{page:.300}");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "custody.1",
        "custody-attest-junit.1",
        "custody-snapshot-k8s.1",
        "custody-server.1",
    ] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    // groff reads every page without a warning, when it is installed.
    if Command::new("groff").arg("-v").output().is_ok() {
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let path = e.unwrap().path();
            let r = Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                r.status.success() && r.stderr.is_empty(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&r.stderr)
            );
        }
    }
}

/// A throwaway certificate authority and a server certificate it signed
/// for `localhost` and 127.0.0.1, as PEM files in `dir`: (ca, cert, key).
fn pki(dir: &Path, tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("Custody test CA {tag}"));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let files = (
        dir.join(format!("ca-{tag}.pem")),
        dir.join(format!("server-{tag}.pem")),
        dir.join(format!("server-{tag}.key")),
    );
    std::fs::write(&files.0, ca_cert.pem()).unwrap();
    std::fs::write(&files.1, leaf.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

#[test]
fn the_cli_talks_tls_to_the_server_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_a, cert_a, key_a) = pki(dir.path(), "a");
    let (ca_b, cert_b, key_b) = pki(dir.path(), "b");
    // The files the server is pointed at, replaced later as a renewal is.
    let (cert, key) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
    std::fs::copy(&cert_a, &cert).unwrap();
    std::fs::copy(&key_a, &key).unwrap();
    let Some(s) = Server::start_with(
        Db::Sqlite,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    ) else {
        return;
    };
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let c = s.custody();
    let with_ca = |ca: &Path, args: &[&str]| {
        let mut cmd = c.command();
        cmd.env("CUSTODY_CA_CERT", ca).args(args);
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // The system's roots alone do not know this CA.
    c.run(&["whoami"]).fails(3, "certificate");
    let (code, out, err) = with_ca(&ca_a, &["whoami", "--output", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"org\""), "{out}");
    let (code, _, err) = with_ca(&ca_a, &["create", "flow", "over-tls"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = with_ca(&ca_a, &["status"]);
    assert_eq!(code, 0, "{out}");
    // By name too: the certificate is for localhost as well.
    let by_name = s.url.replace("127.0.0.1", "localhost");
    let mut cmd = c.command();
    cmd.env("CUSTODY_CA_CERT", &ca_a)
        .env("CUSTODY_HOST", &by_name)
        .args(["get", "flow", "over-tls"]);
    assert!(cmd.output().unwrap().status.success());
    // A CA file that holds no certificate is named.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let (code, _, err) = with_ca(&junk, &["whoami"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("junk.pem"), "{err}");

    // Sessions over TLS get Secure, __Host- cookies.
    let pem = std::fs::read(&ca_a).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let set_cookie = rt.block_on(async {
        let r = http.get(format!("{}/signin", s.url)).send().await.unwrap();
        r.headers()["set-cookie"].to_str().unwrap().to_string()
    });
    assert!(
        set_cookie.starts_with("__Host-") && set_cookie.contains("Secure"),
        "{set_cookie}"
    );

    // A renewed certificate (another CA here, to tell them apart) is
    // served after SIGHUP, without a restart.
    let hup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &s.pid().to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    std::fs::copy(&cert_b, &cert).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    hup();
    crate::common::wait_for("the renewed certificate", || {
        with_ca(&ca_b, &["whoami"]).0 == 0
    });
    assert_eq!(
        with_ca(&ca_a, &["whoami"]).0,
        3,
        "the old CA no longer vouches"
    );
    // A broken renewal keeps the certificate in use.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    hup();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(with_ca(&ca_b, &["whoami"]).0, 0);
}

#[test]
fn tls_files_that_cannot_be_used_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = pki(dir.path(), "a");
    let start = |args: &[&std::ffi::OsStr]| {
        Command::new(bin())
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(args)
            .env("CUSTODY_BOOTSTRAP_TOKEN", "a-bootstrap-token-of-16+")
            .output()
            .unwrap()
    };
    let missing = dir.path().join("missing.pem");
    let out = start(&[
        "--tls-cert".as_ref(),
        missing.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
    // A key that is not the certificate's.
    let (_, _, other_key) = pki(dir.path(), "b");
    let out = start(&[
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        other_key.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("do not make a usable pair"), "{err}");
    // One without the other.
    let out = start(&["--tls-cert".as_ref(), cert.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !dir.path().join("data").join("custody.db").exists(),
        "nothing created"
    );
}

#[test]
fn plain_http_across_a_network_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // TEST-NET-1: never a real host.
    let far = Cli::new("http://192.0.2.1:8080", "k", dir.path());
    far.run(&["whoami"]).fails(2, "--insecure-http");
    // Told it is fine, it tries (and cannot connect).
    far.run(&["whoami", "--insecure-http", "--timeout", "1s"])
        .fails(3, "192.0.2.1");
    // Loopback needs no such flag.
    let near = Cli::new("http://localhost:9", "k", dir.path());
    let r = near.run(&["whoami", "--timeout", "1s"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
}

#[test]
fn metrics_tell_an_operator_what_the_server_does() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    c.built("shop", "v1", "app", &"ab".repeat(32));
    c.run(&["create", "environment", "prod", "--type", "k8s"])
        .ok();
    c.run(&["create", "service-account", "watcher", "--role", "reader"])
        .ok();
    let reader = c
        .run(&[
            "create",
            "api-key",
            "--service-account",
            "watcher",
            "--output",
            "json",
        ])
        .ok()
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let get = |token: Option<&str>| {
        rt.block_on(async {
            let mut rb = reqwest::Client::new().get(format!("{}/metrics", s.url));
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            let r = rb.send().await.unwrap();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), ct, r.text().await.unwrap())
        })
    };
    assert_eq!(get(None).0, 401);
    assert_eq!(get(Some(&reader)).0, 403, "it names every organisation");
    let (status, ct, text) = get(Some(crate::common::TOKEN));
    assert_eq!(status, 200, "{text}");
    assert!(ct.unwrap().starts_with("text/plain; version=0.0.4"));
    let size = rt.block_on(async {
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/orgs/default/ledger/entries?from=0&to=0",
                s.url
            ))
            .bearer_auth(crate::common::TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["size"].as_u64().unwrap()
    });
    for want in [
        "custody_http_requests_total{method=\"POST\",route=\"/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/artifacts\",status=\"201\"} 1".to_string(),
        format!("custody_ledger_entries{{org=\"default\"}} {size}"),
        "custody_outbox_pending 0".to_string(),
        "custody_http_request_duration_seconds_bucket{".to_string(),
        "custody_store_write_seconds_count{result=\"ok\"}".to_string(),
    ] {
        assert!(text.contains(&want), "{want} in\n{text}");
    }
    // An environment reported once has an age; one never reported none.
    report_version(&rt, &s.url, 1);
    let (_, _, text) = get(Some(crate::common::TOKEN));
    assert!(
        text.contains(
            "custody_environment_last_report_age_seconds{org=\"default\",environment=\"prod\"}"
        ),
        "{text}"
    );
    // Prometheus's own parser reads all of it.
    if crate::common::python_has("prometheus_client") {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
                 n = sum(len(f.samples) for f in p(sys.stdin.read()))\nprint(n)",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(text.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let samples: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(samples > 20, "{samples}");
    }
}

#[test]
fn json_logs_carry_the_request_id_the_client_sees() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("CUSTODY_BOOTSTRAP_TOKEN", crate::common::TOKEN)
        .env_remove("RUST_LOG")
        .env_remove("CUSTODY_DATABASE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("custody server listening on ")
                .map(str::to_string)
        })
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (echoed, generated) = rt.block_on(async {
        let c = reqwest::Client::new();
        let a = c
            .get(format!("{url}/api/v1/whoami"))
            .bearer_auth(crate::common::TOKEN)
            .header("x-request-id", "trace-4711")
            .send()
            .await
            .unwrap();
        let b = c
            .get(format!("{url}/api/v1/whoami"))
            .bearer_auth(crate::common::TOKEN)
            .send()
            .await
            .unwrap();
        (
            a.headers()["x-request-id"].to_str().unwrap().to_string(),
            b.headers()["x-request-id"].to_str().unwrap().to_string(),
        )
    });
    assert_eq!(echoed, "trace-4711");
    assert_eq!(generated.len(), 16);
    let find = |id: &str| {
        let mut found = None;
        crate::common::wait_for("the request's log line", || {
            found = lines.lock().unwrap().iter().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
                (v["request_id"] == id).then_some(v)
            });
            found.is_some()
        });
        found.unwrap()
    };
    for id in [echoed.as_str(), generated.as_str()] {
        let v = find(id);
        assert_eq!(v["path"], "/api/v1/whoami", "{v}");
        assert_eq!(v["status"], 200, "{v}");
        assert_eq!(v["level"], "INFO", "{v}");
        assert!(v["latency_ms"].is_number(), "{v}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sigterm_lets_requests_in_flight_finish_and_exits_0() {
    let Some(mut s) = Server::start(Db::Sqlite) else {
        return;
    };
    let url = s.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Requests whose bodies arrive slowly: in flight when the signal comes.
    let slow = |name: String| {
        let url = url.clone();
        async move {
            let body = serde_json::to_vec(&serde_json::json!({"name": name})).unwrap();
            let chunks: Vec<Vec<u8>> = body.chunks(4).map(<[u8]>::to_vec).collect();
            let stream = futures::stream::iter(chunks).then(|c| async move {
                tokio::time::sleep(std::time::Duration::from_millis(60)).await;
                Ok::<_, std::io::Error>(c)
            });
            reqwest::Client::new()
                .put(format!("{url}/api/v1/orgs/default/flows"))
                .bearer_auth(crate::common::TOKEN)
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    };
    let pid = s.pid();
    let statuses = rt.block_on(async {
        let inflight: Vec<_> = (0..6)
            .map(|i| tokio::spawn(slow(format!("late-{i}"))))
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
        let mut out = vec![];
        for t in inflight {
            out.push(t.await.unwrap());
        }
        out
    });
    for st in &statuses {
        assert!(
            matches!(st, Ok(200 | 201)),
            "a request in flight was cut: {statuses:?}"
        );
    }
    let code = s.wait_exit();
    assert_eq!(code, Some(0), "a stop asked for is a clean exit");
    // What they wrote is there after a start.
    s.crash_and_restart();
    let flows = s
        .custody()
        .run(&["list", "flows", "--output", "json"])
        .ok()
        .json();
    let names: Vec<&str> = flows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for i in 0..6 {
        assert!(names.contains(&format!("late-{i}").as_str()), "{names:?}");
    }
}

#[test]
fn the_server_runs_in_its_container_image() {
    let Some(d) = crate::common::docker::docker() else {
        return;
    };
    let tag = format!("custody:test-{}", std::process::id());
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/image"))
        .args([tag.as_str(), bin()])
        .env("DOCKER_HOST", &d.host)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value =
        serde_json::from_str(&d.run(&["image", "inspect", &tag, "--format", "{{json .Config}}"]))
            .unwrap();
    assert_eq!(config["User"], "65532:65532", "not root");
    assert_eq!(config["Entrypoint"][0], "/usr/local/bin/custody");
    assert!(config["Volumes"].get("/data").is_some(), "{config}");
    let health = config["Healthcheck"]["Test"].to_string();
    assert!(health.contains("status"), "{health}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let name = format!("custody-test-{}", std::process::id());
    let listen = format!("127.0.0.1:{port}");
    let token_env = format!("CUSTODY_BOOTSTRAP_TOKEN={}", crate::common::TOKEN);
    d.run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &token_env,
        &tag,
        "server",
        "--listen",
        &listen,
        "--data-dir",
        "/data",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let c = Cli::new(&url, crate::common::TOKEN, dir.path());
    crate::common::wait_for("the server in its container", || {
        c.run(&["status"]).code == 0
    });
    c.run(&["create", "flow", "from-a-container"]).ok();
    c.run(&["get", "flow", "from-a-container"]).ok();
    // Its own health check, run inside it, as the engine will.
    d.run(&[
        "exec",
        &name,
        "/usr/local/bin/custody",
        "status",
        "--host",
        &url,
    ]);
    let _ = d.cmd().args(["rm", "-f", &name]).output();
    let _ = d.cmd().args(["rmi", "-f", &tag]).output();
}

/// The manifests as `kubectl apply -k` renders them, one overlay's
/// documents.
fn rendered(overlay: &str) -> Option<Vec<serde_json::Value>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes/");
    let Ok(out) = Command::new("kubectl")
        .args(["kustomize", &format!("{dir}{overlay}")])
        .output()
    else {
        assert!(
            std::env::var("CUSTODY_REQUIRE_TOOLS").is_err(),
            "kubectl is required (scripts/test installs it)"
        );
        return None;
    };
    assert!(
        out.status.success(),
        "{overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.split("\n---\n")
            .map(|d| serde_norway::from_str::<serde_json::Value>(d).unwrap())
            .collect(),
    )
}

fn find<'a>(
    docs: &'a [serde_json::Value],
    kind: &str,
    name: &str,
) -> Option<&'a serde_json::Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

/// Every flag and `CUSTODY_` variable a container is given is one this
/// binary knows: its arguments parse (`--help` after them), and each
/// variable is named in the help of the command it runs.
fn runs_as_written(container: &serde_json::Value) {
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let out = Command::new(bin())
        .args(&args)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = String::from_utf8_lossy(&out.stdout);
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap();
        assert!(
            help.contains(&format!("[env: {name}")) || help.contains(name),
            "{args:?} does not know {name}"
        );
    }
}

#[test]
fn the_kubernetes_manifests_validate_and_run_as_written() {
    let Some(base) = rendered("base") else {
        return;
    };
    let (postgres, polling) = (rendered("postgres").unwrap(), rendered("polling").unwrap());
    // Against the Kubernetes schemas, strictly (no unknown field).
    let have = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok();
    assert!(
        have || std::env::var("CUSTODY_REQUIRE_TOOLS").is_err(),
        "kubernetes-validate is required (scripts/test installs it)"
    );
    if have {
        let dir = tempfile::tempdir().unwrap();
        for (name, docs) in [
            ("base", &base),
            ("postgres", &postgres),
            ("polling", &polling),
        ] {
            let file = dir.path().join(format!("{name}.yaml"));
            let yaml: Vec<String> = docs
                .iter()
                .map(|d| serde_norway::to_string(d).unwrap())
                .collect();
            std::fs::write(&file, yaml.join("---\n")).unwrap();
            let out = Command::new("kubernetes-validate")
                .args(["--strict", "--quiet"])
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // The reporter may read pods and namespaces, nothing more.
    let role = find(&base, "ClusterRole", "custody-reporter").unwrap();
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]}])
    );
    let server = find(&base, "Deployment", "custody-server").unwrap();
    let reporter = find(&base, "Deployment", "custody-reporter").unwrap();
    assert_eq!(
        reporter["spec"]["template"]["spec"]["serviceAccountName"],
        "custody-reporter"
    );
    for d in [server, reporter] {
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        runs_as_written(&pod["containers"][0]);
    }
    let watch = &reporter["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(watch.as_array().unwrap().contains(&"--watch".into()));
    assert!(find(&base, "PersistentVolumeClaim", "custody-data").is_some());

    // PostgreSQL: replicas, no volume of their own, the shared keys.
    let server = find(&postgres, "Deployment", "custody-server").unwrap();
    assert_eq!(server["spec"]["replicas"], 2);
    assert!(find(&postgres, "PersistentVolumeClaim", "custody-data").is_none());
    runs_as_written(&server["spec"]["template"]["spec"]["containers"][0]);

    // Polling: a CronJob instead of the watching Deployment.
    assert!(find(&polling, "Deployment", "custody-reporter").is_none());
    let cron = find(&polling, "CronJob", "custody-reporter").unwrap();
    let container = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert!(
        !container["args"]
            .as_array()
            .unwrap()
            .contains(&"--watch".into())
    );
    runs_as_written(container);
}

#[test]
fn a_backup_taken_while_writing_restores_and_verifies() {
    // The log's name in its checkpoints is the server's public address:
    // a restored server keeps it to verify what was signed before.
    let public = ["--public-url", "https://custody.example.com"];
    let Some(s) = Server::start_with(Db::Sqlite, &public) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
    let evidence = crate::common::noise(200_000, 1);
    let file = s.path("report.bin");
    std::fs::write(&file, &evidence).unwrap();
    let a = c.attest_attachments("scan", "f", "t", file.to_str().unwrap());
    let sha = a["evidence"][0]["sha256"].as_str().unwrap().to_string();
    let data = s.dir.path().join("data");
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup");

    // Writes go on while the backup is taken.
    let writer = {
        let c = s.custody();
        std::thread::spawn(move || {
            for i in 0..25 {
                c.run(&["create", "flow", &format!("during-{i}")]).ok();
            }
        })
    };
    let admin = |args: &[&std::ffi::OsStr]| {
        Command::new(bin())
            .arg("admin")
            .args(args)
            .env_remove("CUSTODY_DATA_DIR")
            .env_remove("CUSTODY_DATABASE")
            .output()
            .unwrap()
    };
    let out = admin(&[
        "backup".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--to".as_ref(),
        backup.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    writer.join().unwrap();
    // Never over an earlier one.
    let again = admin(&[
        "backup".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--to".as_ref(),
        backup.as_os_str(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // A damaged backup is refused, and leaves no data directory behind.
    let damaged = work.path().join("damaged");
    Command::new("cp")
        .args(["-r"])
        .arg(&backup)
        .arg(&damaged)
        .status()
        .unwrap();
    let blob = damaged.join("blobs/sha256").join(&sha[..2]).join(&sha);
    std::fs::write(&blob, b"not what was attested").unwrap();
    let target = work.path().join("from-damaged");
    let out = admin(&[
        "restore".as_ref(),
        "--from".as_ref(),
        damaged.as_os_str(),
        "--data-dir".as_ref(),
        target.as_os_str(),
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not hash to its name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!target.exists(), "nothing half-restored");

    // Restored into a new directory, a server on it reads everything back
    // and its ledger verifies.
    let fresh = tempfile::tempdir().unwrap();
    let restored = fresh.path().join("data");
    let out = admin(&[
        "restore".as_ref(),
        "--from".as_ref(),
        backup.as_os_str(),
        "--data-dir".as_ref(),
        restored.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = Server::start_in(fresh, Db::Sqlite, &public, &[]).unwrap();
    let rc = r.custody();
    let audit = rc
        .run(&["ledger", "verify", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
    let got = r.path("got.bin");
    rc.run(&["get", "evidence", &sha, "-o", got.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&got).unwrap(), evidence);
    rc.run(&["get", "flow", "f"]).ok();
    // Same keys: the checkpoints are signed as before.
    let key = |c: &Cli| c.run(&["ledger", "public-key"]).ok().stdout;
    assert_eq!(key(&rc), key(&c));
}

both!(a_kill_9_under_load_loses_no_acknowledged_write);
fn a_kill_9_under_load_loses_no_acknowledged_write(db: Db) {
    // A fixed public address: the restart listens on another port, and the
    // log's name in its checkpoints must stay.
    let Some(mut s) = Server::start_with(db, &["--public-url", "https://custody.example.com"])
    else {
        return;
    };
    s.custody().run(&["create", "flow", "load"]).ok();
    let url = s.url.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Four clients write trails as fast as they can, each logging what the
    // server acknowledged.
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let (url, stop) = (url.clone(), stop.clone());
            rt.spawn(async move {
                let http = reqwest::Client::new();
                let mut acked = vec![];
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("c{k}-{i}");
                    i += 1;
                    let r = http
                        .put(format!("{url}/api/v1/orgs/default/flows/load/trails"))
                        .bearer_auth(crate::common::TOKEN)
                        .json(&serde_json::json!({"name": name}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => acked.push(name),
                        // The server is gone: what was not acknowledged
                        // may or may not be there.
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.crash_and_restart();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<String> = rt.block_on(async {
        let mut all = vec![];
        for c in clients {
            all.extend(c.await.unwrap());
        }
        all
    });
    assert!(acked.len() > 20, "the load was light: {}", acked.len());
    let url = s.url.clone();
    let present = trail_names(&rt, &url, "load");
    let c = s.custody();
    let lost: Vec<&String> = acked.iter().filter(|n| !present.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    // Nothing half-written: the store is what its ledger says.
    let audit = c.run(&["ledger", "verify", "--output", "json"]).ok().json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

/// Two servers on one PostgreSQL database and one S3 bucket (moto) are
/// interchangeable: writes through either land in one gap-free ledger,
/// evidence sent to one is read from the other, each notification goes
/// out once, and killing one mid-burst loses nothing acknowledged.
#[test]
fn two_replicas_share_one_database_and_one_bucket() {
    let Some(pg) = crate::common::postgres_url() else {
        return;
    };
    let moto = crate::common::moto::Moto::start();
    moto.python("aws('s3').create_bucket(Bucket='shared')");
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let shared = [
        "--database",
        pg.as_str(),
        "--blob-store",
        "s3://shared/vault",
        "--public-url",
        "https://custody.example.com",
    ];
    let a = Server::start_env(Db::Sqlite, &shared, &env).unwrap();
    // The second shares the first's sealing and signing keys.
    let keys = a.dir.path().join("data");
    let (secret, signing) = (keys.join("secret.key"), keys.join("ledger-signing.key"));
    let mut b_args = shared.to_vec();
    b_args.extend([
        "--secret-key-file",
        secret.to_str().unwrap(),
        "--signing-key",
        signing.to_str().unwrap(),
    ]);
    let mut b = Server::start_env(Db::Sqlite, &b_args, &env).unwrap();
    let (ca, cb) = (a.custody(), b.custody());
    ca.run(&["create", "flow", "shared"]).ok();
    cb.run(&["begin", "trail", "t", "--flow", "shared"]).ok();

    // Evidence written through one is read through the other.
    let bytes = crate::common::noise(300_000, 2);
    let file = a.path("scan.bin");
    std::fs::write(&file, &bytes).unwrap();
    let att = ca.attest_attachments("scan", "shared", "t", file.to_str().unwrap());
    let sha = att["evidence"][0]["sha256"].as_str().unwrap().to_string();
    let got = b.path("got.bin");
    cb.run(&["get", "evidence", &sha, "-o", got.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&got).unwrap(), bytes);

    // A webhook on an environment both replicas take reports for.
    let hook = crate::common::receiver::Receiver::start(crate::common::receiver::Behaviour::Ok);
    ca.run(&["create", "environment", "prod", "--type", "k8s"])
        .ok();
    ca.run(&[
        "create",
        "action",
        "hook",
        "--environment",
        "prod",
        "--on",
        "artifact-started",
        "--webhook",
        &hook.url,
    ])
    .ok();

    // Four clients write through both replicas; B dies mid-burst.
    let urls = [a.url.clone(), b.url.clone()];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let (urls, stop) = (urls.clone(), stop.clone());
            rt.spawn(async move {
                let http = reqwest::Client::new();
                let mut acked = vec![];
                let mut b_dead = false;
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("c{k}-{i}");
                    let via = if b_dead { 0 } else { (i as usize + k) % 2 };
                    i += 1;
                    let r = http
                        .put(format!(
                            "{}/api/v1/orgs/default/flows/shared/trails",
                            urls[via]
                        ))
                        .bearer_auth(crate::common::TOKEN)
                        .json(&serde_json::json!({"name": name}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => acked.push(name),
                        Ok(r) => panic!("{name} via {via}: {}", r.status()),
                        Err(_) if via == 1 => b_dead = true,
                        Err(e) => panic!("{name} via A: {e}"),
                    }
                }
                acked
            })
        })
        .collect();
    // Reports through both, each starting a new version: notifications.
    for v in 1..=6 {
        report_version(&rt, &urls[v % 2], v);
    }
    std::thread::sleep(std::time::Duration::from_millis(800));
    b.stop();
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<String> = rt.block_on(async {
        let mut all = vec![];
        for c in clients {
            all.extend(c.await.unwrap());
        }
        all
    });
    assert!(acked.len() > 40, "light load: {}", acked.len());

    // Every acknowledged trail, through the survivor.
    let present = trail_names(&rt, &a.url, "shared");
    let lost: Vec<&String> = acked.iter().filter(|n| !present.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    // One ledger, gap-free, verified with its checkpoints.
    let audit = ca
        .run(&["ledger", "verify", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        audit[0]["problems"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
    // Six versions started: six notifications, none twice (A delivers what
    // B had claimed when it died, after B's lease runs out).
    crate::common::wait_for("six notifications", || {
        let mut ids: Vec<String> = hook
            .requests()
            .iter()
            .map(|r| r.header("x-custody-delivery").to_string())
            .collect();
        ids.sort();
        ids.dedup();
        ids.len() >= 6
    });
    let ids: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.header("x-custody-delivery").to_string())
        .collect();
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "delivered twice: {ids:?}");
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_evidence_store_refuses_the_upload_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    std::fs::create_dir_all(&vault).unwrap();
    // Mounting needs root, which the test command has (it runs dockerd).
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&vault)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        assert!(
            std::env::var("CUSTODY_REQUIRE_TOOLS").is_err(),
            "mounting a tmpfs needs root"
        );
        return;
    }
    let _guard = Tmpfs(vault.clone());
    let blob_store = format!("file://{}", vault.display());
    let Some(s) = Server::start_with(Db::Sqlite, &["--blob-store", &blob_store]) else {
        return;
    };
    let c = s.custody();
    c.run(&["create", "flow", "f"]).ok();
    c.run(&["begin", "trail", "t", "--flow", "f"]).ok();
    let big = s.path("big.bin");
    std::fs::write(&big, vec![7u8; 3 << 20]).unwrap();
    let attest = |name: &str, file: &Path| {
        c.run(&[
            "attest",
            "generic",
            "--name",
            name,
            "--flow",
            "f",
            "--trail",
            "t",
            "--attachments",
            file.to_str().unwrap(),
        ])
    };
    let r = attest("too-big", &big);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("evidence store is full"), "{}", r.stderr);
    // Nothing of it is left, in the vault or in the record.
    let mut left = vec![];
    for e in walk(&vault) {
        left.push(e);
    }
    assert!(left.is_empty(), "partial files left: {left:?}");
    let trail = c
        .run(&["get", "trail", "t", "--flow", "f", "--output", "json"])
        .ok()
        .json();
    assert!(
        trail["attestations"].as_array().unwrap().is_empty(),
        "{trail}"
    );
    // It keeps serving: reads, and an upload that fits.
    let small = s.path("small.txt");
    std::fs::write(&small, "fits").unwrap();
    attest("fits", &small).ok();
    c.run(&["get", "trail", "t", "--flow", "f"]).ok();
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().map_while(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The service account's files where every pod has them, for one test,
/// removed when dropped.
struct ServiceAccountFiles(PathBuf);

impl Drop for ServiceAccountFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_k8s_reporter_finds_its_cluster_from_inside_it() {
    use crate::common::kube_api::{FakeKube, image_id, pod};
    let secrets = Path::new("/var/run/secrets");
    let sa = secrets.join("kubernetes.io");
    // Never over a real pod's service account; writing there needs root.
    if secrets.exists() || std::fs::create_dir_all(sa.join("serviceaccount")).is_err() {
        assert!(
            std::env::var("CUSTODY_REQUIRE_TOOLS").is_err() || secrets.exists(),
            "writing the service account's files needs root"
        );
        return;
    }
    let _files = ServiceAccountFiles(secrets.to_path_buf());
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(dir.path(), "cluster");
    let k = FakeKube::start_tls(
        &std::fs::read_to_string(&cert).unwrap(),
        &std::fs::read_to_string(&key).unwrap(),
    );
    k.namespace("shop");
    let fp = "e".repeat(64);
    k.put(pod(
        "shop",
        "cart-1",
        "Running",
        &[(
            "cart",
            "cart:7",
            &image_id("registry.example.com/cart", &fp),
        )],
    ));
    let account = sa.join("serviceaccount");
    std::fs::copy(&ca, account.join("ca.crt")).unwrap();
    std::fs::write(account.join("token"), "in-cluster-token").unwrap();
    std::fs::write(account.join("namespace"), "custody").unwrap();
    let port = k.url.rsplit(':').next().unwrap().to_string();

    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    let mut cmd = c.command();
    cmd.args(["snapshot", "k8s", "cluster", "--auto-environment"])
        .env_remove("KUBECONFIG")
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(k.tokens(), vec!["in-cluster-token".to_string()]);
    let snap = c
        .run(&["get", "snapshot", "cluster", "--output", "json"])
        .ok()
        .json();
    let fps: Vec<&str> = snap["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["fingerprint"].as_str())
        .collect();
    assert_eq!(fps, [fp.as_str()], "{snap}");
}

/// The names of a flow's trails, every page of them.
fn trail_names(
    rt: &tokio::runtime::Runtime,
    url: &str,
    flow: &str,
) -> std::collections::HashSet<String> {
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut names = std::collections::HashSet::new();
        for page in 1.. {
            let v: serde_json::Value = http
                .get(format!(
                    "{url}/api/v1/orgs/default/flows/{flow}/trails?page={page}&per_page=100"
                ))
                .bearer_auth(crate::common::TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let items = v["items"].as_array().unwrap();
            if items.is_empty() {
                break;
            }
            names.extend(
                items
                    .iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_string)),
            );
        }
        names
    })
}

#[test]
fn sigterm_lets_a_notification_under_way_finish_and_be_recorded() {
    use crate::common::receiver::{Behaviour, Receiver};
    let Some(mut s) =
        Server::start_with(Db::Sqlite, &["--public-url", "https://custody.example.com"])
    else {
        return;
    };
    let hook = Receiver::start(Behaviour::Slow(std::time::Duration::from_millis(1500)));
    let c = s.custody();
    c.run(&["create", "environment", "prod", "--type", "k8s"])
        .ok();
    c.run(&[
        "create",
        "action",
        "slow",
        "--environment",
        "prod",
        "--on",
        "artifact-started",
        "--webhook",
        &hook.url,
    ])
    .ok();
    let rt = tokio::runtime::Runtime::new().unwrap();
    report_version(&rt, &s.url, 1);
    // The receiver has it, and takes its time answering: stop now.
    crate::common::wait_for("the attempt to start", || !hook.requests().is_empty());
    assert!(
        Command::new("kill")
            .args(["-TERM", &s.pid().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(s.wait_exit(), Some(0));
    // Recorded as delivered before the exit: the next start sends nothing.
    s.crash_and_restart();
    let d = s
        .custody()
        .run(&["list", "deliveries", "--action", "slow", "--output", "json"])
        .ok()
        .json();
    assert_eq!(d[0]["state"], "delivered", "{d}");
    assert_eq!(d[0]["attempts"].as_array().unwrap().len(), 1, "{d}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(hook.requests().len(), 1, "sent once");
}

/// Reports that `prod` (a k8s environment) runs version `v` of `app`: a
/// new fingerprint per version.
fn report_version(rt: &tokio::runtime::Runtime, url: &str, v: usize) {
    rt.block_on(async {
        let r = reqwest::Client::new()
            .put(format!("{url}/api/v1/orgs/default/environments/prod/report"))
            .bearer_auth(crate::common::TOKEN)
            .json(&serde_json::json!({"type": "k8s", "artifacts": [
                {"name": format!("app:{v}"), "fingerprint": format!("{v:02x}").repeat(32), "instances": [{"id": "app-1"}]}
            ]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    });
}
