//! Flag values from the environment and a TOML config file.
//!
//! Precedence, highest first: command-line flag, `CUSTODY_<FLAG>`
//! environment variable, config file, default. clap reads flags and
//! environment; the config file is folded in by setting, before parsing,
//! the variable of every key that the environment does not already set. An
//! empty variable counts as unset.

use std::collections::BTreeSet;
use std::path::PathBuf;

pub fn env_name(flag: &str) -> String {
    format!("CUSTODY_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// The config file named by `--config-file`, `CUSTODY_CONFIG_FILE`, or the
/// default `~/.config/custody/config.toml` when it exists.
fn config_path(args: &[String]) -> Option<(PathBuf, bool)> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config-file" {
            return it.next().map(|p| (PathBuf::from(p), true));
        }
        if let Some(p) = a.strip_prefix("--config-file=") {
            return Some((PathBuf::from(p), true));
        }
    }
    if let Some(p) = std::env::var_os("CUSTODY_CONFIG_FILE").filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    let home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let p = home.join("custody").join("config.toml");
    p.exists().then_some((p, false))
}

/// Prepares the environment for clap. `known` holds every flag's variable
/// name, so unknown config keys are reported rather than ignored.
///
/// Must run before any other thread exists: it changes the environment.
pub fn prepare(args: &[String], known: &BTreeSet<String>) -> Result<(), String> {
    let empty: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            (k.starts_with("CUSTODY_") && v.is_empty()).then_some(k)
        })
        .collect();
    for k in empty {
        // SAFETY: called at the start of main, before any thread is spawned.
        unsafe { std::env::remove_var(k) };
    }
    let Some((path, explicit)) = config_path(args) else {
        return Ok(());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read config file {}: {e}", path.display())),
    };
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("invalid config file {}: {e}", path.display()))?;
    for (key, value) in table {
        let var = env_name(&key);
        if !known.contains(&var) || var == "CUSTODY_CONFIG_FILE" {
            return Err(format!(
                "unknown key '{key}' in config file {}",
                path.display()
            ));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Ok(other.to_string()),
                })
                .collect::<Result<Vec<_>, String>>()?
                .join(","),
            _ => {
                return Err(format!(
                    "config key '{key}' in {} must be a string, number, boolean or list",
                    path.display()
                ));
            }
        };
        if text.is_empty() {
            return Err(format!(
                "config key '{key}' in {} was given an empty value",
                path.display()
            ));
        }
        if std::env::var_os(&var).is_none() {
            // SAFETY: as above, still single-threaded.
            unsafe { std::env::set_var(&var, text) };
        }
    }
    Ok(())
}
