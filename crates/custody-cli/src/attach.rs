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
            // Named by the user, so followed if it is a link; read by its
            // real path from here on.
            let path = std::fs::canonicalize(&path).with_context(|| format!("attachment {p}"))?;
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

/// Files below `dir`. A symbolic link is followed only to a file inside
/// the attached directory: one that leads out of it (a build step can
/// plant `reports/x -> ~/.aws/credentials`) is refused, and one to a
/// directory is left out (what it leads to inside the tree is attached
/// under its own name; outside it, it is not evidence).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<Attachment>) -> anyhow::Result<()> {
    let root =
        std::fs::canonicalize(dir).with_context(|| format!("attachment {}", dir.display()))?;
    walk_in(&root, dir, prefix, out)
}

fn walk_in(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<Attachment>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("attachment {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("attachment {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = format!("{prefix}/{}", e.file_name().to_string_lossy());
        let path = e.path();
        let link = std::fs::symlink_metadata(&path)
            .with_context(|| format!("attachment {}", path.display()))?;
        if link.file_type().is_symlink() {
            let target = std::fs::canonicalize(&path).with_context(|| {
                format!("attachment {} is a link that leads nowhere", path.display())
            })?;
            if !target.starts_with(root) {
                bail!(
                    "attachment {} is a link to {}, outside the attached directory {}: it is not attached; remove the link or attach its target explicitly",
                    path.display(),
                    target.display(),
                    root.display()
                );
            }
            let meta = std::fs::metadata(&target)
                .with_context(|| format!("attachment {}", path.display()))?;
            if meta.is_file() {
                out.push(Attachment {
                    name,
                    path: target,
                    size: meta.len(),
                });
            }
            continue;
        }
        if link.is_dir() {
            walk_in(root, &path, &name, out)?;
        } else if link.is_file() {
            out.push(Attachment {
                name,
                path,
                size: link.len(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_the_tree_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        std::fs::create_dir_all(reports.join("sub")).unwrap();
        std::fs::write(reports.join("a.xml"), "a").unwrap();
        std::fs::write(reports.join("sub/b.xml"), "bb").unwrap();
        let secret = dir.path().join("credentials");
        std::fs::write(&secret, "aws_secret_access_key=x").unwrap();
        // A link inside the tree is attached, as the file it leads to.
        std::os::unix::fs::symlink(reports.join("a.xml"), reports.join("c.xml")).unwrap();
        // A link to a directory inside it is not walked twice.
        std::os::unix::fs::symlink(reports.join("sub"), reports.join("loop")).unwrap();
        let got = collect(&[reports.display().to_string()]).unwrap();
        let names: Vec<&str> = got.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["reports/a.xml", "reports/c.xml", "reports/sub/b.xml"]
        );
        // A link out of it fails the whole command: nothing is sent.
        std::os::unix::fs::symlink(&secret, reports.join("x")).unwrap();
        let e = collect(&[reports.display().to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the attached directory"), "{e}");
        // Naming the file itself is the user's own choice.
        assert_eq!(collect(&[secret.display().to_string()]).unwrap().len(), 1);
    }
}
