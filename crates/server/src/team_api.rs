//! The team's part of the agent API: participants on a conversation, questions to knowledge
//! experts and their answers (which come back as drafts), and one customer across channels
//! (view, merge, undo a merge). Same access rules as the rest of the API (`super::api`).

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
use switchboard_store::Role;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/tenants/{tenant}/conversations/{id}/participants",
            post(add_participant),
        )
        .route(
            "/api/tenants/{tenant}/conversations/{id}/expert-requests",
            post(ask_expert),
        )
        .route(
            "/api/tenants/{tenant}/expert-requests",
            get(expert_requests),
        )
        .route(
            "/api/tenants/{tenant}/expert-requests/{id}/answer",
            post(answer_expert),
        )
        .route("/api/tenants/{tenant}/signoff-queue", get(signoff_queue))
        .route("/api/tenants/{tenant}/customers/{id}", get(customer))
        .route(
            "/api/tenants/{tenant}/customers/{id}/merge",
            post(merge_customer),
        )
        .route("/api/tenants/{tenant}/merges/{id}/undo", post(undo_merge))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantBody {
    agent: String,
}

/// Bring another agent into a conversation (several people can work one case).
async fn add_participant(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            let b: ParticipantBody = body_json(&body)?;
            let l = live(&s, &tenant)?;
            if !l.tenant.care.agents.iter().any(|a| a.name == b.agent) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("no agent `{}` in this tenant's [[agents]]", b.agent),
                ));
            }
            let added = s
                .engine
                .store
                .add_participant(&tenant, &id, &b.agent, "participant", &actor.0)
                .await
                .map_err(|e| action_error(e, "such conversation"))?;
            ok(json!({ "conversation": id, "agent": b.agent, "added": added }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    question: String,
    expert: Option<String>,
    topic: Option<String>,
}

async fn ask_expert(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            let b: AskBody = body_json(&body)?;
            if b.question.trim().is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "ask a question".into(),
                ));
            }
            let l = live(&s, &tenant)?;
            let (request, expert) = s
                .engine
                .ask_expert(
                    &l.tenant,
                    &id,
                    b.expert.as_deref(),
                    b.topic.as_deref(),
                    &b.question,
                    &actor.0,
                )
                .await
                .map_err(|e| action_error(e, "such conversation"))?;
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({ "request": request, "expert": expert })),
            )
                .into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpertQuery {
    expert: Option<String>,
}

/// An expert's queue (`?expert=eve`), unanswered first.
async fn expert_requests(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
    Query(q): Query<ExpertQuery>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Agent).await?;
            let rows = s
                .engine
                .store
                .expert_requests(&tenant, q.expert.as_deref())
                .await
                .map_err(store_error)?;
            ok(json!({ "requests": rows }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    answer: String,
}

/// The expert answers; the answer becomes a draft on the conversation (guards applied,
/// sign-off as `[signoff] expert_answer` says). Only the expert asked, or a supervisor.
async fn answer_expert(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            let b: AnswerBody = body_json(&body)?;
            if b.answer.trim().is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "an answer cannot be empty".into(),
                ));
            }
            let l = live(&s, &tenant)?;
            let draft = s
                .engine
                .answer_expert(
                    &l.tenant,
                    &id,
                    &b.answer,
                    &actor.0,
                    actor.role() >= Role::Supervisor,
                )
                .await
                .map_err(|e| action_error(e, "such expert request"))?;
            ok(json!({ "request": id, "draft": draft }))
        }
        .await,
    )
}

/// One customer: identities on every channel, verified contacts, conversations, merges.
async fn customer(
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
                .customer_view(&tenant, &id)
                .await
                .map_err(store_error)?
            {
                Some(v) => ok(v),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no customer `{id}`"),
                )),
            }
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    into: String,
}

/// An agent's judgement that two customers are one person (never a guess by the host).
async fn merge_customer(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Supervisor).await?;
            let b: MergeBody = body_json(&body)?;
            let merge = s
                .engine
                .store
                .merge_customers(&tenant, &id, &b.into, &actor.0)
                .await
                .map_err(|e| action_error(e, "such customer"))?;
            ok(json!({ "merge": merge, "from": id, "into": b.into }))
        }
        .await,
    )
}

async fn undo_merge(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Supervisor).await?;
            s.engine
                .store
                .undo_merge(&tenant, &id, &actor.0)
                .await
                .map_err(|e| action_error(e, "such merge"))?;
            ok(json!({ "merge": id, "undone": true }))
        }
        .await,
    )
}

/// Drafts whose sign-off is not complete, oldest first, with the tiers they need and how many
/// are approved: the supervisors' queue.
async fn signoff_queue(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Supervisor).await?;
            let l = live(&s, &tenant)?;
            let queue = s
                .engine
                .signoff_queue(&l.tenant, 500)
                .await
                .map_err(store_error)?;
            let drafts: Vec<_> = queue
                .into_iter()
                .map(|(draft, conversation, signoff)| {
                    json!({ "draft": draft, "conversation": conversation, "signoff": signoff })
                })
                .collect();
            ok(json!({ "drafts": drafts }))
        }
        .await,
    )
}
