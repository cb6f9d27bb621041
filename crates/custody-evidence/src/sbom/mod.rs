//! Software bills of materials: CycloneDX (XML 1.0–1.7, JSON 1.2–1.7) and
//! SPDX (2.2 and 2.3, JSON and tag-value; 3.0 JSON-LD), told apart by
//! content.
//!
//! A document is accepted only if it is valid for the spec version it
//! declares, as far as what is stored depends on it: required fields,
//! enumerations that changed between versions (component types, hash
//! algorithms, license choices), identifier syntax and uniqueness. The
//! summary keeps every component — nested ones included — with its name,
//! version, purl, hashes and licenses, so that "which artifacts contain
//! package X" can be answered later.

mod cyclonedx;
mod schema;
mod spdx;
mod spdx3;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;
use crate::json;
use crate::limits::Limits;
use crate::verdict::Verdict;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hash {
    pub alg: String,
    pub value: String,
}

/// Fields are declared in sorted order and hold only strings: that makes
/// serde_json's compact output of a component its RFC 8785 canonical form
/// (see [`canonical_json`]). Keep it so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    /// CycloneDX `type`, or SPDX `primaryPackagePurpose`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// SPDX ids, license names or expressions, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The RFC 8785 canonical JSON of a component list, written to `out`.
///
/// A generic canonicaliser builds and sorts a map per object, which for an
/// SBOM of 80,000 components was a fifth of the server's work. Here the
/// types fix the key order, and serde_json escapes strings exactly as
/// RFC 8785 does (`\"`, `\\`, `\b\f\n\r\t`, other controls as lower-case
/// `\u00xx`, nothing else), so its compact output is the canonical form;
/// a property test holds the two equal.
pub fn canonical_json(components: &[Component], out: impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer(out, components).map_err(std::io::Error::other)
}

/// SHA-256 of what is written to it, so canonical JSON is hashed without
/// being held.
#[derive(Default)]
pub struct Sha256Writer(sha2::Sha256);

impl Sha256Writer {
    pub fn hex(self) -> String {
        use sha2::Digest;
        hex::encode(self.0.finalize())
    }
}

impl std::io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An SBOM's components as the JSON text they arrived in, checked.
///
/// A server taking a summary of hundreds of thousands of components would
/// hold several times its size as typed values (each component's strings
/// are separate allocations, larger than their JSON); kept as text, the
/// components cost their size once, and are read a batch at a time when
/// they are checked, hashed and stored.
#[derive(Debug, Clone)]
pub struct ComponentList {
    text: Box<serde_json::value::RawValue>,
    count: u64,
}

impl ComponentList {
    /// Checks that `text` is an array of components, and writes their
    /// canonical JSON (the same bytes as [`canonical_json`] of them all) to
    /// `canonical`.
    pub fn check(
        text: Box<serde_json::value::RawValue>,
        mut canonical: impl std::io::Write,
    ) -> Result<ComponentList, String> {
        let items = items(&text)?;
        let io = |e: std::io::Error| format!("sbom components: {e}");
        canonical.write_all(b"[").map_err(io)?;
        for (i, item) in items.iter().enumerate() {
            let c = component(i, item)?;
            if i > 0 {
                canonical.write_all(b",").map_err(io)?;
            }
            serde_json::to_writer(&mut canonical, &c)
                .map_err(|e| format!("sbom components: {e}"))?;
        }
        canonical.write_all(b"]").map_err(io)?;
        let count = items.len() as u64;
        drop(items);
        Ok(ComponentList { text, count })
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The components, `size` at a time.
    pub fn batches(&self, size: usize) -> Result<Batches<'_>, String> {
        Ok(Batches {
            items: items(&self.text)?,
            at: 0,
            size: size.max(1),
        })
    }

    /// All of them at once (for a client showing what it parsed).
    pub fn to_vec(&self) -> Result<Vec<Component>, String> {
        serde_json::from_str(self.text.get()).map_err(|e| format!("sbom components: {e}"))
    }
}

/// Components parsed a batch at a time from a [`ComponentList`].
pub struct Batches<'a> {
    items: Vec<&'a serde_json::value::RawValue>,
    at: usize,
    size: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<Vec<Component>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.items.len() {
            return None;
        }
        let end = (self.at + self.size).min(self.items.len());
        let batch = (self.at..end)
            .map(|i| component(i, self.items[i]))
            .collect();
        self.at = end;
        Some(batch)
    }
}

/// The elements of a JSON array, each as a slice of its text.
fn items(text: &serde_json::value::RawValue) -> Result<Vec<&serde_json::value::RawValue>, String> {
    serde_json::from_str(text.get())
        .map_err(|e| format!("sbom results: components must be a list: {e}"))
}

fn component(i: usize, item: &serde_json::value::RawValue) -> Result<Component, String> {
    serde_json::from_str(item.get()).map_err(|e| format!("sbom results: components[{i}]: {e}"))
}

/// What `attest sbom` stores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomSummary {
    /// `cyclonedx` or `spdx`.
    pub format: String,
    /// `json`, `xml` or `tag-value`.
    pub encoding: String,
    pub spec_version: String,
    /// The CycloneDX serial number or SPDX document namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The subject: CycloneDX `metadata.component` or the SPDX document name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub component_count: u64,
    pub components: Vec<Component>,
}

impl SbomSummary {
    /// A document that parsed is valid, hence compliant; invalid ones never
    /// get this far.
    pub fn verdict(&self) -> Verdict {
        Verdict::from_reasons(vec![])
    }
}

pub fn parse(bytes: &[u8], limits: Limits) -> Result<SbomSummary, ParseError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(ParseError::new(format!(
            "document larger than {} bytes",
            limits.max_bytes
        )));
    }
    match json::first_byte(bytes) {
        Some(b'{') => {
            // The format key is nearly always near the top; only when it is
            // not is the whole document read twice.
            let head = &bytes[..bytes.len().min(64 << 10)];
            if spdx3::is_spdx3(head) {
                return spdx3::parse_json_ld(bytes, limits);
            }
            let has = |key: &[u8]| memchr::memmem::find(head, key).is_some();
            let (cdx, spdx) = if has(b"\"bomFormat\"") || has(b"\"spdxVersion\"") {
                (has(b"\"bomFormat\""), has(b"\"spdxVersion\""))
            } else {
                let probe: Probe = json::from_slice(bytes, limits)?;
                (probe.bom_format.is_some(), probe.spdx_version.is_some())
            };
            if cdx {
                cyclonedx::parse_json(bytes, limits)
            } else if spdx {
                spdx::parse_json(bytes, limits)
            } else {
                Err(ParseError::new(
                    "not an SBOM: a JSON object without \"bomFormat\" (CycloneDX) or \"spdxVersion\" (SPDX)",
                ))
            }
        }
        Some(b'<') => cyclonedx::parse_xml(bytes, limits),
        Some(_) => spdx::parse_tag_value(bytes),
        None => Err(ParseError::new("empty document")),
    }
}

/// Just enough of a JSON SBOM to tell which it is.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "bomFormat")]
    bom_format: Option<serde::de::IgnoredAny>,
    #[serde(rename = "spdxVersion")]
    spdx_version: Option<serde::de::IgnoredAny>,
}

/// Hex digest of one of the lengths hash algorithms produce.
pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `pkg:type/namespace/name` of a purl: without `@version`, `?qualifiers`
/// or `#subpath`, to match any version of a package.
pub fn purl_base(purl: &str) -> &str {
    let end = purl.find(['?', '#']).unwrap_or(purl.len());
    let s = &purl[..end];
    // The version follows the last '@' of the last segment; an '@' earlier
    // belongs to a namespace (`pkg:npm/@scope/name`).
    let name_start = s.rfind('/').map_or(0, |i| i + 1);
    match s[name_start..].find('@') {
        Some(i) => &s[..name_start + i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::purl_base;

    #[test]
    fn purl_bases() {
        assert_eq!(purl_base("pkg:npm/lodash@4.17.21"), "pkg:npm/lodash");
        assert_eq!(
            purl_base("pkg:npm/@angular/core@17.0.0"),
            "pkg:npm/@angular/core"
        );
        assert_eq!(
            purl_base("pkg:maven/org.slf4j/slf4j-api@2.0.13?type=jar"),
            "pkg:maven/org.slf4j/slf4j-api"
        );
        assert_eq!(purl_base("pkg:cargo/serde"), "pkg:cargo/serde");
        assert_eq!(purl_base("pkg:golang/x/y@v1#sub/dir"), "pkg:golang/x/y");
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;

    fn comps(n: usize) -> Vec<Component> {
        (0..n)
            .map(|i| Component {
                name: format!("pkg-{i}"),
                version: Some(format!("1.{i}")),
                purl: Some(format!("pkg:npm/pkg-{i}@1.{i}")),
                licenses: vec!["MIT".into()],
                ..Component::default()
            })
            .collect()
    }

    #[test]
    fn a_list_kept_as_text_hashes_and_reads_back_as_the_components() {
        let all = comps(250);
        // Spaced as a client may send it: the canonical form is the same.
        let text =
            serde_json::value::RawValue::from_string(serde_json::to_string_pretty(&all).unwrap())
                .unwrap();
        let mut canonical = Vec::new();
        let list = ComponentList::check(text, &mut canonical).unwrap();
        let mut expected = Vec::new();
        canonical_json(&all, &mut expected).unwrap();
        assert_eq!(canonical, expected);
        assert_eq!(list.len(), 250);
        let batches: Vec<Vec<Component>> = list.batches(90).unwrap().map(Result::unwrap).collect();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [90, 90, 70]
        );
        assert_eq!(batches.concat(), all);
        assert_eq!(list.to_vec().unwrap(), all);
        let empty = ComponentList::check(
            serde_json::value::RawValue::from_string("[]".into()).unwrap(),
            std::io::sink(),
        )
        .unwrap();
        assert!(empty.is_empty() && empty.batches(9).unwrap().next().is_none());
    }

    #[test]
    fn a_bad_component_is_named_by_its_place() {
        let text =
            serde_json::value::RawValue::from_string(r#"[{"name": "a"}, {"version": "1"}]"#.into())
                .unwrap();
        let e = ComponentList::check(text, std::io::sink()).unwrap_err();
        assert!(e.contains("components[1]") && e.contains("name"), "{e}");
        let text = serde_json::value::RawValue::from_string(r#"{"name": "a"}"#.into()).unwrap();
        assert!(ComponentList::check(text, std::io::sink()).is_err());
    }
}
