//! A new user's first hour: what they run first, and what they see.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Db, Server};

/// Runs `custody ARGS` with its output going to a reader that takes one
/// line and goes away, as `custody ... | head -1` does.
fn into_a_short_pipe(s: &Server, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = s.custody().command();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_the_output_not_the_command() {
    let Some(s) = Server::start(Db::Sqlite) else {
        return;
    };
    let c = s.custody();
    // Enough output that it cannot all sit in the pipe's buffer.
    for i in 0..300 {
        c.run(&[
            "create",
            "flow",
            &format!("flow-{i:03}"),
            "--description",
            &"a flow with a long description ".repeat(10),
        ])
        .ok();
    }
    for args in [
        &["list", "flows", "--output", "json"][..],
        &["list", "flows"][..],
    ] {
        let (code, stderr) = into_a_short_pipe(&s, args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    // A gate keeps its verdict: 1 for non-compliant, whatever reads it.
    c.run(&["create", "environment", "prod", "--type", "server"])
        .ok();
    let policy = s.write(
        "p.yml",
        "_schema: https://docs.kosli.com/schemas/policy/v1\nartifacts:\n  provenance:\n    required: true\n",
    );
    c.run(&["create", "policy", "prov", policy.to_str().unwrap()])
        .ok();
    c.run(&["attach-policy", "prov", "--environment", "prod"])
        .ok();
    let (code, stderr) = into_a_short_pipe(
        &s,
        &[
            "assert",
            "artifact",
            "--fingerprint",
            &"e".repeat(64),
            "--environment",
            "prod",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
