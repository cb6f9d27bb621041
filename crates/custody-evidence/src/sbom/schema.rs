//! CycloneDX JSON checked against the official JSON schema of the spec
//! version the document declares (vendored unchanged in
//! `schemas/cyclonedx/`, with format checking: a `date` where the schema
//! says `date-time` is refused). What a schema cannot say — `bom-ref`s
//! unique across the document — the parser checks after it.
//!
//! Each schema is compiled once per process, on first use.

use std::sync::OnceLock;

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

/// Spec versions with a JSON encoding (JSON arrived in 1.2).
pub(super) const JSON_VERSIONS: &[&str] = &["1.2", "1.3", "1.4", "1.5", "1.6", "1.7"];

const BOMS: [&str; 6] = [
    include_str!("../../schemas/cyclonedx/bom-1.2.schema.json"),
    include_str!("../../schemas/cyclonedx/bom-1.3.schema.json"),
    include_str!("../../schemas/cyclonedx/bom-1.4.schema.json"),
    include_str!("../../schemas/cyclonedx/bom-1.5.schema.json"),
    include_str!("../../schemas/cyclonedx/bom-1.6.schema.json"),
    include_str!("../../schemas/cyclonedx/bom-1.7.schema.json"),
];

/// The schemas the bom schemas refer to, by the URI their `$ref`s resolve to.
const REFERENCED: &[(&str, &str)] = &[
    (
        "http://cyclonedx.org/schema/spdx.schema.json",
        include_str!("../../schemas/cyclonedx/spdx.schema.json"),
    ),
    (
        "http://cyclonedx.org/schema/jsf-0.82.schema.json",
        include_str!("../../schemas/cyclonedx/jsf-0.82.schema.json"),
    ),
    (
        "http://cyclonedx.org/schema/cryptography-defs.schema.json",
        include_str!("../../schemas/cyclonedx/cryptography-defs.schema.json"),
    ),
];

/// Hands the vendored schemas to the validator; nothing is ever fetched.
struct Vendored;

impl Retrieve for Vendored {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let wanted = uri.as_str();
        let wanted = wanted.split_once('#').map_or(wanted, |(base, _)| base);
        let (_, text) = REFERENCED
            .iter()
            .find(|(u, _)| *u == wanted)
            .ok_or_else(|| format!("{wanted} is not a vendored CycloneDX schema"))?;
        Ok(serde_json::from_str(text)?)
    }
}

static VALIDATORS: [OnceLock<Result<Validator, String>>; 6] = [const { OnceLock::new() }; 6];

fn validator(version: &str) -> Option<&'static Result<Validator, String>> {
    let i = JSON_VERSIONS.iter().position(|v| *v == version)?;
    Some(VALIDATORS[i].get_or_init(|| {
        let schema: Value = serde_json::from_str(BOMS[i]).map_err(|e| e.to_string())?;
        jsonschema::draft7::options()
            .should_validate_formats(true)
            .with_retriever(Vendored)
            .build(&schema)
            .map_err(|e| e.to_string())
    }))
}

/// The most violations named in one message; the rest are counted.
const NAMED: usize = 3;
/// Counting stops here: a document this wrong is wrong enough.
const COUNTED: usize = 1000;
/// The most of one violation's text kept (an `anyOf` failure can quote a
/// whole component).
const TEXT: usize = 300;

/// Checks `doc` against the schema of CycloneDX `version`. `Ok` also for a
/// version without a JSON schema: the caller refuses those by name.
pub(super) fn check(doc: &Value, version: &str) -> Result<(), String> {
    let Some(v) = validator(version) else {
        return Ok(());
    };
    let v = v
        .as_ref()
        .map_err(|e| format!("the CycloneDX {version} schema did not compile: {e}"))?;
    let mut named = vec![];
    let mut count = 0;
    for e in v.iter_errors(doc).take(COUNTED) {
        count += 1;
        if named.len() < NAMED {
            let pointer = e.instance_path().to_string();
            let pointer = if pointer.is_empty() { "/" } else { &pointer };
            let mut text = e.to_string();
            if text.len() > TEXT {
                let cut = (0..=TEXT)
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                text.truncate(cut);
                text.push('…');
            }
            named.push(format!(
                "at {pointer}: {text} (schema rule {})",
                e.schema_path()
            ));
        }
    }
    if count == 0 {
        return Ok(());
    }
    let more = match count - named.len() {
        0 => String::new(),
        n if count == COUNTED => format!("; and at least {n} more"),
        n => format!("; and {n} more"),
    };
    Err(format!(
        "not valid CycloneDX {version} (its JSON schema): {}{more}",
        named.join("; ")
    ))
}
