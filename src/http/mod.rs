//! The HTTP face: the router, its layers, thin handlers and the extractors
//! that turn requests into protocol input. Handlers extract, call one
//! function, and map its result; protocol decisions live in `oauth`.

mod admin;
mod client_address;
mod client_certificate;
mod discovery;
mod extract;
mod health;
mod openapi;
mod request_context;
mod response;
mod serve;
mod token;

pub use client_certificate::MtlsSettings;
pub use serve::serve;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::domain::network::TrustedProxies;
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

#[derive(Clone)]
pub struct AppState {
    pub tokens: Arc<TokenService>,
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub metrics: Arc<Metrics>,
    /// The scope the admin API requires.
    pub admin_scope: Arc<str>,
    /// Set at the shutdown signal: `/readyz` answers 503 from then on, while
    /// requests are still served for the drain delay.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Reverse proxies whose forwarding headers name the caller.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// How client certificates reach us (RFC 8705).
    pub mtls: Arc<MtlsSettings>,
}

/// Which routes a listener serves. Every listener also answers `/healthz`,
/// `/readyz` and `/openapi.json` (describing that listener's routes only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surface {
    /// Token, introspection, revocation, metadata, JWKS.
    pub public: bool,
    /// The admin API.
    pub admin: bool,
    /// `/metrics`.
    pub metrics: bool,
}

impl Surface {
    /// One listener for everything (no private listener configured).
    pub const ALL: Self = Self {
        public: true,
        admin: true,
        metrics: true,
    };
}

pub fn router(state: AppState, surface: Surface) -> Router {
    let (routes, mut api) = documented_routes(surface).split_for_parts();
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
    let document = axum::body::Bytes::from(api.to_json().unwrap_or_else(|_| "{}".to_owned()));
    let openapi_json = move || {
        let document = document.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                document,
            )
        }
    };
    routes
        .route("/openapi.json", get(openapi_json))
        .fallback(response::not_found)
        .method_not_allowed_fallback(response::method_not_allowed)
        .layer(axum::middleware::from_fn(deadline))
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
    if surface.public {
        routes = public_routes(routes);
    }
    if surface.admin {
        routes = admin_routes(routes);
    }
    if surface.metrics {
        routes = routes.routes(routes!(health::metrics));
    }
    routes
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
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
}

/// A request that has not completed by `REQUEST_TIMEOUT` is answered 503
/// with `Retry-After`, in the usual JSON, and its work is dropped.
async fn deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            use axum::response::IntoResponse as _;
            crate::fault::Fault::unavailable(RequestTimedOut).into_response()
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request did not complete within {REQUEST_TIMEOUT:?}")]
struct RequestTimedOut;

/// The admin API: clients, trusted issuers and keys. Every answer is `no-store`: clients and
/// keys are not for shared caches, and some answers carry a secret.
fn admin_routes(routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let admin = OpenApiRouter::new()
        .routes(routes!(admin::list_clients, admin::create_client))
        .routes(routes!(admin::list_issuers, admin::add_issuer))
        .routes(routes!(admin::get_issuer, admin::remove_issuer))
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
        .routes(routes!(admin::list_audit))
        .layer(axum::middleware::map_response(no_store));
    routes.merge(admin)
}

async fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    for (name, value) in response::NO_STORE {
        response.headers_mut().insert(name, value);
    }
    response
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
