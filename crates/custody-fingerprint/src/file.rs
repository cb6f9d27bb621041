//! SHA-256 of a file's bytes.
//!
//! Large files are read by a second thread into a ring of buffers while this
//! thread hashes, so the copy out of the page cache overlaps with hashing
//! (SHA-NI is picked at run time by the `sha2` crate).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc;

use sha2::Digest as _;

use crate::{Digest, Error, Result};

const CHUNK: usize = 1 << 20;
/// The per-thread buffer for files read in one go or a few reads.
const SMALL_BUF: usize = 256 << 10;
/// Below this size a pipelined read costs more (a thread) than it saves.
const PIPELINE_THRESHOLD: u64 = 16 << 20;

/// Hashes a file. Symbolic links are followed.
pub fn hash_file(path: &Path) -> Result<Digest> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::NotAFile(path.to_path_buf()));
    }
    let digest = if meta.len() >= PIPELINE_THRESHOLD {
        hash_pipelined(file)
    } else {
        hash_reader(&mut file, meta.len())
    };
    digest.map_err(|e| Error::io(path, e))
}

/// Hashes everything `reader` yields.
pub fn hash_reader(reader: &mut impl Read, _size_hint: u64) -> io::Result<Digest> {
    // Directory fingerprints hash thousands of small files per thread: one
    // buffer per thread, reused, saves an allocation and its zeroing each.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; SMALL_BUF]);
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut hasher = sha2::Sha256::new();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(Digest(hasher.finalize().into()))
    })
}

/// Hashes a file already known (from its directory entry) to be a regular
/// file: no `stat`, one open and reads to the end.
pub(crate) fn hash_regular_file(path: &Path) -> Result<Digest> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    hash_reader(&mut file, 0).map_err(|e| Error::io(path, e))
}

fn hash_pipelined(mut file: File) -> io::Result<Digest> {
    const BUFFERS: usize = 4;
    let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<(Vec<u8>, usize)>>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        // The channel has room for every buffer, so this cannot block or fail.
        let _ = empty_tx.send(vec![0u8; CHUNK]);
    }
    let reader = std::thread::spawn(move || {
        while let Ok(mut buf) = empty_rx.recv() {
            let mut filled = 0;
            let result = loop {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        filled += n;
                        if filled == buf.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e),
                }
            };
            let done = filled < buf.len();
            let msg = result.map(|()| (buf, filled));
            let failed = msg.is_err();
            if full_tx.send(msg).is_err() || done || failed {
                return;
            }
        }
    });
    let mut hasher = sha2::Sha256::new();
    let mut outcome = Ok(());
    for msg in full_rx.iter() {
        match msg {
            Ok((buf, n)) => {
                hasher.update(&buf[..n]);
                // The reader may have finished already; a closed channel is fine.
                let _ = empty_tx.send(buf);
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    drop(empty_tx);
    let _ = reader.join();
    outcome.map(|()| Digest(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // From Kosli's digest tests: empty, "this is non empty", "this is non empty."
        let cases = [
            (
                "",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "this is non empty",
                "1256d6510a6606ad61a4f6104243a291b18383b456d50205eba893b51e1807bc",
            ),
            (
                "this is non empty.",
                "a50afcf37a327e0715b3148c2625bc28b3e4dcdf32b6cf78c8b8fa3ac1ebfe47",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in cases {
            let p = dir.path().join("f");
            std::fs::write(&p, content).unwrap();
            assert_eq!(hash_file(&p).unwrap().to_hex(), want);
        }
    }

    #[test]
    fn pipelined_matches_plain_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        // Not a multiple of the chunk size, to exercise the short last read.
        let data: Vec<u8> = (0..(PIPELINE_THRESHOLD as usize + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(hash_file(&p).unwrap(), Digest::of(&data));
    }

    #[test]
    fn directory_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(hash_file(dir.path()), Err(Error::NotAFile(_))));
    }
}
