//! The HTTP face: the router, its layers, thin handlers and the extractors
//! that turn requests into protocol input. Handlers extract, call one
//! function, and map its result; protocol decisions live in `oauth`.

mod admin;
mod discovery;
mod extract;
mod health;
mod openapi;
mod request_context;
mod response;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::oauth::TokenService;
use crate::store::Store;

/// The largest request body we read. A token request is a few hundred bytes;
/// 16 KiB leaves room for long scope lists and bounds the work per request.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request that has not completed by then is cut off, so that a stalled
/// client or dependency cannot hold a connection forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The caller's address, for either listener (plain TCP or TLS).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

#[derive(Clone)]
pub struct AppState {
    pub tokens: Arc<TokenService>,
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub metrics: Arc<Metrics>,
    /// The scope the admin API requires.
    pub admin_scope: Arc<str>,
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Everything: the public endpoints and the admin API.
    All,
    /// The public endpoints only (the admin API has its own listener).
    Public,
    /// The admin API only, with health for its own probes.
    Admin,
}

pub fn router(state: AppState, surface: Surface) -> Router {
    let (routes, _) = documented_routes(surface).split_for_parts();
    routes
        .route("/openapi.json", get(openapi_json))
        .fallback(response::not_found)
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::custom(response::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_context::request_context,
        ))
        .with_state(state)
}

/// The routes of `surface`, each registered from its handler's
/// `#[utoipa::path]` — so the OpenAPI document lists exactly what is served.
fn documented_routes(surface: Surface) -> OpenApiRouter<AppState> {
    let mut routes = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi());
    if surface != Surface::Admin {
        routes = public_routes(routes);
    }
    if surface != Surface::Public {
        routes = admin_routes(routes);
    }
    routes.routes(routes!(health::healthz))
}

/// OAuth, discovery and operations endpoints.
fn public_routes(routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    routes
        .routes(post_only(routes!(token::token)))
        .routes(post_only(routes!(token::introspect)))
        .routes(post_only(routes!(token::revoke)))
        .routes(routes!(discovery::jwks))
        .routes(routes!(discovery::metadata))
        .routes(routes!(discovery::openid_configuration))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
}

/// The admin API: clients and keys.
fn admin_routes(routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    routes
        .routes(routes!(admin::list_clients, admin::create_client))
        .routes(routes!(
            admin::get_client,
            admin::update_client,
            admin::delete_client
        ))
        .routes(routes!(admin::rotate_secret))
        .routes(routes!(admin::revoke_tokens))
        .routes(routes!(admin::list_keys))
        .routes(routes!(admin::rotate_key))
        .routes(routes!(admin::revoke_key))
}

/// Answers other methods on a POST-only endpoint with a JSON 405 and `Allow`.
fn post_only(route: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, methods) = route;
    (
        schemas,
        paths,
        methods.fallback(response::method_not_allowed_post),
    )
}

/// The whole surface's document, built once.
pub fn openapi_document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, mut api) = documented_routes(Surface::All).split_for_parts();
        api.paths.paths.insert(
            "/openapi.json".to_owned(),
            utoipa::openapi::path::PathItem::new(
                utoipa::openapi::HttpMethod::Get,
                utoipa::openapi::path::OperationBuilder::new()
                    .tag("operations")
                    .summary(Some("This document"))
                    .response("200", utoipa::openapi::Response::new("OpenAPI 3 document")),
            ),
        );
        api.to_json().unwrap_or_else(|_| "{}".to_owned())
    })
}

/// `GET /openapi.json`
async fn openapi_json() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
}
