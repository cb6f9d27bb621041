//! What a page answers when it cannot show what was asked: the API's
//! error, as a page, with the same status and message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::html::{bare_page, path_escape};
use crate::error::ApiError;

pub enum WebError {
    /// Not signed in (or the session is over): sign in, then come back.
    SignIn {
        next: String,
    },
    Api(ApiError),
}

pub type WebResult<T> = Result<T, WebError>;

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError::Api(e)
    }
}

impl From<custody_store::StoreError> for WebError {
    fn from(e: custody_store::StoreError) -> Self {
        WebError::Api(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { next } => {
                axum::response::Redirect::to(&format!("/signin?next={}", path_escape(&next)))
                    .into_response()
            }
            WebError::Api(e) => {
                let status = e.status;
                let message = e.public_message();
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                        "Cannot show this"
                    }
                    _ => "Something went wrong",
                };
                let body = html! {
                    h1 { (title) }
                    p.error role="alert" { (message) }
                    p { a href="/" { "Back to the start" } }
                };
                super::html::no_store((status, bare_page(title, body)).into_response())
            }
        }
    }
}
