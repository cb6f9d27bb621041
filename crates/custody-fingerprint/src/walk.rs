//! Directory listing shared by the directory algorithms.

use std::ffi::OsString;
use std::fs::{self, FileType};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub(crate) struct Entry {
    pub name: OsString,
    pub path: PathBuf,
    /// The entry's own type; a symlink is reported as a symlink.
    pub file_type: FileType,
}

/// Lists a directory sorted by the bytes of each name, the order both Go's
/// `filepath.WalkDir` and Python's `sorted` give for UTF-8 names.
pub(crate) fn read_sorted(dir: &Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        entries.push(Entry {
            name: entry.file_name(),
            path: entry.path(),
            file_type,
        });
    }
    entries.sort_unstable_by(|a, b| a.name.as_encoded_bytes().cmp(b.name.as_encoded_bytes()));
    Ok(entries)
}

pub(crate) fn utf8_name(entry: &Entry) -> Result<&str> {
    entry
        .name
        .to_str()
        .ok_or_else(|| Error::NonUtf8Name(entry.path.clone()))
}

/// The path of `path` relative to `root`, with `/` separators.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut out = String::new();
    for (i, c) in rel.components().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&c.as_os_str().to_string_lossy());
    }
    out
}

pub(crate) fn ensure_dir(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(Error::NotADirectory(path.to_path_buf()))
    }
}
