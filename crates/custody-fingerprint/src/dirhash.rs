//! The Dirhash Standard v0.1.0 with algorithm `sha256`, entry properties
//! `name` and `data`, empty directories excluded and cyclic links allowed:
//! the same value as `dirhash -a sha256 --allow-cyclic-links DIR`.
//!
//! - A file's entry descriptor is `data:<sha256 of its bytes>\0name:<name>`.
//! - A directory's entry descriptor is `dirhash:<its hash>\0name:<name>`.
//! - A directory's hash is the SHA-256 of its entries' descriptors, sorted
//!   and joined with `\0\0`.
//! - Symbolic links are followed. A link back to a directory on the current
//!   path (a cycle) is hashed as the relative path from the link to that
//!   directory instead of being descended.
//! - Entries that are neither directories nor regular files (sockets, FIFOs,
//!   broken links) are skipped, as the reference implementation does.
//! - `--exclude` patterns are gitignore-style and apply to files by their
//!   path relative to the root; a directory left empty is dropped.
//!
//! Files and sub-directories are hashed in parallel; the order of results is
//! fixed by sorting, so parallelism never changes the value.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rayon::prelude::*;

use crate::walk::{self, Entry};
use crate::{Digest, Error, Result, file};

pub fn hash_dir(root: &Path, excludes: &[String]) -> Result<Digest> {
    walk::ensure_dir(root)?;
    let filter = Filter::new(root, excludes)?;
    let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
    let ctx = Ctx { filter };
    let ancestors = vec![Ancestor {
        dev: meta.dev(),
        ino: meta.ino(),
        rel: String::new(),
    }];
    match ctx.dir(root, "", &ancestors)? {
        Some(d) => Ok(d),
        None => Err(Error::NothingToHash(root.to_path_buf())),
    }
}

struct Filter {
    ignore: Option<Gitignore>,
}

impl Filter {
    fn new(root: &Path, excludes: &[String]) -> Result<Self> {
        if excludes.is_empty() {
            return Ok(Filter { ignore: None });
        }
        let mut b = GitignoreBuilder::new(root);
        for p in excludes {
            b.add_line(None, p).map_err(|e| Error::BadPattern {
                pattern: p.clone(),
                reason: e.to_string(),
            })?;
        }
        let ignore = b.build().map_err(|e| Error::BadPattern {
            pattern: excludes.join(","),
            reason: e.to_string(),
        })?;
        Ok(Filter {
            ignore: Some(ignore),
        })
    }

    fn excludes_file(&self, rel: &str) -> bool {
        match &self.ignore {
            None => false,
            Some(g) => g.matched_path_or_any_parents(rel, false).is_ignore(),
        }
    }
}

#[derive(Clone)]
struct Ancestor {
    dev: u64,
    ino: u64,
    rel: String,
}

struct Ctx {
    filter: Filter,
}

enum Kind {
    /// A regular file (from its directory entry), or a link to one.
    File(PathBuf, bool),
    Dir {
        path: PathBuf,
        dev: u64,
        ino: u64,
    },
    Skip,
}

impl Ctx {
    /// The hash of a directory, or `None` when it holds nothing to hash.
    fn dir(&self, path: &Path, rel: &str, ancestors: &[Ancestor]) -> Result<Option<Digest>> {
        let entries = walk::read_sorted(path)?;
        let descriptors: Vec<Option<String>> = entries
            .par_iter()
            .map(|e| self.entry(e, rel, ancestors))
            .collect::<Result<_>>()?;
        let mut descriptors: Vec<String> = descriptors.into_iter().flatten().collect();
        if descriptors.is_empty() {
            return Ok(None);
        }
        descriptors.sort_unstable();
        Ok(Some(Digest::of(descriptors.join("\0\0").as_bytes())))
    }

    fn entry(&self, e: &Entry, parent_rel: &str, ancestors: &[Ancestor]) -> Result<Option<String>> {
        let name = walk::utf8_name(e)?;
        let rel = if parent_rel.is_empty() {
            name.to_string()
        } else {
            format!("{parent_rel}/{name}")
        };
        let kind = classify(e)?;
        let (prop, digest) = match kind {
            Kind::Skip => return Ok(None),
            Kind::File(path, regular) => {
                if self.filter.excludes_file(&rel) {
                    return Ok(None);
                }
                let digest = if regular {
                    file::hash_regular_file(&path)?
                } else {
                    file::hash_file(&path)?
                };
                ("data", digest)
            }
            Kind::Dir { path, dev, ino } => {
                // Patterns apply to files only: a directory whose files are all
                // excluded is still walked, because a cyclic link inside it
                // holds no files and keeps it (the reference does the same).
                let digest = if e.file_type.is_symlink()
                    && let Some(target) = ancestors.iter().find(|a| a.dev == dev && a.ino == ino)
                {
                    Digest::of(relpath(&target.rel, &rel).as_bytes())
                } else {
                    let mut inner = ancestors.to_vec();
                    inner.push(Ancestor {
                        dev,
                        ino,
                        rel: rel.clone(),
                    });
                    match self.dir(&path, &rel, &inner)? {
                        Some(d) => d,
                        None => return Ok(None),
                    }
                };
                ("dirhash", digest)
            }
        };
        let mut s = String::with_capacity(prop.len() + 72 + name.len());
        s.push_str(prop);
        s.push(':');
        digest.push_hex(&mut s);
        s.push_str("\0name:");
        s.push_str(name);
        Ok(Some(s))
    }
}

fn classify(e: &Entry) -> Result<Kind> {
    if e.file_type.is_file() {
        return Ok(Kind::File(e.path.clone(), true));
    }
    if e.file_type.is_dir() || e.file_type.is_symlink() {
        let meta = match fs::metadata(&e.path) {
            Ok(m) => m,
            // A broken link is neither a file nor a directory: skipped.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && e.file_type.is_symlink() => {
                return Ok(Kind::Skip);
            }
            Err(err) => return Err(Error::io(&e.path, err)),
        };
        if meta.is_dir() {
            return Ok(Kind::Dir {
                path: e.path.clone(),
                dev: meta.dev(),
                ino: meta.ino(),
            });
        }
        if meta.is_file() {
            return Ok(Kind::File(e.path.clone(), false));
        }
    }
    Ok(Kind::Skip)
}

/// `os.path.relpath(join(".", target), join(".", start))` for paths that
/// are both relative to the root and free of `.` and `..`.
fn relpath(target: &str, start: &str) -> String {
    let t: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
    let s: Vec<&str> = start.split('/').filter(|s| !s.is_empty()).collect();
    let common = t.iter().zip(&s).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = std::iter::repeat_n("..", s.len() - common).collect();
    parts.extend(&t[common..]);
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relpath_matches_python() {
        assert_eq!(relpath("", "a/b/c/link"), "../../../..");
        assert_eq!(relpath("a", "a/b/c/link"), "../../..");
        assert_eq!(relpath("x/y", "a/link"), "../../x/y");
    }
}
