//! Token introspection (RFC 7662) and revocation (RFC 7009): the request
//! both share, and the introspection answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::OAuthError;
use super::client_auth::{
    ClientCredentials, Credentials, PresentedCertificate, resolve_credentials,
};
use super::params::FormParams;
use super::token::Confirmation;
use crate::domain::client::{Client, MAX_TOKEN_TTL};

/// How far in the future an `iat` may be (clocks of instances drift).
const CLOCK_SKEW: i64 = 60;

/// `token` (and an optional `token_type_hint`, which we may ignore: RFC 7009
/// §2.1 and RFC 7662 §2.1 let the server search every token type it has, and
/// it has one) from an authenticated caller.
#[derive(Debug)]
pub struct TokenRequestByCaller {
    pub credentials: Credentials,
    pub token: String,
    /// The client certificate the connection (or a trusted proxy) presented.
    pub certificate: Option<PresentedCertificate>,
}

impl TokenRequestByCaller {
    pub fn parse(
        basic: Option<ClientCredentials>,
        params: &FormParams,
    ) -> Result<Self, OAuthError> {
        let credentials = resolve_credentials(basic, params)?;
        let token = params
            .single("token")?
            .ok_or_else(|| OAuthError::invalid_request("the token parameter is missing"))?
            .to_owned();
        // Read as single only to refuse repeats (RFC 6749 §3.2).
        params.single("token_type_hint")?;
        Ok(Self {
            credentials,
            token,
            certificate: None,
        })
    }
}

/// The claims of one of our access tokens, as read back.
#[derive(Debug, Clone, Deserialize)]
pub struct VerifiedClaims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: Value,
    pub iat: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    pub exp: i64,
    pub jti: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub cnf: Option<Confirmation>,
    /// The client's own claims (`domain::policy`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl VerifiedClaims {
    /// Whether `aud` (a string or an array) names `audience`.
    pub fn has_audience(&self, audience: &str) -> bool {
        match &self.aud {
            Value::String(one) => one == audience,
            Value::Array(many) => many.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        }
    }

    /// Whether the space-delimited `scope` holds `wanted`.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|t| t == wanted))
    }

    /// Within its validity window at `now`, and shaped like a token we
    /// issue: never longer-lived than `MAX_TOKEN_TTL`, never issued in the
    /// future. A token that is neither was not made by this server's rules
    /// (a forgery with a compromised key, say) and is refused.
    pub fn is_current(&self, now: i64) -> bool {
        now < self.exp
            && self.nbf.is_none_or(|nbf| nbf <= now)
            && self.exp.saturating_sub(self.iat) <= i64::from(MAX_TOKEN_TTL)
            && self.iat <= now.saturating_add(CLOCK_SKEW)
    }

    /// Whether `client`, as it is now, still grants this token: enabled,
    /// the token issued after `tokens_valid_after` (no revoke-tokens, no
    /// disabling, no re-creation since), and every scope still allowed.
    pub fn is_granted_by(&self, client: &Client) -> bool {
        client.enabled
            && self.iat >= client.tokens_valid_after
            && self
                .scope
                .as_deref()
                .unwrap_or_default()
                .split(' ')
                .filter(|t| !t.is_empty())
                .all(|t| client.scopes.contains(t))
    }
}

/// RFC 7662 §2.2: `active`, and for an active token the members below. An
/// inactive token is `{"active": false}` and nothing else: "the
/// authorization server SHOULD NOT include any additional information about
/// an inactive token".
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// RFC 7662 §2.2: "Type of the token as defined in Section 5.1 of OAuth 2.0".
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// A string, or an array of strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub aud: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.2, RFC 8705 §3.2): a
    /// resource server must see the request proven with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The claims the client's operator added to its tokens, as in the token.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: serde_json::Map<String, Value>,
}

impl IntrospectionResponse {
    pub fn inactive() -> Self {
        Self::default()
    }

    pub fn active(claims: VerifiedClaims) -> Self {
        Self {
            active: true,
            scope: claims.scope.filter(|s| !s.is_empty()),
            client_id: Some(claims.client_id),
            token_type: Some(
                claims
                    .cnf
                    .as_ref()
                    .map_or("Bearer", Confirmation::token_type),
            ),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: claims.nbf,
            sub: Some(claims.sub),
            aud: Some(claims.aud),
            iss: Some(claims.iss),
            jti: Some(claims.jti),
            cnf: claims.cnf.filter(|c| !c.is_empty()),
            extra: claims.extra,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scope::Scope;

    fn claims(iat: i64, exp: i64, scope: &str) -> VerifiedClaims {
        VerifiedClaims {
            iss: "https://issuer".into(),
            sub: "svc".into(),
            client_id: "svc".into(),
            aud: Value::String("https://api".into()),
            iat,
            nbf: Some(iat),
            cnf: None,
            extra: serde_json::Map::new(),
            exp,
            jti: "j".into(),
            scope: Some(scope.into()),
        }
    }

    fn client(scopes: &str, tokens_valid_after: i64) -> Client {
        Client {
            default_scopes: Scope::parse("").unwrap(),
            grant_types: vec![],
            tokens_valid_after,
            ..Client::example(scopes)
        }
    }

    #[test]
    fn current_means_in_its_window_and_shaped_like_ours() {
        let ttl = i64::from(MAX_TOKEN_TTL);
        assert!(claims(1000, 1000 + ttl, "a").is_current(1500));
        assert!(
            !claims(1000, 1000 + ttl, "a").is_current(1000 + ttl),
            "expired"
        );
        assert!(
            !claims(1000, 1001 + ttl, "a").is_current(1500),
            "longer-lived than any token we issue"
        );
        assert!(
            !claims(1000 + 2 * CLOCK_SKEW, 2000 + ttl, "a").is_current(1000),
            "issued in the future"
        );
    }

    #[test]
    fn granted_while_the_client_still_grants_it() {
        let token = claims(100, 200, "a b");
        assert!(token.is_granted_by(&client("a b c", 100)));
        assert!(!token.is_granted_by(&client("a b c", 101)), "revoked after");
        assert!(
            !token.is_granted_by(&client("a c", 0)),
            "scope b taken away"
        );
        let mut disabled = client("a b", 0);
        disabled.enabled = false;
        assert!(!token.is_granted_by(&disabled));
    }
}
