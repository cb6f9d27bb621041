//! Kosli's directory fingerprint, bit-exact (`kosli fingerprint -t dir`).
//!
//! The tree is walked depth-first in byte order of names, the root itself
//! not counted. Each entry appends the hex SHA-256 of its name, then:
//! a symlink to a directory appends the hash of the link text (and is not
//! descended); a regular file, or a symlink to one, appends the hash of the
//! content; a directory appends nothing more (its children follow). The
//! fingerprint is the SHA-256 of all those hex strings concatenated.
//!
//! Exclusions are globs joined to the root (`*` stays within one path
//! segment, `**` spans any number), from `--exclude` and from the lines of
//! `<root>/.kosli_ignore`. An excluded directory's whole subtree is skipped.

use std::fs;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use crate::walk::{self, Entry};
use crate::{Digest, Error, Result, file};

pub const IGNORE_FILE: &str = ".kosli_ignore";

pub fn hash_dir(root: &Path, excludes: &[String]) -> Result<Digest> {
    walk::ensure_dir(root)?;
    let mut patterns: Vec<String> = excludes.to_vec();
    let ignore_path = root.join(IGNORE_FILE);
    match fs::read_to_string(&ignore_path) {
        Ok(text) => patterns.extend(parse_ignore_file(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(ignore_path, e)),
    }
    let set = build_set(&patterns)?;
    let ctx = Ctx { root, set };
    let digests = ctx.dir(root)?;
    Ok(Digest::of(digests.as_bytes()))
}

/// One pattern a line; `#` starts a comment anywhere; blank lines dropped.
pub fn parse_ignore_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

fn build_set(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let normalized = normalize(p);
        let glob = GlobBuilder::new(&normalized)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::BadPattern {
                pattern: p.clone(),
                reason: e.kind().to_string(),
            })?;
        b.add(glob);
    }
    b.build().map_err(|e| Error::BadPattern {
        pattern: patterns.join(","),
        reason: e.kind().to_string(),
    })
}

/// Go's `filepath.Join(root, p)` cleans the pattern; mirror that on the
/// relative side: drop `./` and leading or doubled separators.
fn normalize(p: &str) -> String {
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

struct Ctx<'a> {
    root: &'a Path,
    set: GlobSet,
}

impl Ctx<'_> {
    /// The concatenated hex digests of everything below `dir`, in walk order.
    fn dir(&self, dir: &Path) -> Result<String> {
        let entries = walk::read_sorted(dir)?;
        let parts: Vec<String> = entries
            .par_iter()
            .map(|e| self.entry(e))
            .collect::<Result<_>>()?;
        Ok(parts.concat())
    }

    fn entry(&self, e: &Entry) -> Result<String> {
        let rel = walk::relative(self.root, &e.path);
        if self.set.is_match(&rel) {
            return Ok(String::new());
        }
        let mut out = String::with_capacity(128);
        Digest::of(e.name.as_encoded_bytes()).push_hex(&mut out);
        if e.file_type.is_dir() {
            out.push_str(&self.dir(&e.path)?);
            return Ok(out);
        }
        if e.file_type.is_symlink() {
            // A broken link fails here, as it does in Kosli.
            let target = fs::metadata(&e.path).map_err(|err| Error::io(&e.path, err))?;
            if target.is_dir() {
                let text = fs::read_link(&e.path).map_err(|err| Error::io(&e.path, err))?;
                Digest::of(text.as_os_str().as_encoded_bytes()).push_hex(&mut out);
                return Ok(out);
            }
        }
        let digest = if e.file_type.is_file() {
            file::hash_regular_file(&e.path)?
        } else {
            file::hash_file(&e.path)?
        };
        digest.push_hex(&mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_file_parsing() {
        assert!(parse_ignore_file("").is_empty());
        assert_eq!(parse_ignore_file("logs"), vec!["logs"]);
        assert_eq!(parse_ignore_file("\n  \n\t\nlogs\n"), vec!["logs"]);
        assert_eq!(
            parse_ignore_file("# comment\nlogs\n*/logs # eol  \n"),
            vec!["logs", "*/logs"]
        );
    }

    #[test]
    fn normalize_cleans_like_go_join() {
        assert_eq!(normalize("./logs"), "logs");
        assert_eq!(normalize("/a//b/"), "a/b");
    }
}
