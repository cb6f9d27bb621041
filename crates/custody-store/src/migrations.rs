//! The schema's migrations, embedded in the binary.
//!
//! Listed by hand rather than with `sqlx::migrate!`: the macro needs sqlx's
//! `macros` feature, which compiles sqlx and the whole of SQLite's C source
//! a second time, for the compiler's host, in every clean build. The files
//! are the same bytes either way, so the checksums the databases recorded
//! still match. A test checks that the lists name every file.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Version, file name (which says what it does), SQL.
type Files = &'static [(i64, &'static str, &'static str)];

macro_rules! files {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        &[$(($version, $name, include_str!(concat!("../migrations/", $dir, "/", $name, ".sql")))),*]
    };
}

pub const SQLITE: Files = files!("sqlite":
    1 "0001_initial",
    2 "0002_sbom_components",
    3 "0003_environments",
    4 "0004_controls",
    5 "0005_notifications",
    6 "0006_judgement_marks",
    7 "0007_key_lifecycle",
    8 "0008_merkle",
    9 "0009_unobserved",
    10 "0010_ledger_by_kind",
    11 "0011_web_sessions",
    12 "0012_judge_dirty",
    13 "0013_attestation_latest",
    14 "0014_archive",
);

pub const POSTGRES: Files = files!("postgres":
    1 "0001_initial",
    2 "0002_sbom_components",
    3 "0003_environments",
    4 "0004_controls",
    5 "0005_notifications",
    6 "0006_judgement_marks",
    7 "0007_key_lifecycle",
    8 "0008_merkle",
    9 "0009_unobserved",
    10 "0010_ledger_by_kind",
    11 "0011_web_sessions",
    12 "0012_judge_dirty",
    13 "0013_attestation_latest",
    14 "0014_archive",
);

pub fn migrator(files: Files) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Owned(description(name)),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

/// As sqlx words it: the file name after the version, `_` as spaces.
fn description(name: &str) -> String {
    name.split_once('_')
        .map_or(name, |(_, rest)| rest)
        .replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_in_order() {
        for (dir, files) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut on_disk: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            on_disk.sort();
            let listed: Vec<String> = files.iter().map(|(_, n, _)| format!("{n}.sql")).collect();
            assert_eq!(listed, on_disk, "{dir}");
            for (version, name, _) in files {
                let from_name: i64 = name.split('_').next().unwrap().parse().unwrap();
                assert_eq!(*version, from_name, "{name}");
            }
        }
        assert_eq!(description("0002_sbom_components"), "sbom components");
    }
}
