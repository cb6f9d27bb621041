//! The pages, by what they show. Each calls the API's handlers for its
//! data and renders the answer.

pub mod artifacts;
mod change;
pub mod controls;
pub mod dora;
pub mod environments;
pub mod flows;
pub mod ledger;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}", get(org_home))
        .route("/orgs/{org}/environments", get(environments::overview))
        .route(
            "/orgs/{org}/environments/{env}",
            get(environments::environment),
        )
        .route(
            "/orgs/{org}/environments/{env}/events",
            get(environments::events),
        )
        .route(
            "/orgs/{org}/environments/{env}/snapshots",
            get(environments::snapshots),
        )
        .route(
            "/orgs/{org}/environments/{env}/diff",
            get(environments::diff),
        )
        .route("/orgs/{org}/flows", get(flows::list))
        .route("/orgs/{org}/flows/{flow}", get(flows::flow))
        .route("/orgs/{org}/flows/{flow}/trails/{trail}", get(flows::trail))
        .route(
            "/orgs/{org}/attestations/{id}",
            get(flows::attestation_page),
        )
        .route("/orgs/{org}/evidence/{sha256}", get(flows::download))
        .route(
            "/orgs/{org}/artifacts/{fingerprint}",
            get(artifacts::artifact),
        )
        .route("/orgs/{org}/search", get(artifacts::search))
        .route("/orgs/{org}/controls", get(controls::overview))
        .route("/orgs/{org}/policies/{name}", get(controls::policy))
        .route("/orgs/{org}/ledger", get(ledger::overview))
        .route(
            "/orgs/{org}/ledger/bundle",
            axum::routing::post(ledger::bundle),
        )
        .route("/orgs/{org}/ledger/locate", get(ledger::locate))
        .route("/orgs/{org}/ledger/{seq}", get(ledger::entry))
        .route("/orgs/{org}/dora", get(dora::overview))
}

async fn org_home(v: super::session::Viewer) -> axum::response::Redirect {
    axum::response::Redirect::to(&super::html::org_url(v.org(), &["environments"]))
}
