//! Writing a bundle: members in the format's order, as a gzip'd tar
//! stream. The caller decides what goes in; this only frames it.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

pub struct BundleWriter<W: Write> {
    tar: tar::Builder<GzEncoder<W>>,
    mtime: u64,
}

impl<W: Write> BundleWriter<W> {
    /// `created_at` (ms) is every member's time, so one export's bytes do
    /// not depend on the clock of the machine that wrote them.
    pub fn new(out: W, created_at: i64) -> Self {
        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
        tar.mode(tar::HeaderMode::Deterministic);
        BundleWriter {
            tar,
            mtime: (created_at.max(0) / 1000) as u64,
        }
    }

    fn header(&self, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(self.mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.stream(name, data.len() as u64, data)
    }

    /// A member of known size read from `r` (which must give exactly
    /// `size` bytes).
    pub fn stream(&mut self, name: &str, size: u64, r: impl Read) -> io::Result<()> {
        let mut h = self.header(size);
        self.tar.append_data(&mut h, name, r.take(size))
    }

    pub fn finish(self) -> io::Result<W> {
        self.tar.into_inner()?.finish()
    }
}
