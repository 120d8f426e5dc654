//! Incidents in the agent API: agents list, read and attach conversations; supervisors open,
//! merge and close (closing queues the follow-ups). Same access rules as the rest of the API
//! (`super::api`); an incident of another tenant is simply not found.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, action_error, body_json, flatten, live, ok, require, store_error};
use switchboard_care::care::incidents::OpenRequest;
use switchboard_store::Role;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/tenants/{tenant}/incidents",
            get(list).post(open_incident),
        )
        .route("/api/tenants/{tenant}/incidents/{id}", get(incident))
        .route("/api/tenants/{tenant}/incidents/{id}/attach", post(attach))
        .route("/api/tenants/{tenant}/incidents/{id}/merge", post(merge))
        .route("/api/tenants/{tenant}/incidents/{id}/close", post(close))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `open`, `closed` or `merged`; default all.
    status: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

async fn list(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Agent).await?;
            if let Some(st) = q.status.as_deref()
                && !["open", "closed", "merged"].contains(&st)
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("status `{st}`: use open, closed or merged"),
                ));
            }
            let incidents = s
                .engine
                .store
                .incidents(&tenant, q.status.as_deref(), q.limit.clamp(1, 1000))
                .await
                .map_err(store_error)?;
            ok(json!({ "incidents": incidents }))
        }
        .await,
    )
}

/// One incident with its conversations (and their replies), its statement draft and its
/// audit trail.
async fn incident(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Agent).await?;
            match s
                .engine
                .incident_view(&tenant, &id)
                .await
                .map_err(store_error)?
            {
                Some(v) => ok(v),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no incident `{id}`"),
                )),
            }
        }
        .await,
    )
}

async fn open_incident(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Supervisor).await?;
            let b: OpenRequest = body_json(&body)?;
            if b.title.trim().is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "an incident needs a title".into(),
                ));
            }
            let l = live(&s, &tenant)?;
            let id = s
                .engine
                .open_incident(&l.tenant, &b, &actor.0)
                .await
                .map_err(|e| action_error(e, "such conversation"))?;
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({ "incident": id, "status": "open" })),
            )
                .into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachBody {
    /// Conversation ids or channel keys.
    conversations: Vec<String>,
}

async fn attach(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            let b: AttachBody = body_json(&body)?;
            let l = live(&s, &tenant)?;
            let attached = s
                .engine
                .attach_to_incident(&l.tenant, &id, &b.conversations, &actor.0)
                .await
                .map_err(|e| action_error(e, "such incident or conversation"))?;
            ok(json!({ "incident": id, "attached": attached }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    /// The incident that takes this one's conversations over.
    into: String,
}

async fn merge(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Supervisor).await?;
            let b: MergeBody = body_json(&body)?;
            let l = live(&s, &tenant)?;
            let moved = s
                .engine
                .merge_incidents(&l.tenant, &id, &b.into, &actor.0)
                .await
                .map_err(|e| action_error(e, "such incident"))?;
            ok(json!({ "incident": id, "status": "merged", "merged_into": b.into, "moved": moved }))
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CloseBody {}

/// Close an incident: a follow-up goes to every affected customer. Closing twice is 409.
async fn close(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Supervisor).await?;
            let CloseBody {} = if body.is_empty() {
                CloseBody::default()
            } else {
                body_json(&body)?
            };
            let l = live(&s, &tenant)?;
            let (follow_ups, blocked) = s
                .engine
                .close_incident(&l.tenant, &id, &actor.0)
                .await
                .map_err(|e| action_error(e, "such incident"))?;
            if follow_ups > 0 {
                s.registry.deliver_waker(&tenant).notify_one();
            }
            ok(
                json!({ "incident": id, "status": "closed", "follow_ups": follow_ups, "blocked": blocked }),
            )
        }
        .await,
    )
}
