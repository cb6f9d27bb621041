//! The HTTP surface. Handlers are thin: authorise, validate into domain
//! values, call the store, shape the answer.

pub(crate) mod attestations;
pub(crate) mod audit;
pub(crate) mod components;
pub(crate) mod controls;
pub(crate) mod environments;
pub(crate) mod evidence;
pub(crate) mod flows;
pub(crate) mod health;
pub(crate) mod intoto;
pub(crate) mod ledger;
pub(crate) mod notifications;
pub(crate) mod openapi_doc;
pub(crate) mod orgs;
pub(crate) mod tool_evidence;
pub(crate) mod types;

use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Custody API", description = "Change compliance records, evidence and proof."),
    modifiers(&BearerAuth),
    components(schemas(custody_api::ErrorBody)),
    security(("bearer" = [])),
    tags(
        (name = "health"), (name = "orgs"), (name = "flows"), (name = "trails"),
        (name = "artifacts"), (name = "attestations"), (name = "evidence"), (name = "environments"),
        (name = "policies"), (name = "notifications"), (name = "ledger")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route, with its limits: JSON bodies are read whole and bounded
/// by `max_json_body`; attestations bound their JSON part themselves and
/// stream their attachments (bounded by `--max-upload`), so they are not
/// held to the request timeout either, only to the body's idle timeout.
/// Health checks are outside the concurrency limit, so a server busy to
/// its limit still says it is alive.
pub fn router(limits: &crate::Limits) -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    use axum::http::StatusCode;
    use tower::limit::GlobalConcurrencyLimitLayer;
    use tower_http::timeout::TimeoutLayer;
    let slots = GlobalConcurrencyLimitLayer::new(limits.max_concurrent.max(1));
    let uploads = OpenApiRouter::new()
        .routes(routes!(attestations::report_attestation))
        .layer(DefaultBodyLimit::disable())
        .layer(slots.clone());
    let health = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(crate::metrics::metrics));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orgs::whoami))
        .routes(routes!(orgs::create_org))
        .routes(routes!(
            orgs::create_service_account,
            orgs::list_service_accounts
        ))
        .routes(routes!(orgs::get_settings, orgs::put_settings))
        .routes(routes!(
            orgs::update_service_account,
            orgs::delete_service_account
        ))
        .routes(routes!(orgs::create_api_key))
        .routes(routes!(orgs::list_api_keys))
        .routes(routes!(orgs::revoke_api_key))
        .routes(routes!(orgs::rotate_api_key))
        .routes(routes!(flows::put_flow, flows::list_flows))
        .routes(routes!(flows::archive_flow))
        .routes(routes!(flows::rename_flow))
        .routes(routes!(flows::list_repos))
        .routes(routes!(flows::get_repo))
        .routes(routes!(types::archive_type))
        .routes(routes!(flows::get_flow))
        .routes(routes!(flows::begin_trail, flows::list_trails))
        .routes(routes!(flows::get_trail))
        .routes(routes!(flows::report_artifact))
        .routes(routes!(flows::list_artifacts))
        .routes(routes!(flows::get_artifact))
        .routes(routes!(flows::search))
        .routes(routes!(flows::search_names))
        .routes(routes!(types::create_type, types::list_types))
        .routes(routes!(types::get_type))
        .routes(routes!(attestations::get_attestation))
        .routes(routes!(attestations::attestation_history))
        .routes(routes!(evidence::download))
        .routes(routes!(components::find_components))
        .routes(routes!(components::attestation_components))
        .routes(routes!(environments::list_environments))
        .routes(routes!(
            environments::put_environment,
            environments::get_environment
        ))
        .routes(routes!(environments::rename_environment))
        .routes(routes!(environments::archive_environment))
        .routes(routes!(environments::join_environment))
        .routes(routes!(environments::leave_environment))
        .routes(routes!(environments::report))
        .routes(routes!(environments::get_snapshot))
        .routes(routes!(environments::list_snapshots))
        .routes(routes!(environments::environment_events))
        .routes(routes!(environments::diff_snapshots))
        .routes(routes!(environments::timeline))
        .routes(routes!(environments::dora))
        .routes(routes!(controls::list_policies))
        .routes(routes!(controls::put_policy, controls::get_policy))
        .routes(routes!(
            controls::attach_policies,
            controls::detach_policies
        ))
        .routes(routes!(controls::list_controls))
        .routes(routes!(controls::archive_control))
        .routes(routes!(controls::unarchive_control))
        .routes(routes!(controls::put_control, controls::get_control))
        .routes(routes!(controls::control_versions))
        .routes(routes!(controls::allow_artifact, controls::allowlist))
        .routes(routes!(controls::compliance))
        .routes(routes!(controls::tag_flow))
        .routes(routes!(controls::assert_artifact))
        .routes(routes!(notifications::list_actions))
        .routes(routes!(notifications::put_action))
        .routes(routes!(notifications::list_deliveries))
        .routes(routes!(ledger::checkpoint))
        .routes(routes!(ledger::key))
        .routes(routes!(ledger::inclusion))
        .routes(routes!(ledger::consistency))
        .routes(routes!(ledger::entries))
        .routes(routes!(ledger::locate))
        .routes(routes!(ledger::verify))
        .routes(routes!(intoto::export))
        .routes(routes!(audit::audit_bundle))
        .layer(DefaultBodyLimit::max(limits.max_json_body))
        .layer(slots)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .merge(uploads)
        .merge(health)
        .split_for_parts();
    openapi_doc::complete(&mut doc);
    (router, doc)
}

/// `?archived=true`: list archived records too.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct Archived {
    /// Include archived ones.
    #[serde(default)]
    pub archived: bool,
}

/// Paging query parameters shared by list endpoints.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct Paging {
    /// From 1.
    pub page: Option<u32>,
    /// At most 500; default 50.
    pub per_page: Option<u32>,
}

impl Paging {
    pub fn resolve(&self) -> (u32, u32) {
        (
            self.page.unwrap_or(1).max(1),
            self.per_page.unwrap_or(50).clamp(1, 500),
        )
    }
}
