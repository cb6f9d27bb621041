//! Software bills of materials: CycloneDX (JSON and XML, spec 1.2–1.6) and
//! SPDX (2.2 and 2.3, JSON and tag-value), told apart by content.
//!
//! A document is accepted only if it is valid for the spec version it
//! declares, as far as what is stored depends on it: required fields,
//! enumerations that changed between versions (component types, hash
//! algorithms, license choices), identifier syntax and uniqueness. The
//! summary keeps every component — nested ones included — with its name,
//! version, purl, hashes and licenses, so that "which artifacts contain
//! package X" can be answered later.

mod cyclonedx;
mod spdx;

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
