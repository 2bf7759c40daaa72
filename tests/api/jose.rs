//! Test peers for assertions: key pairs that sign JWTs (the test's own
//! signer, on aws-lc-rs), and `KeyHost`, a key-set and OIDC discovery
//! server on 127.0.0.1 whose answers the test controls — down, slow, huge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokenmint::clock::unix_now;
use tokenmint::crypto::random_token;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub enum TestKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
    Ps256(RsaKeyPair),
}

impl TestKey {
    pub fn es256() -> Self {
        Self::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    pub fn eddsa() -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self::EdDsa(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
    }

    pub fn rs256() -> Self {
        Self::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    pub fn ps256() -> Self {
        Self::Ps256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
            Self::Rs256(_) => "RS256",
            Self::Ps256(_) => "PS256",
        }
    }

    /// The public JWK, with `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            Self::Es256(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid,
                       "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            Self::EdDsa(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(k.public_key().as_ref())})
            }
            Self::Rs256(k) | Self::Ps256(k) => {
                let public = k.public_key();
                let n = public.modulus().big_endian_without_leading_zero();
                let e = public.exponent().big_endian_without_leading_zero();
                json!({"kty": "RSA", "kid": kid, "n": b64(n), "e": b64(e)})
            }
        }
    }

    /// The private key as PKCS#8 PEM, for other libraries (the interop test).
    pub fn pkcs8_pem(&self) -> String {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let der = match self {
            Self::Es256(k) => k.to_pkcs8v1().unwrap().as_ref().to_vec(),
            Self::EdDsa(k) => k.to_pkcs8v1().unwrap().as_ref().to_vec(),
            Self::Rs256(k) | Self::Ps256(k) => {
                let der: Pkcs8V1Der<'static> = k.as_der().unwrap();
                der.as_ref().to_vec()
            }
        };
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// The public JWK without `kid`, as a DPoP proof carries it.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.jwk("");
        jwk.as_object_mut().unwrap().remove("kid");
        jwk
    }

    /// The RFC 7638 thumbprint of the public key, computed here from the
    /// RFC's rule (required members, sorted, no white space).
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_jwk();
        let members: &[&str] = match jwk["kty"].as_str().unwrap() {
            "EC" => &["crv", "kty", "x", "y"],
            "OKP" => &["crv", "kty", "x"],
            _ => &["e", "kty", "n"],
        };
        let body: Vec<String> = members
            .iter()
            .map(|m| format!("\"{m}\":\"{}\"", jwk[*m].as_str().unwrap()))
            .collect();
        let canonical = format!("{{{}}}", body.join(","));
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// A DPoP proof (RFC 9449 §4.2) for `POST htu`, fresh `jti` and `iat`;
    /// `changes` are merged over the claims (a `null` removes one).
    pub fn dpop_proof(&self, htu: &str, changes: Value) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.public_jwk()});
        let mut claims = json!({"jti": random_token::<16>().unwrap(), "htm": "POST",
                                "htu": htu, "iat": unix_now()});
        merge(&mut claims, changes);
        self.sign(&header, &claims)
    }

    /// A JWK set holding this key as `kid`.
    pub fn jwks(&self, kid: &str) -> Value {
        json!({ "keys": [self.jwk(kid)] })
    }

    /// A compact JWS of `claims` with this header.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let signature = match self {
            Self::Es256(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Self::EdDsa(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
            Self::Rs256(k) | Self::Ps256(k) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = match self {
                    Self::Rs256(_) => &RSA_PKCS1_SHA256,
                    _ => &RSA_PSS_SHA256,
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(padding, &rng, input.as_bytes(), &mut sig).unwrap();
                sig
            }
        };
        format!("{input}.{}", b64(&signature))
    }

    /// A client assertion (RFC 7523 §3) by `client_id` for `audience`,
    /// living `ttl` seconds, with a fresh `jti`.
    pub fn assertion(&self, kid: &str, client_id: &str, audience: &str, ttl: i64) -> String {
        let now = unix_now();
        self.sign(
            &json!({"alg": self.alg(), "kid": kid, "typ": "JWT"}),
            &json!({"iss": client_id, "sub": client_id, "aud": audience,
                    "iat": now, "exp": now + ttl, "jti": random_token::<16>().unwrap()}),
        )
    }
}

/// Sets each member of `changes` in `target`; a `null` removes it.
pub fn merge(target: &mut Value, changes: Value) {
    let target = target.as_object_mut().unwrap();
    for (k, v) in changes.as_object().cloned().unwrap_or_default() {
        if v.is_null() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}

/// The claims of a JWT, unverified (the test reads its own tokens).
pub fn decode_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The claims of the access token of a successful token response.
pub async fn issued_claims(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "a token was issued");
    let body = crate::helpers::json(response).await;
    decode_claims(body["access_token"].as_str().unwrap())
}

/// A form body authenticated by `assertion`, with more fields.
pub fn assertion_form(assertion: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    pairs.extend_from_slice(extra);
    crate::helpers::form(&pairs)
}

/// How `KeyHost` answers.
#[derive(Clone)]
pub enum Mode {
    Normal,
    Down,
    Slow(Duration),
    /// A key set of over a megabyte.
    Huge,
}

struct Hosted {
    jwks: Mutex<Value>,
    mode: Mutex<Mode>,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
    /// The issuer its discovery document names.
    issuer: Mutex<String>,
}

/// A key-set host and OIDC discovery endpoint on 127.0.0.1, as a client
/// publishing its keys or a platform issuer (a Kubernetes API server, a
/// CI system) would run.
pub struct KeyHost {
    pub url: String,
    hosted: Arc<Hosted>,
    _server: tokio::task::JoinHandle<()>,
}

impl KeyHost {
    pub async fn start(jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hosted = Arc::new(Hosted {
            jwks: Mutex::new(jwks),
            mode: Mutex::new(Mode::Normal),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            issuer: Mutex::new(url.clone()),
        });
        let app = axum::Router::new()
            .route("/jwks", get(serve_jwks))
            .route("/.well-known/openid-configuration", get(serve_discovery))
            .with_state(hosted.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            hosted,
            _server: server,
        }
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.url)
    }

    pub fn set_jwks(&self, jwks: Value) {
        *self.hosted.jwks.lock().unwrap() = jwks;
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.hosted.mode.lock().unwrap() = mode;
    }

    /// Make the discovery document name another issuer.
    pub fn set_discovered_issuer(&self, issuer: &str) {
        *self.hosted.issuer.lock().unwrap() = issuer.to_owned();
    }

    pub fn jwks_hits(&self) -> usize {
        self.hosted.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn discovery_hits(&self) -> usize {
        self.hosted.discovery_hits.load(Ordering::SeqCst)
    }
}

async fn misbehave(hosted: &Hosted) -> Option<Response> {
    let mode = hosted.mode.lock().unwrap().clone();
    match mode {
        Mode::Normal => None,
        Mode::Down => Some(StatusCode::SERVICE_UNAVAILABLE.into_response()),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        Mode::Huge => {
            let padding = "x".repeat(1024 * 1024);
            Some(axum::Json(json!({"keys": [], "padding": padding})).into_response())
        }
    }
}

async fn serve_jwks(State(hosted): State<Arc<Hosted>>) -> Response {
    hosted.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = misbehave(&hosted).await {
        return response;
    }
    let jwks = hosted.jwks.lock().unwrap().clone();
    let mut headers = HeaderMap::new();
    headers.insert("cache-control", "max-age=300".parse().unwrap());
    (headers, axum::Json(jwks)).into_response()
}

async fn serve_discovery(State(hosted): State<Arc<Hosted>>) -> Response {
    hosted.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = misbehave(&hosted).await {
        return response;
    }
    let issuer = hosted.issuer.lock().unwrap().clone();
    let base = issuer.clone();
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
    .into_response()
}
