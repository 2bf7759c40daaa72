//! The OpenAPI 3 document of the whole HTTP surface, served at
//! `/openapi.json`. It is assembled from the `#[utoipa::path]` annotations
//! of the very handlers the router registers (`router` builds both from one
//! list), and from the `ToSchema` of the types the handlers serialize.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::admin::ApiErrorBody;
use super::response::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenmint",
        description = "OAuth 2.0 authorization server for machine-to-machine tokens: the client credentials grant (RFC 6749 §4.4) issuing RFC 9068 JWT access tokens.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    // The error bodies are referenced from the shared failure responses
    // (`OAuthFailures`, `AdminFailures`, …), which do not register schemas.
    components(schemas(ErrorBody, ApiErrorBody)),
    tags(
        (name = "oauth", description = "Token, introspection (RFC 7662) and revocation (RFC 7009)"),
        (name = "discovery", description = "Metadata (RFC 8414) and keys (RFC 7517)"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "admin", description = "Client and key administration (bearer token with the admin scope)")
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        // RFC 6749 §2.3.1 client_secret_basic.
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        // RFC 6750: a tokenmint access token carrying the admin scope.
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("admin_bearer", SecurityScheme::Http(bearer));
    }
}

/// The `/token` request (RFC 6749 §4.4.2), form-encoded. `client_id` and
/// `client_secret` only for client_secret_post; `client_assertion_type` and
/// `client_assertion` for private_key_jwt (RFC 7523 §2.2); `client_id`
/// alone for the TLS certificate methods (RFC 8705 §2).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenForm {
    grant_type: GrantType,
    /// Space-delimited scope tokens (RFC 6749 §3.3); omitted: the client's defaults.
    #[schema(schema_with = crate::domain::client::schema::scope_list)]
    scope: Option<String>,
    /// RFC 8707 resource indicators; each must be one of the client's audiences.
    #[schema(schema_with = crate::domain::client::schema::audiences)]
    resource: Option<Vec<String>>,
    /// One audience (instead of `resource`).
    #[schema(schema_with = crate::domain::client::schema::audience)]
    audience: Option<String>,
    #[schema(schema_with = crate::domain::client::schema::client_id)]
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<AssertionType>,
    /// A JWT signed by the client's key, or a trusted issuer's identity token.
    client_assertion: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub enum AssertionType {
    #[schema(rename = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")]
    JwtBearer,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub enum GrantType {
    #[schema(rename = "client_credentials")]
    ClientCredentials,
}

/// The introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1)
/// request, form-encoded.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenByCallerForm {
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<AssertionType>,
    /// A JWT signed by the client's key, or a trusted issuer's identity token.
    client_assertion: Option<String>,
}
