//! The three endpoints that authenticate a client: token, introspection,
//! revocation. Each parses its request and calls one service function.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::ClientRequest;
use super::response::NO_STORE;
use crate::clock::unix_now;
use crate::oauth::OAuthError;
use crate::oauth::introspection::TokenRequestByCaller;
use crate::oauth::token::{TokenRequest, TokenResponse};

/// `POST /token` — the client credentials grant (RFC 6749 §4.4).
pub async fn token(
    State(app): State<AppState>,
    request: ClientRequest,
) -> Result<TokenResponse, OAuthError> {
    let parsed = TokenRequest::parse(request.basic, &request.params)?;
    app.tokens
        .issue(parsed, Some(request.address), unix_now())
        .await
}

/// `POST /introspect` — token introspection (RFC 7662).
pub async fn introspect(
    State(app): State<AppState>,
    request: ClientRequest,
) -> Result<Response, OAuthError> {
    let parsed = TokenRequestByCaller::parse(request.basic, &request.params)?;
    let answer = app
        .tokens
        .introspect(parsed, Some(request.address), unix_now())
        .await?;
    Ok((NO_STORE, Json(answer)).into_response())
}

/// `POST /revoke` — token revocation (RFC 7009): 200 with an empty body.
pub async fn revoke(
    State(app): State<AppState>,
    request: ClientRequest,
) -> Result<Response, OAuthError> {
    let parsed = TokenRequestByCaller::parse(request.basic, &request.params)?;
    app.tokens
        .revoke(parsed, Some(request.address), unix_now())
        .await?;
    Ok(NO_STORE.into_response())
}
