//! Kosli's own directory test vectors (kosli-dev/cli, internal/digest and
//! cmd/kosli fingerprint tests), rebuilt as temporary trees.

use std::fs;
use std::path::Path;

use custody_fingerprint::kosli;

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir
}

fn fp(root: &Path, excludes: &[&str]) -> String {
    let ex: Vec<String> = excludes.iter().map(|s| s.to_string()).collect();
    kosli::hash_dir(root, &ex).unwrap().to_hex()
}

const NESTED: &str = "5d3c17dae9e208bbb92ee04ff8342abf77cb0959764def4af3ccfe9a2109d4a7";

#[test]
fn empty_directory() {
    let d = tree(&[]);
    assert_eq!(
        fp(d.path(), &[]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn single_files() {
    let cases = [
        (
            "file.extra",
            "this is known extra content",
            "c71f5baef8cce289c9b7c971cf219e21b787a025af68ad6539b82634fe62819e",
        ),
        (
            "sample.txt",
            "some content.",
            "388ab80164bbd9d96f132b046b8d09354f68b79a3668da7b507625cd1230dddf",
        ),
        (
            "sample.txt",
            "some content. And some more.",
            "5b0e14a923d7239b0a23750a6bbfc837f71e684b8bdc2909d5ff6d90e59449c1",
        ),
        (
            "sample.yaml",
            "some content. And some more.",
            "c38fbc1a99dad628142d0b7e2e05901362623d2b81e316d2cf650b08e93e0cef",
        ),
    ];
    for (name, content, want) in cases {
        let d = tree(&[(name, content)]);
        assert_eq!(fp(d.path(), &[]), want, "{name}: {content}");
    }
}

fn nested(extra: &[(&str, &str)], dir_name: &str) -> tempfile::TempDir {
    let f1 = format!("{dir_name}/file1");
    let f2 = format!("{dir_name}/file2");
    let mut files = vec![
        ("sample.yaml", "some content. And some more."),
        (f1.as_str(), "content1"),
        (f2.as_str(), "content2"),
    ];
    files.extend_from_slice(extra);
    tree(&files)
}

#[test]
fn nested_directories_and_renames() {
    assert_eq!(fp(nested(&[], "nested-dir").path(), &[]), NESTED);
    assert_eq!(
        fp(nested(&[], "nested-dir2").path(), &[]),
        "db40d79b3a15b17ee9fcc2f49aa73736e0073de6b5a35c459268bb9a31e55139"
    );
}

#[test]
fn excludes() {
    let d = nested(&[("logs/file1", "log")], "nested-dir");
    assert_eq!(fp(d.path(), &["logs"]), NESTED);
    assert_eq!(
        fp(d.path(), &["logs", "nested-dir/file1"]),
        "2acbc9efc1f86f89086a9539244946839599b3639da7f4959744c20234cb4f40"
    );
    let d = nested(
        &[("logs/file1", "log"), ("nested-dir/logs/log.txt", "x")],
        "nested-dir",
    );
    assert_eq!(fp(d.path(), &["logs", "*/logs"]), NESTED);
}

#[test]
fn ignore_file_is_hashed_and_applied() {
    const WANT: &str = "4048004ce6f91e8ce27c35e5e857948a46750567cf7c873ee32b120f4318363c";
    let d = nested(&[(".kosli_ignore", "logs\n*/logs")], "nested-dir");
    assert_eq!(fp(d.path(), &[]), WANT);
    let d = nested(
        &[
            (".kosli_ignore", "logs\n*/logs"),
            ("logs/a", "1"),
            ("nested-dir/logs/b", "2"),
        ],
        "nested-dir",
    );
    assert_eq!(fp(d.path(), &[]), WANT);
}

#[test]
fn server_folder_with_unmatched_exclude() {
    let d = tree(&[("empty.txt", ""), ("full.txt", "this is a full file")]);
    assert_eq!(
        fp(d.path(), &["empty"]),
        "51687c011a07c59b6ae9e774e6dc8b5b85343c1a0cfad2b5a0c3613744d19d2b"
    );
    assert_eq!(
        custody_fingerprint::file::hash_file(&d.path().join("full.txt"))
            .unwrap()
            .to_hex(),
        "ff9c0fc39bdcbd5770c67fb1bf49d10f1815fc028edf1a6d83ddb75b64ae85be"
    );
}

#[test]
fn symlinks_to_directories_hash_the_link_text() {
    let d = tree(&[("b/f", "x")]);
    std::os::unix::fs::symlink("b", d.path().join("a")).unwrap();
    let with_link = fp(d.path(), &[]);
    // Changing the link's target text changes the fingerprint even when the
    // target's contents are the same.
    fs::remove_file(d.path().join("a")).unwrap();
    std::os::unix::fs::symlink("./b", d.path().join("a")).unwrap();
    assert_ne!(fp(d.path(), &[]), with_link);
}

#[test]
fn broken_symlink_is_an_error() {
    let d = tree(&[("f", "x")]);
    std::os::unix::fs::symlink("missing", d.path().join("dangling")).unwrap();
    assert!(kosli::hash_dir(d.path(), &[]).is_err());
}

#[test]
fn a_file_is_not_a_directory() {
    let d = tree(&[("f", "x")]);
    assert!(kosli::hash_dir(&d.path().join("f"), &[]).is_err());
}
