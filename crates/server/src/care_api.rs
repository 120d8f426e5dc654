//! The care workflow's part of the agent API: the service-level clocks, resolving a
//! conversation (which sends the satisfaction survey), the period report and the shadow report. Same access rules
//! as the rest of the API (`super::api`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{ApiError, action_error, flatten, live, ok, require, store_error};
use switchboard_store::Role;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tenants/{tenant}/service-levels", get(service_levels))
        .route(
            "/api/tenants/{tenant}/conversations/{id}/resolve",
            post(resolve),
        )
        .route("/api/tenants/{tenant}/report", get(report))
        .route("/api/tenants/{tenant}/shadow-report", get(shadow_report))
}

/// Each shadow classifier against the live one it would replace, on the stored traffic
/// (agreement, confusion per label, decisions that would change): what an admin reads before
/// promoting it. Empty when the tenant runs no shadow with `replaces`.
async fn shadow_report(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Admin).await?;
            let l = live(&s, &tenant)?;
            let report =
                switchboard_care::workflow::shadow::shadow_report(&s.engine.store, &l.tenant)
                    .await
                    .map_err(store_error)?;
            ok(json!({ "tenant": tenant, "shadows": report }))
        }
        .await,
    )
}

/// Running clocks, most urgent first: what is about to breach, what has.
async fn service_levels(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Agent).await?;
            let l = live(&s, &tenant)?;
            let clocks = s
                .engine
                .service_levels(&l.tenant, None)
                .await
                .map_err(store_error)?;
            ok(json!({ "now": s.engine.store.now(), "clocks": clocks }))
        }
        .await,
    )
}

async fn resolve(
    State(s): State<AppState>,
    h: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    flatten(
        async {
            let actor = require(&s, &h, &tenant, Role::Agent).await?;
            let l = live(&s, &tenant)?;
            let (conversation, survey) = s
                .engine
                .resolve(&l.tenant, &id, &actor.0)
                .await
                .map_err(|e| action_error(e, "such conversation"))?;
            if survey.is_some() {
                s.registry.deliver_waker(&tenant).notify_one();
            }
            ok(json!({ "conversation": conversation, "state": "resolved", "survey": survey }))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// Epoch milliseconds; default seven days before `until`.
    since: Option<i64>,
    /// Epoch milliseconds; default now.
    until: Option<i64>,
}

async fn report(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(tenant): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    flatten(
        async {
            require(&s, &h, &tenant, Role::Supervisor).await?;
            live(&s, &tenant)?;
            let until = q.until.unwrap_or_else(|| s.engine.store.now());
            let since = q.since.unwrap_or(until - 7 * 24 * 3_600_000);
            if since >= until {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "`since` must be before `until`".into(),
                ));
            }
            let report =
                switchboard_care::care::report::build(&s.engine.store, &tenant, since, until)
                    .await
                    .map_err(store_error)?;
            ok(json!(report))
        }
        .await,
    )
}
