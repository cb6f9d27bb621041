//! SPDX 2.2 and 2.3, JSON and tag-value.

use std::collections::HashSet;

use serde::Deserialize;

use super::{Component, Hash, SbomSummary, is_hex};
use crate::error::{ParseError, Position};
use crate::json;
use crate::limits::Limits;

const VERSIONS: &[&str] = &["SPDX-2.2", "SPDX-2.3"];

fn checksum_alg_allowed(version: &str, alg: &str) -> bool {
    const V22: &[&str] = &[
        "SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "MD2", "MD4", "MD5", "MD6",
    ];
    const V23: &[&str] = &[
        "SHA3-256",
        "SHA3-384",
        "SHA3-512",
        "BLAKE2b-256",
        "BLAKE2b-384",
        "BLAKE2b-512",
        "BLAKE3",
        "ADLER32",
    ];
    V22.contains(&alg) || (version == "SPDX-2.3" && V23.contains(&alg))
}

fn id_ok(id: &str) -> bool {
    id.strip_prefix("SPDXRef-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    })
}

/// A package as read, before its checks.
#[derive(Default)]
struct RawPackage {
    name: Option<String>,
    id: Option<String>,
    version: Option<String>,
    download_location: Option<String>,
    license_concluded: Option<String>,
    license_declared: Option<String>,
    copyright: Option<String>,
    purpose: Option<String>,
    checksums: Vec<(String, String)>,
    purls: Vec<String>,
}

/// Checks shared by both encodings.
struct Builder {
    version: String,
    ids: HashSet<String>,
    summary: SbomSummary,
}

impl Builder {
    fn new(version: &str, encoding: &str) -> Result<Self, String> {
        if !VERSIONS.contains(&version) {
            return Err(format!(
                "SPDX version \"{version}\" is not supported: expected SPDX-2.2 or SPDX-2.3"
            ));
        }
        Ok(Builder {
            version: version.to_string(),
            ids: HashSet::new(),
            summary: SbomSummary {
                format: "spdx".to_string(),
                encoding: encoding.to_string(),
                spec_version: version.trim_start_matches("SPDX-").to_string(),
                ..SbomSummary::default()
            },
        })
    }

    fn document(
        &mut self,
        id: Option<&str>,
        data_license: Option<&str>,
        name: Option<String>,
        namespace: Option<String>,
        created: Option<&str>,
        creators: usize,
    ) -> Result<(), String> {
        if id != Some("SPDXRef-DOCUMENT") {
            return Err(format!(
                "SPDXID: the document's must be \"SPDXRef-DOCUMENT\", not {:?}",
                id.unwrap_or("")
            ));
        }
        if data_license != Some("CC0-1.0") {
            return Err(format!(
                "dataLicense: must be \"CC0-1.0\", not {:?}",
                data_license.unwrap_or("")
            ));
        }
        let Some(name) = name else {
            return Err("name: the document needs a name".to_string());
        };
        let Some(ns) = namespace.filter(|n| !n.is_empty()) else {
            return Err("documentNamespace is missing".to_string());
        };
        if ns.contains('#') || !ns.contains(':') {
            return Err(format!(
                "documentNamespace \"{ns}\": must be an absolute URI without '#'"
            ));
        }
        let Some(created) = created else {
            return Err("creationInfo.created is missing".to_string());
        };
        if created.parse::<jiff::Timestamp>().is_err() {
            return Err(format!(
                "creationInfo.created \"{created}\": not a date-time like 2026-01-31T12:00:00Z"
            ));
        }
        if creators == 0 {
            return Err("creationInfo.creators: at least one creator is required".to_string());
        }
        self.ids.insert("SPDXRef-DOCUMENT".to_string());
        self.summary.subject = Some(name);
        self.summary.id = Some(ns);
        Ok(())
    }

    fn element_id(&mut self, path: &str, id: Option<&str>) -> Result<(), String> {
        let Some(id) = id else {
            return Err(format!("{path}: SPDXID is missing"));
        };
        if !id_ok(id) {
            return Err(format!(
                "{path}.SPDXID \"{id}\": must be SPDXRef- followed by letters, digits, '.' or '-'"
            ));
        }
        if !self.ids.insert(id.to_string()) {
            return Err(format!("{path}.SPDXID \"{id}\" is not unique"));
        }
        Ok(())
    }

    fn package(&mut self, path: &str, p: RawPackage) -> Result<(), String> {
        let Some(name) = p.name.filter(|n| !n.is_empty()) else {
            return Err(format!("{path}: a package needs a name"));
        };
        self.element_id(path, p.id.as_deref())?;
        if p.download_location.is_none() {
            return Err(format!("{path} ({name}): downloadLocation is missing"));
        }
        if self.version == "SPDX-2.2" {
            for (field, v) in [
                ("licenseConcluded", &p.license_concluded),
                ("licenseDeclared", &p.license_declared),
                ("copyrightText", &p.copyright),
            ] {
                if v.is_none() {
                    return Err(format!("{path} ({name}): {field} is required in SPDX-2.2"));
                }
            }
        }
        let mut hashes = vec![];
        for (i, (alg, value)) in p.checksums.into_iter().enumerate() {
            if !checksum_alg_allowed(&self.version, &alg) {
                return Err(format!(
                    "{path}.checksums[{i}].algorithm: \"{alg}\" is not an {} algorithm",
                    self.version
                ));
            }
            if !is_hex(&value) {
                return Err(format!(
                    "{path}.checksums[{i}].checksumValue: not hexadecimal"
                ));
            }
            hashes.push(Hash { alg, value });
        }
        let licenses = [p.license_declared, p.license_concluded]
            .into_iter()
            .flatten()
            .find(|l| l != "NOASSERTION" && l != "NONE")
            .into_iter()
            .collect();
        self.summary.components.push(Component {
            name,
            version: p.version,
            purl: p.purls.into_iter().next(),
            hashes,
            licenses,
            kind: p.purpose,
        });
        Ok(())
    }

    fn finish(mut self) -> SbomSummary {
        self.summary.component_count = self.summary.components.len() as u64;
        self.summary
    }
}

// ---- JSON ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonDoc {
    spdx_version: String,
    #[serde(rename = "SPDXID")]
    spdx_id: Option<String>,
    data_license: Option<String>,
    name: Option<String>,
    document_namespace: Option<String>,
    creation_info: Option<JsonCreationInfo>,
    #[serde(default)]
    packages: Vec<JsonPackage>,
    #[serde(default)]
    files: Vec<JsonElement>,
    #[serde(default)]
    snippets: Vec<JsonElement>,
}

#[derive(Deserialize)]
struct JsonCreationInfo {
    created: Option<String>,
    #[serde(default)]
    creators: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonPackage {
    name: Option<String>,
    #[serde(rename = "SPDXID")]
    spdx_id: Option<String>,
    version_info: Option<String>,
    download_location: Option<String>,
    license_concluded: Option<String>,
    license_declared: Option<String>,
    copyright_text: Option<String>,
    primary_package_purpose: Option<String>,
    #[serde(default)]
    checksums: Vec<JsonChecksum>,
    #[serde(default)]
    external_refs: Vec<JsonExternalRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonChecksum {
    algorithm: String,
    checksum_value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonExternalRef {
    reference_type: String,
    reference_locator: String,
}

#[derive(Deserialize)]
struct JsonElement {
    #[serde(rename = "SPDXID")]
    spdx_id: Option<String>,
}

pub(super) fn parse_json(bytes: &[u8], limits: Limits) -> Result<SbomSummary, ParseError> {
    let doc: JsonDoc = json::from_slice(bytes, limits)?;
    let mut b = Builder::new(&doc.spdx_version, "json").map_err(ParseError::new)?;
    let (created, creators) = match &doc.creation_info {
        Some(c) => (c.created.as_deref(), c.creators.len()),
        None => return Err(ParseError::new("creationInfo is missing")),
    };
    b.document(
        doc.spdx_id.as_deref(),
        doc.data_license.as_deref(),
        doc.name,
        doc.document_namespace,
        created,
        creators,
    )
    .map_err(ParseError::new)?;
    for (i, f) in doc.files.iter().enumerate() {
        b.element_id(&format!("files[{i}]"), f.spdx_id.as_deref())
            .map_err(ParseError::new)?;
    }
    for (i, s) in doc.snippets.iter().enumerate() {
        b.element_id(&format!("snippets[{i}]"), s.spdx_id.as_deref())
            .map_err(ParseError::new)?;
    }
    for (i, p) in doc.packages.into_iter().enumerate() {
        let raw = RawPackage {
            name: p.name,
            id: p.spdx_id,
            version: p.version_info,
            download_location: p.download_location,
            license_concluded: p.license_concluded,
            license_declared: p.license_declared,
            copyright: p.copyright_text,
            purpose: p.primary_package_purpose,
            checksums: p
                .checksums
                .into_iter()
                .map(|c| (c.algorithm, c.checksum_value))
                .collect(),
            purls: p
                .external_refs
                .into_iter()
                .filter(|r| r.reference_type == "purl")
                .map(|r| r.reference_locator)
                .collect(),
        };
        b.package(&format!("packages[{i}]"), raw)
            .map_err(ParseError::new)?;
    }
    Ok(b.finish())
}

// ---- Tag-value ----

/// Which section the tags read now belong to.
enum Section {
    Document,
    Package(usize, Box<RawPackage>),
    /// Files, snippets, extracted licenses: their ids count, the rest is
    /// not stored.
    Other,
}

pub(super) fn parse_tag_value(bytes: &[u8]) -> Result<SbomSummary, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let column =
            (valid.len() - valid.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1)) as u64 + 1;
        ParseError::at(Position { line, column }, "bytes that are not valid UTF-8")
    })?;
    let mut doc: Vec<(&str, String, u64)> = vec![];
    let mut b: Option<Builder> = None;
    let mut section = Section::Document;
    let mut lines = text.lines().enumerate().peekable();
    let at = |n: usize, msg: String| {
        ParseError::at(
            Position {
                line: n as u64 + 1,
                column: 1,
            },
            msg,
        )
    };
    while let Some((n, line)) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((tag, value)) = trimmed.split_once(':') else {
            if b.is_none() {
                return Err(at(
                    n,
                    "not an SBOM: neither CycloneDX JSON or XML, SPDX JSON, nor SPDX tag-value"
                        .to_string(),
                ));
            }
            return Err(at(
                n,
                format!("expected \"Tag: value\", found \"{}\"", cut(trimmed)),
            ));
        };
        let tag = tag.trim();
        let mut value = value.trim().to_string();
        if let Some(rest) = value.strip_prefix("<text>") {
            // Multi-line value up to </text>.
            let mut v = rest.to_string();
            while !v.contains("</text>") {
                let Some((_, more)) = lines.next() else {
                    return Err(at(n, format!("{tag}: <text> is never closed by </text>")));
                };
                v.push('\n');
                v.push_str(more);
            }
            let end = v.find("</text>").unwrap_or(v.len());
            value = v[..end].to_string();
        }
        if b.is_none() {
            if tag == "SPDXVersion" {
                b = Some(Builder::new(&value, "tag-value").map_err(|m| at(n, m))?);
            } else {
                doc.push((tag_static(tag), value, n as u64));
            }
            continue;
        }
        let Some(builder) = b.as_mut() else { continue };
        match tag {
            "PackageName" => {
                finish_section(builder, &mut section, &doc, n)?;
                section = Section::Package(
                    n,
                    Box::new(RawPackage {
                        name: Some(value),
                        ..RawPackage::default()
                    }),
                );
                continue;
            }
            "FileName" | "SnippetSPDXID" | "LicenseID" => {
                finish_section(builder, &mut section, &doc, n)?;
                section = Section::Other;
                if tag == "SnippetSPDXID" {
                    builder
                        .element_id(&format!("line {}", n + 1), Some(&value))
                        .map_err(|m| at(n, m))?;
                }
                continue;
            }
            _ => {}
        }
        match &mut section {
            Section::Document => doc.push((tag_static(tag), value, n as u64)),
            Section::Package(_, p) => match tag {
                "SPDXID" => p.id = Some(value),
                "PackageVersion" => p.version = Some(value),
                "PackageDownloadLocation" => p.download_location = Some(value),
                "PackageLicenseConcluded" => p.license_concluded = Some(value),
                "PackageLicenseDeclared" => p.license_declared = Some(value),
                "PackageCopyrightText" => p.copyright = Some(value),
                "PrimaryPackagePurpose" => p.purpose = Some(value),
                "PackageChecksum" => {
                    let Some((alg, v)) = value.split_once(':') else {
                        return Err(at(
                            n,
                            format!("PackageChecksum \"{value}\": expected ALGORITHM: HEX"),
                        ));
                    };
                    p.checksums
                        .push((alg.trim().to_string(), v.trim().to_string()));
                }
                "ExternalRef" => {
                    let parts: Vec<&str> = value.split_whitespace().collect();
                    if parts.len() < 3 {
                        return Err(at(
                            n,
                            format!("ExternalRef \"{value}\": expected CATEGORY TYPE LOCATOR"),
                        ));
                    }
                    if parts[1] == "purl" {
                        p.purls.push(parts[2].to_string());
                    }
                }
                _ => {}
            },
            Section::Other => {
                if tag == "SPDXID" {
                    builder
                        .element_id(&format!("line {}", n + 1), Some(&value))
                        .map_err(|m| at(n, m))?;
                }
            }
        }
    }
    let Some(mut builder) = b else {
        return Err(ParseError::new(
            "not an SBOM: neither CycloneDX JSON or XML, SPDX JSON, nor SPDX tag-value (no SPDXVersion)",
        ));
    };
    let end = text.lines().count();
    finish_section(&mut builder, &mut section, &doc, end)?;
    Ok(builder.finish())
}

/// Tags are compared, never stored beyond the parse; a static copy keeps
/// the document list simple.
fn tag_static(tag: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "SPDXID",
        "DataLicense",
        "DocumentName",
        "DocumentNamespace",
        "Creator",
        "Created",
    ];
    KNOWN.iter().find(|k| **k == tag).copied().unwrap_or("")
}

/// Closes the current section; the document's own tags are checked when the
/// first package or file starts (or at the end).
fn finish_section(
    b: &mut Builder,
    section: &mut Section,
    doc: &[(&str, String, u64)],
    line: usize,
) -> Result<(), ParseError> {
    let at = |n: u64, msg: String| {
        ParseError::at(
            Position {
                line: n + 1,
                column: 1,
            },
            msg,
        )
    };
    match std::mem::replace(section, Section::Other) {
        Section::Document => {
            let get = |tag: &str| {
                doc.iter()
                    .find(|(t, _, _)| *t == tag)
                    .map(|(_, v, _)| v.clone())
            };
            let creators = doc.iter().filter(|(t, _, _)| *t == "Creator").count();
            b.document(
                get("SPDXID").as_deref(),
                get("DataLicense").as_deref(),
                get("DocumentName"),
                get("DocumentNamespace"),
                get("Created").as_deref(),
                creators,
            )
            .map_err(|m| at(line as u64, m.replace("name:", "DocumentName:")))?;
        }
        Section::Package(start, p) => {
            let name = p.name.clone().unwrap_or_default();
            b.package(&format!("package \"{name}\""), *p)
                .map_err(|m| at(start as u64, m))?;
        }
        Section::Other => {}
    }
    Ok(())
}

fn cut(s: &str) -> String {
    crate::limits::truncate(s.to_string(), 80)
}
