use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Says the OS error itself (it is not also a `source`, which would
    /// print it twice in a chain of causes).
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    #[error("{0}: not a regular file")]
    NotAFile(PathBuf),
    #[error("{0}: nothing to hash (the directory holds no files once exclusions apply)")]
    NothingToHash(PathBuf),
    #[error("{0}: file name is not valid UTF-8")]
    NonUtf8Name(PathBuf),
    #[error("invalid exclude pattern '{pattern}': {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("{path}: not an OCI image layout: {reason}")]
    NotOciLayout { path: PathBuf, reason: String },
    #[error("{0}")]
    Docker(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}
