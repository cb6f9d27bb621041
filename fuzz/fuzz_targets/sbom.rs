#![no_main]
//! Any bytes as an SBOM (CycloneDX JSON/XML, SPDX JSON/tag-value): never a
//! panic, and the count matches the list.

use custody_evidence::Limits;
use custody_evidence::sbom::{parse, purl_base};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_depth: 64,
    };
    if let Ok(s) = parse(data, limits) {
        assert_eq!(s.component_count as usize, s.components.len());
        for c in &s.components {
            if let Some(p) = &c.purl {
                let _ = purl_base(p);
            }
        }
    }
});
