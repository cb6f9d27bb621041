//! The web UI: server-rendered pages for the people who look rather than
//! type. Every page calls the API's own handlers (with the session's key
//! as the caller) and renders what they answer, so a page cannot show
//! anything the API would not, nor disagree with it. No JavaScript is
//! needed; charts are SVG drawn here.

mod error;
mod html;
mod pages;
mod session;
mod time;
mod timeline;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use self::error::WebError;
use self::html::{STYLE, STYLE_PATH, bare_page, no_store, org_url};
use self::session::{Cookies, Viewer, cookie, local_path, random_token, redirect_with, token_hash};
use crate::state::AppState;

/// The UI's routes, with headers that keep its pages to themselves.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_form).post(signin))
        .route("/signout", post(signout))
        .route(STYLE_PATH.as_str(), get(style))
        // Browsers ask for it on every site; there is none to send.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .merge(pages::routes())
        .layer(axum::middleware::from_fn(page_headers))
}

/// No other site may frame, script or restyle a page; nothing is loaded
/// from anywhere else.
async fn page_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        STYLE,
    )
        .into_response()
}

async fn home(v: Result<Viewer, WebError>) -> Response {
    match v {
        Ok(v) => axum::response::Redirect::to(&org_url(v.org(), &["environments"])).into_response(),
        Err(_) => axum::response::Redirect::to("/signin").into_response(),
    }
}

#[derive(Deserialize)]
struct SigninQuery {
    next: Option<String>,
}

fn signin_page(next: Option<&str>, token: &str, problem: Option<&str>) -> maud::Markup {
    html! {
        h1 { "Sign in to Custody" }
        p { "Paste an API key. The browser keeps only a session, for 8 hours or until you sign out; it has the key's role, and ends when the key is revoked." }
        @if let Some(p) = problem { p.error role="alert" id="signin-error" { (p) } }
        form method="post" action="/signin" {
            input type="hidden" name="csrf" value=(token);
            @if let Some(n) = next { input type="hidden" name="next" value=(n); }
            label for="api_key" { "API key" }
            @if problem.is_some() {
                input id="api_key" name="api_key" type="password" autocomplete="off" required
                    aria-describedby="signin-error" aria-invalid="true";
            } @else {
                input id="api_key" name="api_key" type="password" autocomplete="off" required autofocus;
            }
            button type="submit" { "Sign in" }
        }
    }
}

async fn signin_form(State(s): State<AppState>, Query(q): Query<SigninQuery>) -> Response {
    let cookies = Cookies::for_state(&s);
    let token = random_token();
    let next = local_path(q.next.as_deref());
    let mut r =
        no_store(bare_page("Sign in", signin_page(next.as_deref(), &token, None)).into_response());
    r.headers_mut()
        .append(header::SET_COOKIE, cookies.set_signin(&token));
    r
}

#[derive(Deserialize)]
struct SigninForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

async fn signin(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<SigninForm>,
) -> Result<Response, WebError> {
    let cookies = Cookies::for_state(&s);
    let next = local_path(f.next.as_deref());
    let expected = cookie(&headers, cookies.signin_name()).unwrap_or("");
    if expected.is_empty() || !session::constant_time_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return Err(WebError::Api(crate::error::ApiError::forbidden(
            "the sign-in form was not sent from this server's sign-in page (its CSRF token is missing or wrong): open the sign-in page again",
        )));
    }
    let again = |problem: &str| {
        let token = random_token();
        let mut r = no_store(
            (
                StatusCode::UNAUTHORIZED,
                bare_page(
                    "Sign in",
                    signin_page(next.as_deref(), &token, Some(problem)),
                ),
            )
                .into_response(),
        );
        r.headers_mut()
            .append(header::SET_COOKIE, cookies.set_signin(&token));
        r
    };
    let key = f.api_key.trim();
    if key.is_empty() {
        return Ok(again("Paste an API key to sign in."));
    }
    let session = random_token();
    let now = custody_store::clock::now_ms();
    let opened = s
        .store
        .open_session(
            &token_hash(&session),
            &crate::auth::hash_key(key),
            &random_token(),
            now,
            now + session::SESSION_TTL_MS,
        )
        .await?;
    let Some(p) = opened else {
        return Ok(again(
            "That API key was not found, or it has expired or been revoked.",
        ));
    };
    let to = next.unwrap_or_else(|| org_url(&p.org, &["environments"]));
    Ok(redirect_with(
        &to,
        &[cookies.set_session(&session), cookies.clear_signin()],
    ))
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn signout(
    State(s): State<AppState>,
    headers: HeaderMap,
    v: Viewer,
    axum::Form(f): axum::Form<CsrfForm>,
) -> Result<Response, WebError> {
    v.check_csrf(&f.csrf)?;
    let cookies = Cookies::for_state(&s);
    if let Some(token) = cookie(&headers, cookies.session_name()) {
        s.store.end_session(&token_hash(token)).await?;
    }
    Ok(redirect_with("/signin", &[cookies.clear_session()]))
}
