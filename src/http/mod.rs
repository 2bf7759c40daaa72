//! The HTTP face: the router, its layers, thin handlers and the extractors
//! that turn requests into protocol input. Handlers extract, call one
//! function, and map its result; protocol decisions live in `oauth`.

mod admin;
mod discovery;
mod extract;
mod health;
mod request_context;
mod response;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::oauth::TokenService;
use crate::oauth::metadata::{INTROSPECTION_PATH, JWKS_PATH, REVOCATION_PATH, TOKEN_PATH};
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
    let mut routes = Router::new();
    if surface != Surface::Admin {
        routes = routes
            .route(
                TOKEN_PATH,
                post(token::token).fallback(response::method_not_allowed_post),
            )
            .route(
                INTROSPECTION_PATH,
                post(token::introspect).fallback(response::method_not_allowed_post),
            )
            .route(
                REVOCATION_PATH,
                post(token::revoke).fallback(response::method_not_allowed_post),
            )
            .route(JWKS_PATH, get(discovery::jwks))
            .route(
                "/.well-known/oauth-authorization-server",
                get(discovery::metadata),
            )
            .route(
                "/.well-known/openid-configuration",
                get(discovery::metadata),
            )
            .route("/readyz", get(health::readyz))
            .route("/metrics", get(health::metrics));
    }
    if surface != Surface::Public {
        routes = routes
            .route(
                "/admin/clients",
                get(admin::list_clients).post(admin::create_client),
            )
            .route(
                "/admin/clients/{id}",
                get(admin::get_client)
                    .patch(admin::update_client)
                    .delete(admin::delete_client),
            )
            .route("/admin/clients/{id}/secret", post(admin::rotate_secret))
            .route("/admin/keys", get(admin::list_keys))
            .route("/admin/keys/rotate", post(admin::rotate_key));
    }
    routes
        .route("/healthz", get(health::healthz))
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
