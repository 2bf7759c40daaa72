//! The three endpoints that authenticate a client: token, introspection,
//! revocation. Each parses its request and calls one service function.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::ClientRequest;
use super::openapi::{TokenByCallerForm, TokenForm};
use super::response::{NO_STORE, OAuthFailures};
use crate::clock::unix_now;
use crate::oauth::OAuthError;
use crate::oauth::introspection::{IntrospectionResponse, TokenRequestByCaller};
use crate::oauth::metadata::{INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH};
use crate::oauth::token::{TokenRequest, TokenResponse};

/// `POST /token` — the client credentials grant (RFC 6749 §4.4).
#[utoipa::path(post, path = TOKEN_PATH, tag = "oauth", security((), ("client_basic" = [])),
    params(("DPoP" = Option<String>, Header,
        description = "A DPoP proof (RFC 9449 §4): the token is then bound to its key")),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "OK", body = TokenResponse,
        headers(("DPoP-Nonce" = String, description = "A fresh DPoP nonce, when server nonces are on"))),
        OAuthFailures))]
pub async fn token(
    State(app): State<AppState>,
    request: ClientRequest,
) -> Result<TokenResponse, OAuthError> {
    let mut parsed = TokenRequest::parse(request.basic, &request.params)?;
    parsed.dpop = request.dpop;
    parsed.certificate = request.certificate;
    app.tokens
        .issue(parsed, Some(request.address), unix_now())
        .await
}

/// `POST /introspect` — token introspection (RFC 7662).
#[utoipa::path(post, path = INTROSPECTION_PATH, tag = "oauth", security((), ("client_basic" = [])),
    request_body(content = TokenByCallerForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "OK", body = IntrospectionResponse), OAuthFailures))]
pub async fn introspect(
    State(app): State<AppState>,
    request: ClientRequest,
) -> Result<Response, OAuthError> {
    let mut parsed = TokenRequestByCaller::parse(request.basic, &request.params)?;
    parsed.certificate = request.certificate;
    let answer = app
        .tokens
        .introspect(parsed, Some(request.address), unix_now())
        .await?;
    Ok((NO_STORE, Json(answer)).into_response())
}

/// `POST /revoke` — token revocation (RFC 7009): 200 with an empty body.
#[utoipa::path(post, path = REVOCATION_PATH, tag = "oauth", security((), ("client_basic" = [])),
    request_body(content = TokenByCallerForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or nothing to revoke (RFC 7009 §2.2)"), OAuthFailures))]
pub async fn revoke(
    State(app): State<AppState>,
    request: ClientRequest,
) -> Result<Response, OAuthError> {
    let mut parsed = TokenRequestByCaller::parse(request.basic, &request.params)?;
    parsed.certificate = request.certificate;
    app.tokens
        .revoke(parsed, Some(request.address), unix_now())
        .await?;
    Ok(NO_STORE.into_response())
}
