//! Printing results as tables (default) or JSON.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::cli::Output;

/// Set once standard output cannot be written: nothing more is tried.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Why, when it was not a reader that went away.
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// What `println!` and `print!` do in this crate (see main.rs). A closed
/// pipe (the reader, `head` say, had enough) is not an error: the rest of
/// the output is dropped and the command ends with its own exit code. Any
/// other write error is kept for `main` to report.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe
            && let Ok(mut f) = FAILURE.lock()
        {
            *f = Some(e.to_string());
        }
    }
}

/// A write error of standard output other than a closed pipe, if any.
pub fn failure() -> Option<String> {
    // What is still buffered goes out now, so its error is seen here.
    if !CLOSED.load(Ordering::Relaxed)
        && let Err(e) = std::io::stdout().flush()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Some(e.to_string());
    }
    FAILURE.lock().ok().and_then(|f| f.clone())
}

pub fn json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

/// Key/value lines for one object.
pub fn fields(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        println!("{k:<width$}  {v}");
    }
}

pub fn either<T: Serialize>(
    output: Output,
    value: &T,
    table: impl FnOnce(&T),
) -> anyhow::Result<()> {
    match output {
        Output::Json => json(value),
        Output::Markdown => Err(markdown_not_here()),
        Output::Table => {
            table(value);
            Ok(())
        }
    }
}

/// `--output markdown` given to a command that has no Markdown form.
pub fn markdown_not_here() -> anyhow::Error {
    anyhow::anyhow!("--output markdown is for `get trail`; use table or json here")
}

pub fn time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => ms.to_string(),
    }
}

pub fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}
