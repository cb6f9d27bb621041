use custody_store::{BlobStore, Store};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub blobs: BlobStore,
    /// The most bytes one request may upload.
    pub max_upload: u64,
}
