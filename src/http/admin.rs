//! The admin API: the CLI's client and key operations over HTTP,
//! for deploy pipelines. It accepts only tokenmint's own access tokens that
//! carry the admin scope, checked the way a resource server checks them
//! (RFC 6750): signature, `typ`, issuer, audience (the issuer), lifetime —
//! and, since we are the server, revocation and the client's state too.
//! Handlers call the same `admin::ClientAdmin` operations as the CLI.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::response::NO_STORE;
use crate::admin::{
    AdminError, AuditPage, ClientAdmin, ClientChanges, ClientView, CreatedClient, IssuerAdmin,
    IssuerView, KeyView, NewClient, NewIssuer, RotatedSecret, audit_page, audit_query,
};
use crate::clock::unix_now;
use crate::domain::client::ClientQuery;
use crate::fault::Fault;
use crate::keys::KeyError;
use crate::oauth::OAuthError;
use crate::oauth::params::FormParams;
use crate::store::{AuditQuery, SYSTEM_ACTOR};

/// The JSON body of every admin API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiErrorBody<'a> {
    #[schema(value_type = String)]
    pub error: &'a str,
    #[schema(value_type = String)]
    pub error_description: &'a str,
    /// The invalid field, for `invalid_request` about a field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub field: Option<&'a str>,
}

// The four response types below describe answers for the OpenAPI document;
// `ApiError` builds the answers themselves, so they are never constructed.

/// What every admin operation may answer besides its success.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum AdminFailures {
    #[response(status = 401, description = "Authentication missing or failed")]
    Unauthorized(ApiErrorBody<'static>),
    #[response(status = 403, description = "The access token lacks the admin scope")]
    Forbidden(ApiErrorBody<'static>),
    #[response(status = 503, description = "Temporarily unavailable; see Retry-After")]
    Unavailable(ApiErrorBody<'static>),
}

/// 400 for an operation that takes a body.
#[derive(utoipa::IntoResponses)]
#[response(status = 400, description = "Invalid request")]
#[allow(dead_code)]
pub struct InvalidBody(ApiErrorBody<'static>);

/// 404 for an operation on one client.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "No such client")]
#[allow(dead_code)]
pub struct NoSuchClient(ApiErrorBody<'static>);

/// 409 when creating a client whose id is taken.
#[derive(utoipa::IntoResponses)]
#[response(status = 409, description = "A client with this id already exists")]
#[allow(dead_code)]
pub struct ClientExists(ApiErrorBody<'static>);

/// Everything the admin API answers besides success.
#[derive(Debug)]
pub enum ApiError {
    /// 401: no bearer token (`invalid` false) or one that is not an active
    /// token of ours (`invalid` true: RFC 6750 §3.1 `invalid_token`).
    Unauthorized {
        invalid: bool,
    },
    /// 403: RFC 6750 §3.1 `insufficient_scope`, naming the scope required.
    InsufficientScope(String),
    NotFound,
    NoSuchKey,
    Conflict,
    NoSuchIssuer,
    IssuerExists,
    /// 409 naming the client that holds the identity.
    IdentityTaken(String),
    /// 400 naming the field.
    Invalid {
        field: &'static str,
        reason: String,
    },
    /// 400: the body is not the JSON the endpoint takes.
    BadBody(String),
    /// 408: the body did not arrive in time.
    BodyTimedOut,
    /// 503 or 500, answered like every other fault (`http::response`).
    Fault(Fault),
}

impl ApiError {
    /// RFC 6750 §3: the `WWW-Authenticate` challenge of 401 and 403 answers.
    fn challenge(&self) -> Option<String> {
        match self {
            Self::Unauthorized { invalid: false } => Some("Bearer realm=\"tokenmint\"".to_owned()),
            Self::Unauthorized { invalid: true } => {
                Some("Bearer realm=\"tokenmint\", error=\"invalid_token\"".to_owned())
            }
            Self::InsufficientScope(scope) => Some(format!(
                "Bearer realm=\"tokenmint\", error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let challenge = self.challenge();
        let mut field = None;
        let (status, error, description) = match self {
            Self::Fault(fault) => return fault.into_response(),
            Self::Unauthorized { invalid: false } => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "a bearer access token with the admin scope is required".to_owned(),
            ),
            Self::Unauthorized { invalid: true } => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is not active".to_owned(),
            ),
            Self::InsufficientScope(_) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "the access token lacks the admin scope".to_owned(),
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such client".to_owned(),
            ),
            Self::NoSuchKey => (StatusCode::NOT_FOUND, "not_found", "no such key".to_owned()),
            Self::NoSuchIssuer => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such issuer".to_owned(),
            ),
            Self::IssuerExists => (
                StatusCode::CONFLICT,
                "conflict",
                "an issuer with this name or issuer URL already exists".to_owned(),
            ),
            Self::IdentityTaken(reason) => {
                field = Some("federated_identities");
                (StatusCode::CONFLICT, "conflict", reason)
            }
            Self::Conflict => (
                StatusCode::CONFLICT,
                "conflict",
                "a client with this id already exists".to_owned(),
            ),
            Self::Invalid {
                field: name,
                reason,
            } => {
                field = Some(name);
                (
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("invalid {name}: {reason}"),
                )
            }
            Self::BadBody(reason) => (StatusCode::BAD_REQUEST, "invalid_request", reason),
            Self::BodyTimedOut => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                "the request body did not arrive in time".to_owned(),
            ),
        };
        let body = ApiErrorBody {
            error,
            error_description: &description,
            field,
        };
        let mut response = (status, NO_STORE, Json(body)).into_response();
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(field) => Self::Invalid {
                field: field.field,
                reason: field.reason,
            },
            AdminError::NotFound => Self::NotFound,
            AdminError::Conflict => Self::Conflict,
            AdminError::NoSuchIssuer => Self::NoSuchIssuer,
            AdminError::IssuerExists => Self::IssuerExists,
            AdminError::IdentityTaken(reason) => Self::IdentityTaken(reason),
            AdminError::Fault(fault) => Self::Fault(fault),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        Self::Fault(e.into())
    }
}

/// Checking an admin token fails only on our side: a token that is not
/// active is `None`, not an error.
impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        match e {
            OAuthError::Fault(fault) => Self::Fault(fault),
            other => Self::Fault(Fault::internal(other)),
        }
    }
}

/// A caller holding an active tokenmint access token with the admin scope:
/// its client id, which the audit trail records.
pub struct Admin(pub String);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // RFC 6750 §2.1: `Authorization: Bearer <token>`, scheme case-insensitive.
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(ApiError::Unauthorized { invalid: false })?;
        let claims = app
            .tokens
            .active_claims(token, unix_now())
            .await?
            .filter(|claims| claims.has_audience(app.tokens.issuer()))
            .ok_or(ApiError::Unauthorized { invalid: true })?;
        if !claims.has_scope(&app.admin_scope) {
            return Err(ApiError::InsufficientScope(app.admin_scope.to_string()));
        }
        Ok(Admin(claims.client_id))
    }
}

/// The `{id}` or `{kid}` of an admin path, percent-decoded; a segment that
/// does not decode to text is a 400 in our error format, not axum's plain
/// text.
pub struct PathId(pub String);

impl FromRequestParts<AppState> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, app).await {
            Ok(Path(id)) => Ok(Self(id)),
            Err(_) => Err(ApiError::BadBody(
                "the path segment is not percent-encoded UTF-8".to_owned(),
            )),
        }
    }
}

/// A JSON body whose rejection is a 400 in our error format.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Self::Rejection> {
        let read = Json::<T>::from_request(request, app);
        match tokio::time::timeout(super::extract::BODY_READ_TIMEOUT, read).await {
            Ok(Ok(Json(value))) => Ok(Self(value)),
            Ok(Err(rejection)) => Err(ApiError::BadBody(describe(&rejection))),
            Err(_) => Err(ApiError::BodyTimedOut),
        }
    }
}

fn describe(rejection: &JsonRejection) -> String {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => "the body must be application/json".to_owned(),
        other => other.body_text(),
    }
}

/// 404 for an operation on one key.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "No such key")]
pub struct NoSuchKey(ApiErrorBody<'static>);

fn clients<'a>(app: &'a AppState, actor: &str) -> ClientAdmin<'a> {
    ClientAdmin::new(app.store.as_ref(), app.tokens.authenticator().hasher()).by(actor)
}

/// `GET /admin/clients` — one page, in id order; `Link: <…>; rel="next"`
/// (RFC 8288) when there may be more.
#[utoipa::path(get, path = "/admin/clients", tag = "admin", security(("admin_bearer" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<String>, Query, description = "The cursor: the last client id of the previous page"),
        ("prefix" = Option<String>, Query, description = "Only ids starting with this"),
        ("enabled" = Option<bool>, Query, description = "Only enabled (true) or disabled (false) clients"),
        ("scope" = Option<String>, Query, description = "Only clients allowed this scope"),
    ),
    responses((status = 200, description = "OK", body = Vec<ClientView>,
        headers(("Link" = String, description = "The next page (RFC 8288 rel=\"next\"), if there may be one"))),
        InvalidBody, AdminFailures))]
pub async fn list_clients(
    _: Admin,
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = client_query(raw.as_deref())?;
    let page = clients(&app, SYSTEM_ACTOR).list(&query).await?;
    let mut response = Json(page.clients).into_response();
    if let Some(after) = page.next_after {
        let mut next = vec![("after", after), ("limit", query.limit.to_string())];
        next.extend(query.prefix.map(|p| ("prefix", p)));
        next.extend(query.enabled.map(|e| ("enabled", e.to_string())));
        next.extend(query.scope.map(|s| ("scope", s)));
        link_next(&mut response, "/admin/clients", &next);
    }
    Ok(response)
}

/// `Link: <path?next>; rel="next"` (RFC 8288) on a page that may have a
/// successor.
fn link_next(response: &mut Response, path: &str, next: &[(&str, String)]) {
    let encoded: Vec<String> = next
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    let link = format!("<{path}?{}>; rel=\"next\"", encoded.join("&"));
    if let Ok(value) = HeaderValue::from_str(&link) {
        response
            .headers_mut()
            .insert(axum::http::header::LINK, value);
    }
}

/// The query string of an admin list: each parameter at most once, the
/// numbers and booleans checked, every refusal a 400 in our error format.
struct ListParams(FormParams);

impl ListParams {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        FormParams::parse(raw.unwrap_or_default().as_bytes())
            .map(Self)
            .map_err(|e| ApiError::BadBody(e.description().to_owned()))
    }

    fn text(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        self.0
            .single(name)
            .map(|v| v.map(str::to_owned))
            .map_err(|e| ApiError::BadBody(e.description().to_owned()))
    }

    fn parsed<T>(
        &self,
        name: &'static str,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        self.text(name)?
            .map(|v| {
                parse(&v).ok_or_else(|| ApiError::Invalid {
                    field: name,
                    reason: format!("must be {what}"),
                })
            })
            .transpose()
    }
}

/// `GET /admin/clients`'s query.
fn client_query(raw: Option<&str>) -> Result<ClientQuery, ApiError> {
    let params = ListParams::parse(raw)?;
    let limit = params.parsed("limit", "a whole number", |v| v.parse().ok())?;
    let enabled = params.parsed("enabled", "true or false", |v| v.parse().ok())?;
    ClientQuery::new(
        params.text("after")?,
        limit,
        params.text("prefix")?,
        enabled,
        params.text("scope")?,
    )
    .map_err(|e| AdminError::Invalid(e).into())
}

/// `GET /admin/audit`'s query.
fn audit_list_query(raw: Option<&str>) -> Result<AuditQuery, ApiError> {
    let params = ListParams::parse(raw)?;
    let limit = params.parsed("limit", "a whole number", |v| v.parse().ok())?;
    let after = params.parsed("after", "an entry id", |v| v.parse().ok())?;
    let target = params.text("client")?.or(params.text("target")?);
    let since = params.text("since")?;
    audit_query(target, since.as_deref(), after, limit, unix_now())
        .map_err(|e| AdminError::Invalid(e).into())
}

/// `POST /admin/clients` — 201 with the secret, shown once.
#[utoipa::path(post, path = "/admin/clients", tag = "admin", security(("admin_bearer" = [])), request_body = NewClient,
    responses((status = 201, description = "Created", body = CreatedClient), InvalidBody, ClientExists, AdminFailures))]
pub async fn create_client(
    Admin(actor): Admin,
    State(app): State<AppState>,
    Body(new): Body<NewClient>,
) -> Result<Response, ApiError> {
    let created = clients(&app, &actor).create(new, None, unix_now()).await?;
    Ok((StatusCode::CREATED, NO_STORE, Json(created)).into_response())
}

/// `GET /admin/clients/{id}`
#[utoipa::path(get, path = "/admin/clients/{id}", tag = "admin", security(("admin_bearer" = [])), params(("id" = String, Path, description = "The client id, percent-encoded")),
    responses((status = 200, description = "OK", body = ClientView), NoSuchClient, AdminFailures))]
pub async fn get_client(
    _: Admin,
    State(app): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(ClientView::from(
        &clients(&app, SYSTEM_ACTOR).get(&id).await?,
    )))
}

/// `PATCH /admin/clients/{id}`
#[utoipa::path(patch, path = "/admin/clients/{id}", tag = "admin", security(("admin_bearer" = [])), params(("id" = String, Path, description = "The client id, percent-encoded")), request_body = ClientChanges,
    responses((status = 200, description = "OK", body = ClientView), InvalidBody, NoSuchClient, AdminFailures))]
pub async fn update_client(
    Admin(actor): Admin,
    State(app): State<AppState>,
    PathId(id): PathId,
    Body(changes): Body<ClientChanges>,
) -> Result<Json<ClientView>, ApiError> {
    Ok(Json(ClientView::from(
        &clients(&app, &actor)
            .update(&id, changes, unix_now())
            .await?,
    )))
}

/// `DELETE /admin/clients/{id}` — 204.
#[utoipa::path(delete, path = "/admin/clients/{id}", tag = "admin", security(("admin_bearer" = [])), params(("id" = String, Path, description = "The client id, percent-encoded")),
    responses((status = 204, description = "Deleted"), NoSuchClient, AdminFailures))]
pub async fn delete_client(
    Admin(actor): Admin,
    State(app): State<AppState>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    clients(&app, &actor).delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps working; 0 cuts it at once.
    #[serde(default)]
    #[schema(maximum = 2592000)]
    pub overlap_seconds: u64,
}

/// `POST /admin/clients/{id}/secret`
#[utoipa::path(post, path = "/admin/clients/{id}/secret", tag = "admin", security(("admin_bearer" = [])), params(("id" = String, Path, description = "The client id, percent-encoded")), request_body = RotateSecret,
    responses((status = 200, description = "OK", body = RotatedSecret), InvalidBody, NoSuchClient, AdminFailures))]
pub async fn rotate_secret(
    Admin(actor): Admin,
    State(app): State<AppState>,
    PathId(id): PathId,
    Body(rotate): Body<RotateSecret>,
) -> Result<Response, ApiError> {
    let rotated = clients(&app, &actor)
        .rotate_secret(&id, rotate.overlap_seconds, unix_now())
        .await?;
    Ok((NO_STORE, Json(rotated)).into_response())
}

/// `POST /admin/clients/{id}/revoke-tokens` — every token the client holds
/// now becomes inactive.
#[utoipa::path(post, path = "/admin/clients/{id}/revoke-tokens", tag = "admin", security(("admin_bearer" = [])), params(("id" = String, Path, description = "The client id, percent-encoded")),
    responses((status = 200, description = "OK", body = ClientView), NoSuchClient, AdminFailures))]
pub async fn revoke_tokens(
    Admin(actor): Admin,
    State(app): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<ClientView>, ApiError> {
    let client = clients(&app, &actor).revoke_tokens(&id, unix_now()).await?;
    Ok(Json(ClientView::from(&client)))
}

/// `GET /admin/keys`
#[utoipa::path(get, path = "/admin/keys", tag = "admin", security(("admin_bearer" = [])),
    responses((status = 200, description = "OK", body = Vec<KeyView>), AdminFailures))]
pub async fn list_keys(
    _: Admin,
    State(app): State<AppState>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = app.keys.list(unix_now()).await?;
    Ok(Json(
        keys.iter()
            .map(|(key, status)| KeyView::new(key, *status))
            .collect(),
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    #[serde(default)]
    pub now: bool,
}

/// `POST /admin/keys/rotate` — 201 with the new key.
#[utoipa::path(post, path = "/admin/keys/rotate", tag = "admin", security(("admin_bearer" = [])), request_body = RotateKey,
    responses((status = 201, description = "Created", body = KeyView), InvalidBody, AdminFailures))]
pub async fn rotate_key(
    Admin(actor): Admin,
    State(app): State<AppState>,
    Body(rotate): Body<RotateKey>,
) -> Result<Response, ApiError> {
    let now = unix_now();
    let (key, status) = app.keys.rotate(now, rotate.now, &actor).await?;
    // Make this instance use the new key at once rather than at the next
    // refresh tick.
    app.keys.refresh(now).await?;
    Ok((StatusCode::CREATED, Json(KeyView::new(&key, status))).into_response())
}

/// `POST /admin/keys/{kid}/revoke` — withdraw a key at once (compromise).
#[utoipa::path(post, path = "/admin/keys/{kid}/revoke", tag = "admin", security(("admin_bearer" = [])), params(("kid" = String, Path, description = "The key id")),
    responses((status = 200, description = "Revoked", body = KeyView), NoSuchKey, AdminFailures))]
pub async fn revoke_key(
    Admin(actor): Admin,
    State(app): State<AppState>,
    PathId(kid): PathId,
) -> Result<Json<KeyView>, ApiError> {
    let (key, status) = app
        .keys
        .revoke(&kid, unix_now(), &actor)
        .await?
        .ok_or(ApiError::NoSuchKey)?;
    Ok(Json(KeyView::new(&key, status)))
}

/// 404 for an operation on one issuer.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "No such issuer")]
#[allow(dead_code)]
pub struct NoSuchIssuer(ApiErrorBody<'static>);

/// 409 when adding an issuer whose name or `iss` is taken.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 409,
    description = "An issuer with this name or issuer URL already exists"
)]
#[allow(dead_code)]
pub struct IssuerExists(ApiErrorBody<'static>);

/// `GET /admin/issuers`
#[utoipa::path(get, path = "/admin/issuers", tag = "admin", security(("admin_bearer" = [])),
    responses((status = 200, description = "OK", body = Vec<IssuerView>), AdminFailures))]
pub async fn list_issuers(
    _: Admin,
    State(app): State<AppState>,
) -> Result<Json<Vec<IssuerView>>, ApiError> {
    let issuers = IssuerAdmin::new(app.store.as_ref()).list().await?;
    Ok(Json(issuers.iter().map(IssuerView::from).collect()))
}

/// `POST /admin/issuers` — 201 with the issuer.
#[utoipa::path(post, path = "/admin/issuers", tag = "admin", security(("admin_bearer" = [])), request_body = NewIssuer,
    responses((status = 201, description = "Created", body = IssuerView), InvalidBody, IssuerExists, AdminFailures))]
pub async fn add_issuer(
    Admin(actor): Admin,
    State(app): State<AppState>,
    Body(new): Body<NewIssuer>,
) -> Result<Response, ApiError> {
    let issuer = IssuerAdmin::new(app.store.as_ref())
        .by(actor)
        .add(new, unix_now())
        .await?;
    Ok((StatusCode::CREATED, Json(IssuerView::from(&issuer))).into_response())
}

/// `GET /admin/issuers/{name}`
#[utoipa::path(get, path = "/admin/issuers/{name}", tag = "admin", security(("admin_bearer" = [])), params(("name" = String, Path, description = "The issuer's name")),
    responses((status = 200, description = "OK", body = IssuerView), NoSuchIssuer, AdminFailures))]
pub async fn get_issuer(
    _: Admin,
    State(app): State<AppState>,
    PathId(name): PathId,
) -> Result<Json<IssuerView>, ApiError> {
    let issuer = IssuerAdmin::new(app.store.as_ref()).get(&name).await?;
    Ok(Json(IssuerView::from(&issuer)))
}

/// `DELETE /admin/issuers/{name}` — 204; its tokens are refused at once.
#[utoipa::path(delete, path = "/admin/issuers/{name}", tag = "admin", security(("admin_bearer" = [])), params(("name" = String, Path, description = "The issuer's name")),
    responses((status = 204, description = "Removed"), NoSuchIssuer, AdminFailures))]
pub async fn remove_issuer(
    Admin(actor): Admin,
    State(app): State<AppState>,
    PathId(name): PathId,
) -> Result<StatusCode, ApiError> {
    IssuerAdmin::new(app.store.as_ref())
        .by(actor)
        .remove(&name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/audit` — who changed what, newest first; `Link: <…>;
/// rel="next"` (RFC 8288) when there may be older entries.
#[utoipa::path(get, path = "/admin/audit", tag = "admin", security(("admin_bearer" = [])),
    params(
        ("client" = Option<String>, Query, description = "Only entries about this client id"),
        ("target" = Option<String>, Query, description = "Only entries about this target (`issuer:NAME`, `key:KID`)"),
        ("since" = Option<String>, Query, description = "Only entries from this time on (RFC 3339 or Unix seconds)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<i64>, Query, description = "The cursor: the last id of the previous page"),
    ),
    responses((status = 200, description = "OK", body = AuditPage,
        headers(("Link" = String, description = "The next page (RFC 8288 rel=\"next\"), if there may be one"))),
        InvalidBody, AdminFailures))]
pub async fn list_audit(
    _: Admin,
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = audit_list_query(raw.as_deref())?;
    let page = audit_page(app.store.as_ref(), &query).await?;
    let mut response = (NO_STORE, Json(&page)).into_response();
    if let Some(after) = page.next_after {
        let mut next = vec![
            ("after", after.to_string()),
            ("limit", query.limit.to_string()),
        ];
        next.extend(query.target.map(|t| ("target", t)));
        next.extend(query.since.map(|s| ("since", s.to_string())));
        link_next(&mut response, "/admin/audit", &next);
    }
    Ok(response)
}
