//! What resource servers and clients fetch to find and trust us: the
//! metadata document (RFC 8414) and the JWKS (RFC 7517).

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::crypto::Algorithm;
use crate::oauth::metadata::{JWKS_PATH, server_metadata};

/// `GET /.well-known/oauth-authorization-server` — RFC 8414 metadata.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "RFC 8414 authorization server metadata", body = Object)))]
pub async fn metadata(State(app): State<AppState>) -> Response {
    let document = server_metadata(app.tokens.issuer(), &Algorithm::ALL, &app.mtls.offer());
    ([(CACHE_CONTROL, "public, max-age=3600")], Json(document)).into_response()
}

/// `GET /.well-known/openid-configuration` — the same document, for clients
/// that only look there.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses((status = 200, description = "The RFC 8414 metadata document", body = Object)))]
pub async fn openid_configuration(state: State<AppState>) -> Response {
    metadata(state).await
}

/// `GET /.well-known/jwks.json` — every published public key, cacheable for
/// the JWKS lifetime that key rotation waits out.
#[utoipa::path(get, path = JWKS_PATH, tag = "discovery",
    responses((status = 200, description = "RFC 7517 JWK Set: {\"keys\": [...]}", body = Object)))]
pub async fn jwks(State(app): State<AppState>) -> Response {
    let cache = format!("public, max-age={}", app.keys.jwks_max_age());
    (
        [
            (CONTENT_TYPE, "application/json".to_owned()),
            (CACHE_CONTROL, cache),
        ],
        app.keys.jwks().to_string(),
    )
        .into_response()
}
