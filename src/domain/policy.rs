//! Per-client policy: the claims an operator adds to a client's tokens, and
//! the quota on how many tokens it gets.

use std::fmt;

use serde_json::{Map, Value};

/// A policy field that failed validation; `domain::client::FieldError`
/// takes it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub field: &'static str,
    pub reason: String,
}

impl PolicyError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// The most bytes a client's claims take as JSON: they ride in every token,
/// and a token travels in every request header of the client's calls.
pub const MAX_CLAIMS_BYTES: usize = 4096;
/// The longest claim name.
pub const MAX_CLAIM_NAME_LEN: usize = 256;

/// Names tokenmint sets itself, or that mean something to the protocols its
/// tokens and introspection answers speak: RFC 7519 §4.1 (registered JWT
/// claims), RFC 9068 §2.2 (`client_id`, `scope`, `auth_time`, `acr`, `amr`),
/// RFC 7800 (`cnf`), RFC 8693 §4 (`act`, `may_act`), OpenID Connect (`azp`,
/// `nonce`, `sid`) and RFC 7662 §2.2 (`active`, `token_type`, `username`).
/// A custom claim of one of these names would forge or shadow that meaning.
pub const RESERVED_CLAIMS: [&str; 22] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "client_id",
    "scope",
    "cnf",
    "auth_time",
    "acr",
    "amr",
    "azp",
    "act",
    "may_act",
    "nonce",
    "sid",
    "active",
    "token_type",
    "username",
    "typ",
];

/// White space, control and zero-width characters: a name holding one can
/// look like another (`iss\u{200b}` reads as `iss`).
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// A client's own claims, copied verbatim into each of its tokens: a JSON
/// object, checked once when set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomClaims(Map<String, Value>);

impl CustomClaims {
    /// Checks a value as the CLI, the API and `apply` give it.
    pub fn new(value: Value) -> Result<Self, PolicyError> {
        let Value::Object(map) = value else {
            return Err(PolicyError::new(
                "claims",
                "must be a JSON object of claim names and values",
            ));
        };
        for name in map.keys() {
            if name.is_empty() || name.len() > MAX_CLAIM_NAME_LEN {
                return Err(PolicyError::new(
                    "claims",
                    format!("a claim name is 1 to {MAX_CLAIM_NAME_LEN} characters"),
                ));
            }
            if name.chars().any(invisible) {
                return Err(PolicyError::new(
                    "claims",
                    format!(
                        "the claim name '{}' holds white space or an invisible character",
                        name.escape_debug()
                    ),
                ));
            }
            // A name that reads as a reserved one (`ISS`, `Active`) would
            // mislead whoever reads the token, if not a careful parser.
            if RESERVED_CLAIMS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(PolicyError::new(
                    "claims",
                    format!(
                        "'{}' is set by tokenmint or reserved by the protocol; choose another name",
                        name.escape_debug()
                    ),
                ));
            }
        }
        let claims = Self(map);
        if claims.to_json().len() > MAX_CLAIMS_BYTES {
            return Err(PolicyError::new(
                "claims",
                format!("at most {MAX_CLAIMS_BYTES} bytes of JSON"),
            ));
        }
        Ok(claims)
    }

    /// As stored: the JSON text.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    /// From the stored JSON text; `None` when it is not a valid set.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text)
            .ok()
            .and_then(|v| Self::new(v).ok())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// How many tokens a client may get per window, the windows being fixed
/// and aligned to the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenQuota {
    pub tokens: u32,
    pub period: QuotaPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPeriod {
    Minute,
    Hour,
}

/// The largest quota: past it, a quota limits nothing the server could
/// issue anyway.
pub const MAX_QUOTA: u32 = 100_000_000;

impl QuotaPeriod {
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3600,
        }
    }
}

impl TokenQuota {
    /// `N/min` or `N/h`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let invalid = || {
            PolicyError::new(
                "token_quota",
                format!(
                    "'{}' is not a quota: write N/min or N/h, N from 1 to {MAX_QUOTA}",
                    super::log_excerpt(text).escape_debug()
                ),
            )
        };
        let (count, period) = text.split_once('/').ok_or_else(invalid)?;
        let period = match period {
            "min" => QuotaPeriod::Minute,
            "h" => QuotaPeriod::Hour,
            _ => return Err(invalid()),
        };
        // Digits only, no sign and no leading zero: one spelling per quota.
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) || count.starts_with('0')
        {
            return Err(invalid());
        }
        let tokens: u32 = count.parse().map_err(|_| invalid())?;
        if tokens == 0 || tokens > MAX_QUOTA {
            return Err(invalid());
        }
        Ok(Self { tokens, period })
    }

    /// The window `now` falls in: its start, in Unix seconds.
    pub fn window_start(&self, now: i64) -> i64 {
        let length = self.period.seconds();
        now.div_euclid(length) * length
    }
}

impl fmt::Display for TokenQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = match self.period {
            QuotaPeriod::Minute => "min",
            QuotaPeriod::Hour => "h",
        };
        write!(f, "{}/{period}", self.tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_refuse_reserved_names_and_size() {
        assert!(CustomClaims::new(json!({"tenant": "acme", "tier": 3})).is_ok());
        let e = CustomClaims::new(json!({"tenant": "a", "cnf": {}})).unwrap_err();
        assert!(e.reason.contains("'cnf'"), "{e:?}");
        assert!(CustomClaims::new(json!(["tenant"])).is_err());
        assert!(CustomClaims::new(json!({"": 1})).is_err());
        for lookalike in [
            "ISS",
            "Active",
            "iss\u{200b}",
            "client_id\u{0}",
            " iss",
            "a b",
        ] {
            assert!(
                CustomClaims::new(json!({ lookalike: 1 })).is_err(),
                "{lookalike:?}"
            );
        }
        let big = "x".repeat(MAX_CLAIMS_BYTES);
        assert!(CustomClaims::new(json!({ "blob": big })).is_err());
        let kept = CustomClaims::new(json!({"n": {"deep": [1, 2]}})).unwrap();
        assert_eq!(CustomClaims::from_json(&kept.to_json()), Some(kept));
    }

    #[test]
    fn quotas_parse_and_align() {
        let q = TokenQuota::parse("100/min").unwrap();
        assert_eq!((q.tokens, q.period), (100, QuotaPeriod::Minute));
        assert_eq!(q.to_string(), "100/min");
        assert_eq!(TokenQuota::parse("5/h").unwrap().period, QuotaPeriod::Hour);
        for bad in [
            "0/min",
            "5/day",
            "x",
            "5",
            "-1/h",
            "/h",
            "100000001/h",
            "+1/min",
            "01/min",
            " 1/min",
        ] {
            assert!(TokenQuota::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(q.window_start(125), 120);
        assert_eq!(TokenQuota::parse("1/h").unwrap().window_start(7199), 3600);
    }
}
