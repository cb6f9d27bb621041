//! JSON bodies read only once the caller may make the request.
//!
//! axum runs a handler's extractors before its code, so a `Json<T>`
//! argument reads and parses the whole body before the handler can check
//! the caller's role: anyone with any key could make the server read and
//! parse the largest body allowed. A [`LazyJson`] holds the request
//! unread; the handler reads it after its checks.

use std::convert::Infallible;
use std::marker::PhantomData;

use axum::Json;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult, json_rejection};

pub struct LazyJson<T> {
    req: Request,
    _t: PhantomData<fn() -> T>,
}

impl<S: Send + Sync, T> FromRequest<S> for LazyJson<T> {
    type Rejection = Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Infallible> {
        Ok(LazyJson {
            req,
            _t: PhantomData,
        })
    }
}

/// The JSON body limit, for messages that name it (axum's limit itself
/// is set with `DefaultBodyLimit`).
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

impl<T: DeserializeOwned> LazyJson<T> {
    /// Reads and parses the body, within the route's body limit.
    pub async fn read(self) -> ApiResult<T> {
        let limit = self.req.extensions().get::<JsonLimit>().copied();
        Json::<T>::from_request(self.req, &())
            .await
            .map(|Json(t)| t)
            .map_err(|r| match (r.status(), limit) {
                (axum::http::StatusCode::PAYLOAD_TOO_LARGE, Some(JsonLimit(n))) => {
                    ApiError::too_large(format!(
                        "the request body is over the limit of {n} bytes (the server's --max-json-body)"
                    ))
                }
                _ => json_rejection(r),
            })
    }
}
