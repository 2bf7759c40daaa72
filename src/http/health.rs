use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// How long readiness waits for the database before answering "not ready".
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz` — the process is alive and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /metrics` — Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> impl axum::response::IntoResponse {
    let hasher = app.tokens.authenticator().hasher();
    let (queue, busy) = (hasher.queue_depth(), hasher.busy_total());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        app.metrics.render(queue, busy),
    )
}

/// `GET /readyz` — ready for traffic: the database answers, and the server
/// is not shutting down. (The listener opens only once migrations are
/// applied and the signing keys loaded, so nothing answers before that.)
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "The database does not answer, or the server is draining", body = Object)))]
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    let database = match tokio::time::timeout(READY_TIMEOUT, app.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            "unavailable"
        }
        Err(_) => "timeout",
    };
    let status = if database == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            json!({ "status": if database == "ok" { "ok" } else { "unavailable" }, "database": database }),
        ),
    )
}
