use bytes::Bytes;
use custody_store::{BlobStore, StoreError};
use futures::StreamExt;
use sha2::{Digest, Sha256};

fn chunks(data: &[u8]) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    let parts: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(7919)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(parts)
}

async fn read_all(store: &BlobStore, sha: &str) -> Result<Vec<u8>, StoreError> {
    let mut s = store.read(sha).await?;
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

#[tokio::test]
async fn content_addressed_deduplicated_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&format!("file://{}", dir.path().display())).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut budget = u64::MAX;
    let a = store
        .put_stream(chunks(&data), &mut budget, u64::MAX)
        .await
        .unwrap();
    assert_eq!(a.sha256, hex::encode(Sha256::digest(&data)));
    assert_eq!(a.size, data.len() as u64);
    let b = store
        .put_stream(chunks(&data), &mut budget, u64::MAX)
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(read_all(&store, &a.sha256).await.unwrap(), data);
    let files = walk(dir.path());
    assert_eq!(files.len(), 1, "deduplicated, staging cleaned: {files:?}");

    // Corrupt the stored file: reading it must fail.
    std::fs::write(&files[0], b"tampered").unwrap();
    assert!(matches!(
        read_all(&store, &a.sha256).await,
        Err(StoreError::Integrity(_))
    ));
}

#[tokio::test]
async fn upload_over_budget_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&format!("file://{}", dir.path().display())).unwrap();
    let mut budget = 1000;
    let e = store
        .put_stream(chunks(&[7u8; 5000]), &mut budget, 1000)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::TooLarge { limit: 1000 }));
    assert!(walk(dir.path()).is_empty());
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
