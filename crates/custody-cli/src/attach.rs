//! Expanding `--attachments` into the files to upload.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use custody_client::Attachment;

/// Each file is attached under its name; a directory contributes every
/// regular file below it, named `dir/relative/path`.
pub fn collect(paths: &[String]) -> anyhow::Result<Vec<Attachment>> {
    let mut out = Vec::new();
    for p in paths {
        let path = PathBuf::from(p);
        let meta = std::fs::metadata(&path).with_context(|| format!("attachment {p}"))?;
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .unwrap_or_else(|| "attachment".to_string());
        if meta.is_file() {
            out.push(Attachment {
                name: base,
                path,
                size: meta.len(),
            });
        } else if meta.is_dir() {
            walk(&path, &base, &mut out)?;
        } else {
            bail!("attachment {p} is neither a file nor a directory");
        }
    }
    let mut seen = BTreeSet::new();
    for a in &out {
        if !seen.insert(a.name.clone()) {
            bail!(
                "two attachments would both be named '{}'; attach their parent directory instead",
                a.name
            );
        }
    }
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Attachment>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("attachment {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("attachment {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = format!("{prefix}/{}", e.file_name().to_string_lossy());
        let meta = std::fs::metadata(e.path())
            .with_context(|| format!("attachment {}", e.path().display()))?;
        if meta.is_dir() {
            walk(&e.path(), &name, out)?;
        } else if meta.is_file() {
            out.push(Attachment {
                name,
                path: e.path(),
                size: meta.len(),
            });
        }
    }
    Ok(())
}
