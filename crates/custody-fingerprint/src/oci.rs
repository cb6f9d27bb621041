//! The fingerprint of an OCI image layout: the digest of the manifest (or
//! image index) that `index.json` names, as a registry would serve it.
//!
//! Accepts a layout directory or a tarball of one (plain or gzip, e.g. the
//! output of `docker save` or `skopeo copy ... oci-archive:`). The manifest
//! blob is read and its SHA-256 checked against the digest it is filed
//! under, so a tampered layout is rejected rather than fingerprinted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use crate::{Digest, Error, Result};

/// Manifests and indexes are small; a blob this large is a layer.
const MAX_MANIFEST: u64 = 4 << 20;
const REF_ANNOTATIONS: [&str; 2] = [
    "org.opencontainers.image.ref.name",
    "io.containerd.image.name",
];

#[derive(Deserialize)]
struct Index {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// Fingerprints the layout at `path`. When the index lists several images,
/// `image_ref` picks one by its ref-name annotation (a tag such as `v1`, or
/// a full name such as `example.com/app:v1`).
pub fn fingerprint(path: &Path, image_ref: Option<&str>) -> Result<Digest> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mut layout = if meta.is_dir() {
        Layout::Dir(path)
    } else {
        Layout::Archive(read_archive(path)?)
    };
    let index_bytes = layout.read("index.json", path)?;
    let index: Index = serde_json::from_slice(&index_bytes).map_err(|e| Error::NotOciLayout {
        path: path.to_path_buf(),
        reason: format!("index.json: {e}"),
    })?;
    if index.schema_version != Some(2) {
        return Err(not_oci(path, "index.json: schemaVersion must be 2"));
    }
    let chosen = choose(&index.manifests, image_ref).map_err(|reason| not_oci(path, &reason))?;
    let hex = chosen
        .digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        .ok_or_else(|| {
            not_oci(
                path,
                &format!("unsupported manifest digest '{}'", chosen.digest),
            )
        })?
        .to_string();
    let blob = layout.read(&format!("blobs/sha256/{hex}"), path)?;
    let actual = Digest::of(&blob);
    if actual.to_hex() != hex {
        return Err(not_oci(
            path,
            &format!(
                "blob sha256:{hex} has content with digest sha256:{actual}; the layout is corrupt"
            ),
        ));
    }
    Ok(actual)
}

fn choose<'a>(
    manifests: &'a [Descriptor],
    image_ref: Option<&str>,
) -> Result<&'a Descriptor, String> {
    let names = |d: &'a Descriptor| {
        REF_ANNOTATIONS
            .iter()
            .filter_map(move |k| d.annotations.get(*k))
    };
    match image_ref {
        Some(r) => {
            let found: Vec<&Descriptor> = manifests
                .iter()
                .filter(|d| {
                    names(d).any(|n| n == r || n.rsplit_once(':').is_some_and(|(_, tag)| tag == r))
                })
                .collect();
            match found.as_slice() {
                [one] => Ok(one),
                [] => Err(format!("no image in index.json is named '{r}'")),
                _ => Err(format!("several images in index.json match '{r}'")),
            }
        }
        None => match manifests {
            [one] => Ok(one),
            [] => Err("index.json lists no image".to_string()),
            many => {
                let all: Vec<String> = many.iter().flat_map(|d| names(d).cloned()).collect();
                Err(format!(
                    "index.json lists {} images; choose one with --image-ref (names: {})",
                    many.len(),
                    if all.is_empty() {
                        "none".to_string()
                    } else {
                        all.join(", ")
                    }
                ))
            }
        },
    }
}

fn not_oci(path: &Path, reason: &str) -> Error {
    Error::NotOciLayout {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

enum Layout<'a> {
    Dir(&'a Path),
    Archive(HashMap<String, Vec<u8>>),
}

impl Layout<'_> {
    fn read(&mut self, name: &str, origin: &Path) -> Result<Vec<u8>> {
        match self {
            Layout::Dir(root) => {
                let p = root.join(name);
                let f = File::open(&p).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => not_oci(origin, &format!("{name} is missing")),
                    _ => Error::io(&p, e),
                })?;
                let mut buf = Vec::new();
                f.take(MAX_MANIFEST + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::io(&p, e))?;
                if buf.len() as u64 > MAX_MANIFEST {
                    return Err(not_oci(
                        origin,
                        &format!("{name} is too large for a manifest"),
                    ));
                }
                Ok(buf)
            }
            Layout::Archive(files) => files
                .remove(name)
                .ok_or_else(|| not_oci(origin, &format!("{name} is missing from the archive"))),
        }
    }
}

/// Reads the small files of a tarball in one pass; layers are skipped
/// without being held in memory.
fn read_archive(path: &Path) -> Result<HashMap<String, Vec<u8>>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 2];
    let gz = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = HashMap::new();
    let entries = archive
        .entries()
        .map_err(|e| not_oci(path, &format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_oci(path, &format!("corrupt tar archive: {e}")))?;
        if !entry.header().entry_type().is_file() || entry.size() > MAX_MANIFEST {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| not_oci(path, &format!("corrupt tar archive: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if name != "index.json" && !name.starts_with("blobs/sha256/") {
            continue;
        }
        let mut buf = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        files.insert(name, buf);
    }
    Ok(files)
}
