//! RFC 6962 reference vectors (transparency-dev/merkle's test data, see
//! `tests/vectors/transparency-dev/README.md`): roots of every size, and
//! inclusion and consistency proofs — the ones a verifier must accept, which
//! the tree must also produce, and the mutations it must refuse.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_ledger::leaf_hash;
use custody_ledger::merkle::{
    Frontier, Hash, ProofPlan, hashes_from_leaves, verify_consistency, verify_inclusion,
};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/transparency-dev")
}

fn leaves() -> Vec<Hash> {
    let tree: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("tree.json")).unwrap()).unwrap();
    tree["leaf_inputs_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| leaf_hash(&hex::decode(h.as_str().unwrap()).unwrap()))
        .collect()
}

/// A base64 value as a hash. Some vectors hold placeholders that are not
/// 32 bytes ("don't care"); they stand for a value that is no real node,
/// so they map to one that cannot be: equal placeholders stay equal.
fn hash(v: &Value) -> Option<Hash> {
    let bytes = B64.decode(v.as_str()?).ok()?;
    Some(match Hash::try_from(bytes.as_slice()) {
        Ok(h) => h,
        Err(_) => {
            use sha2::Digest;
            sha2::Sha256::digest([b"placeholder:".as_slice(), &bytes].concat()).into()
        }
    })
}

/// A leaf hash must be one: anything else is refused before verifying.
fn exact_hash(v: &Value) -> Option<Hash> {
    B64.decode(v.as_str()?).ok()?.try_into().ok()
}

fn cases(kind: &str) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir().join(kind)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                out.push((p, v));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn roots_of_every_size() {
    let tree: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("tree.json")).unwrap()).unwrap();
    let roots = tree["roots_hex"].as_array().unwrap();
    let mut f = Frontier::new();
    assert_eq!(hex::encode(f.root()), roots[0].as_str().unwrap());
    for (i, leaf) in leaves().iter().enumerate() {
        f.push(*leaf, |_, _| {});
        assert_eq!(
            hex::encode(f.root()),
            roots[i + 1].as_str().unwrap(),
            "size {}",
            i + 1
        );
    }
}

#[test]
fn inclusion_vectors() {
    let all = leaves();
    let hashes = hashes_from_leaves(&all);
    let cases = cases("inclusion");
    assert!(cases.len() > 50, "{} cases", cases.len());
    let mut produced = 0;
    for (path, c) in cases {
        let index = c["leafIdx"].as_u64().unwrap();
        let size = c["treeSize"].as_u64().unwrap();
        let want_err = c["wantErr"].as_bool().unwrap();
        let proof: Option<Vec<Hash>> = c["proof"]
            .as_array()
            .map(|a| a.iter().map(hash).collect())
            .unwrap_or(Some(Vec::new()));
        let (Some(root), Some(leaf), Some(proof)) =
            (hash(&c["root"]), exact_hash(&c["leafHash"]), proof)
        else {
            assert!(
                want_err,
                "{}: unreadable but expected to verify",
                path.display()
            );
            continue;
        };
        let got = verify_inclusion(index, size, &leaf, &proof, &root);
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
        if !want_err && size as usize <= all.len() && size > 0 {
            let plan = ProofPlan::inclusion(index, size).unwrap();
            assert_eq!(plan.assemble(&hashes).unwrap(), proof, "{}", path.display());
            produced += 1;
        }
    }
    assert!(produced > 0);
}

#[test]
fn consistency_vectors() {
    let all = leaves();
    let hashes = hashes_from_leaves(&all);
    let cases = cases("consistency");
    assert!(cases.len() > 50, "{} cases", cases.len());
    let mut produced = 0;
    for (path, c) in cases {
        let old = c["size1"].as_u64().unwrap();
        let new = c["size2"].as_u64().unwrap();
        let want_err = c["wantErr"].as_bool().unwrap();
        let proof: Option<Vec<Hash>> = c["proof"]
            .as_array()
            .map(|a| a.iter().map(hash).collect())
            .unwrap_or(Some(Vec::new()));
        let (Some(r1), Some(r2), Some(proof)) = (hash(&c["root1"]), hash(&c["root2"]), proof)
        else {
            assert!(
                want_err,
                "{}: unreadable but expected to verify",
                path.display()
            );
            continue;
        };
        let got = verify_consistency(old, new, &r1, &r2, &proof);
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
        if !want_err && new as usize <= all.len() && old > 0 {
            let plan = ProofPlan::consistency(old, new).unwrap();
            assert_eq!(plan.assemble(&hashes).unwrap(), proof, "{}", path.display());
            produced += 1;
        }
    }
    assert!(produced > 0);
}
