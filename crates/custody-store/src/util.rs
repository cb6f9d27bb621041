use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{StoreError, StoreResult};

pub(crate) fn now_ms() -> i64 {
    crate::clock::now_ms()
}

pub(crate) fn to_json(v: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Placeholders for a statement built at run time. SQLite resolves a
/// named `$N` by walking the statement's list of names, which makes
/// binding n of them cost n²/2; anonymous `?` have no name to look up.
/// PostgreSQL only understands `$N`.
pub(crate) struct Binds {
    anonymous: bool,
    n: usize,
}

impl Binds {
    pub fn new(c: &sqlx::AnyConnection) -> Self {
        Binds {
            anonymous: c.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME,
            n: 0,
        }
    }

    pub fn next(&mut self) -> String {
        self.n += 1;
        if self.anonymous {
            "?".to_string()
        } else {
            format!("${}", self.n)
        }
    }
}

/// An upper bound for the strings that start with `prefix`, for a range
/// query that both backends answer from an index: the prefix with its last
/// character moved one on (`api` → `apj`). Callers still check the prefix
/// of what comes back, since a database's collation may order some names
/// otherwise; with no such character (or no prefix), no bound.
pub(crate) fn prefix_upper(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    // Nothing bounds it: a string every name sorts below in practice.
    "\u{10FFFF}".repeat(4)
}
