pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} '{name}' does not exist")]
    NotFound { what: &'static str, name: String },
    /// Something does not exist, said whole (when a name alone is not
    /// enough to say why).
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller's role or account does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The request is well-formed but does not fit what is stored (e.g. a
    /// fingerprint that is not in the trail).
    #[error("{0}")]
    Unprocessable(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("the transaction could not be committed: {0}")]
    Commit(String),
    #[error("blob store error: {0}")]
    Blob(String),
    /// The blob store has no room: the upload was not kept.
    #[error("the evidence store is full: the upload was not kept")]
    Full,
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Ledger(#[from] custody_ledger::Error),
    #[error("upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("upload interrupted: {0}")]
    Upload(String),
    /// A judgement could not be made: the program runner is unavailable.
    #[error("cannot judge: {0}")]
    Judge(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict(format!("already exists ({})", db.message()));
        }
        StoreError::Database(e)
    }
}

impl StoreError {
    pub(crate) fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            name: name.into(),
        }
    }
}
