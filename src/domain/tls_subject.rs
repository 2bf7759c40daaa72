//! The certificate subject a `tls_client_auth` client is registered with
//! (RFC 8705 §2.1.2): exactly one of a distinguished name or one
//! subjectAltName entry, and the rules for comparing it with a certificate.

use std::fmt;
use std::net::IpAddr;

/// A subject value that is refused: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectError {
    pub field: &'static str,
    pub reason: String,
}

impl SubjectError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// The longest registered subject value.
pub const MAX_TLS_SUBJECT_LEN: usize = 1024;

/// Which part of the certificate identifies the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSubjectKind {
    /// `tls_client_auth_subject_dn`: the subject distinguished name, in the
    /// string form of RFC 4514.
    Dn,
    /// `tls_client_auth_san_dns`: a dNSName SAN.
    SanDns,
    /// `tls_client_auth_san_uri`: a uniformResourceIdentifier SAN (a SPIFFE ID).
    SanUri,
    /// `tls_client_auth_san_ip`: an iPAddress SAN.
    SanIp,
    /// `tls_client_auth_san_email`: an rfc822Name SAN.
    SanEmail,
}

impl TlsSubjectKind {
    pub const ALL: [Self; 5] = [
        Self::Dn,
        Self::SanDns,
        Self::SanUri,
        Self::SanIp,
        Self::SanEmail,
    ];

    /// The RFC 8705 §2.1.2 client metadata name.
    pub fn field(self) -> &'static str {
        match self {
            Self::Dn => "tls_client_auth_subject_dn",
            Self::SanDns => "tls_client_auth_san_dns",
            Self::SanUri => "tls_client_auth_san_uri",
            Self::SanIp => "tls_client_auth_san_ip",
            Self::SanEmail => "tls_client_auth_san_email",
        }
    }

    /// The short tag the store keeps (`KIND=VALUE`).
    fn tag(self) -> &'static str {
        match self {
            Self::Dn => "dn",
            Self::SanDns => "san_dns",
            Self::SanUri => "san_uri",
            Self::SanIp => "san_ip",
            Self::SanEmail => "san_email",
        }
    }
}

/// A registered subject, in canonical form (see `TlsSubject::new`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSubject {
    pub kind: TlsSubjectKind,
    pub value: String,
}

impl TlsSubject {
    /// Checks and canonicalises a value: a DN is re-written in one RFC 4514
    /// spelling (attribute names upper-case, no optional spaces), a DNS name
    /// is lower-cased (RFC 5280 §7.2 compares them case-insensitively), an IP
    /// address is written the way `IpAddr` prints it.
    pub fn new(kind: TlsSubjectKind, value: &str) -> Result<Self, SubjectError> {
        let field = kind.field();
        if value.is_empty()
            || value.len() > MAX_TLS_SUBJECT_LEN
            || value.chars().any(char::is_control)
        {
            return Err(SubjectError::new(
                field,
                format!("must be 1 to {MAX_TLS_SUBJECT_LEN} characters without control characters"),
            ));
        }
        let value = match kind {
            TlsSubjectKind::Dn => {
                let canonical = canonical_dn(&parse_dn(value).map_err(|reason| {
                    SubjectError::new(
                        field,
                        format!("is not an RFC 4514 distinguished name: {reason}"),
                    )
                })?);
                // Escaping can lengthen it: what is stored must read back.
                if canonical.len() > MAX_TLS_SUBJECT_LEN {
                    return Err(SubjectError::new(
                        field,
                        format!("is longer than {MAX_TLS_SUBJECT_LEN} characters once escaped"),
                    ));
                }
                canonical
            }
            TlsSubjectKind::SanDns => {
                // RFC 1123 labels: letters, digits and inner hyphens.
                let ok = value.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
                if !ok {
                    return Err(SubjectError::new(field, "is not a DNS name"));
                }
                value.to_ascii_lowercase()
            }
            TlsSubjectKind::SanIp => value
                .parse::<IpAddr>()
                .map_err(|_| SubjectError::new(field, "is not an IPv4 or IPv6 address"))?
                .to_string(),
            TlsSubjectKind::SanUri => {
                // RFC 3986 §3.1: a scheme, then the rest; printable ASCII.
                let scheme_ok = value.split_once(':').is_some_and(|(scheme, rest)| {
                    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                        && scheme
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                        && !rest.is_empty()
                });
                let chars_ok = value
                    .bytes()
                    .all(|b| (0x21..=0x7E).contains(&b) && !b"\"<>\\^`{|}#".contains(&b));
                if !scheme_ok || !chars_ok {
                    return Err(SubjectError::new(field, "is not an absolute URI"));
                }
                value.to_owned()
            }
            TlsSubjectKind::SanEmail => {
                let ok = value.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && !domain.is_empty() && !domain.contains('@')
                }) && value
                    .bytes()
                    .all(|b| (0x21..=0x7E).contains(&b) && !b"\"<>()[]\\,;:".contains(&b));
                if !ok {
                    return Err(SubjectError::new(field, "is not an e-mail address"));
                }
                value.to_owned()
            }
        };
        Ok(Self { kind, value })
    }

    /// The stored form, `KIND=VALUE`.
    pub fn to_column(&self) -> String {
        format!("{}={}", self.kind.tag(), self.value)
    }

    pub fn from_column(column: &str) -> Option<Self> {
        let (tag, value) = column.split_once('=')?;
        let kind = TlsSubjectKind::ALL.into_iter().find(|k| k.tag() == tag)?;
        Self::new(kind, value).ok()
    }

    /// Whether a certificate with this subject and these SANs is the
    /// registered one. `subject` is the certificate's DN as (attribute,
    /// value) pairs in RFC 4514 order (most specific first).
    pub fn matches(&self, certificate: &CertificateNames) -> bool {
        match self.kind {
            TlsSubjectKind::Dn => canonical_dn(&certificate.subject) == self.value,
            TlsSubjectKind::SanDns => certificate
                .dns
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&self.value)),
            TlsSubjectKind::SanUri => certificate.uris.contains(&self.value),
            TlsSubjectKind::SanIp => certificate
                .ips
                .iter()
                .any(|ip| ip.to_string() == self.value),
            TlsSubjectKind::SanEmail => certificate.emails.contains(&self.value),
        }
    }
}

impl fmt::Display for TlsSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.field(), self.value)
    }
}

/// One relative distinguished name: its (attribute type, value) pairs.
pub type Rdn = Vec<(String, String)>;

/// The names a client certificate carries, as read by `crypto::certificate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateNames {
    /// The RDNs, most specific first (RFC 4514 §2.1), each its (attribute
    /// type, value) pairs (more than one in a multi-valued RDN); types are
    /// short names (`CN`, `O`, …) or dotted OIDs.
    pub subject: Vec<Rdn>,
    pub dns: Vec<String>,
    pub uris: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub emails: Vec<String>,
}

/// Parses an RFC 4514 string into RDNs of (TYPE, value) pairs: `,`
/// separates RDNs, `+` the values of one; attribute types are upper-cased.
fn parse_dn(text: &str) -> Result<Vec<Rdn>, &'static str> {
    let mut rdns: Vec<Rdn> = Vec::new();
    let mut pairs: Rdn = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut attribute = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            attribute.push(c);
        }
        let attribute = attribute.trim().to_ascii_uppercase();
        if attribute.is_empty()
            || !attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err("each part must be TYPE=value");
        }
        // Bytes, not chars: `\c3\a9` is one UTF-8 character in two escapes.
        let mut value: Vec<u8> = Vec::new();
        // Spaces are kept only when escaped or between other characters.
        let mut pending_spaces = 0usize;
        let mut separator = None;
        let push = |value: &mut Vec<u8>, pending: &mut usize, bytes: &[u8]| {
            value.extend(std::iter::repeat_n(b' ', *pending));
            *pending = 0;
            value.extend_from_slice(bytes);
        };
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let next = chars.next().ok_or("a trailing backslash")?;
                    if next.is_ascii_hexdigit() {
                        let low = chars.next().filter(char::is_ascii_hexdigit);
                        let low = low.ok_or("a backslash must escape a character or a hex pair")?;
                        let byte = u8::from_str_radix(&format!("{next}{low}"), 16)
                            .map_err(|_| "a bad hex pair")?;
                        push(&mut value, &mut pending_spaces, &[byte]);
                    } else if "\"+,;<>\\= #".contains(next) {
                        push(&mut value, &mut pending_spaces, &[next as u8]);
                    } else {
                        return Err("a backslash must escape a special character or a hex pair");
                    }
                }
                ',' | '+' => {
                    separator = Some(c);
                    break;
                }
                ' ' if value.is_empty() => {}
                ' ' => pending_spaces += 1,
                _ => push(
                    &mut value,
                    &mut pending_spaces,
                    c.encode_utf8(&mut [0; 4]).as_bytes(),
                ),
            }
        }
        if value.is_empty() {
            return Err("an attribute has no value");
        }
        let value = String::from_utf8(value).map_err(|_| "escapes that are not UTF-8")?;
        if value.chars().any(char::is_control) {
            return Err("a value holds a control character");
        }
        pairs.push((attribute, value));
        match separator {
            Some('+') => {}
            Some(_) => rdns.push(std::mem::take(&mut pairs)),
            None => {
                rdns.push(pairs);
                return Ok(rdns);
            }
        }
    }
}

/// One spelling of a DN: RDNs joined by `,`, the values of a multi-valued
/// RDN (a set: their order does not count) sorted and joined by `+`, each
/// `TYPE=value` with the characters RFC 4514 §2.4 requires escaped.
pub fn canonical_dn(rdns: &[Rdn]) -> String {
    rdns.iter()
        .map(|rdn| {
            let mut values: Vec<String> = rdn
                .iter()
                .map(|(attribute, value)| {
                    format!("{}={}", attribute.to_ascii_uppercase(), escape_value(value))
                })
                .collect();
            values.sort();
            values.join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (j, c) in value.chars().enumerate() {
        let escape = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (j == 0 && (c == ' ' || c == '#'))
            || (j == last && c == ' ');
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate subject of single-valued RDNs.
    fn names(subject: &[(&str, &str)]) -> CertificateNames {
        CertificateNames {
            subject: subject
                .iter()
                .map(|(a, v)| vec![((*a).to_owned(), (*v).to_owned())])
                .collect(),
            ..CertificateNames::default()
        }
    }

    #[test]
    fn dn_spellings_are_one() {
        let a = TlsSubject::new(TlsSubjectKind::Dn, "cn=orders, O=Example Corp,C=DE").unwrap();
        assert_eq!(a.value, "CN=orders,O=Example Corp,C=DE");
        assert!(a.matches(&names(&[
            ("CN", "orders"),
            ("O", "Example Corp"),
            ("C", "DE")
        ])));
        assert!(!a.matches(&names(&[("CN", "orders"), ("O", "Example Corp")])));
        assert!(!a.matches(&names(&[
            ("CN", "Orders"),
            ("O", "Example Corp"),
            ("C", "DE")
        ])));
    }

    #[test]
    fn escaped_separators_do_not_split() {
        let s = TlsSubject::new(TlsSubjectKind::Dn, r"CN=a\,O=b,O=c\2b").unwrap();
        // The certificate whose CN is literally "a,O=b" matches; the one
        // with two attributes does not.
        assert!(s.matches(&names(&[("CN", "a,O=b"), ("O", "c+")])));
        assert!(!s.matches(&names(&[("CN", "a"), ("O", "b"), ("O", "c+")])));
    }

    #[test]
    fn a_multi_valued_rdn_is_not_two_rdns() {
        let two = TlsSubject::new(TlsSubjectKind::Dn, "CN=orders,O=Example").unwrap();
        let one = TlsSubject::new(TlsSubjectKind::Dn, "O=Example + CN=orders").unwrap();
        assert_eq!(
            one.value, "CN=orders+O=Example",
            "sorted: a set has no order"
        );
        let multi = CertificateNames {
            subject: vec![vec![
                ("O".to_owned(), "Example".to_owned()),
                ("CN".to_owned(), "orders".to_owned()),
            ]],
            ..CertificateNames::default()
        };
        let pair = names(&[("CN", "orders"), ("O", "Example")]);
        assert!(one.matches(&multi) && !one.matches(&pair));
        assert!(two.matches(&pair) && !two.matches(&multi));
    }

    #[test]
    fn bad_dns_are_refused() {
        for bad in ["", "CN", "=x", "CN=", "CN=a,", r"CN=a\", r"CN=\zz", "C N=x"] {
            assert!(TlsSubject::new(TlsSubjectKind::Dn, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sans_compare_by_kind() {
        let cert = CertificateNames {
            dns: vec!["Orders.Internal".into()],
            uris: vec!["spiffe://prod/ns/a/sa/orders".into()],
            ips: vec!["::1".parse().unwrap()],
            emails: vec!["orders@example.com".into()],
            ..CertificateNames::default()
        };
        let ok = [
            (TlsSubjectKind::SanDns, "orders.internal"),
            (TlsSubjectKind::SanUri, "spiffe://prod/ns/a/sa/orders"),
            (TlsSubjectKind::SanIp, "0:0::1"),
            (TlsSubjectKind::SanEmail, "orders@example.com"),
        ];
        for (kind, value) in ok {
            assert!(
                TlsSubject::new(kind, value).unwrap().matches(&cert),
                "{value}"
            );
        }
        // A SAN of one kind never matches a subject of another.
        assert!(
            !TlsSubject::new(TlsSubjectKind::SanDns, "orders")
                .unwrap()
                .matches(&CertificateNames {
                    uris: vec!["orders".into()],
                    emails: vec!["orders".into()],
                    subject: vec![vec![("CN".into(), "orders".into())]],
                    ..CertificateNames::default()
                })
        );
        for (kind, bad) in [
            (TlsSubjectKind::SanIp, "not-an-ip"),
            (TlsSubjectKind::SanDns, "a b"),
            (TlsSubjectKind::SanUri, "not a uri"),
            (TlsSubjectKind::SanUri, "no-scheme"),
            (TlsSubjectKind::SanEmail, "a"),
            (TlsSubjectKind::SanEmail, "a@b@c"),
            (TlsSubjectKind::SanEmail, "<a@b.c>"),
            (TlsSubjectKind::SanDns, "-bad-.com"),
            (TlsSubjectKind::SanDns, "a..b"),
            (TlsSubjectKind::SanDns, "*.example.com"),
            (TlsSubjectKind::SanUri, "spiffe://a/b#f"),
            (TlsSubjectKind::Dn, "CN=a\\0ab"),
            (TlsSubjectKind::Dn, &format!("CN=a{}", "=".repeat(1000))),
        ] {
            assert!(TlsSubject::new(kind, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn column_round_trip() {
        let s = TlsSubject::new(TlsSubjectKind::SanUri, "spiffe://a/b=c").unwrap();
        assert_eq!(TlsSubject::from_column(&s.to_column()), Some(s));
    }
}
