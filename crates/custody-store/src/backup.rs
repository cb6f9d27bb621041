//! A consistent copy of the embedded database while the server runs.

use std::path::Path;

use sqlx::ConnectOptions;

use crate::{StoreError, StoreResult};

/// Writes a copy of the SQLite database at `src` to `dest` (which must not
/// exist) with `VACUUM INTO`: one read transaction, so the copy is the
/// database as of one moment, whatever is written meanwhile, and compact.
pub async fn copy_sqlite(src: &Path, dest: &Path) -> StoreResult<()> {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(src)
        .read_only(true)
        .connect()
        .await?;
    let dest = dest
        .to_str()
        .ok_or_else(|| StoreError::Unprocessable(format!("{} is not UTF-8", dest.display())))?;
    sqlx::query("VACUUM INTO $1")
        .bind(dest)
        .execute(&mut conn)
        .await?;
    Ok(())
}
