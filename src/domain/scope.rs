//! Scopes (RFC 6749 §3.3).
//!
//! ```text
//! scope       = scope-token *( SP scope-token )
//! scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//! ```
//! A `Scope` can only be made by parsing, so every value in the program obeys
//! the grammar; the order is kept and duplicates are dropped.

use std::fmt;

/// The longest scope token we accept; real ones are short, and a bound keeps
/// the work per request bounded.
const MAX_TOKEN_LEN: usize = 128;
/// The most scope tokens in one request or one client.
pub const MAX_SCOPE_TOKENS: usize = 64;
const MAX_TOKENS: usize = MAX_SCOPE_TOKENS;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Scope(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    Malformed(String),
    TooMany,
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(token) => write!(
                f,
                "'{}' is not a valid scope token (RFC 6749 §3.3: printable ASCII without space, '\"' or '\\', at most {MAX_TOKEN_LEN} characters)",
                token
                    .escape_default()
                    .to_string()
                    .chars()
                    .take(MAX_TOKEN_LEN)
                    .collect::<String>()
            ),
            Self::TooMany => write!(f, "at most {MAX_TOKENS} scope tokens are allowed"),
        }
    }
}

pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl Scope {
    /// Parses a space-delimited scope string. Runs of spaces are tolerated
    /// (some clients join with two), anything else outside the grammar is not.
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        Self::from_tokens(raw.split(' ').filter(|t| !t.is_empty()))
    }

    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Self, ScopeError> {
        let mut out: Vec<String> = Vec::new();
        for token in tokens {
            if !is_scope_token(token) {
                return Err(ScopeError::Malformed(token.to_owned()));
            }
            if !out.iter().any(|t| t == token) {
                if out.len() == MAX_TOKENS {
                    return Err(ScopeError::TooMany);
                }
                out.push(token.to_owned());
            }
        }
        Ok(Self(out))
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// The first token of `self` that `allowed` does not hold, if any.
    pub fn first_outside<'a>(&'a self, allowed: &Scope) -> Option<&'a str> {
        self.tokens().find(|t| !allowed.contains(t))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_dedupes_in_order() {
        let s = Scope::parse("b a  b").unwrap();
        assert_eq!(s.to_string(), "b a");
    }

    #[test]
    fn refuses_characters_outside_the_grammar() {
        for bad in ["a\"b", "a\\b", "é", "a\tb", "a\u{7f}"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Scope::parse("svc:orders/read!#[]~").is_ok());
    }

    #[test]
    fn subset() {
        let allowed = Scope::parse("a b").unwrap();
        assert_eq!(Scope::parse("b").unwrap().first_outside(&allowed), None);
        assert_eq!(
            Scope::parse("b c").unwrap().first_outside(&allowed),
            Some("c")
        );
    }
}
