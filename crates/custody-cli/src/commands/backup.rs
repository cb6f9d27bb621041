//! `custody admin backup` and `restore`: a copy of a server's data that
//! can be taken while it runs, and a new data directory made from one.
//!
//! The database is copied with SQLite's `VACUUM INTO` (one read
//! transaction: a consistent snapshot, whatever the server writes
//! meanwhile), then the evidence files. Files are content-addressed and
//! written before any record names them, and never changed or removed, so
//! every file the snapshot names is there when they are copied after it.
//! The keys that seal secrets and sign checkpoints go with them: without
//! them a restored server could not open its secrets nor sign as before.
//! Both commands write into a temporary sibling and rename it when done:
//! an interrupted run leaves nothing that looks like a backup or a data
//! directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cli::{BackupArgs, RestoreArgs};

const MANIFEST: &str = "custody-backup.json";
/// The files of a data directory besides the database and the blobs.
const KEYS: [&str; 2] = ["secret.key", "ledger-signing.key"];

#[derive(Serialize, Deserialize)]
struct Manifest {
    /// The version of custody that took it.
    custody: String,
    taken_at: String,
    database: FileSum,
    blobs: u64,
    blob_bytes: u64,
    keys: Vec<FileSum>,
}

#[derive(Serialize, Deserialize)]
struct FileSum {
    name: String,
    sha256: String,
    size: u64,
}

fn sum_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let got = std::io::Read::read(&mut f, &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if got == 0 {
            break;
        }
        h.update(&buf[..got]);
        n += got as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// A directory that does not exist yet (or is empty), and the temporary
/// sibling to fill before it is renamed into place.
fn fresh(target: &Path, what: &str) -> anyhow::Result<PathBuf> {
    if target.exists() {
        let empty = std::fs::read_dir(target)
            .with_context(|| format!("cannot read {}", target.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "{what} {} is not empty: give a new directory",
                target.display()
            );
        }
        std::fs::remove_dir(target)?;
    }
    let name = target
        .file_name()
        .with_context(|| format!("{what} {} has no name", target.display()))?;
    let tmp = target.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    restrict(&tmp)?;
    Ok(tmp)
}

/// Backups hold the server's keys: for its own user only.
fn restrict(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))
}

/// Copies every evidence file under `from` (the vault's `sha256/` tree)
/// to `to`, checking each against its name; (files, bytes).
fn copy_blobs(from: &Path, to: &Path) -> anyhow::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let root = from.join("sha256");
    if !root.exists() {
        return Ok((0, 0));
    }
    for shard in
        std::fs::read_dir(&root).with_context(|| format!("cannot read {}", root.display()))?
    {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        let out = to.join("sha256").join(shard.file_name());
        std::fs::create_dir_all(&out)?;
        for f in std::fs::read_dir(shard.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let dest = out.join(&name);
            std::fs::copy(f.path(), &dest)
                .with_context(|| format!("cannot copy {}", f.path().display()))?;
            let (sum, n) = sum_file(&dest)?;
            if sum != name {
                bail!(
                    "evidence file {name} does not hash to its name (it hashes to {sum}): the vault is damaged"
                );
            }
            files += 1;
            bytes += n;
        }
    }
    Ok((files, bytes))
}

fn sqlite_path(database: Option<&str>, data_dir: &Path) -> anyhow::Result<PathBuf> {
    match database {
        None => Ok(data_dir.join("custody.db")),
        Some(url) => match url.strip_prefix("sqlite://") {
            Some(p) => Ok(PathBuf::from(p.split('?').next().unwrap_or(p))),
            None => bail!(
                "--database {}: backup copies the embedded SQLite database; for PostgreSQL use pg_dump with the blobs and keys (docs/deploy.md)",
                url.split('@').next_back().unwrap_or("")
            ),
        },
    }
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let db = sqlite_path(args.database.as_deref(), &args.data_dir)?;
    if !db.exists() {
        bail!(
            "no database at {}: is --data-dir the server's?",
            db.display()
        );
    }
    let tmp = fresh(&args.to, "--to")?;
    let done = async {
        let copy = tmp.join("custody.db");
        custody_store::backup::copy_sqlite(&db, &copy)
            .await
            .with_context(|| format!("cannot copy {}", db.display()))?;
        let (sha, size) = sum_file(&copy)?;
        let (blobs, blob_bytes) = copy_blobs(&args.data_dir.join("blobs"), &tmp.join("blobs"))?;
        let mut keys = vec![];
        for k in KEYS {
            let from = args.data_dir.join(k);
            if from.exists() {
                std::fs::copy(&from, tmp.join(k))?;
                let (sha256, size) = sum_file(&tmp.join(k))?;
                keys.push(FileSum {
                    name: k.into(),
                    sha256,
                    size,
                });
            }
        }
        let manifest = Manifest {
            custody: env!("CARGO_PKG_VERSION").into(),
            taken_at: jiff::Timestamp::now().to_string(),
            database: FileSum {
                name: "custody.db".into(),
                sha256: sha,
                size,
            },
            blobs,
            blob_bytes,
            keys,
        };
        std::fs::write(tmp.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
        std::fs::rename(&tmp, &args.to)
            .with_context(|| format!("cannot move the backup to {}", args.to.display()))?;
        anyhow::Ok(manifest)
    }
    .await;
    let manifest = match done {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    println!(
        "backed up to {}: database {} bytes, {} evidence files ({} bytes), keys: {}",
        args.to.display(),
        manifest.database.size,
        manifest.blobs,
        manifest.blob_bytes,
        manifest
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read(args.from.join(MANIFEST)).with_context(|| {
        format!(
            "{} holds no {MANIFEST}: not a custody backup",
            args.from.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{}: unreadable", args.from.join(MANIFEST).display()))?;
    let tmp = fresh(&args.data_dir, "--data-dir")?;
    let done = (|| {
        let check = |name: &str, want: &FileSum| -> anyhow::Result<()> {
            let (sha, _) = sum_file(&args.from.join(name))?;
            if sha != want.sha256 {
                bail!(
                    "{name} in the backup is not what was backed up (SHA-256 {sha}, the manifest says {})",
                    want.sha256
                );
            }
            Ok(())
        };
        check("custody.db", &manifest.database)?;
        std::fs::copy(args.from.join("custody.db"), tmp.join("custody.db"))?;
        for k in &manifest.keys {
            check(&k.name, k)?;
            std::fs::copy(args.from.join(&k.name), tmp.join(&k.name))?;
        }
        let (blobs, _) = copy_blobs(&args.from.join("blobs"), &tmp.join("blobs"))?;
        if blobs != manifest.blobs {
            bail!(
                "the backup holds {blobs} evidence files, its manifest {}",
                manifest.blobs
            );
        }
        std::fs::rename(&tmp, &args.data_dir)
            .with_context(|| format!("cannot move the data to {}", args.data_dir.display()))?;
        Ok(())
    })();
    if let Err(e) = done {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    println!(
        "restored into {} (backup of {}, custody {}): start it with custody server --data-dir {}",
        args.data_dir.display(),
        manifest.taken_at,
        manifest.custody,
        args.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
