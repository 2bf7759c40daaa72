//! The three endpoints that authenticate a client: token, introspection, revocation.

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::response::{IntoResponse, Response};

use super::extract::{BasicAuth, OAuthForm};
use super::{AppState, Peer};
use crate::clock::unix_now;
use crate::oauth::OAuthError;
use crate::oauth::introspection::TokenRequestByCaller;
use crate::oauth::token::{TokenRequest, TokenResponse};

/// `POST /token` — the client credentials grant (RFC 6749 §4.4).
pub async fn token(
    State(app): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    BasicAuth(basic): BasicAuth,
    OAuthForm(params): OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    let request = TokenRequest::parse(basic, &params)?;
    app.tokens.issue(request, Some(peer.ip()), unix_now()).await
}

/// `POST /introspect` — token introspection (RFC 7662).
pub async fn introspect(
    State(app): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    BasicAuth(basic): BasicAuth,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    let request = TokenRequestByCaller::parse(basic, &params)?;
    let answer = app
        .tokens
        .introspect(request, Some(peer.ip()), unix_now())
        .await?;
    Ok((
        [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")],
        Json(answer),
    )
        .into_response())
}

/// `POST /revoke` — token revocation (RFC 7009): 200 with an empty body.
pub async fn revoke(
    State(app): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    BasicAuth(basic): BasicAuth,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    let request = TokenRequestByCaller::parse(basic, &params)?;
    app.tokens
        .revoke(request, Some(peer.ip()), unix_now())
        .await?;
    Ok([(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")].into_response())
}
