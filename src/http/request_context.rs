//! A request id and one log line per request.
//!
//! The id is generated here, never taken from the client (a client-chosen id
//! could forge or inject log lines), and returned in `X-Request-Id`. Every log
//! line emitted while the request runs carries it through the span. Only the
//! path is logged: a query string could carry a secret.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;
use super::client_address::{ClientAddress, client_address};
use super::client_certificate::presented_certificate;
use crate::domain::log_excerpt;
use crate::net::ClientCertChain;
use crate::telemetry;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A per-process prefix so that ids from several instances do not collide.
fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        crate::crypto::random_bytes::<4>()
            .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
            .unwrap_or_else(|_| "00000000".to_owned())
    })
}

pub async fn request_context(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // The route template, never the raw path: bounded label values.
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let id = format!("{}-{}", prefix(), NEXT.fetch_add(1, Ordering::Relaxed));
    // The HTTP server span of OpenTelemetry's semantic conventions, only
    // when spans are exported: its parent is the caller's `traceparent`.
    let server = if telemetry::otel_enabled() {
        let method = request.method().as_str();
        let server = tracing::info_span!(
            target: telemetry::OTEL_TARGET,
            "HTTP",
            otel.name = format!("{method} {endpoint}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = method,
            http.route = endpoint.as_str(),
            url.path = log_excerpt(request.uri().path()),
            http.response.status_code = tracing::field::Empty,
        );
        telemetry::set_remote_parent(&server, request.headers());
        server
    } else {
        tracing::Span::none()
    };
    // Who is calling, for the throttle and the logs: the peer, or the
    // caller a trusted proxy forwarded for.
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<super::Peer>>()
        .map(|info| info.0.0.ip());
    let client = peer.map(|peer| client_address(peer, request.headers(), &app.trusted_proxies));
    if let Some(client) = client {
        request.extensions_mut().insert(ClientAddress(client));
    }
    if let Some(peer) = peer {
        let certificate = presented_certificate(
            request.extensions().get::<ClientCertChain>(),
            request.headers(),
            peer,
            &app.mtls,
            &app.trusted_proxies,
        );
        if let Some(certificate) = certificate {
            request.extensions_mut().insert(certificate);
        }
    }
    let span = tracing::info_span!(
        parent: &server,
        "request",
        request_id = %id,
        method = ?log_excerpt(request.method().as_str()),
        path = ?log_excerpt(request.uri().path()),
        client = tracing::field::display(client.map_or_else(String::new, |c| c.to_string())),
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    if !server.is_none() {
        let status = response.status();
        server.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            server.record("otel.status_code", "ERROR");
        }
    }
    app.metrics
        .record_request(&endpoint, response.status().as_u16(), started.elapsed());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
