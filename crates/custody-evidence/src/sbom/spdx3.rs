//! SPDX 3.0 in its JSON-LD serialisation: a `@graph` of elements linked by
//! IRIs. What is stored is what an SPDX 2 document gives: every
//! `software_Package` with its name, version, purl, hashes
//! (`verifiedUsing`), primary purpose and the license expressions its
//! `hasDeclaredLicense` / `hasConcludedLicense` relationships point to; the
//! subject is the root element of the document's SBOM.
//!
//! Checked: the SPDX 3 context, one `CreationInfo` of spec version 3.0.x
//! with a creation time, `spdxId`s unique, every package named, every
//! relationship's ends in the graph or imported (`ExternalMap`), hashes as
//! hex digits.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::{Component, Hash, SbomSummary, is_hex};
use crate::error::ParseError;
use crate::json;
use crate::limits::Limits;

/// The context IRI every SPDX 3 JSON-LD document names, up to its version.
const CONTEXT: &str = "https://spdx.org/rdf/3.";

/// Whether a JSON object's `@context` is SPDX 3's (told by the start of
/// the document, as the caller only has that).
pub(super) fn is_spdx3(head: &[u8]) -> bool {
    memchr::memmem::find(head, b"\"@context\"").is_some()
        && memchr::memmem::find(head, CONTEXT.as_bytes()).is_some()
}

#[derive(Deserialize)]
struct Doc {
    #[serde(rename = "@context")]
    context: Value,
    #[serde(rename = "@graph", default)]
    graph: Vec<Element>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Element {
    #[serde(rename = "type")]
    kind: Option<String>,
    spdx_id: Option<String>,
    #[serde(rename = "@id")]
    blank_id: Option<String>,
    name: Option<String>,
    spec_version: Option<String>,
    created: Option<String>,
    #[serde(default)]
    root_element: Vec<Value>,
    /// Elements of other documents this one refers to (`ExternalMap`s).
    #[serde(default)]
    import: Vec<Value>,
    #[serde(rename = "software_packageVersion")]
    package_version: Option<String>,
    #[serde(rename = "software_packageUrl")]
    package_url: Option<String>,
    #[serde(rename = "software_primaryPurpose")]
    primary_purpose: Option<String>,
    #[serde(default)]
    verified_using: Vec<IntegrityMethod>,
    from: Option<Value>,
    #[serde(default)]
    to: Vec<Value>,
    relationship_type: Option<String>,
    #[serde(rename = "simplelicensing_licenseExpression")]
    license_expression: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntegrityMethod {
    #[serde(rename = "type")]
    kind: Option<String>,
    algorithm: Option<String>,
    hash_value: Option<String>,
}

/// An element named by IRI, or written inline with its own `spdxId`.
fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("spdxId").and_then(Value::as_str),
        _ => None,
    }
}

pub(super) fn parse_json_ld(bytes: &[u8], limits: Limits) -> Result<SbomSummary, ParseError> {
    let doc: Doc = json::from_slice(bytes, limits)?;
    let context_ok = match &doc.context {
        Value::String(s) => s.starts_with(CONTEXT),
        Value::Array(items) => items
            .iter()
            .any(|v| v.as_str().is_some_and(|s| s.starts_with(CONTEXT))),
        _ => false,
    };
    if !context_ok {
        return Err(ParseError::new(format!(
            "@context is not SPDX 3's ({CONTEXT}x.y/spdx-context.jsonld)"
        )));
    }
    let err = |i: usize, what: String| ParseError::new(format!("@graph[{i}]: {what}"));
    let mut version: Option<String> = None;
    let mut ids: HashSet<&str> = HashSet::new();
    for (i, e) in doc.graph.iter().enumerate() {
        let Some(kind) = e.kind.as_deref() else {
            return Err(err(i, "an element without a type".into()));
        };
        if kind == "CreationInfo" {
            let v = e
                .spec_version
                .as_deref()
                .ok_or_else(|| err(i, "CreationInfo without specVersion".into()))?;
            if !v.starts_with("3.0") {
                return Err(err(
                    i,
                    format!("SPDX {v} is not supported: SPDX 2.2, 2.3 and 3.0 are"),
                ));
            }
            if e.created.as_deref().is_none_or(str::is_empty) {
                return Err(err(i, "CreationInfo without its created time".into()));
            }
            version.get_or_insert_with(|| v.to_string());
            if e.blank_id.is_none() && e.spdx_id.is_none() {
                return Err(err(i, "CreationInfo without an @id".into()));
            }
            continue;
        }
        match e.spdx_id.as_deref() {
            Some("") | None => return Err(err(i, format!("{kind} without an spdxId"))),
            Some(id) => {
                if !ids.insert(id) {
                    return Err(err(i, format!("spdxId \"{id}\" is not unique")));
                }
            }
        }
    }
    let Some(version) = version else {
        return Err(ParseError::new(
            "an SPDX 3 document needs a CreationInfo with its specVersion",
        ));
    };
    let by_id: HashMap<&str, &Element> = doc
        .graph
        .iter()
        .filter_map(|e| Some((e.spdx_id.as_deref()?, e)))
        .collect();
    let imported: HashSet<&str> = doc
        .graph
        .iter()
        .flat_map(|e| &e.import)
        .filter_map(|m| m.get("externalSpdxId").and_then(Value::as_str))
        .collect();

    // Licenses of each package, from its license relationships.
    let mut licenses: HashMap<&str, Vec<String>> = HashMap::new();
    for (i, e) in doc.graph.iter().enumerate() {
        if e.kind.as_deref() != Some("Relationship") {
            continue;
        }
        let from = e.from.as_ref().and_then(reference);
        let Some(from) = from else {
            return Err(err(i, "a Relationship without from".into()));
        };
        for end in std::iter::once(from).chain(e.to.iter().filter_map(reference)) {
            if !by_id.contains_key(end)
                && !imported.contains(end)
                && !end.starts_with("https://spdx.org/licenses/")
            {
                return Err(err(
                    i,
                    format!("Relationship names \"{end}\", which is not in the document"),
                ));
            }
        }
        if !matches!(
            e.relationship_type.as_deref(),
            Some("hasDeclaredLicense" | "hasConcludedLicense")
        ) {
            continue;
        }
        for to in e.to.iter().filter_map(reference) {
            let text = match by_id.get(to) {
                Some(l) => l
                    .license_expression
                    .clone()
                    .or_else(|| l.name.clone())
                    .unwrap_or_else(|| last_segment(to).to_string()),
                // A listed license by its IRI.
                None => last_segment(to).to_string(),
            };
            let list = licenses.entry(from).or_default();
            if !list.contains(&text) {
                list.push(text);
            }
        }
    }

    let mut summary = SbomSummary {
        format: "spdx".to_string(),
        encoding: "json-ld".to_string(),
        spec_version: version,
        ..SbomSummary::default()
    };
    if let Some(d) = doc
        .graph
        .iter()
        .find(|e| e.kind.as_deref() == Some("SpdxDocument"))
    {
        summary.id = d.spdx_id.clone();
        summary.subject = subject(d, &by_id);
    }
    for (i, e) in doc.graph.iter().enumerate() {
        if e.kind.as_deref() != Some("software_Package") {
            continue;
        }
        let Some(name) = e.name.clone().filter(|n| !n.is_empty()) else {
            return Err(err(i, "a software_Package needs a name".into()));
        };
        let mut hashes = Vec::new();
        for (j, h) in e.verified_using.iter().enumerate() {
            if h.kind.as_deref() != Some("Hash") {
                continue;
            }
            let (Some(alg), Some(value)) = (&h.algorithm, &h.hash_value) else {
                return Err(err(
                    i,
                    format!("verifiedUsing[{j}]: a Hash needs algorithm and hashValue"),
                ));
            };
            if !is_hex(value) {
                return Err(err(
                    i,
                    format!("verifiedUsing[{j}].hashValue: not hex digits"),
                ));
            }
            hashes.push(Hash {
                alg: alg.clone(),
                value: value.clone(),
            });
        }
        let id = e.spdx_id.as_deref().unwrap_or_default();
        summary.components.push(Component {
            name,
            version: e.package_version.clone(),
            purl: e.package_url.clone(),
            hashes,
            licenses: licenses.remove(id).unwrap_or_default(),
            kind: e.primary_purpose.clone(),
        });
    }
    summary.component_count = summary.components.len() as u64;
    Ok(summary)
}

/// The name of what the document describes: its root element, or the root
/// element of the SBOM that is its root.
fn subject(doc: &Element, by_id: &HashMap<&str, &Element>) -> Option<String> {
    let mut root = by_id.get(reference(doc.root_element.first()?)?)?;
    if root.kind.as_deref() == Some("software_Sbom") {
        root = by_id.get(reference(root.root_element.first()?)?)?;
    }
    root.name.clone()
}

fn last_segment(iri: &str) -> &str {
    iri.rsplit('/').next().unwrap_or(iri)
}
