//! CycloneDX 1.0–1.7: JSON (1.2 and later) checked against the official
//! schema of its declared version (`schema.rs`), XML read with the
//! equivalent rules of its XSD for what is stored.

use std::collections::HashSet;
use std::io::BufRead;

use quick_xml::events::Event;
use serde::Deserialize;
use serde_json::Value;

use super::{Component, Hash, SbomSummary, is_hex, schema};
use crate::error::ParseError;
use crate::json;
use crate::limits::Limits;
use crate::xml::{XmlReader, attr, push_ref};

const VERSIONS: &[&str] = &["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7"];

/// Component types by the version that introduced them.
fn type_allowed(version: &str, t: &str) -> bool {
    const V10: &[&str] = &[
        "application",
        "framework",
        "library",
        "operating-system",
        "device",
    ];
    const V11: &[&str] = &["file"];
    const V12: &[&str] = &["container", "firmware"];
    const V15: &[&str] = &[
        "platform",
        "device-driver",
        "machine-learning-model",
        "data",
    ];
    const V16: &[&str] = &["cryptographic-asset"];
    V10.contains(&t)
        || (version >= "1.1" && V11.contains(&t))
        || (version >= "1.2" && V12.contains(&t))
        || (version >= "1.5" && V15.contains(&t))
        || (version >= "1.6" && V16.contains(&t))
}

fn hash_alg_allowed(alg: &str) -> bool {
    matches!(
        alg,
        "MD5"
            | "SHA-1"
            | "SHA-256"
            | "SHA-384"
            | "SHA-512"
            | "SHA3-256"
            | "SHA3-384"
            | "SHA3-512"
            | "BLAKE2b-256"
            | "BLAKE2b-384"
            | "BLAKE2b-512"
            | "BLAKE3"
            | "Streebog-256"
            | "Streebog-512"
    )
}

/// The schema's `hash-content` pattern.
fn hash_content_ok(v: &str) -> bool {
    matches!(v.len(), 32 | 40 | 64 | 96 | 128) && is_hex(v)
}

/// `urn:uuid:` and an RFC 4122 UUID in lower case, as the schema's pattern.
fn serial_ok(s: &str) -> bool {
    let Some(u) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let parts: Vec<&str> = u.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts.iter().zip(lens).all(|(p, n)| {
            p.len() == n
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        && matches!(parts[2].as_bytes()[0], b'1'..=b'5')
        && matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
}

/// Checks shared by both encodings, accumulating the summary.
struct Builder {
    version: String,
    refs: HashSet<String>,
    summary: SbomSummary,
}

impl Builder {
    fn new(version: &str, encoding: &str) -> Result<Self, ParseError> {
        if !VERSIONS.contains(&version) {
            return Err(ParseError::new(format!(
                "CycloneDX spec version \"{version}\" is not supported: expected one of {}",
                VERSIONS.join(", ")
            )));
        }
        Ok(Builder {
            version: version.to_string(),
            refs: HashSet::new(),
            summary: SbomSummary {
                format: "cyclonedx".to_string(),
                encoding: encoding.to_string(),
                spec_version: version.to_string(),
                ..SbomSummary::default()
            },
        })
    }

    fn serial(&mut self, serial: Option<String>) -> Result<(), String> {
        if let Some(s) = &serial
            && !serial_ok(s)
        {
            return Err(format!(
                "serialNumber \"{s}\" is not urn:uuid: followed by a lower-case RFC 4122 UUID"
            ));
        }
        self.summary.id = serial;
        Ok(())
    }

    /// Validates one component (not its children) at `path`.
    fn component(&mut self, path: &str, c: RawComponent) -> Result<(), String> {
        let Some(t) = c.kind.as_deref() else {
            return Err(format!("{path}: a component needs a type"));
        };
        if !type_allowed(&self.version, t) {
            return Err(format!(
                "{path}.type: \"{t}\" is not a component type of CycloneDX {}",
                self.version
            ));
        }
        let Some(name) = c.name.filter(|n| !n.is_empty()) else {
            return Err(format!("{path}: a component needs a name"));
        };
        if self.version.as_str() <= "1.3" && c.version.is_none() {
            return Err(format!(
                "{path}: a component needs a version in CycloneDX {}",
                self.version
            ));
        }
        if c.bom_ref.as_deref() == Some("") && self.version.as_str() >= "1.5" {
            return Err(format!(
                "{path}.bom-ref: empty, but CycloneDX {} needs at least one character (refType minLength 1)",
                self.version
            ));
        }
        if let Some(r) = c.bom_ref
            && !self.refs.insert(r.clone())
        {
            return Err(format!("{path}.bom-ref: \"{r}\" is not unique"));
        }
        for (i, h) in c.hashes.iter().enumerate() {
            if !hash_alg_allowed(&h.alg) {
                return Err(format!(
                    "{path}.hashes[{i}].alg: \"{}\" is not a CycloneDX hash algorithm",
                    h.alg
                ));
            }
            if !hash_content_ok(&h.value) {
                return Err(format!(
                    "{path}.hashes[{i}].content: not a hex digest of 32, 40, 64, 96 or 128 digits"
                ));
            }
        }
        for (i, l) in c.licenses.iter().enumerate() {
            if l.is_empty() {
                return Err(format!(
                    "{path}.licenses[{i}]: needs a license id, a license name or an expression"
                ));
            }
        }
        self.summary.components.push(Component {
            name,
            version: c.version,
            purl: c.purl,
            hashes: c.hashes,
            licenses: c.licenses,
            kind: Some(t.to_string()),
        });
        Ok(())
    }

    fn finish(mut self) -> SbomSummary {
        self.summary.component_count = self.summary.components.len() as u64;
        self.summary
    }
}

/// A component as read, before its checks.
#[derive(Default)]
struct RawComponent {
    kind: Option<String>,
    name: Option<String>,
    version: Option<String>,
    purl: Option<String>,
    bom_ref: Option<String>,
    hashes: Vec<Hash>,
    licenses: Vec<String>,
}

// ---- JSON ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonBom {
    spec_version: Option<String>,
    serial_number: Option<String>,
    version: Option<i64>,
    metadata: Option<JsonMetadata>,
    #[serde(default)]
    components: Vec<JsonComponent>,
}

#[derive(Deserialize)]
struct JsonMetadata {
    component: Option<JsonComponent>,
}

#[derive(Deserialize)]
struct JsonComponent {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    version: Option<String>,
    purl: Option<String>,
    #[serde(rename = "bom-ref")]
    bom_ref: Option<String>,
    #[serde(default)]
    hashes: Vec<JsonHash>,
    #[serde(default)]
    licenses: Vec<JsonLicenseChoice>,
    #[serde(default)]
    components: Vec<JsonComponent>,
}

#[derive(Deserialize)]
struct JsonHash {
    alg: String,
    content: String,
}

#[derive(Deserialize)]
struct JsonLicenseChoice {
    license: Option<JsonLicense>,
    expression: Option<String>,
}

#[derive(Deserialize)]
struct JsonLicense {
    id: Option<String>,
    name: Option<String>,
}

pub(super) fn parse_json(bytes: &[u8], limits: Limits) -> Result<SbomSummary, ParseError> {
    // The schema check is one thread's work, the typed read and the
    // components' checks another's: for a 50 MB SBOM that is the time of
    // the slower of the two, not their sum. What the first finds is said
    // first, as it names the rule broken.
    let (checked, built) = std::thread::scope(|scope| {
        let checking = scope.spawn(|| check_json(bytes, limits));
        let built = build_json(bytes, limits);
        (checking.join(), built)
    });
    checked.map_err(|_| ParseError::new("the CycloneDX schema check failed unexpectedly"))??;
    built
}

/// The header's rules, then the official schema's. Each top-level
/// component is checked as it is read and then dropped, so the generic
/// tree of a large SBOM never exists whole; the rest of the document is
/// kept and checked after.
fn check_json(bytes: &[u8], limits: Limits) -> Result<(), ParseError> {
    let mut head = Head::default();
    json::seed_from_slice(bytes, limits, &mut head)?;
    head.checked()
}

/// The document as the check reads it.
#[derive(Default)]
struct Head {
    /// Everything but `components`.
    rest: serde_json::Map<String, Value>,
    /// Set once `specVersion` has been read, if it names a JSON schema.
    check: Option<schema::Check>,
    /// How many components were read.
    components: usize,
    /// Components read before `specVersion`, kept until it is known.
    waiting: Vec<Value>,
    /// The version has no JSON schema (refused by name later): components
    /// are not kept.
    no_schema: bool,
    /// A `components` that is not an array: left to the schema.
    odd_components: Option<Value>,
    /// What was wrong before the schema could be applied.
    refused: Option<String>,
}

impl Head {
    fn version_known(&mut self, version: &str) {
        if self.check.is_some() || self.refused.is_some() || self.no_schema {
            return;
        }
        match schema::Check::new(version) {
            Ok(Some(mut c)) => {
                for (i, v) in std::mem::take(&mut self.waiting).iter().enumerate() {
                    c.component(i, v);
                }
                self.check = Some(c);
            }
            Ok(None) => {
                self.no_schema = true;
                self.waiting.clear();
            }
            Err(e) => self.refused = Some(e),
        }
    }

    fn component(&mut self, v: Value) {
        let i = self.components;
        self.components += 1;
        match &mut self.check {
            Some(c) => c.component(i, &v),
            None if self.no_schema || self.refused.is_some() => {}
            None => self.waiting.push(v),
        }
    }

    fn checked(mut self) -> Result<(), ParseError> {
        match self.rest.get("bomFormat") {
            Some(Value::String(f)) if f == "CycloneDX" => {}
            Some(f) => {
                return Err(ParseError::new(format!(
                    "bomFormat is {f}, not \"CycloneDX\""
                )));
            }
            None => return Err(ParseError::new("bomFormat is missing")),
        }
        let version = match self.rest.get("specVersion") {
            Some(Value::String(v)) => v.clone(),
            Some(v) => {
                return Err(ParseError::new(format!(
                    "specVersion is {v}, not a string such as \"1.6\""
                )));
            }
            None => return Err(ParseError::new("specVersion is missing")),
        };
        if !schema::JSON_VERSIONS.contains(&version.as_str())
            && VERSIONS.contains(&version.as_str())
        {
            return Err(ParseError::new(format!(
                "CycloneDX {version} has no JSON encoding (JSON arrived in 1.2): write it as XML or use a later version"
            )));
        }
        if let Some(e) = self.refused.take() {
            return Err(ParseError::new(e));
        }
        self.version_known(&version);
        let Some(mut check) = self.check.take() else {
            return Ok(());
        };
        if let Some(odd) = self.odd_components.take() {
            self.rest.insert("components".into(), odd);
        }
        check.rest(&Value::Object(std::mem::take(&mut self.rest)));
        check.finish().map_err(ParseError::new)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for &mut Head {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &mut Head {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a CycloneDX document (a JSON object)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "components" {
                map.next_value_seed(Components(&mut *self))?;
                continue;
            }
            let v: Value = map.next_value()?;
            if key == "specVersion"
                && let Value::String(version) = &v
            {
                let version = version.clone();
                self.version_known(&version);
            }
            self.rest.insert(key, v);
        }
        Ok(())
    }
}

/// The `components` array, one component at a time.
struct Components<'h>(&'h mut Head);

impl<'de> serde::de::DeserializeSeed<'de> for Components<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Components<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            self.0.component(v);
        }
        Ok(())
    }

    // Anything else is not an array: the schema says so, as it would of
    // the whole document.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        self.0.odd_components = Some(v);
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.0.odd_components = Some(Value::from(s));
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<(), E> {
        self.0.odd_components = Some(Value::from(b));
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<(), E> {
        self.0.odd_components = Some(Value::from(n));
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<(), E> {
        self.0.odd_components = Some(Value::from(n));
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<(), E> {
        self.0.odd_components = Some(Value::from(n));
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.odd_components = Some(Value::Null);
        Ok(())
    }
}

/// The typed read and the summary; its errors count once the document
/// passed [`check_json`].
fn build_json(bytes: &[u8], limits: Limits) -> Result<SbomSummary, ParseError> {
    let bom = json::from_slice::<JsonBom>(bytes, limits).map_err(|mut e| {
        e.message = format!("CycloneDX: {}", e.message);
        e
    })?;
    let version = bom.spec_version.clone().unwrap_or_default();
    let mut b = Builder::new(&version, "json")?;
    b.serial(bom.serial_number).map_err(ParseError::new)?;
    if let Some(v) = bom.version
        && v < 1
    {
        return Err(ParseError::new(format!("version {v}: must be 1 or more")));
    }
    if let Some(c) = bom.metadata.and_then(|m| m.component) {
        b.summary.subject = c.name.clone();
        if let Some(r) = &c.bom_ref {
            b.refs.insert(r.clone());
        }
    }
    // Depth-first with an explicit stack: nesting is bounded by serde_json
    // already, but no recursion here either way.
    let mut stack: Vec<(String, JsonComponent)> = bom
        .components
        .into_iter()
        .enumerate()
        .rev()
        .map(|(i, c)| (format!("components[{i}]"), c))
        .collect();
    while let Some((path, c)) = stack.pop() {
        let licenses = c
            .licenses
            .iter()
            .map(|l| {
                l.expression
                    .clone()
                    .or_else(|| {
                        l.license
                            .as_ref()
                            .and_then(|x| x.id.clone().or(x.name.clone()))
                    })
                    .unwrap_or_default()
            })
            .collect();
        let children = c.components;
        b.component(
            &path,
            RawComponent {
                kind: c.kind,
                name: c.name,
                version: c.version,
                purl: c.purl,
                bom_ref: c.bom_ref,
                hashes: c
                    .hashes
                    .into_iter()
                    .map(|h| Hash {
                        alg: h.alg,
                        value: h.content,
                    })
                    .collect(),
                licenses,
            },
        )
        .map_err(ParseError::new)?;
        for (i, child) in children.into_iter().enumerate().rev() {
            stack.push((format!("{path}.components[{i}]"), child));
        }
    }
    Ok(b.finish())
}

// ---- XML ----

fn version_of(b: &Option<Builder>) -> &str {
    b.as_ref().map_or("", |b| b.version.as_str())
}

/// XML Schema's `dateTime`: `[-]YYYY-MM-DDThh:mm:ss[.s+][Z|(+|-)hh:mm]`,
/// with the fields in range (24:00:00 allowed, as the type does).
fn xs_date_time_ok(v: &str) -> bool {
    let v = v.strip_prefix('-').unwrap_or(v);
    let Some((date, time)) = v.split_once('T') else {
        return false;
    };
    let num = |s: &str, len: usize, max: u32| {
        s.len() == len
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|n| n <= max)
    };
    let d: Vec<&str> = date.split('-').collect();
    let date_ok = d.len() == 3
        && d[0].len() >= 4
        && d[0].bytes().all(|b| b.is_ascii_digit())
        && num(d[1], 2, 12)
        && d[1] != "00"
        && num(d[2], 2, 31)
        && d[2] != "00";
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let zone_ok = match zone {
        "" | "Z" => true,
        z => {
            let z = &z[1..];
            z.split_once(':')
                .is_some_and(|(h, m)| num(h, 2, 14) && num(m, 2, 59))
        }
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    let clock_ok = t.len() == 3
        && num(t[0], 2, 24)
        && num(t[1], 2, 59)
        && num(t[2], 2, 59)
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    date_ok && zone_ok && clock_ok
}

const NAMESPACE: &str = "http://cyclonedx.org/schema/bom/";

/// One open `<component>` and where it is.
struct Open {
    path: String,
    raw: RawComponent,
    children: usize,
    hash_alg: Option<String>,
}

pub(super) fn parse_xml(bytes: &[u8], limits: Limits) -> Result<SbomSummary, ParseError> {
    read_xml(bytes, limits)
}

fn read_xml(input: impl BufRead, limits: Limits) -> Result<SbomSummary, ParseError> {
    let mut xml = XmlReader::new(input, limits)?;
    let mut b: Option<Builder> = None;
    // Local names of the open elements.
    let mut names: Vec<Vec<u8>> = vec![];
    let mut open: Vec<Open> = vec![];
    let mut top_level = 0usize;
    let mut text = String::new();
    loop {
        let event = xml.next()?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let e = e.to_owned();
                drop(event);
                let local = e.local_name().as_ref().to_vec();
                if b.is_none() {
                    if local != b"bom" {
                        return Err(xml.error(format!(
                            "not an SBOM: the root element is <{}>, not a CycloneDX <bom>",
                            String::from_utf8_lossy(&local)
                        )));
                    }
                    let ns = attr(&e, b"xmlns")
                        .map_err(|m| xml.error(m))?
                        .unwrap_or_default();
                    let Some(version) = ns.strip_prefix(NAMESPACE) else {
                        return Err(xml.error(format!(
                            "<bom> is not in a CycloneDX namespace ({NAMESPACE}<version>): \"{ns}\""
                        )));
                    };
                    let mut builder =
                        Builder::new(version, "xml").map_err(|e| xml.error(e.message))?;
                    let serial = attr(&e, b"serialNumber").map_err(|m| xml.error(m))?;
                    builder.serial(serial).map_err(|m| xml.error(m))?;
                    b = Some(builder);
                    if !empty {
                        names.push(local);
                    }
                    continue;
                }
                text.clear();
                let parent = names.last().map(Vec::as_slice);
                let in_metadata = names.iter().any(|n| n == b"metadata");
                if local == b"component" && parent == Some(b"components") && !in_metadata {
                    let path = match open.last_mut() {
                        Some(p) => {
                            p.children += 1;
                            format!("{}.components[{}]", p.path, p.children - 1)
                        }
                        None => {
                            top_level += 1;
                            format!("components[{}]", top_level - 1)
                        }
                    };
                    let raw = RawComponent {
                        kind: attr(&e, b"type").map_err(|m| xml.error(m))?,
                        bom_ref: attr(&e, b"bom-ref").map_err(|m| xml.error(m))?,
                        ..RawComponent::default()
                    };
                    open.push(Open {
                        path,
                        raw,
                        children: 0,
                        hash_alg: None,
                    });
                    if empty {
                        close_component(&mut b, &mut open).map_err(|m| xml.error(m))?;
                    }
                } else if local == b"dependency"
                    && matches!(parent, Some(b"dependencies" | b"dependency"))
                {
                    // `ref` is a required attribute of every <dependency>
                    // (and from 1.5 a non-empty one).
                    match attr(&e, b"ref").map_err(|m| xml.error(m))? {
                        None => {
                            return Err(
                                xml.error("<dependency> without its required ref attribute")
                            );
                        }
                        Some(r) if r.is_empty() && version_of(&b) >= "1.5" => {
                            return Err(xml.error(
                                "<dependency ref=\"\">: a ref needs at least one character",
                            ));
                        }
                        Some(_) => {}
                    }
                } else if local == b"hash" && parent == Some(b"hashes") {
                    let alg = attr(&e, b"alg").map_err(|m| xml.error(m))?;
                    if let Some(o) = open.last_mut() {
                        o.hash_alg = Some(alg.unwrap_or_default());
                    }
                } else if local == b"license" && parent == Some(b"licenses") && !in_metadata {
                    // Filled by the <id> or <name> inside; left empty, the
                    // checks refuse it.
                    if let Some(o) = open.last_mut() {
                        o.raw.licenses.push(String::new());
                    }
                }
                if !empty {
                    names.push(local);
                } else if local == b"hash" || local == b"license" {
                    // `<hash alg=".."/>` with no content, `<license/>` with
                    // no id or name: let the checks see them.
                    names.push(local);
                    end_element(&mut b, &mut names, &mut open, &mut text)
                        .map_err(|m| xml.error(m))?;
                }
            }
            Event::End(_) => {
                drop(event);
                end_element(&mut b, &mut names, &mut open, &mut text).map_err(|m| xml.error(m))?;
            }
            Event::Text(ref t) => {
                let s = t.decode().map_err(|e| ParseError::new(e.to_string()))?;
                text.push_str(&s);
            }
            Event::CData(ref t) => {
                let s = t.decode().map_err(|e| ParseError::new(e.to_string()))?;
                text.push_str(&s);
            }
            Event::GeneralRef(ref r) => {
                let res = push_ref(&mut text, r);
                drop(event);
                res.map_err(|m| xml.error(m))?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match b {
        Some(b) => Ok(b.finish()),
        None => Err(ParseError::new("not an SBOM: no <bom> element")),
    }
}

fn end_element(
    b: &mut Option<Builder>,
    names: &mut Vec<Vec<u8>>,
    open: &mut Vec<Open>,
    text: &mut String,
) -> Result<(), String> {
    let Some(local) = names.pop() else {
        return Ok(());
    };
    let parent = names.last().map(Vec::as_slice);
    let value = std::mem::take(text).trim().to_string();
    let in_metadata = names.iter().any(|n| n == b"metadata");
    if in_metadata {
        if local == b"timestamp" && parent == Some(b"metadata") && !xs_date_time_ok(&value) {
            return Err(format!(
                "<metadata><timestamp> \"{value}\" is not an xs:dateTime (such as 2026-03-01T03:12:00Z)"
            ));
        }
        if local == b"name"
            && parent == Some(b"component")
            && names.len() >= 2
            && names[names.len() - 2] == b"metadata"
            && let Some(b) = b.as_mut()
        {
            b.summary.subject = Some(value);
        }
        return Ok(());
    }
    let Some(o) = open.last_mut() else {
        return Ok(());
    };
    match (local.as_slice(), parent) {
        (b"component", Some(b"components")) => close_component(b, open)?,
        (b"name", Some(b"component")) => o.raw.name = Some(value),
        (b"version", Some(b"component")) => o.raw.version = Some(value),
        (b"purl", Some(b"component")) => o.raw.purl = Some(value),
        (b"hash", Some(b"hashes")) => {
            let alg = o.hash_alg.take().unwrap_or_default();
            o.raw.hashes.push(Hash { alg, value });
        }
        (b"id" | b"name", Some(b"license")) => {
            if let Some(last) = o.raw.licenses.last_mut()
                && last.is_empty()
            {
                *last = value;
            }
        }
        (b"license", Some(b"licenses")) => {}
        (b"expression", Some(b"licenses")) => o.raw.licenses.push(value),
        _ => {}
    }
    Ok(())
}

fn close_component(b: &mut Option<Builder>, open: &mut Vec<Open>) -> Result<(), String> {
    let Some(o) = open.pop() else { return Ok(()) };
    match b.as_mut() {
        Some(b) => b.component(&o.path, o.raw),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(doc: &str) -> Result<SbomSummary, ParseError> {
        parse_json(doc.as_bytes(), Limits::default())
    }

    #[test]
    fn components_are_checked_one_by_one_wherever_the_version_is() {
        let lib = r#"{"type": "library", "name": "left-pad", "version": "1.3.0"}"#;
        let ok = json(&format!(
            r#"{{"components": [{lib}], "bomFormat": "CycloneDX", "specVersion": "1.6"}}"#
        ))
        .unwrap();
        assert_eq!(ok.component_count, 1);
        // Read before specVersion, checked once it is known.
        let e = json(&format!(
            r#"{{"components": [{lib}, {{"type": "gadget", "name": "x"}}], "bomFormat": "CycloneDX", "specVersion": "1.6"}}"#
        ))
        .unwrap_err();
        assert!(e.message.contains("at /components/1/type"), "{}", e.message);
        // The schema's uniqueItems: the same component twice, keys in
        // another order, numbers written alike or not.
        let twin = r#"{"version": "1.3.0", "name": "left-pad", "type": "library"}"#;
        let e = json(&format!(
            r#"{{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{lib}, {twin}]}}"#
        ))
        .unwrap_err();
        assert!(
            e.message.contains("at /components: components 0 and 1 are equal (schema rule /properties/components/uniqueItems)"),
            "{}",
            e.message
        );
        // Components that are not an array are the schema's to refuse.
        let e = json(r#"{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": {"a": 1}}"#)
            .unwrap_err();
        assert!(e.message.contains("at /components:"), "{}", e.message);
        assert!(
            e.message.contains("is not of type \"array\""),
            "{}",
            e.message
        );
    }

    #[test]
    fn serial_numbers() {
        assert!(serial_ok("urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"));
        assert!(!serial_ok("urn:uuid:3E671687-395B-41F5-A30F-A58921A69B79"));
        assert!(!serial_ok("urn:uuid:3e671687-395b-61f5-a30f-a58921a69b79"));
        assert!(!serial_ok("3e671687-395b-41f5-a30f-a58921a69b79"));
    }

    #[test]
    fn types_follow_the_version() {
        assert!(type_allowed("1.2", "library"));
        assert!(!type_allowed("1.4", "platform"));
        assert!(type_allowed("1.5", "platform"));
        assert!(!type_allowed("1.5", "cryptographic-asset"));
        assert!(type_allowed("1.6", "cryptographic-asset"));
        assert!(!type_allowed("1.0", "file"));
        assert!(type_allowed("1.1", "file"));
        assert!(!type_allowed("1.1", "container"));
    }

    #[test]
    fn xml_schema_date_times() {
        for ok in [
            "2026-03-01T03:12:00Z",
            "2026-03-01T03:12:00",
            "2026-03-01T03:12:00.123+02:00",
            "-0044-03-15T12:00:00-01:30",
            "2026-12-31T24:00:00Z",
        ] {
            assert!(xs_date_time_ok(ok), "{ok}");
        }
        for bad in [
            "2026-03-01",
            "2026-03-01 03:12:00",
            "2026-13-01T03:12:00Z",
            "2026-03-00T03:12:00Z",
            "26-03-01T03:12:00Z",
            "2026-03-01T03:12Z",
            "2026-03-01T03:12:00.Z",
            "2026-03-01T03:12:00+0200",
            "",
        ] {
            assert!(!xs_date_time_ok(bad), "{bad}");
        }
    }
}
