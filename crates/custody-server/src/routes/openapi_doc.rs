//! What the generated OpenAPI document needs on top of what the handlers'
//! annotations say: a description for every response (the specification
//! requires one), and the errors every operation can answer with, in the
//! one shape all errors have (`ErrorBody`). Done once, here, rather than
//! repeated on sixty handlers.

use axum::http::StatusCode;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// Errors any operation may answer with: a malformed request, no or a
/// bad key, a role that does not allow it, what it names is missing (or
/// another organisation's), input that does not fit what is stored, too
/// many requests, the server's own failure, or a dependency unavailable.
const EVERY: &[u16] = &[400, 401, 403, 404, 422, 429, 500, 503];
/// And what only a request with a body may get.
const WITH_BODY: &[u16] = &[409, 413, 415];

pub fn complete(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        // Health checks need no key and answer in their own shape.
        let public = path == "/healthz" || path == "/readyz" || path.ends_with("openapi.json");
        for (op, with_body) in [
            (&mut item.get, false),
            (&mut item.delete, false),
            (&mut item.put, true),
            (&mut item.post, true),
            (&mut item.patch, true),
        ] {
            if let Some(op) = op {
                fill(op, with_body, public);
            }
        }
    }
}

fn error_response(code: u16) -> Response {
    ResponseBuilder::new()
        .description(reason(code))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
                .build(),
        )
        .build()
}

fn reason(code: u16) -> String {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Answer")
        .to_string()
}

fn fill(op: &mut Operation, with_body: bool, public: bool) {
    for (code, r) in op.responses.responses.iter_mut() {
        let RefOr::T(resp) = r else { continue };
        let n: u16 = code.parse().unwrap_or(0);
        if resp.description.is_empty() {
            resp.description = reason(n);
        }
        if n >= 400 && resp.content.is_empty() && !public {
            *resp = error_response(n);
        }
    }
    if public {
        return;
    }
    let extra = if with_body { WITH_BODY } else { &[] };
    for &code in EVERY.iter().chain(extra) {
        op.responses
            .responses
            .entry(code.to_string())
            .or_insert_with(|| RefOr::T(error_response(code)));
    }
}
