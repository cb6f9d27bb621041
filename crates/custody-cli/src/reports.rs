//! Reading tools' reports from disk and parsing them with
//! `custody-evidence`, so that a bad file is refused here — with its path,
//! line and column — before anything is sent.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use custody_client::Attachment;
use custody_evidence::junit::{JunitParser, JunitSummary};
use custody_evidence::{Limits, ParseError};

/// A parsed report: its summary and the files it came from.
pub struct Report {
    /// The summary as JSON text, as it is sent.
    pub results: Box<serde_json::value::RawValue>,
    pub files: Vec<Attachment>,
}

/// Every `*.xml` below `dir`, in a stable order.
fn xml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta =
        std::fs::metadata(dir).with_context(|| format!("--results-dir {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("--results-dir {} is not a directory", dir.display());
    }
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", d.display()))?;
            let path = e.path();
            let ft = e
                .file_type()
                .with_context(|| format!("reading {}", path.display()))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && path.extension().is_some_and(|x| x == "xml") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn attachment(kind: &str, path: &Path, name: &str) -> anyhow::Result<Attachment> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    Ok(Attachment {
        name: format!("{kind}/{name}"),
        path: path.to_path_buf(),
        size,
    })
}

fn located(e: &ParseError, path: &Path) -> anyhow::Error {
    anyhow::anyhow!("{}", e.in_file(&path.display().to_string()))
}

pub fn junit(dir: &Path) -> anyhow::Result<Report> {
    let mut parser = JunitParser::new(Limits::default());
    let mut files = vec![];
    for path in xml_files(dir)? {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let f = std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
        parser
            .add_file(&rel, BufReader::with_capacity(64 << 10, f))
            .map_err(|e| located(&e, &path))?;
        files.push(attachment("junit", &path, &rel)?);
    }
    let summary: JunitSummary = parser.finish();
    if summary.totals.tests == 0 {
        bail!("no tests found in {} (--results-dir)", dir.display());
    }
    Ok(Report {
        results: serde_json::value::to_raw_value(&summary)?,
        files,
    })
}

/// Reads a whole report, refusing what is larger than the parsers accept
/// before reading it.
fn read(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    let limit = Limits::default().max_bytes;
    let meta = std::fs::metadata(path).with_context(|| format!("{flag} {}", path.display()))?;
    if !meta.is_file() {
        bail!("{flag} {} is not a file", path.display());
    }
    if meta.len() > limit {
        bail!(
            "{flag} {}: {} bytes is more than the {limit} bytes a report may have",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))
}

/// One-file reports: `sarif`, `snyk`, `trivy`, `grype`, `sbom`.
pub fn single(kind: &str, path: &Path, flag: &str) -> anyhow::Result<Report> {
    let bytes = read(path, flag)?;
    let limits = Limits::default();
    let results = match kind {
        "sarif" => custody_evidence::sarif::parse(&bytes, limits)
            .map(|s| serde_json::value::to_raw_value(&s)),
        "snyk" => custody_evidence::snyk::parse(&bytes, limits)
            .map(|s| serde_json::value::to_raw_value(&s)),
        "trivy" => custody_evidence::trivy::parse(&bytes, limits)
            .map(|s| serde_json::value::to_raw_value(&s)),
        "grype" => custody_evidence::grype::parse(&bytes, limits)
            .map(|s| serde_json::value::to_raw_value(&s)),
        "sbom" => custody_evidence::sbom::parse(&bytes, limits)
            .map(|s| serde_json::value::to_raw_value(&s)),
        other => bail!("no report parser for '{other}'"),
    }
    .map_err(|e| located(&e, path))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_string());
    Ok(Report {
        results: results?,
        files: vec![attachment(kind, path, &name)?],
    })
}
