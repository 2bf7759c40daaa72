//! Mutual TLS (RFC 8705) on the TLS listener: certificates made here with
//! rcgen — a CA, a client certificate per subject kind, a self-signed one,
//! an expired one, one from another CA — authenticate `tls_client_auth` and
//! `self_signed_tls_client_auth` clients and bind tokens (`cnf.x5t#S256`);
//! and behind a TLS-terminating proxy, the certificate header is believed
//! from trusted proxies only.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use serde_json::{Value, json};
use tokenmint::admin::NewClient;

use crate::helpers::{Backend, TempDir, TestApp, basic_header, form, json};
use crate::jose::{decode_claims, issued_claims};

/// A client certificate and its key, as PEM.
pub struct Credential {
    der: Vec<u8>,
    pub pem: String,
    pub key_pem: String,
    key: KeyPair,
}

impl Credential {
    /// The `x5t#S256` a token bound to this certificate carries.
    fn thumbprint(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &self.der,
        ))
    }

    /// The certificate's public key as a JWK set (P-256).
    fn jwks(&self) -> Value {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let point = self.key.public_key_raw();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])}]})
    }
}

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client certificate for `cn` with these SANs.
    pub fn issue(&self, cn: &str, sans: Vec<SanType>, expired: bool) -> Credential {
        let key = KeyPair::generate().unwrap();
        let params = client_params(cn, sans, expired);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        credential(cert, key)
    }
}

fn client_params(cn: &str, sans: Vec<SanType>, expired: bool) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    // Most general first, as CAs write them: RFC 4514 then reads
    // "CN=…,O=Example Corp".
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example Corp");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    params
}

fn credential(cert: rcgen::Certificate, key: KeyPair) -> Credential {
    Credential {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        key,
    }
}

fn self_signed(cn: &str, expired: bool) -> Credential {
    let key = KeyPair::generate().unwrap();
    let cert = client_params(cn, vec![], expired)
        .self_signed(&key)
        .unwrap();
    credential(cert, key)
}

/// The server on TLS with a client CA; its certificate, for clients to trust.
pub struct MtlsServer {
    pub app: TestApp,
    /// The server's certificate (PEM), for clients to trust.
    pub server_pem: String,
    port: u16,
    server_cert: reqwest::Certificate,
    _dir: TempDir,
}

impl MtlsServer {
    pub async fn start(backend: Backend, ca: &Ca, extra: &[(&str, &str)]) -> Option<Self> {
        let dir = TempDir::new();
        let server = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let paths = ["cert.pem", "key.pem", "ca.pem"].map(|f| dir.path().join(f));
        std::fs::write(&paths[0], server.cert.pem()).unwrap();
        std::fs::write(&paths[1], server.signing_key.serialize_pem()).unwrap();
        std::fs::write(&paths[2], ca.pem()).unwrap();
        let mut env = vec![
            ("TOKENMINT_TLS_CERT", paths[0].to_str().unwrap()),
            ("TOKENMINT_TLS_KEY", paths[1].to_str().unwrap()),
            ("TOKENMINT_TLS_CLIENT_CA", paths[2].to_str().unwrap()),
        ];
        env.extend_from_slice(extra);
        let app = TestApp::spawn_with(backend, &env).await?;
        let port = app.address.rsplit(':').next().unwrap().parse().unwrap();
        Some(Self {
            app,
            server_pem: server.cert.pem(),
            port,
            server_cert: reqwest::Certificate::from_pem(server.cert.pem().as_bytes()).unwrap(),
            _dir: dir,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// An HTTPS client presenting `credential` (or no certificate).
    fn client(&self, credential: Option<&Credential>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([self.server_cert.clone()])
            .resolve("localhost", ([127, 0, 0, 1], self.port).into());
        if let Some(c) = credential {
            let pem = format!("{}{}", c.pem, c.key_pem);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    /// `POST /token` as `client_id` with only its certificate.
    async fn token(&self, credential: Option<&Credential>, client_id: &str) -> reqwest::Response {
        self.client(credential)
            .post(self.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
            ]))
            .send()
            .await
            .unwrap()
    }
}

macro_rules! each_store {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await;
            }
        }
    )*};
}

each_store!(
    tls_client_auth_matches_one_subject_per_kind,
    certificates_that_are_not_the_registered_one_are_refused,
    self_signed_certificates_match_registered_keys,
    a_secret_client_may_bind_its_tokens_to_its_certificate,
    a_proxy_header_counts_only_from_trusted_proxies,
);

async fn tls_client_auth_matches_one_subject_per_kind(backend: Backend) {
    let ca = Ca::new("Test Client CA");
    let Some(server) = MtlsServer::start(backend, &ca, &[]).await else {
        return;
    };
    let ip: std::net::IpAddr = "10.1.2.3".parse().unwrap();
    let cases = [
        (
            "by-dn",
            "--tls-subject-dn",
            "CN=orders, O=Example Corp",
            vec![],
        ),
        (
            "by-dns",
            "--tls-san-dns",
            "orders.internal",
            vec![SanType::DnsName("orders.internal".try_into().unwrap())],
        ),
        (
            "by-uri",
            "--tls-san-uri",
            "spiffe://prod.example/ns/shop/sa/orders",
            vec![SanType::URI(
                "spiffe://prod.example/ns/shop/sa/orders"
                    .try_into()
                    .unwrap(),
            )],
        ),
        (
            "by-ip",
            "--tls-san-ip",
            "10.1.2.3",
            vec![SanType::IpAddress(ip)],
        ),
        (
            "by-email",
            "--tls-san-email",
            "orders@example.com",
            vec![SanType::Rfc822Name(
                "orders@example.com".try_into().unwrap(),
            )],
        ),
    ];
    for (id, flag, value, sans) in cases {
        let view = server
            .app
            .cli_json(&["client", "create", id, "--scope", "a", flag, value]);
        assert_eq!(
            view["token_endpoint_auth_method"], "tls_client_auth",
            "{id}"
        );
        assert!(view.get("client_secret").is_none(), "{id}: no secret");
        assert_eq!(
            view["tls_client_certificate_bound_access_tokens"], true,
            "{id}: its tokens are always bound"
        );
        let credential = ca.issue(if id == "by-dn" { "orders" } else { id }, sans, false);
        let response = server.token(Some(&credential), id).await;
        assert_eq!(response.status(), 200, "{id}");
        let body = json(response).await;
        assert_eq!(
            body["token_type"], "Bearer",
            "{id}: an mTLS-bound token is still Bearer"
        );
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(
            decode_claims(token)["cnf"],
            json!({"x5t#S256": credential.thumbprint()}),
            "{id}: the token is bound to the certificate"
        );
        // Introspection authenticated the same way returns the binding.
        let answer = json(
            server
                .client(Some(&credential))
                .post(server.url("/introspect"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[("token", token), ("client_id", id)]))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(answer["active"], true, "{id}");
        assert_eq!(
            answer["cnf"]["x5t#S256"],
            credential.thumbprint().as_str(),
            "{id}"
        );
    }
    // Printed for people: no secret line, since there is no secret.
    let printed = server.app.cli(
        &["client", "create", "printed", "--tls-san-dns", "p.internal"],
        None,
    );
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.contains("tls_client_auth") && !printed.contains("client_secret"),
        "{printed}"
    );
    let metadata = json(
        server
            .client(None)
            .get(server.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
    let methods = metadata["token_endpoint_auth_methods_supported"].to_string();
    assert!(
        methods.contains("\"tls_client_auth\"") && methods.contains("self_signed_tls_client_auth"),
        "{methods}"
    );
}

async fn certificates_that_are_not_the_registered_one_are_refused(backend: Backend) {
    let ca = Ca::new("Test Client CA");
    let other_ca = Ca::new("Another CA");
    let Some(server) = MtlsServer::start(backend, &ca, &[]).await else {
        return;
    };
    let dns = |name: &str| vec![SanType::DnsName(name.try_into().unwrap())];
    for id in ["orders", "billing"] {
        let created = server
            .app
            .create_key_client(NewClient {
                client_id: id.into(),
                scopes: vec!["a".into()],
                tls_client_auth_san_dns: Some(format!("{id}.internal")),
                ..NewClient::default()
            })
            .await;
        assert_eq!(created, id);
    }
    let good = ca.issue("orders", dns("orders.internal"), false);
    assert_eq!(
        server.token(Some(&good), "orders").await.status(),
        200,
        "the registered certificate"
    );
    let cases = [
        ("no certificate", None),
        (
            "expired",
            Some(ca.issue("orders", dns("orders.internal"), true)),
        ),
        (
            "from another CA",
            Some(other_ca.issue("orders", dns("orders.internal"), false)),
        ),
        (
            "self-signed with the right name",
            Some({
                let key = KeyPair::generate().unwrap();
                credential(
                    client_params("orders", dns("orders.internal"), false)
                        .self_signed(&key)
                        .unwrap(),
                    key,
                )
            }),
        ),
        (
            "another client's certificate",
            Some(ca.issue("billing", dns("billing.internal"), false)),
        ),
        (
            "the name as a DN, not a SAN",
            Some(ca.issue("orders.internal", vec![], false)),
        ),
    ];
    for (what, credential) in cases {
        let response = server.token(credential.as_ref(), "orders").await;
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(json(response).await["error"], "invalid_client", "{what}");
    }
    // A secret client's id with a certificate and no secret is no login.
    let (secret_id, _) = server.app.standard_client().await;
    assert_eq!(server.token(Some(&good), &secret_id).await.status(), 401);
    // Registration refuses two subjects, and a subject without the method.
    let two = server.app.cli(
        &[
            "client",
            "create",
            "two",
            "--tls-san-dns",
            "a",
            "--tls-san-uri",
            "spiffe://x/y",
        ],
        None,
    );
    assert_eq!(two.status.code(), Some(2), "two subjects");
    let mixed = server.app.cli(
        &[
            "client",
            "create",
            "mixed",
            "--auth-method",
            "client_secret_basic",
            "--tls-san-dns",
            "a",
        ],
        None,
    );
    assert_eq!(mixed.status.code(), Some(2), "a subject on a secret client");
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("tls_client_auth"));
}

async fn self_signed_certificates_match_registered_keys(backend: Backend) {
    let ca = Ca::new("Test Client CA");
    let Some(server) = MtlsServer::start(backend, &ca, &[]).await else {
        return;
    };
    let credential = self_signed("edge-device", false);
    let jwks_path = server._dir.path().join("device.jwks");
    std::fs::write(&jwks_path, credential.jwks().to_string()).unwrap();
    let view = server.app.cli_json(&[
        "client",
        "create",
        "device",
        "--scope",
        "a",
        "--auth-method",
        "self_signed_tls_client_auth",
        "--jwks-file",
        jwks_path.to_str().unwrap(),
    ]);
    assert_eq!(
        view["token_endpoint_auth_method"],
        "self_signed_tls_client_auth"
    );
    let claims = issued_claims(server.token(Some(&credential), "device").await).await;
    assert_eq!(claims["cnf"]["x5t#S256"], credential.thumbprint().as_str());
    // Another key, an expired certificate of the right key, none at all.
    let stranger = self_signed("edge-device", false);
    assert_eq!(
        server.token(Some(&stranger), "device").await.status(),
        401,
        "another key"
    );
    let expired = {
        let cert = client_params("edge-device", vec![], true)
            .self_signed(&credential.key)
            .unwrap();
        Credential {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pem: credential.key_pem.clone(),
            key: KeyPair::from_pem(&credential.key_pem).unwrap(),
        }
    };
    assert_eq!(
        server.token(Some(&expired), "device").await.status(),
        401,
        "expired"
    );
    assert_eq!(
        server.token(None, "device").await.status(),
        401,
        "no certificate"
    );
    // A CA-issued certificate whose key is not registered is no better.
    let issued = ca.issue("device", vec![], false);
    assert_eq!(
        server.token(Some(&issued), "device").await.status(),
        401,
        "CA-issued, other key"
    );
}

async fn a_secret_client_may_bind_its_tokens_to_its_certificate(backend: Backend) {
    let ca = Ca::new("Test Client CA");
    let Some(server) = MtlsServer::start(backend, &ca, &[]).await else {
        return;
    };
    let (id, secret) = server
        .app
        .create_client(NewClient {
            client_id: "bound".into(),
            scopes: vec!["a".into()],
            tls_client_certificate_bound_access_tokens: Some(true),
            ..NewClient::default()
        })
        .await;
    let credential = self_signed("bound", false);
    let send = |c: Option<&Credential>| {
        server
            .client(c)
            .post(server.url("/token"))
            .header("authorization", basic_header(&id, &secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
    };
    let body = json(send(Some(&credential)).await.unwrap()).await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        decode_claims(token)["cnf"]["x5t#S256"],
        credential.thumbprint().as_str()
    );
    // Without a certificate, or with an expired one, it gets no token.
    for (what, presented) in [
        ("none", None),
        ("expired", Some(self_signed("bound", true))),
    ] {
        let response = send(presented.as_ref()).await.unwrap();
        assert_eq!(response.status(), 400, "{what}");
        assert_eq!(json(response).await["error"], "invalid_request", "{what}");
    }
    // A client not registered for it gets a plain token even with a certificate.
    let (plain_id, plain_secret) = server.app.standard_client().await;
    let body = json(
        server
            .client(Some(&credential))
            .post(server.url("/token"))
            .header("authorization", basic_header(&plain_id, &plain_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        decode_claims(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

async fn a_proxy_header_counts_only_from_trusted_proxies(backend: Backend) {
    let ca = Ca::new("Test Client CA");
    let dir = TempDir::new();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let env = [
        ("TOKENMINT_TLS_CLIENT_CA", ca_path.to_str().unwrap()),
        ("TOKENMINT_TLS_CLIENT_CERT_HEADER", "ssl-client-cert"),
        ("TOKENMINT_TRUSTED_PROXIES", "127.0.0.1"),
        ("TOKENMINT_MTLS_BASE_URL", "https://mtls.auth.example"),
    ];
    let Some(app) = TestApp::spawn_with(backend, &env).await else {
        return;
    };
    app.create_key_client(NewClient {
        client_id: "orders".into(),
        scopes: vec!["a".into()],
        tls_client_auth_san_dns: Some("orders.internal".into()),
        ..NewClient::default()
    })
    .await;
    let credential = ca.issue(
        "orders",
        vec![SanType::DnsName("orders.internal".try_into().unwrap())],
        false,
    );
    // nginx's $ssl_client_escaped_cert: the PEM, URL-encoded.
    let escaped: String =
        percent_encoding::utf8_percent_encode(&credential.pem, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let send = |address: String, header: Option<String>| {
        let mut request = app
            .http
            .post(format!("{address}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "orders"),
            ]));
        if let Some(h) = header {
            request = request.header("ssl-client-cert", h);
        }
        request.send()
    };
    let claims = issued_claims(
        send(app.address.clone(), Some(escaped.clone()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        claims["cnf"]["x5t#S256"],
        credential.thumbprint().as_str(),
        "the trusted proxy's header"
    );
    assert_eq!(
        send(app.address.clone(), None).await.unwrap().status(),
        401,
        "no header"
    );
    assert_eq!(
        send(app.address.clone(), Some("garbage".into()))
            .await
            .unwrap()
            .status(),
        401,
        "a garbled header"
    );
    // The same header from a peer that is not a trusted proxy is ignored.
    let untrusted = app
        .another_instance(&[("TOKENMINT_TRUSTED_PROXIES", "10.0.0.0/8")])
        .await;
    let response = send(untrusted.address.clone(), Some(escaped))
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "a header from an untrusted peer");
    // Envoy's header: the right-most element's Cert counts, and a quote the
    // caller's own certificate put in a copied Subject cannot end it early.
    let envoy = app
        .another_instance(&[(
            "TOKENMINT_TLS_CLIENT_CERT_HEADER",
            "x-forwarded-client-cert",
        )])
        .await;
    let mallory = ca.issue(
        "mallory",
        vec![SanType::DnsName("mallory.internal".try_into().unwrap())],
        false,
    );
    let pem = |c: &Credential| {
        percent_encoding::utf8_percent_encode(&c.pem, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    };
    let xfcc = |header: String| {
        app.http
            .post(format!("{}/token", envoy.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-client-cert", header)
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "orders"),
            ]))
            .send()
    };
    let hash: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &credential.der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let honest = format!(
        "By=spiffe://mesh/tokenmint;Hash={hash};Cert=\"{}\"",
        pem(&credential)
    );
    assert_eq!(xfcc(honest).await.unwrap().status(), 200, "Envoy's header");
    // A SAN Envoy copies unescaped cannot open an element of its own.
    let injected = format!(
        "By=spiffe://mesh/tokenmint;Cert=\"{}\";URI=spiffe://a,Cert={}",
        pem(&mallory),
        pem(&credential)
    );
    assert_eq!(
        xfcc(injected).await.unwrap().status(),
        401,
        "a SAN that smuggles a Cert"
    );
    let forged = format!(
        "By=spiffe://mesh/tokenmint;Cert=\"{}\";Subject=\"CN=mallory,OU=x\\\",Cert={}\"",
        pem(&mallory),
        pem(&credential)
    );
    assert_eq!(
        xfcc(forged).await.unwrap().status(),
        401,
        "a Subject that smuggles a Cert"
    );
    // The metadata names the mTLS aliases.
    let metadata = app.metadata().await;
    assert_eq!(
        metadata["mtls_endpoint_aliases"]["token_endpoint"],
        "https://mtls.auth.example/token"
    );
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
}
