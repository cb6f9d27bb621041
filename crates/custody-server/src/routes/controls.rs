//! Policies, their attachment to environments, controls, the allowlist,
//! environment compliance and `assert artifact`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use custody_api::{
    AllowRequest, AllowlistEntry, AssertArtifactRequest, AssertResult, Control,
    CreatePolicyRequest, EnvironmentCompliance, Flow, Policy, PolicyAttachmentRequest, PolicyKind,
    PutControlRequest, Saved, TrailVerdict,
};
use custody_domain::{Fingerprint, Permission};
use custody_store::NewPolicy;
use serde::Deserialize;

use super::flows::trail_view;
use crate::auth::Caller;
use crate::body::LazyJson;
use crate::error::{ApiError, ApiResult};
use crate::programs::refused;
use crate::state::AppState;

fn status(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Creates a policy, or a new version of it when its content changed.
/// Policies are checked whole first: a bad one is refused with its line.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/policies/{name}", tag = "policies",
    params(("org" = String, Path), ("name" = String, Path)), request_body = CreatePolicyRequest,
    responses((status = 201, body = Saved<Policy>), (status = 200, body = Saved<Policy>), (status = 422)))]
pub async fn put_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, name)): Path<(String, String)>,
    body: LazyJson<CreatePolicyRequest>,
) -> ApiResult<(StatusCode, Json<Saved<Policy>>)> {
    caller.require(Permission::ManageRequirements)?;
    let req = body.read().await?;
    let controls = match req.kind {
        PolicyKind::Kosli => custody_policy::Policy::from_yaml(&req.content)
            .map_err(|e| ApiError::unprocessable(format!("policy '{name}': {e}")))?
            .controls()
            .map(str::to_string)
            .collect(),
        PolicyKind::Rego => {
            s.sandbox
                .check_rego(caller.0.org_id, &format!("{name}.rego"), &req.content)
                .await
                .map_err(|e| refused(&format!("policy '{name}'"), e))?
                .map_err(|e| ApiError::unprocessable(format!("policy '{name}': {e}")))?;
            vec![]
        }
    };
    let saved = s
        .store
        .create_policy(
            &caller.0,
            NewPolicy {
                name,
                kind: req.kind,
                content: req.content,
                description: req.description,
                controls,
            },
        )
        .await?;
    Ok((status(saved.created), Json(saved)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct VersionQuery {
    /// A version; the latest when absent.
    pub version: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/policies/{name}", tag = "policies",
    params(("org" = String, Path), ("name" = String, Path), VersionQuery),
    responses((status = 200, body = Policy), (status = 404)))]
pub async fn get_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, name)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Json<Policy>> {
    caller.require(Permission::Read)?;
    Ok(Json(
        s.store
            .get_policy(caller.0.org_id, &name, q.version)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/policies", tag = "policies",
    params(("org" = String, Path)), responses((status = 200, body = Vec<Policy>)))]
pub async fn list_policies(
    State(s): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Policy>>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.list_policies(caller.0.org_id).await?))
}

/// Attaches policies to an environment; it is judged again at once.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/environments/{env}/policies", tag = "policies",
    params(("org" = String, Path), ("env" = String, Path)), request_body = PolicyAttachmentRequest,
    responses((status = 200, body = Vec<String>), (status = 404), (status = 409)))]
pub async fn attach_policies(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    body: LazyJson<PolicyAttachmentRequest>,
) -> ApiResult<Json<Vec<String>>> {
    attachment(s, caller, env, body, true).await
}

/// Attaches or detaches; answers the policies attached afterwards.
async fn attachment(
    s: AppState,
    caller: Caller,
    env: String,
    body: LazyJson<PolicyAttachmentRequest>,
    attach: bool,
) -> ApiResult<Json<Vec<String>>> {
    caller.require(Permission::ManageRequirements)?;
    let req = body.read().await?;
    Ok(Json(
        s.store
            .attach_policies(&caller.0, &env, req.policy_names, attach)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/environments/{env}/policies", tag = "policies",
    params(("org" = String, Path), ("env" = String, Path)), request_body = PolicyAttachmentRequest,
    responses((status = 200, body = Vec<String>), (status = 404), (status = 422)))]
pub async fn detach_policies(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    body: LazyJson<PolicyAttachmentRequest>,
) -> ApiResult<Json<Vec<String>>> {
    attachment(s, caller, env, body, false).await
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/controls/{id}", tag = "policies",
    params(("org" = String, Path), ("id" = String, Path)), request_body = PutControlRequest,
    responses((status = 201, body = Saved<Control>), (status = 200, body = Saved<Control>)))]
pub async fn put_control(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
    body: LazyJson<PutControlRequest>,
) -> ApiResult<(StatusCode, Json<Saved<Control>>)> {
    caller.require(Permission::ManageRequirements)?;
    let req = body.read().await?;
    let saved = s.store.put_control(&caller.0, &id, req).await?;
    Ok((status(saved.created), Json(saved)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/controls/{id}", tag = "policies",
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Control), (status = 404)))]
pub async fn get_control(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
) -> ApiResult<Json<Control>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.get_control(caller.0.org_id, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/controls/{id}/versions", tag = "policies",
    params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Vec<Control>), (status = 404)))]
pub async fn control_versions(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Control>>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.control_versions(caller.0.org_id, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/controls", tag = "policies",
    params(("org" = String, Path), super::Archived), responses((status = 200, body = Vec<Control>)))]
pub async fn list_controls(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<super::Archived>,
) -> ApiResult<Json<Vec<Control>>> {
    caller.require(Permission::Read)?;
    Ok(Json(
        s.store.list_controls(caller.0.org_id, q.archived).await?,
    ))
}

/// No decisions are recorded for an archived control; its versions and the
/// decisions made stay.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/controls/{id}/archive", tag = "policies",
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Control), (status = 404)))]
pub async fn archive_control(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
) -> ApiResult<Json<Control>> {
    set_archived(s, caller, id, true).await
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/controls/{id}/unarchive", tag = "policies",
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Control), (status = 404)))]
pub async fn unarchive_control(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
) -> ApiResult<Json<Control>> {
    set_archived(s, caller, id, false).await
}

async fn set_archived(
    s: AppState,
    caller: Caller,
    id: String,
    archived: bool,
) -> ApiResult<Json<Control>> {
    caller.require(Permission::ManageRequirements)?;
    Ok(Json(
        s.store
            .set_control_archived(&caller.0, &id, archived)
            .await?,
    ))
}

/// Allowlists an artifact in an environment (a trusted third-party image);
/// the environment is judged again at once.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/environments/{env}/allowlist", tag = "policies",
    params(("org" = String, Path), ("env" = String, Path)), request_body = AllowRequest,
    responses((status = 201, body = AllowlistEntry), (status = 404), (status = 422)))]
pub async fn allow_artifact(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
    body: LazyJson<AllowRequest>,
) -> ApiResult<(StatusCode, Json<AllowlistEntry>)> {
    caller.require(Permission::ManageRequirements)?;
    let mut req = body.read().await?;
    req.fingerprint = Fingerprint::parse(&req.fingerprint)
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .to_string();
    let entry = s.store.allow_artifact(&caller.0, &env, req).await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments/{env}/allowlist", tag = "policies",
    params(("org" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = Vec<AllowlistEntry>), (status = 404)))]
pub async fn allowlist(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
) -> ApiResult<Json<Vec<AllowlistEntry>>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.allowlist(caller.0.org_id, &env).await?))
}

/// The environment's latest evaluation; 404 while no policy has judged it.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/environments/{env}/compliance", tag = "policies",
    params(("org" = String, Path), ("env" = String, Path)),
    responses((status = 200, body = EnvironmentCompliance), (status = 404)))]
pub async fn compliance(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, env)): Path<(String, String)>,
) -> ApiResult<Json<EnvironmentCompliance>> {
    caller.require(Permission::Read)?;
    s.store
        .latest_evaluation(caller.0.org_id, &env)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "environment '{env}' has never been judged by a policy: its compliance is unknown"
            ))
        })
}

/// Sets or removes a flow's tags.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct TagRequest {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/flows/{flow}/tags", tag = "flows",
    params(("org" = String, Path), ("flow" = String, Path)), request_body = TagRequest,
    responses((status = 200, body = Flow), (status = 404)))]
pub async fn tag_flow(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow)): Path<(String, String)>,
    body: LazyJson<TagRequest>,
) -> ApiResult<Json<Flow>> {
    caller.require(Permission::ManageRequirements)?;
    let req = body.read().await?;
    Ok(Json(
        s.store
            .tag_flow(&caller.0, &flow, req.set, req.unset)
            .await?,
    ))
}

/// May this artifact run? Judged by an environment's policies (and its
/// allowlist), by named policies, or by its trails' compliance (in one flow
/// or in all). Nothing is recorded.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/assert/artifact", tag = "policies",
    params(("org" = String, Path)), request_body = AssertArtifactRequest,
    responses((status = 200, body = AssertResult), (status = 404), (status = 422)))]
pub async fn assert_artifact(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    body: LazyJson<AssertArtifactRequest>,
) -> ApiResult<Json<AssertResult>> {
    caller.require(Permission::Read)?;
    let req = body.read().await?;
    let fp = Fingerprint::parse(&req.fingerprint)
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .to_string();
    let org_id = caller.0.org_id;
    let trails = s
        .store
        .artifact_trails(org_id, &fp, req.flow.as_deref())
        .await?;
    let mut flows = Vec::with_capacity(trails.len());
    for (flow, trail) in &trails {
        let view = trail_view(s.store.get_trail(org_id, flow, trail).await?)?;
        let reasons = view.reasons.clone();
        flows.push(TrailVerdict {
            flow: flow.clone(),
            trail: trail.clone(),
            compliant: view.compliant,
            status: view.status,
            reasons,
            url: format!(
                "{}/api/v1/orgs/{org}/flows/{}/trails/{}",
                s.public_url,
                escape(flow),
                escape(trail)
            ),
        });
    }
    if let Some(f) = &req.flow
        && trails.is_empty()
    {
        return Err(ApiError::not_found(format!(
            "Artifact with fingerprint '{fp}' does not exist in flow '{f}' belonging to organization '{org}'"
        )));
    }
    let judged_by_policy = req.environment.is_some() || !req.policies.is_empty();
    let mut reasons = Vec::new();
    let (scope, policy_evaluations) = if judged_by_policy {
        let j = s
            .store
            .judge_artifact(org_id, &fp, req.environment.as_deref(), &req.policies)
            .await?;
        for p in &j.policies {
            for a in &p.artifacts {
                reasons.extend(a.reasons().map(|r| format!("policy '{}': {r}", p.policy)));
            }
        }
        let scope = if req.environment.is_some() {
            "environment"
        } else {
            "policy"
        };
        (scope, j.policies)
    } else {
        if trails.is_empty() {
            reasons.push(format!(
                "artifact with fingerprint '{fp}' has no provenance: no flow reported it"
            ));
        }
        ("flow", vec![])
    };
    // Judged by its flows, or by policies with a flow named too: its
    // trails must pass.
    if !judged_by_policy || req.flow.is_some() {
        for t in flows.iter().filter(|t| !t.compliant) {
            reasons.push(format!(
                "artifact is not compliant in trail '{}' of flow '{}'",
                t.trail, t.flow
            ));
        }
    }
    Ok(Json(AssertResult {
        compliant: reasons.is_empty() && policy_evaluations.iter().all(|p| p.compliant),
        scope: scope.into(),
        fingerprint: fp,
        environment: req.environment,
        policy_evaluations,
        flows,
        reasons,
    }))
}

fn escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('/', "%2F")
        .replace(' ', "%20")
}
