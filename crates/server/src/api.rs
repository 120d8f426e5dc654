//! The admin and agent API.
//!
//! Access: the operator token (server-wide) may do everything; a tenant's token may act only
//! on `/api/tenants/{its tenant}/…`, within its role (agent < supervisor < admin). A token of
//! another tenant gets 403 before anything is looked up, so it cannot even learn whether a
//! conversation or tenant exists. Secret values are accepted and never returned.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::registry::RegistryError;
use super::{AppState, error_response};

/// An API failure: a status and a message, rendered as `{"error": …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: String) -> Self {
        ApiError { status, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Errors reach tenant admins; the server's folders are the operator's business.
        let message = without_server_paths(&self.message);
        if message != self.message {
            tracing::info!(status = %self.status, error = %self.message, "API error (paths left out of the response)");
        }
        let mut r = error_response(self.status, message);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

use switchboard_store::{ActionError, Role, StoreError, token_hash};

/// `message` with every file path cut to its file name (`/srv/data/tenants/acme.toml` →
/// `acme.toml`): config and plugin errors name the files they read, which tells a caller where
/// and how the server is installed. A path is a word starting with `/`, `./`, `../` or `~/`,
/// or one with a `/` naming a `.toml` or `.wasm` file; URLs (`scheme://…`) are left alone.
pub fn without_server_paths(message: &str) -> String {
    let is_boundary = |c: char| c.is_whitespace() || "`'\"(),;:=[]{}<>".contains(c);
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while !rest.is_empty() {
        let end = rest.find(is_boundary).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        let is_url = tail.starts_with("://");
        let is_path = !is_url
            && word.contains('/')
            && (["/", "./", "../", "~/"].iter().any(|p| word.starts_with(p))
                || word.ends_with(".toml")
                || word.ends_with(".wasm"));
        if is_path {
            let name = word.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            out.push_str(if name.is_empty() { "(path)" } else { name });
        } else {
            out.push_str(word);
        }
        // Copy the boundary character (a URL's `://…` is copied through to its end).
        if is_url {
            let url_end = tail.find(char::is_whitespace).unwrap_or(tail.len());
            out.push_str(&tail[..url_end]);
            rest = &tail[url_end..];
        } else if let Some(c) = tail.chars().next() {
            out.push(c);
            rest = &tail[c.len_utf8()..];
        } else {
            rest = tail;
        }
    }
    out
}

pub(super) type ApiResult = Result<Response, ApiError>;

pub fn routes(state: &AppState) -> Router<AppState> {
    let uploads = Router::new()
        .route("/admin/plugins", post(upload_plugin))
        .layer(DefaultBodyLimit::max(state.options.max_plugin_bytes));
    Router::new()
        .route("/admin/tenants", get(list_tenants))
        .route("/admin/tenants/{tenant}/disable", post(disable_tenant))
        .route("/admin/tenants/{tenant}/enable", post(enable_tenant))
        .route("/admin/reload", post(reload_all))
        .route("/admin/plugins", get(list_plugins))
        .route("/admin/plugins/{name}", get(inspect_plugin))
        .route("/admin/plugins/{name}/enable", post(enable_plugin))
        .merge(uploads)
        .route(
            "/api/tenants/{tenant}/config",
            get(get_config).put(put_config),
        )
        .route("/api/tenants/{tenant}/reload", post(reload_tenant))
        .route("/api/tenants/{tenant}/plugins", get(tenant_plugins))
        .route("/api/tenants/{tenant}/plugins/{instance}", put(pin_plugin))
        .route(
            "/api/tenants/{tenant}/plugins/{instance}/replay",
            post(replay_pin),
        )
        .route("/api/tenants/{tenant}/secrets", get(list_secrets))
        .route(
            "/api/tenants/{tenant}/secrets/{instance}/{name}",
            put(put_secret),
        )
        .route(
            "/api/tenants/{tenant}/tokens",
            get(list_tokens).post(create_token),
        )
        .route("/api/tenants/{tenant}/tokens/{id}", delete(revoke_token))
        .route("/api/tenants/{tenant}/audit", get(audit))
        .route("/api/tenants/{tenant}/inbox", get(inbox))
        .route("/api/tenants/{tenant}/dead-letters", get(dead_letters))
        .route(
            "/api/tenants/{tenant}/conversations/{id}",
            get(conversation),
        )
        .route(
            "/api/tenants/{tenant}/conversations/{id}/assign",
            post(assign),
        )
        .route(
            "/api/tenants/{tenant}/conversations/{id}/escalate",
            post(escalate),
        )
        .route(
            "/api/tenants/{tenant}/conversations/{id}/take-private",
            post(take_private),
        )
        .route("/api/tenants/{tenant}/drafts/{id}/edit", post(edit_draft))
        .route("/api/tenants/{tenant}/drafts/{id}/check", post(check_draft))
        .route(
            "/api/tenants/{tenant}/drafts/{id}/approve",
            post(approve_draft),
        )
        .route(
            "/api/tenants/{tenant}/drafts/{id}/reject",
            post(reject_draft),
        )
        .route("/api/tenants/{tenant}/drafts/{id}/send", post(send_draft))
        .route(
            "/api/tenants/{tenant}/authors/{channel}/{author}/block",
            post(block_author),
        )
}

// ---- access ----------------------------------------------------------------------------

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The console's session cookie (see `console`): the browser's alternative to a bearer token.
pub const COOKIE: &str = "sb_session";

/// The console session secret from the request's cookie, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "a valid API token is needed: `Authorization: Bearer <token>`".into(),
    )
}

fn is_operator(state: &AppState, token: &str) -> bool {
    // Compare hashes, not tokens: equal-length digests, no early exit on the secret itself.
    token_hash(token) == *state.admin_token_hash
}

/// Only the operator token passes.
pub fn operator(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(t) if is_operator(state, t) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this needs the operator token".into(),
        )),
        None => Err(unauthorized()),
    }
}

/// Who is acting, as the audit log names them.
pub(super) struct Actor(pub(super) String);

impl Actor {
    /// The role behind the actor's name (`supervisor:sam`); the operator counts as admin.
    pub(super) fn role(&self) -> Role {
        self.0
            .split_once(':')
            .and_then(|(r, _)| Role::parse(r))
            .unwrap_or(Role::Admin)
    }
}

/// The caller may act on `tenant` with at least `role`.
pub(super) async fn require(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &str,
    role: Role,
) -> Result<Actor, ApiError> {
    // A bearer token when one is given; otherwise the console's session cookie (its CSRF
    // token was checked for every state change by the console's CSRF layer before this ran).
    let owner = match (bearer(headers), session_cookie(headers)) {
        (Some(token), _) if is_operator(state, token) => return Ok(Actor("operator".into())),
        (Some(token), _) => state.engine.store.token_owner(token).await,
        (None, Some(session)) => state.engine.store.session_owner(session).await,
        (None, None) => return Err(unauthorized()),
    }
    .map_err(store_error)?
    .ok_or_else(unauthorized)?;
    if owner.tenant != tenant {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this token belongs to another tenant".into(),
        ));
    }
    if owner.role < role {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the {} role; the token has {}",
                role.as_str(),
                owner.role.as_str()
            ),
        ));
    }
    Ok(Actor(format!("{}:{}", owner.role.as_str(), owner.name)))
}

/// The tenant as served now, or 404.
pub(super) fn live(
    state: &AppState,
    tenant: &str,
) -> Result<std::sync::Arc<super::registry::LiveTenant>, ApiError> {
    state
        .registry
        .get(tenant)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no tenant `{tenant}`")))
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store error in the API");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store is unavailable; retry".into(),
    )
}

fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        RegistryError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
        RegistryError::Io(m) => {
            tracing::error!(error = %m, "admin change failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m)
        }
    }
}

pub(super) fn action_error(e: ActionError, what: &str) -> ApiError {
    match e {
        ActionError::NotFound => ApiError::new(StatusCode::NOT_FOUND, format!("no {what}")),
        ActionError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
        ActionError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
        ActionError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
        ActionError::Store(e) => store_error(e),
    }
}

pub(super) fn ok(v: Value) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

pub(super) fn body_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("request body: {e}")))
}

pub(super) fn flatten(r: ApiResult) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

// ---- operator ----------------------------------------------------------------------------

async fn list_tenants(State(s): State<AppState>, h: HeaderMap) -> Response {
    flatten(
        async {
            operator(&s, &h)?;
            let tenants: Vec<Value> = s
                .registry
                .all()
                .values()
                .map(|l| {
                    json!({
                        "tenant": l.tenant.name,
                        "disabled": l.disabled,
                        "generation": l.generation,
                        "file": l.path.display().to_string(),
                    })
                })
                .collect();
            ok(json!({ "tenants": tenants, "config_errors": s.registry.errors() }))
        }
        .await,
    )
}

async fn disable_tenant(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    set_disabled(s, h, tenant, true).await
}

async fn enable_tenant(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    set_disabled(s, h, tenant, false).await
}

async fn set_disabled(s: AppState, h: HeaderMap, tenant: String, disabled: bool) -> Response {
    flatten(
        async {
            operator(&s, &h)?;
            s.registry
                .set_disabled(&tenant, disabled)
                .await
                .map_err(registry_error)?;
            ok(json!({ "tenant": tenant, "disabled": disabled }))
        }
        .await,
    )
}

async fn reload_all(State(s): State<AppState>, h: HeaderMap) -> Response {
    flatten(
        async {
            operator(&s, &h)?;
            let errors = s.registry.reload_all().await;
            ok(json!({ "reloaded": s.registry.all().len(), "config_errors": errors }))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct UploadQuery {
    digest: Option<String>,
}

async fn upload_plugin(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            operator(&s, &h)?;
            let expected = q
                .digest
                .as_deref()
                .or_else(|| h.get("x-switchboard-digest").and_then(|v| v.to_str().ok()));
            let v = s
                .registry
                .upload(&body, expected)
                .await
                .map_err(registry_error)?;
            Ok((StatusCode::CREATED, axum::Json(json!(v))).into_response())
        }
        .await,
    )
}

async fn list_plugins(State(s): State<AppState>, h: HeaderMap) -> Response {
    flatten(
        async {
            operator(&s, &h)?;
            let v = s.registry.plugins(None).await.map_err(registry_error)?;
            ok(json!({ "plugins": v }))
        }
        .await,
    )
}

async fn inspect_plugin(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    flatten(
        async {
            operator(&s, &h)?;
            let versions = s
                .registry
                .plugins(Some(&name))
                .await
                .map_err(registry_error)?;
            ok(json!({ "name": name, "versions": versions }))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct DigestBody {
    digest: String,
}

async fn enable_plugin(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            operator(&s, &h)?;
            let b: DigestBody = body_json(&body)?;
            let errors = s
                .registry
                .enable(&name, &b.digest)
                .await
                .map_err(registry_error)?;
            ok(json!({ "name": name, "current": b.digest, "config_errors": errors }))
        }
        .await,
    )
}

// ---- tenant admin ----------------------------------------------------------------------

async fn get_config(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            let l = live(&s, &tenant)?;
            let text = std::fs::read_to_string(&l.path).unwrap_or_default();
            ok(json!({
                "tenant": tenant,
                "generation": l.generation,
                "disabled": l.disabled,
                "config": redact_secrets(&text),
            }))
        }
        .await,
    )
}

/// A tenant admin's config may not reach the server's files, environment or private network.
fn refuse_server_privileges(tenant: &str, text: &str) -> Result<(), ApiError> {
    let path = std::path::PathBuf::from(format!("{tenant}.toml"));
    let file = switchboard_care::tenant::TenantFile::parse(text, &path)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let privileged = file.server_privileges();
    if privileged.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("only the operator may set: {}", privileged.join("; ")),
        ))
    }
}

/// The config text with every inline secret value replaced: secrets are write-only.
pub fn redact_secrets(text: &str) -> String {
    let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
        return "# (the config file does not parse)".into();
    };
    for section in [
        "connectors",
        "classifiers",
        "suggesters",
        "shadow_classifiers",
    ] {
        let Some(entries) = doc
            .get_mut(section)
            .and_then(|s| s.as_array_of_tables_mut())
        else {
            continue;
        };
        for entry in entries.iter_mut() {
            let Some(secrets) = entry.get_mut("secrets").and_then(|s| s.as_table_like_mut()) else {
                continue;
            };
            for (_, v) in secrets.iter_mut() {
                if let Some(t) = v.as_table_like_mut()
                    && t.contains_key("value")
                {
                    t.insert("value", toml_edit::value("(redacted)"));
                }
            }
        }
    }
    doc.to_string()
}

async fn put_config(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Admin).await?;
            // Only the operator creates tenants.
            if s.registry.get(&tenant).is_none() && actor.0 != "operator" {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no tenant `{tenant}`"),
                ));
            }
            let text = std::str::from_utf8(&body).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the config must be UTF-8 TOML".into(),
                )
            })?;
            if actor.0 != "operator" {
                refuse_server_privileges(&tenant, text)?;
            }
            let generation = s
                .registry
                .put_config(&tenant, text)
                .await
                .map_err(registry_error)?;
            tracing::info!(%tenant, actor = %actor.0, generation, "tenant config replaced");
            ok(json!({ "tenant": tenant, "generation": generation }))
        }
        .await,
    )
}

async fn reload_tenant(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            s.registry
                .reload_tenant(&tenant)
                .await
                .map_err(registry_error)?;
            ok(json!({ "tenant": tenant, "generation": live(&s, &tenant)?.generation }))
        }
        .await,
    )
}

async fn tenant_plugins(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            let l = live(&s, &tenant)?;
            let instances: Vec<Value> = l
                .tenant
                .instances()
                .map(|(role, i)| {
                    json!({
                        "instance": i.name,
                        "role": role,
                        "plugin": i.plugin.info.name,
                        "version": i.plugin.info.version,
                        "digest": i.plugin.digest,
                        "provenance": i.plugin.provenance(),
                    })
                })
                .collect();
            ok(json!({ "tenant": tenant, "generation": l.generation, "instances": instances }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    /// A plugin name from the store (keeps the current one when absent).
    plugin: Option<String>,
    /// The version to pin (SHA-256); `null` unpins.
    digest: Option<String>,
}

async fn pin_plugin(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, instance)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(async {
        let actor = require(&s, &h, &tenant, Role::Admin).await?;
        let b: PinBody = body_json(&body)?;
            if let Some(p) = &b.plugin
                && (p.is_empty()
                    || !p.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'
                    }))
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("`{p}` is not a plugin name (lowercase letters, digits, `-`, `_`)"),
                ));
            }
        let generation = s
            .registry
            .pin(&tenant, &instance, b.plugin.as_deref(), b.digest.as_deref())
            .await
            .map_err(registry_error)?;
        tracing::info!(%tenant, %instance, actor = %actor.0, generation, "plugin pinned");
        let l = live(&s, &tenant)?;
        let now = l.tenant.instances().map(|(_, i)| i)
            .find(|i| i.name == instance)
            .map(|i| i.plugin.provenance());
        ok(json!({ "tenant": tenant, "instance": instance, "generation": generation, "plugin": now }))
    }.await)
}

/// The stored messages a replay before a swap runs through the candidate: enough to see what
/// changes, short enough to answer a person waiting in the console.
const REPLAY_LATEST: usize = 200;

/// What pinning `instance` as the body says would change on the tenant's latest stored traffic
/// (labels, decisions, drafts per message, and the totals), without pinning anything.
async fn replay_pin(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, instance)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            let b: PinBody = body_json(&body)?;
            let current = live(&s, &tenant)?;
            let candidate = s
                .registry
                .candidate(&tenant, &instance, b.plugin.as_deref(), b.digest.as_deref())
                .await
                .map_err(registry_error)?;
            let mut report = switchboard_care::workflow::replay::replay_stored(
                &s.engine.rt,
                &s.engine.store,
                &current.tenant,
                &candidate,
                Some(REPLAY_LATEST),
            )
            .await
            .map_err(store_error)?;
            // The totals cover every message replayed; the list only those that changed.
            report
                .diffs
                .retain(|d| d.labels_changed || d.decision_changed || d.drafts_changed);
            ok(json!({ "tenant": tenant, "instance": instance, "replay": report }))
        }
        .await,
    )
}

async fn list_secrets(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            let l = live(&s, &tenant)?;
            // Names only: which secrets each instance has, never their values.
            let names: Vec<Value> = l
                .tenant
                .instances()
                .map(|(_, i)| i)
                .flat_map(|i| {
                    i.scope
                        .config
                        .secrets
                        .keys()
                        .map(move |n| json!({ "instance": i.name, "name": n }))
                })
                .collect();
            ok(json!({ "tenant": tenant, "secrets": names }))
        }
        .await,
    )
}

async fn put_secret(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, instance, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Admin).await?;
            let l = live(&s, &tenant)?;
            let known = l
                .tenant
                .instances()
                .map(|(_, i)| i)
                .any(|i| i.name == instance);
            if !known {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("tenant `{tenant}` has no plugin instance `{instance}`"),
                ));
            }
            let value = std::str::from_utf8(&body)
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "a secret must be UTF-8 text".into(),
                    )
                })?
                .trim_end_matches(['\r', '\n']);
            if value.is_empty() || name.is_empty() || name.len() > 128 {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "a secret needs a name (1-128 bytes) and a non-empty value".into(),
                ));
            }
            s.engine
                .store
                .put_secret(&tenant, &instance, &name, value, &actor.0)
                .await
                .map_err(store_error)?;
            s.registry
                .reload_tenant(&tenant)
                .await
                .map_err(registry_error)?;
            Ok((StatusCode::NO_CONTENT, ()).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    role: Role,
    name: String,
}

async fn create_token(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            live(&s, &tenant)?;
            let b: NewToken = body_json(&body)?;
            if b.name.trim().is_empty() || b.name.len() > 64 {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "a token needs a name of 1-64 characters".into(),
                ));
            }
            let (id, token) = s
                .engine
                .store
                .create_token(&tenant, b.role, &b.name)
                .await
                .map_err(store_error)?;
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({ "id": id, "token": token, "role": b.role, "name": b.name })),
            )
                .into_response())
        }
        .await,
    )
}

async fn list_tokens(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            let tokens = s.engine.store.tokens(&tenant).await.map_err(store_error)?;
            ok(json!({ "tokens": tokens }))
        }
        .await,
    )
}

async fn revoke_token(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            if !s
                .engine
                .store
                .revoke_token(&tenant, &id)
                .await
                .map_err(store_error)?
            {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no token `{id}`"),
                ));
            }
            Ok((StatusCode::NO_CONTENT, ()).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

async fn audit(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
    Query(q): Query<Limit>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Supervisor).await?;
            let rows = s
                .engine
                .store
                .audit_log(&tenant, q.limit.unwrap_or(200).clamp(1, 5000))
                .await
                .map_err(store_error)?;
            ok(json!({ "audit": rows }))
        }
        .await,
    )
}

// ---- agents ------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    state: Option<String>,
    team: Option<String>,
    assignee: Option<String>,
    limit: Option<i64>,
}

async fn inbox(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
    Query(q): Query<InboxQuery>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Agent).await?;
            let filter = match (&q.state, &q.team, &q.assignee) {
                (Some(v), None, None) => Some(("state", v.as_str())),
                (None, Some(v), None) => Some(("team", v.as_str())),
                (None, None, Some(v)) => Some(("assignee", v.as_str())),
                (None, None, None) => None,
                _ => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "filter by one of state, team or assignee".into(),
                    ));
                }
            };
            let items = s
                .engine
                .store
                .inbox(&tenant, filter, q.limit.unwrap_or(100).clamp(1, 1000))
                .await
                .map_err(store_error)?;
            ok(json!({ "conversations": items }))
        }
        .await,
    )
}

async fn dead_letters(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Agent).await?;
            let rows = s
                .engine
                .store
                .dead_letters(&tenant)
                .await
                .map_err(store_error)?;
            ok(json!({ "replies": rows }))
        }
        .await,
    )
}

async fn conversation(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Agent).await?;
            match s
                .engine
                .store
                .conversation_view(&tenant, &id)
                .await
                .map_err(store_error)?
            {
                Some(mut v) => {
                    // The response clocks with their state now (met, running, breached…).
                    if let (Ok(l), Some(cid)) = (
                        live(&s, &tenant),
                        v["conversation"]["id"].as_str().map(str::to_string),
                    ) {
                        let clocks = s
                            .engine
                            .service_levels(&l.tenant, Some(&cid))
                            .await
                            .map_err(store_error)?;
                        v["sla"]["clocks"] = json!(clocks);
                        let participants = s
                            .engine
                            .store
                            .participants(&cid)
                            .await
                            .map_err(store_error)?;
                        v["conversation"]["participants"] = json!(
                            participants
                                .into_iter()
                                .map(|(agent, role)| json!({ "agent": agent, "role": role }))
                                .collect::<Vec<_>>()
                        );
                    }
                    ok(v)
                }
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no conversation `{id}`"),
                )),
            }
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    /// The agent's name; `null` unassigns.
    agent: Option<String>,
}

async fn assign(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            let b: AssignBody = body_json(&body)?;
            s.engine
                .store
                .assign(&tenant, &id, b.agent.as_deref(), &actor.0)
                .await
                .map_err(|e| action_error(e, "such conversation"))?;
            ok(json!({ "conversation": id, "assignee": b.agent }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalateBody {
    reason: String,
}

/// An agent raises a conversation to a supervisor: its drafts then need sign-off.
async fn escalate(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            let b: EscalateBody = body_json(&body)?;
            if b.reason.trim().is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "say why the conversation needs a supervisor".into(),
                ));
            }
            s.engine
                .store
                .escalate(&tenant, &id, &b.reason, &actor.0)
                .await
                .map_err(|e| action_error(e, "such conversation"))?;
            ok(json!({ "conversation": id, "escalated": true }))
        }
        .await,
    )
}

/// An agent moves a public conversation to private messages.
async fn take_private(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            s.engine
                .store
                .take_private(&tenant, &id, &actor.0)
                .await
                .map_err(|e| action_error(e, "such conversation"))?;
            ok(json!({ "conversation": id, "state": "private" }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    text: String,
}

async fn edit_draft(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(async {
        let actor = require(&s, &h, &tenant, Role::Agent).await?;
        let b: EditBody = body_json(&body)?;
        if b.text.trim().is_empty() {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "a draft cannot be empty".into()));
        }
        let (length, findings_json, blocked) = check_draft_text(&s, &tenant, &id, &b.text).await?;
        s.engine
            .store
            .edit_draft(&tenant, &id, &b.text, &findings_json, blocked, &actor.0)
            .await
            .map_err(|e| action_error(e, "such draft"))?;
        ok(json!({ "draft": id, "blocked": blocked, "length": length, "findings": findings_json }))
    }.await)
}

/// Run a draft's connector length rule and the tenant's guards over `text`, as an edit would:
/// the length, the findings and whether any of them blocks sending.
async fn check_draft_text(
    s: &AppState,
    tenant: &str,
    id: &str,
    text: &str,
) -> Result<(Value, Value, bool), ApiError> {
    let l = live(s, tenant)?;
    let d = s
        .engine
        .store
        .draft(tenant, id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no draft `{id}`")))?;
    let connector = l
        .tenant
        .connector(Some(&d.connector))
        .map_err(|m| ApiError::new(StatusCode::CONFLICT, m))?;
    // An agent's text goes through the same guards as a suggester's.
    let (length, findings, _) =
        switchboard_care::pipeline::check_text(&s.engine.rt, &l.tenant, connector, text).await;
    let blocked = switchboard_care::guards::blocks(&findings);
    Ok((json!(length), json!(findings), blocked))
}

/// What the guards would say of a draft's text, without saving it: the console re-runs them
/// as an agent types.
async fn check_draft(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Agent).await?;
            let b: EditBody = body_json(&body)?;
            let (length, findings, blocked) = check_draft_text(&s, &tenant, &id, &b.text).await?;
            ok(json!({ "draft": id, "blocked": blocked, "length": length, "findings": findings }))
        }
        .await,
    )
}

async fn approve_draft(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Supervisor).await?;
            let l = live(&s, &tenant)?;
            let state = s
                .engine
                .approve_draft(&l.tenant, &id, actor.role(), &actor.0)
                .await
                .map_err(|e| action_error(e, "such draft"))?;
            let status = if state.complete {
                "approved"
            } else {
                "proposed"
            };
            ok(json!({ "draft": id, "status": status, "signoff": state }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    reason: String,
}

async fn reject_draft(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            let b: RejectBody = body_json(&body)?;
            if b.reason.trim().is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "say why the draft is rejected".into(),
                ));
            }
            s.engine
                .store
                .reject_draft(&tenant, &id, &b.reason, &actor.0)
                .await
                .map_err(|e| action_error(e, "such draft"))?;
            ok(json!({ "draft": id, "status": "rejected" }))
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SendBody {
    /// `response` (stops the service-level clock) or `acknowledgement` (does not); by default
    /// the text decides.
    counts_as: Option<switchboard_care::care::ReplyKind>,
}

/// Queue a draft. A draft a guard blocks cannot be sent (edit it first); a draft of an
/// escalated conversation must be approved by a supervisor first.
async fn send_draft(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(async {
        let actor = require(&s, &h, &tenant, Role::Agent).await?;
        let b: SendBody = if body.is_empty() { SendBody::default() } else { body_json(&body)? };
        let l = live(&s, &tenant)?;
        let (key, kind) = s
            .engine
            .send_draft(&l.tenant, &id, b.counts_as, &actor.0)
            .await
            .map_err(|e| action_error(e, "such draft"))?;
        s.registry.deliver_waker(&tenant).notify_one();
        Ok((StatusCode::ACCEPTED, axum::Json(json!({ "draft": id, "status": "queued", "idempotency_key": key, "counts_as": kind }))).into_response())
    }.await)
}

async fn block_author(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, channel, author)): Path<(String, String, String)>,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Supervisor).await?;
            s.engine
                .store
                .block_author(&tenant, &channel, &author, &actor.0)
                .await
                .map_err(|e| action_error(e, "such author"))?;
            ok(json!({ "channel": channel, "author": author, "blocked": true }))
        }
        .await,
    )
}
