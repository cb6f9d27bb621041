use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use custody_api::{Attestation, AttestationInput, Evidence, Page};
use custody_domain::provenance::{validate_annotations, validate_external_urls};
use custody_domain::template::FlowTemplate;
use custody_domain::{AttestationName, Fingerprint, Permission};
use custody_store::{AttestationBinding, NewAttestation};
use serde_json::json;
use sha2::Digest;

use super::tool_evidence;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::programs::refused;
use crate::state::AppState;

/// The multipart form of an attestation report (for the OpenAPI document:
/// the handler reads the parts as they stream).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AttestationUpload {
    /// The attestation as JSON text (an `AttestationInput`); the first part.
    data_json: String,
    /// Evidence files, any number, each streamed into the evidence vault
    /// under its filename.
    #[schema(value_type = Vec<String>, format = Binary)]
    attachment_file: Vec<Vec<u8>>,
}

/// Reports an attestation. Either a JSON body (no attachments) or
/// `multipart/form-data` with a `data_json` field first, then any number of
/// `attachment_file` parts, each streamed into the evidence vault.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/attestations", tag = "attestations",
    params(("org" = String, Path), ("flow" = String, Path), ("trail" = String, Path)),
    request_body(content(
        (AttestationInput = "application/json"),
        (AttestationUpload = "multipart/form-data")
    )),
    responses((status = 201, body = Attestation), (status = 400), (status = 404), (status = 413), (status = 422)))]
pub async fn report_attestation(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow, trail)): Path<(String, String, String)>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Attestation>)> {
    // Decisions need their own permission, checked once the kind is read;
    // nobody who may make neither gets the body read at all.
    if !caller.role().allows(Permission::ReportEvidence) {
        caller.require(Permission::ReportDecisions)?;
    }
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (input, mut multipart) = if is_multipart {
        let mut mp = Multipart::from_request(req, &s)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let field = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?
            .ok_or_else(|| {
                ApiError::bad_request("the multipart body is empty: send a data_json field")
            })?;
        if field.name() != Some("data_json") {
            return Err(ApiError::bad_request(
                "the first multipart field must be data_json",
            ));
        }
        let text = read_limited(field, s.limits.max_evidence_json).await?;
        (parse_input(&text, &s.limits)?, Some(mp))
    } else {
        let limit = s.limits.max_evidence_json;
        let body = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                ApiError::too_large(format!(
                    "the attestation's JSON is over the limit of {limit} bytes (the server's --max-evidence-json)"
                ))
            })?;
        (parse_input(&body, &s.limits)?, None)
    };

    let mut new = evaluate(&s, &caller, &flow, &trail, input).await?;

    if let Some(mp) = multipart.as_mut() {
        // Refuse before any upload when the trail does not exist (the write
        // checks again, inside its transaction).
        s.store.trail_exists(caller.0.org_id, &flow, &trail).await?;
        let mut budget = s.max_upload;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?
        {
            if field.name() != Some("attachment_file") {
                return Err(ApiError::bad_request(format!(
                    "unexpected multipart field '{}': only attachment_file may follow data_json",
                    field.name().unwrap_or("")
                )));
            }
            let filename = clean_filename(field.file_name())?;
            let stored = s
                .blobs
                .put_stream(Box::pin(field), &mut budget, s.max_upload)
                .await?;
            new.evidence.push(Evidence {
                sha256: stored.sha256,
                filename,
                size: stored.size,
            });
        }
    }
    let a = s
        .store
        .put_attestation(&caller.0, &flow, &trail, new)
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Reads a small multipart field whole, refusing more than `limit` bytes
/// (the body as a whole has no limit, as attachments stream).
async fn read_limited(
    mut field: axum::extract::multipart::Field<'_>,
    limit: usize,
) -> ApiResult<Bytes> {
    let mut buf = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?
    {
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::too_large(format!(
                "data_json is over the limit of {limit} bytes (the server's --max-evidence-json)"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Parses an attestation's JSON and holds it to the limits: only a tool's
/// results may make it large; free-form fields are kept as text, never
/// parsed here, and bounded one by one.
fn parse_input(bytes: &Bytes, limits: &crate::Limits) -> ApiResult<AttestationInput> {
    let input: AttestationInput = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid attestation JSON: {e}")))?;
    for (field, raw) in [
        ("user_data", &input.user_data),
        ("attestation_data", &input.attestation_data),
    ] {
        if let Some(r) = raw {
            free_form(field, r, limits)?;
        }
    }
    let results = input.results.as_ref().map_or(0, |r| r.get().len());
    let rest = bytes.len().saturating_sub(results);
    if rest > limits.max_json_body {
        return Err(ApiError::too_large(format!(
            "the attestation's fields other than results take {rest} bytes, over the limit of {} bytes (the server's --max-json-body)",
            limits.max_json_body
        )));
    }
    Ok(input)
}

/// Holds a free-form JSON field to its limits: its size, and its nesting
/// (what walks it later — the ledger's canonical JSON, readers' parsers —
/// must not meet a depth it cannot take).
pub(crate) fn free_form(
    field: &str,
    raw: &serde_json::value::RawValue,
    limits: &crate::Limits,
) -> ApiResult<()> {
    let len = raw.get().len();
    if len > limits.max_field {
        return Err(ApiError::too_large(format!(
            "{field} is {len} bytes, over the limit of {} bytes (the server's --max-field)",
            limits.max_field
        )));
    }
    let depth = custody_domain::json_depth::depth(raw.get());
    if depth > custody_domain::json_depth::MAX_DEPTH {
        return Err(ApiError::bad_request(format!(
            "{field} nests {depth} levels deep; at most {} are accepted",
            custody_domain::json_depth::MAX_DEPTH
        )));
    }
    Ok(())
}

/// Attachment names are paths relative to what was attached; nothing may
/// climb out of it or be absolute.
fn clean_filename(name: Option<&str>) -> ApiResult<String> {
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("an attachment_file part has no filename"))?;
    if name.starts_with('/')
        || name.split('/').any(|p| p == ".." || p.is_empty())
        || name.contains('\0')
    {
        return Err(ApiError::bad_request(format!(
            "invalid attachment filename '{name}'"
        )));
    }
    Ok(name.to_string())
}

/// Validates the input and decides compliance for its type.
async fn evaluate(
    s: &AppState,
    caller: &Caller,
    flow: &str,
    trail: &str,
    mut input: AttestationInput,
) -> ApiResult<NewAttestation> {
    let bad = |e: &dyn std::fmt::Display| ApiError::bad_request(e.to_string());
    let name = AttestationName::parse(&input.name).map_err(|e| bad(&e))?;
    let mut binding = match (&name.artifact, &input.fingerprint) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either a fingerprint or an ARTIFACT.NAME attestation name, not both",
            ));
        }
        (Some(a), None) => AttestationBinding::ArtifactName(a.clone()),
        (None, Some(fp)) => AttestationBinding::Fingerprint(
            Fingerprint::parse(fp).map_err(|e| bad(&e))?.to_string(),
        ),
        (None, None) => AttestationBinding::Trail,
    };
    validate_annotations(&input.annotations).map_err(|e| bad(&e))?;
    validate_external_urls(&input.external_urls).map_err(|e| bad(&e))?;
    // Overriding a verdict is a decision about evidence, not evidence.
    let needed = if input.kind == "decision" || input.kind == "override" {
        Permission::ReportDecisions
    } else {
        Permission::ReportEvidence
    };
    caller.require(needed)?;
    let mut components = None;
    let mut attestation_data = None;
    let mut evidence = vec![];
    let (kind, compliant, reasons, data) = match input.kind.as_str() {
        "generic" => {
            let ok = input.compliant.unwrap_or(true);
            let reasons = if ok {
                vec![]
            } else {
                vec!["reported as non-compliant".to_string()]
            };
            ("generic".to_string(), ok, reasons, json!({}))
        }
        "decision" => {
            let ok = input.compliant.unwrap_or(true);
            let reasons = if ok {
                vec![]
            } else {
                vec!["the decision was non-compliant".to_string()]
            };
            if let Some(c) = &input.control {
                custody_domain::names::validate("control identifier", c).map_err(|e| bad(&e))?;
            }
            ("decision".to_string(), ok, reasons, json!({}))
        }
        "custom" => {
            let spec = input
                .type_name
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("a custom attestation needs type_name"))?;
            let (type_name, version) = parse_type_ref(spec)?;
            let data = input.attestation_data.take().ok_or_else(|| {
                ApiError::bad_request("a custom attestation needs attestation_data")
            })?;
            let t = s
                .store
                .get_attestation_type(caller.0.org_id, type_name, version)
                .await
                .map_err(|e| match e {
                    custody_store::StoreError::NotFound { .. } => {
                        ApiError::unprocessable(e.to_string())
                    }
                    other => other.into(),
                })?;
            if s.store
                .attestation_type_archived(caller.0.org_id, &t.name)
                .await?
            {
                return Err(ApiError::unprocessable(format!(
                    "attestation type '{}' is archived: create a new version of it to attest with it again",
                    t.name
                )));
            }
            let verdict = s
                .sandbox
                .eval_type(caller.0.org_id, &t.name, &t.schema, &t.jq_rules, data.get())
                .await
                .map_err(|e| refused(&format!("the rules of type '{}'", t.name), e))?
                .map_err(|e| ApiError::unprocessable(e.to_string()))?;
            attestation_data = Some(data);
            (
                format!("custom:{}", t.name),
                verdict.compliant,
                verdict.reasons,
                json!({"type_name": t.name, "type_version": t.version}),
            )
        }
        "intoto" => {
            let raw = input.attestation_data.take().ok_or_else(|| {
                ApiError::bad_request(
                    "an intoto attestation needs attestation_data: {\"envelope\", \"public_key\"}",
                )
            })?;
            let (bound, statement, data) = intoto(raw.get(), binding)?;
            binding = bound;
            attestation_data = Some(statement);
            ("intoto".to_string(), true, vec![], data)
        }
        "override" => {
            let o = overriding(s, caller, flow, trail, &name, &binding, &mut input).await?;
            attestation_data = o.attestation_data;
            evidence = o.evidence;
            (o.kind, o.compliant, o.reasons, o.data)
        }
        k if tool_evidence::KINDS.contains(&k) => {
            let kind = k.to_string();
            if kind == "pull_request" && input.require_approvals.is_none() {
                let (t, artifacts) = trail_template(s, caller, flow, trail).await?;
                input.require_approvals = t
                    .and_then(|t| requirement(&t, &artifacts, &name, &binding).cloned())
                    .and_then(|r| r.approvals);
            }
            let v = tool_evidence::evaluate(&kind, &mut input)?;
            components = v.components;
            (kind, v.compliant, v.reasons, v.data)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "unsupported attestation type '{other}': expected generic, custom, decision, intoto, {}",
                tool_evidence::KINDS.join(", ")
            )));
        }
    };
    Ok(NewAttestation {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.name,
        kind,
        binding,
        compliant,
        reasons,
        data,
        attestation_data,
        user_data: input.user_data,
        annotations: input.annotations,
        external_urls: input.external_urls,
        description: input.description,
        origin_url: input.origin_url,
        git_commit_info: input.git_commit_info,
        repo_info: input.repo_info,
        evidence,
        components,
        control: input.control,
    })
}

/// The template that applies to a trail (for one not begun yet, its
/// flow's), and the trail's artifacts so far.
async fn trail_template(
    s: &AppState,
    caller: &Caller,
    flow: &str,
    trail: &str,
) -> ApiResult<(Option<FlowTemplate>, Vec<custody_api::Artifact>)> {
    use custody_store::StoreError;
    let org = caller.0.org_id;
    let (yaml, artifacts) = match s.store.get_trail(org, flow, trail).await {
        Ok(t) => (t.template_yaml().map(String::from), t.artifacts),
        Err(StoreError::NotFound { .. }) => match s.store.get_flow(org, flow).await {
            Ok(f) => (f.template_yaml, vec![]),
            // The write itself answers 404 for a flow that does not exist.
            Err(StoreError::NotFound { .. }) => return Ok((None, vec![])),
            Err(e) => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    Ok((
        yaml.and_then(|y| FlowTemplate::from_yaml(&y).ok()),
        artifacts,
    ))
}

/// The template requirement an attestation of this name and binding
/// answers, if the template names it.
fn requirement<'t>(
    template: &'t FlowTemplate,
    artifacts: &[custody_api::Artifact],
    name: &AttestationName,
    binding: &AttestationBinding,
) -> Option<&'t custody_domain::template::Requirement> {
    let artifact = match binding {
        AttestationBinding::Trail => None,
        AttestationBinding::ArtifactName(a) => Some(a.as_str()),
        AttestationBinding::Fingerprint(fp) => Some(
            artifacts
                .iter()
                .rev()
                .find(|a| &a.fingerprint == fp)?
                .name
                .as_str(),
        ),
    };
    template.requirement(artifact, &name.name)
}

struct Override {
    kind: String,
    compliant: bool,
    reasons: Vec<String>,
    data: serde_json::Value,
    attestation_data: Option<Box<serde_json::value::RawValue>>,
    evidence: Vec<Evidence>,
}

/// An override: the latest attestation of this name and binding, again,
/// with the compliance given and the reason why. The original stays in
/// the trail's history; the override is its newest version. When the
/// template says `four-eyes: true` for it, the account that reported the
/// original may not override it.
async fn overriding(
    s: &AppState,
    caller: &Caller,
    flow: &str,
    trail: &str,
    name: &AttestationName,
    binding: &AttestationBinding,
    input: &mut AttestationInput,
) -> ApiResult<Override> {
    let compliant = input.compliant.ok_or_else(|| {
        ApiError::bad_request("an override needs compliant: the new compliance status")
    })?;
    let reason = input
        .reason
        .take()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("an override needs a reason"))?;
    let t = s.store.get_trail(caller.0.org_id, flow, trail).await?;
    let bound = |a: &&Attestation| match binding {
        AttestationBinding::Trail => a.artifact.is_none() && a.fingerprint.is_none(),
        AttestationBinding::ArtifactName(n) => a.artifact.as_deref() == Some(n.as_str()),
        AttestationBinding::Fingerprint(fp) => a.fingerprint.as_deref() == Some(fp.as_str()),
    };
    let original = t
        .attestations
        .iter()
        .rev()
        .find(|a| a.name == name.name && bound(a))
        .ok_or_else(|| {
            ApiError::unprocessable(format!(
                "trail '{trail}' has no attestation '{name}' to override"
            ))
        })?;
    let template = t
        .template_yaml()
        .and_then(|y| FlowTemplate::from_yaml(y).ok());
    let four_eyes = template
        .as_ref()
        .and_then(|tpl| requirement(tpl, &t.artifacts, name, binding))
        .is_some_and(|r| r.four_eyes);
    if four_eyes
        && let (
            Some(custody_api::Actor::Key {
                org,
                service_account,
                ..
            }),
            custody_ledger::Actor::Key {
                org: o,
                service_account: a,
                ..
            },
        ) = (&original.reported_by, caller.0.actor())
        && *org == o
        && *service_account == a
    {
        return Err(ApiError::forbidden(format!(
            "four eyes: '{name}' was reported by service account '{a}', so another account must override it (the template says four-eyes: true)"
        )));
    }
    let mut data = match &original.data {
        serde_json::Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    let note = custody_api::OverrideNote {
        of: original.id.clone(),
        reason: reason.clone(),
        was_compliant: original.compliant,
        was_reasons: original.reasons.clone(),
    };
    data.insert(
        "override".to_string(),
        serde_json::to_value(note).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    let reasons = if compliant {
        vec![]
    } else {
        vec![format!("overridden as non-compliant: {reason}")]
    };
    Ok(Override {
        kind: original.kind.clone(),
        compliant,
        reasons,
        data: serde_json::Value::Object(data),
        attestation_data: original.attestation_data.clone(),
        evidence: original.evidence.clone(),
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IntotoInput {
    envelope: custody_ledger::dsse::Envelope,
    public_key: String,
}

/// A signed in-toto statement made by another tool: verified with the key
/// the caller gives, bound to the artifact its subject names. Returns the
/// binding, the statement (kept as the attestation's data) and the summary.
fn intoto(
    raw: &str,
    binding: AttestationBinding,
) -> ApiResult<(
    AttestationBinding,
    Box<serde_json::value::RawValue>,
    serde_json::Value,
)> {
    use custody_ledger::foreign::{PublicKey, Statement};
    let un = |m: String| ApiError::unprocessable(m);
    let input: IntotoInput = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("attestation_data: {e}")))?;
    let key = PublicKey::parse(&input.public_key).map_err(|e| un(format!("public_key: {e}")))?;
    if input.envelope.payload_type != custody_ledger::dsse::INTOTO_PAYLOAD_TYPE {
        return Err(un(format!(
            "the envelope's payloadType is '{}', not an in-toto statement ({})",
            input.envelope.payload_type,
            custody_ledger::dsse::INTOTO_PAYLOAD_TYPE
        )));
    }
    let payload = key.verify(&input.envelope).map_err(|e| {
        un(format!(
            "the envelope's signature does not verify with the key given ({e})"
        ))
    })?;
    let st = Statement::parse(&payload).map_err(|e| un(e.to_string()))?;
    let names = || {
        st.subjects
            .iter()
            .map(|(n, d)| format!("{n} ({d})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let binding = match binding {
        AttestationBinding::Fingerprint(fp) => {
            if !st.subjects.iter().any(|(_, d)| *d == fp) {
                return Err(un(format!(
                    "the statement is about {}, not about fingerprint {fp}",
                    names()
                )));
            }
            AttestationBinding::Fingerprint(fp)
        }
        AttestationBinding::Trail if st.subjects.len() == 1 => {
            AttestationBinding::Fingerprint(st.subjects[0].1.clone())
        }
        AttestationBinding::Trail => {
            return Err(un(format!(
                "the statement has {} subjects ({}): give the fingerprint of the one this trail made",
                st.subjects.len(),
                names()
            )));
        }
        AttestationBinding::ArtifactName(_) => {
            return Err(un(
                "an in-toto statement is bound to its artifact by its subject: name it NAME, not ARTIFACT.NAME"
                    .into(),
            ));
        }
    };
    let text = String::from_utf8(payload).map_err(|_| un("the statement is not UTF-8".into()))?;
    let statement = serde_json::value::RawValue::from_string(text)
        .map_err(|e| un(format!("the statement: {e}")))?;
    let data = json!({
        "statement_type": st.statement_type,
        "predicate_type": st.predicate_type,
        "subjects": st.subjects.iter().map(|(n, d)| json!({"name": n, "sha256": d})).collect::<Vec<_>>(),
        "signed_by": {"algorithm": key.algorithm(), "key_sha256": key.fingerprint()},
        "payload_sha256": hex::encode(sha2::Sha256::digest(statement.get().as_bytes())),
    });
    Ok((binding, statement, data))
}

/// `NAME` or `NAME@vN`.
fn parse_type_ref(spec: &str) -> ApiResult<(&str, Option<i64>)> {
    match spec.split_once("@v") {
        None => Ok((spec, None)),
        Some((name, v)) => v
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .map(|v| (name, Some(v)))
            .ok_or_else(|| {
                ApiError::bad_request(format!("invalid type version in '{spec}': use NAME@vN"))
            }),
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/attestations/{id}", tag = "attestations",
    params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Attestation), (status = 404)))]
pub async fn get_attestation(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, id)): Path<(String, String)>,
) -> ApiResult<Json<Attestation>> {
    caller.require(Permission::Read)?;
    Ok(Json(s.store.get_attestation(caller.0.org_id, &id).await?))
}

/// The attestations of a name in a trail, newest first, a page at a time.
/// `name` may be `ARTIFACT.NAME`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/flows/{flow}/trails/{trail}/attestations/{name}", tag = "attestations",
    params(("org" = String, Path), ("flow" = String, Path), ("trail" = String, Path), ("name" = String, Path), super::Paging),
    responses((status = 200, body = Page<Attestation>), (status = 404)))]
pub async fn attestation_history(
    State(s): State<AppState>,
    caller: Caller,
    Path((_org, flow, trail, name)): Path<(String, String, String, String)>,
    axum::extract::Query(paging): axum::extract::Query<super::Paging>,
) -> ApiResult<Json<Page<Attestation>>> {
    caller.require(Permission::Read)?;
    let n = AttestationName::parse(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let found = s
        .store
        .attestation_history(
            caller.0.org_id,
            &flow,
            &trail,
            n.artifact.as_deref(),
            &n.name,
            paging.resolve().0,
            paging.resolve().1,
        )
        .await?;
    if found.total == 0 {
        return Err(ApiError::not_found(format!(
            "no attestation '{name}' in trail '{trail}' of flow '{flow}'"
        )));
    }
    Ok(Json(found))
}
