//! `application/x-www-form-urlencoded` request parameters, parsed strictly.
//!
//! RFC 6749 §3.2: "Parameters sent without a value MUST be treated as if they
//! were omitted from the request" and "Request and response parameters MUST NOT
//! be included more than once." Empty values are therefore dropped on parse,
//! and a name seen twice is remembered so that reading it as a single value
//! fails with `invalid_request`. Decoding is strict: a bad percent escape or
//! bytes that are not UTF-8 are a malformed request, not something to repair
//! (a lossy decode could silently change a secret).

use std::borrow::Cow;
use std::collections::HashMap;

use super::OAuthError;

/// Decoded form parameters with non-empty values, in arrival order per name.
#[derive(Default)]
pub struct FormParams {
    values: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for FormParams {
    // Values may be secrets: show the names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl FormParams {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for pair in body.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = form_decode(name).ok_or_else(|| {
                OAuthError::invalid_request("the request body is not valid form data")
            })?;
            let value = form_decode(value).ok_or_else(|| {
                OAuthError::invalid_request("the request body is not valid form data")
            })?;
            if name.is_empty() || value.is_empty() {
                continue;
            }
            values.entry(name).or_default().push(value);
        }
        Ok(Self { values })
    }

    /// The value of a parameter that may appear at most once.
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, OAuthError> {
        match self.values.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([value]) => Ok(Some(value)),
            Some(_) => Err(OAuthError::InvalidRequest(
                format!("the parameter '{name}' is repeated").into(),
            )),
        }
    }

    /// Every value of a parameter that may legitimately repeat (RFC 8707 `resource`).
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Decodes one form-urlencoded component (`+` is a space, `%XX` a byte) into
/// UTF-8, or `None` when it is malformed. RFC 6749 §2.3.1 applies the same
/// encoding to the client id and secret inside a Basic header.
pub fn form_decode(raw: &[u8]) -> Option<String> {
    let plus_as_space: Cow<[u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    // percent_decode passes a '%' that is not followed by two hex digits
    // through unchanged; refuse it instead, it is not valid form encoding.
    let bytes = plus_as_space.as_ref();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
        }
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode(bytes).collect();
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_omitted() {
        let p = FormParams::parse(b"scope=&grant_type=client_credentials&scope=").unwrap();
        assert_eq!(p.single("scope").unwrap(), None);
        assert_eq!(p.single("grant_type").unwrap(), Some("client_credentials"));
    }

    #[test]
    fn repeated_parameter_is_an_error_only_when_read_as_single() {
        let p = FormParams::parse(b"resource=a&resource=b").unwrap();
        assert!(p.single("resource").is_err());
        assert_eq!(p.all("resource"), ["a", "b"]);
    }

    #[test]
    fn decodes_plus_and_percent() {
        let p = FormParams::parse(b"client_secret=a%3Ab%25c%2Bd+e%C3%A9").unwrap();
        assert_eq!(p.single("client_secret").unwrap(), Some("a:b%c+d eé"));
    }

    #[test]
    fn refuses_malformed_encoding() {
        for body in [&b"a=%zz"[..], b"a=%4", b"a=%ff%fe", b"%=1"] {
            assert!(FormParams::parse(body).is_err(), "{body:?}");
        }
    }
}
