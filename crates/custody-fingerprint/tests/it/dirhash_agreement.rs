//! `custody fingerprint --artifact-type dir` must print what the reference
//! `dirhash -a sha256 --allow-cyclic-links DIR` prints, on any tree. This
//! test builds varied trees (nesting, empty directories, symlinks to files
//! and directories, cycles, broken links, odd names, excludes) and compares
//! with the Python reference implementation, which the test command installs.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use custody_fingerprint::dirhash;

/// A small deterministic generator so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: &[&str] = &[
    "a", "b", "B", "logs", "x.txt", "zz", "é-name", "sp ace", ".hidden", "data.bin",
];

fn build(dir: &Path, rng: &mut Rng, depth: u32, dirs: &mut Vec<std::path::PathBuf>) {
    dirs.push(dir.to_path_buf());
    let n = rng.below(5);
    for _ in 0..n {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize];
        let p = dir.join(name);
        if p.exists() || p.symlink_metadata().is_ok() {
            continue;
        }
        match rng.below(10) {
            0..=4 => {
                let len = rng.below(3000) as usize;
                let content: Vec<u8> = (0..len)
                    .map(|i| (i as u64 * 7 + rng.below(3)) as u8)
                    .collect();
                fs::write(&p, content).unwrap();
            }
            5..=7 if depth < 4 => {
                fs::create_dir(&p).unwrap();
                build(&p, rng, depth + 1, dirs);
            }
            8 => {
                // A link to an earlier directory: often an ancestor (a cycle).
                let target = &dirs[rng.below(dirs.len() as u64) as usize];
                symlink(target, &p).unwrap();
            }
            _ => {
                if rng.below(4) == 0 {
                    symlink("does-not-exist", &p).unwrap();
                } else {
                    fs::create_dir(&p).unwrap(); // empty directory
                }
            }
        }
    }
}

fn reference(dir: &Path, ignore: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "from dirhash.cli import main; main()",
        "-a",
        "sha256",
        "--allow-cyclic-links",
    ]);
    // `--ignore` takes several values, so the directory goes first.
    cmd.arg(dir);
    if !ignore.is_empty() {
        cmd.arg("--ignore").args(ignore);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[test]
fn agrees_with_reference_dirhash() {
    let probe = Command::new("python3")
        .args(["-c", "import dirhash"])
        .status();
    assert!(
        probe.map(|s| s.success()).unwrap_or(false),
        "the reference implementation is missing: pip install dirhash (the test command installs it)"
    );
    let mut compared = 0;
    for seed in 1..=40u64 {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("anchor"), format!("seed {seed}")).unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        build(&root, &mut rng, 0, &mut Vec::new());
        let ignores: &[&[&str]] = &[&[], &["logs"], &["*.txt", "b/"]];
        for ignore in ignores {
            let ours = dirhash::hash_dir(
                &root,
                &ignore.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            );
            match (reference(&root, ignore), ours) {
                (Ok(want), Ok(got)) => {
                    assert_eq!(got.to_hex(), want, "seed {seed}, ignore {ignore:?}")
                }
                (Err(_), Err(_)) => {}
                (want, got) => {
                    panic!("seed {seed}, ignore {ignore:?}: reference {want:?}, ours {got:?}")
                }
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 120);
}

#[test]
fn empty_directory_has_nothing_to_hash() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("empty-child")).unwrap();
    assert!(matches!(
        dirhash::hash_dir(tmp.path(), &[]),
        Err(custody_fingerprint::Error::NothingToHash(_))
    ));
}
