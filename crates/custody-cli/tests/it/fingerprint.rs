//! `custody fingerprint`: files, directories (both algorithms), OCI
//! layouts as directories and tarballs, and the errors.

use crate::common;

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

fn fp(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .arg("fingerprint")
        .args(args)
        .env_remove("CUSTODY_ARTIFACT_TYPE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn file_and_directories() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("file1"), "this is non empty").unwrap();
    let (code, out, _) = fp(&[
        d.path().join("file1").to_str().unwrap(),
        "--artifact-type",
        "file",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "1256d6510a6606ad61a4f6104243a291b18383b456d50205eba893b51e1807bc"
    );

    let tree = d.path().join("tree");
    std::fs::create_dir_all(tree.join("nested-dir")).unwrap();
    std::fs::write(tree.join("sample.yaml"), "some content. And some more.").unwrap();
    std::fs::write(tree.join("nested-dir/file1"), "content1").unwrap();
    std::fs::write(tree.join("nested-dir/file2"), "content2").unwrap();
    let t = tree.to_str().unwrap();
    let (code, kosli, _) = fp(&[t, "--artifact-type", "dir", "--dir-algorithm", "kosli"]);
    assert_eq!(code, 0);
    assert_eq!(
        kosli,
        "5d3c17dae9e208bbb92ee04ff8342abf77cb0959764def4af3ccfe9a2109d4a7"
    );
    let (_, kosli_ex, _) = fp(&[
        t,
        "-t",
        "dir",
        "--dir-algorithm",
        "kosli",
        "--exclude",
        "nested-dir/file1",
    ]);
    assert_ne!(kosli_ex, kosli);

    let (code, dirhash, _) = fp(&[t, "--artifact-type", "dir"]);
    assert_eq!(code, 0);
    assert_ne!(dirhash, kosli, "dirhash is the default directory algorithm");
    let reference = Command::new("python3")
        .args([
            "-c",
            "from dirhash.cli import main; main()",
            t,
            "-a",
            "sha256",
        ])
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "python dirhash is installed by the test command"
    );
    assert_eq!(dirhash, String::from_utf8_lossy(&reference.stdout).trim());

    let (code, json, _) = fp(&[t, "--artifact-type", "dir", "--output", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["fingerprint"], dirhash.as_str());
}

#[test]
fn errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("f"), "x").unwrap();
    let f = d.path().join("f");
    let (code, _, err) = fp(&[f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("--artifact-type is required"), "{err}");
    let (code, _, err) = fp(&[f.to_str().unwrap(), "-t", "dir"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a directory"), "{err}");
    let (code, _, err) = fp(&[d.path().to_str().unwrap(), "-t", "dir", "--exclude", ""]);
    assert_eq!(code, 2);
    assert!(err.contains("--exclude"), "{err}");
    let (code, _, err) = fp(&[d.path().to_str().unwrap(), "-t", "file"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a regular file"), "{err}");
    let (code, _, err) = fp(&[d.path().to_str().unwrap(), "-t", "oci"]);
    assert_eq!(code, 2);
    assert!(err.contains("index.json"), "{err}");
}

/// Writes a minimal OCI image layout and returns its manifest digest.
fn oci_layout(root: &Path, tags: &[&str]) -> Vec<String> {
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let put = |bytes: &[u8]| {
        let h = hex::encode(Sha256::digest(bytes));
        std::fs::write(blobs.join(&h), bytes).unwrap();
        h
    };
    let config =
        put(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#);
    let mut manifests = Vec::new();
    let mut digests = Vec::new();
    for tag in tags {
        let layer = put(format!("layer for {tag}").as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config}","size":80}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{layer}","size":12}}]}}"#
        );
        let m = put(manifest.as_bytes());
        manifests.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{m}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}"#,
            manifest.len()
        ));
        digests.push(m);
    }
    std::fs::write(
        root.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            manifests.join(",")
        ),
    )
    .unwrap();
    digests
}

#[test]
fn oci_layout_directory_and_tarball() {
    let d = tempfile::tempdir().unwrap();
    let layout = d.path().join("layout");
    let digests = oci_layout(&layout, &["v1"]);
    let (code, out, err) = fp(&[layout.to_str().unwrap(), "--artifact-type", "oci"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, digests[0]);

    for gz in [false, true] {
        let tar_path = d.path().join(if gz { "image.tar.gz" } else { "image.tar" });
        let st = Command::new("tar")
            .arg(if gz { "czf" } else { "cf" })
            .arg(&tar_path)
            .arg("-C")
            .arg(&layout)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let (code, out, err) = fp(&[tar_path.to_str().unwrap(), "--artifact-type", "oci"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, digests[0]);
    }

    let multi = d.path().join("multi");
    let digests = oci_layout(&multi, &["v1", "v2"]);
    let (code, _, err) = fp(&[multi.to_str().unwrap(), "-t", "oci"]);
    assert_eq!(code, 2);
    assert!(err.contains("--image-ref") && err.contains("v2"), "{err}");
    let (code, out, _) = fp(&[multi.to_str().unwrap(), "-t", "oci", "--image-ref", "v2"]);
    assert_eq!(code, 0);
    assert_eq!(out, digests[1]);

    // A manifest whose bytes do not match its name is refused.
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(&fp(&[layout.to_str().unwrap(), "-t", "oci"]).1),
        "tampered",
    )
    .unwrap();
    let (code, _, err) = fp(&[layout.to_str().unwrap(), "-t", "oci"]);
    assert_eq!(code, 2);
    assert!(err.contains("corrupt"), "{err}");
}

#[test]
fn docker_without_a_daemon_is_an_environment_error() {
    let (code, _, err) = {
        let out = Command::new(common::bin())
            .args(["fingerprint", "alpine:3", "--artifact-type", "docker"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::new(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("Docker daemon"), "{err}");
}
