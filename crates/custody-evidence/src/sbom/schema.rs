//! CycloneDX JSON checked against the official JSON schema of the spec
//! version the document declares (vendored unchanged in
//! `schemas/cyclonedx/`, with format checking: a `date` where the schema
//! says `date-time` is refused). What a schema cannot say — `bom-ref`s
//! unique across the document — the parser checks after it.
//!
//! The document is checked in parts ([`Check`]): each top-level component
//! as it streams by, then the rest, so the generic tree of a large SBOM
//! never exists whole (a 50 MB SBOM: 190 MB instead of 530 MB, and faster,
//! as each small tree is still in cache when it is checked and freed).
//! Each schema is compiled once per process, on first use.

use std::collections::HashMap;
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

/// One spec version's schema, compiled twice: for the document without its
/// `components`, and for one component (the same schema with its root
/// made `{"allOf": [{"$ref": "#/definitions/component"}]}`), so that a large SBOM is
/// checked component by component as it streams instead of as one tree.
struct Validators {
    bom: Validator,
    component: Validator,
}

static VALIDATORS: [OnceLock<Result<Validators, String>>; 6] = [const { OnceLock::new() }; 6];

fn validators(version: &str) -> Option<&'static Result<Validators, String>> {
    let i = JSON_VERSIONS.iter().position(|v| *v == version)?;
    Some(VALIDATORS[i].get_or_init(|| {
        let schema: Value = serde_json::from_str(BOMS[i]).map_err(|e| e.to_string())?;
        let build = |s: &Value| {
            jsonschema::draft7::options()
                .should_validate_formats(true)
                .with_retriever(Vendored)
                .build(s)
                .map_err(|e| e.to_string())
        };
        let mut one = serde_json::Map::new();
        for key in ["$schema", "$id", "definitions"] {
            if let Some(v) = schema.get(key) {
                one.insert(key.to_string(), v.clone());
            }
        }
        // Not `$ref` at the root: in draft 7 it would hide the `$id` the
        // other schemas are found relative to.
        one.insert(
            "allOf".into(),
            serde_json::json!([{"$ref": "#/definitions/component"}]),
        );
        Ok(Validators {
            bom: build(&schema)?,
            component: build(&Value::Object(one))?,
        })
    }))
}

/// The most violations named in one message; the rest are counted.
const NAMED: usize = 3;
/// Counting stops here: a document this wrong is wrong enough.
const COUNTED: usize = 1000;
/// The most of one violation's text kept (an `anyOf` failure can quote a
/// whole component).
const TEXT: usize = 300;

/// A document checked in parts: each top-level component as it is read,
/// then the rest. The schema's `uniqueItems` on the component array is
/// checked by a 128-bit digest of each component's structure.
pub(super) struct Check {
    version: String,
    validators: &'static Validators,
    named: Vec<String>,
    count: usize,
    seen: HashMap<u128, usize>,
}

impl Check {
    /// `None` for a version without a JSON schema: the caller refuses
    /// those by name.
    pub(super) fn new(version: &str) -> Result<Option<Check>, String> {
        let Some(v) = validators(version) else {
            return Ok(None);
        };
        let validators = v
            .as_ref()
            .map_err(|e| format!("the CycloneDX {version} schema did not compile: {e}"))?;
        Ok(Some(Check {
            version: version.to_string(),
            validators,
            named: vec![],
            count: 0,
            seen: HashMap::new(),
        }))
    }

    fn note(&mut self, pointer: String, text: String, rule: String) {
        self.count += 1;
        if self.named.len() >= NAMED {
            return;
        }
        let pointer = if pointer.is_empty() {
            "/".to_string()
        } else {
            pointer
        };
        let mut text = text;
        if text.len() > TEXT {
            let cut = (0..=TEXT)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        self.named
            .push(format!("at {pointer}: {text} (schema rule {rule})"));
    }

    /// Checks `components[i]`.
    pub(super) fn component(&mut self, i: usize, c: &Value) {
        if self.count >= COUNTED {
            return;
        }
        let v = &self.validators.component;
        let found: Vec<(String, String, String)> = v
            .iter_errors(c)
            .take(COUNTED - self.count)
            .map(|e| {
                (
                    format!("/components/{i}{}", e.instance_path()),
                    e.to_string(),
                    e.schema_path().to_string(),
                )
            })
            .collect();
        for (pointer, text, rule) in found {
            self.note(pointer, text, rule);
        }
        if let Some(first) = self.seen.insert(digest(c), i) {
            self.note(
                "/components".into(),
                format!("components {first} and {i} are equal"),
                "/properties/components/uniqueItems".into(),
            );
        }
    }

    /// Checks the document without its components (which were checked one
    /// by one).
    pub(super) fn rest(&mut self, doc: &Value) {
        let found: Vec<(String, String, String)> = self
            .validators
            .bom
            .iter_errors(doc)
            .take(COUNTED.saturating_sub(self.count))
            .map(|e| {
                (
                    e.instance_path().to_string(),
                    e.to_string(),
                    e.schema_path().to_string(),
                )
            })
            .collect();
        for (pointer, text, rule) in found {
            self.note(pointer, text, rule);
        }
    }

    pub(super) fn finish(self) -> Result<(), String> {
        if self.count == 0 {
            return Ok(());
        }
        let more = match self.count - self.named.len() {
            0 => String::new(),
            n if self.count >= COUNTED => format!("; and at least {n} more"),
            n => format!("; and {n} more"),
        };
        Err(format!(
            "not valid CycloneDX {} (its JSON schema): {}{more}",
            self.version,
            self.named.join("; ")
        ))
    }
}

/// Two independent 64-bit SipHashes of a value's structure: equal values
/// (as JSON Schema's `uniqueItems` compares them, numbers by value) give
/// equal digests; unequal ones collide with odds of 2^-128.
fn digest(v: &Value) -> u128 {
    use std::hash::{BuildHasher, Hasher};
    static KEYS: OnceLock<(std::hash::RandomState, std::hash::RandomState)> = OnceLock::new();
    let (a, b) =
        KEYS.get_or_init(|| (std::hash::RandomState::new(), std::hash::RandomState::new()));
    let (mut ha, mut hb) = (a.build_hasher(), b.build_hasher());
    feed(v, &mut ha);
    feed(v, &mut hb);
    (u128::from(ha.finish()) << 64) | u128::from(hb.finish())
}

fn feed(v: &Value, h: &mut impl std::hash::Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            h.write_u8(u8::from(*b));
        }
        Value::Number(n) => {
            h.write_u8(2);
            // 1 and 1.0 are the same number to JSON Schema.
            match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => h.write_i128(i128::from(i)),
                (_, Some(u), _) => h.write_i128(i128::from(u)),
                (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => h.write_i128(f as i128),
                (_, _, Some(f)) => h.write_u64(f.to_bits()),
                _ => h.write(n.to_string().as_bytes()),
            }
        }
        Value::String(s) => {
            h.write_u8(3);
            h.write_usize(s.len());
            h.write(s.as_bytes());
        }
        Value::Array(a) => {
            h.write_u8(4);
            h.write_usize(a.len());
            for x in a {
                feed(x, h);
            }
        }
        Value::Object(o) => {
            // Sorted, so that equal objects feed alike whatever the order
            // their keys were read in.
            h.write_u8(5);
            h.write_usize(o.len());
            let mut entries: Vec<(&String, &Value)> = o.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (k, x) in entries {
                h.write_usize(k.len());
                h.write(k.as_bytes());
                feed(x, h);
            }
        }
    }
}
