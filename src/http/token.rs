use axum::extract::State;

use super::AppState;
use super::extract::{BasicAuth, OAuthForm};
use crate::clock::unix_now;
use crate::oauth::OAuthError;
use crate::oauth::token::{TokenRequest, TokenResponse};

/// `POST /token` — the client credentials grant (RFC 6749 §4.4).
pub async fn token(
    State(app): State<AppState>,
    BasicAuth(basic): BasicAuth,
    OAuthForm(params): OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    let request = TokenRequest::parse(basic, &params)?;
    app.tokens.issue(request, unix_now()).await
}
