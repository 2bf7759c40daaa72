//! Property-based fuzzing of request parsing (issue #6): arbitrary bytes in
//! the form body and the Authorization header never panic, and never make
//! the server answer 5xx. Bounded case counts keep the suite fast.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use tokenmint::oauth::client_auth::parse_basic;
use tokenmint::oauth::params::FormParams;
use tokenmint::oauth::token::TokenRequest;

use crate::helpers::{Backend, TestApp};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn form_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(params) = FormParams::parse(&body) {
            let _ = TokenRequest::parse(None, &params);
        }
    }

    #[test]
    fn basic_parsing_never_panics(header in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_basic(&header);
        let mut prefixed = b"Basic ".to_vec();
        prefixed.extend_from_slice(&header);
        let _ = parse_basic(&prefixed);
    }

    #[test]
    fn form_encoding_round_trips(pairs in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{1,40}", 0..8)) {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", k, utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect();
        let params = FormParams::parse(body.join("&").as_bytes()).unwrap();
        for (k, v) in &pairs {
            prop_assert_eq!(params.all(k), std::slice::from_ref(v));
        }
    }

    #[test]
    fn basic_credentials_round_trip(id in "\\PC{1,40}", secret in "\\PC{1,60}") {
        // RFC 6749 §2.3.1: form-urlencode each part, then base64 "id:secret".
        let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let header = format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(&id), encode(&secret))));
        let parsed = parse_basic(header.as_bytes()).unwrap().unwrap();
        prop_assert_eq!(parsed.client_id, id);
        prop_assert_eq!(parsed.secret.expose(), secret.as_str());
    }
}

/// Arbitrary bodies and Authorization headers over HTTP: never a 5xx, always
/// an OAuth JSON error (or a token, should a fuzzer guess one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_requests_never_get_a_5xx() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (id, _) = app.standard_client().await;
    let mut runner = TestRunner::deterministic();
    let body = proptest::collection::vec(any::<u8>(), 0..300);
    let auth = proptest::collection::vec(any::<u8>(), 0..80);
    for case in 0..300 {
        let mut body = body.new_tree(&mut runner).unwrap().current();
        if case % 3 == 0 {
            // Half-valid requests reach deeper code.
            let mut prefix = format!("grant_type=client_credentials&client_id={id}&").into_bytes();
            prefix.append(&mut body);
            body = prefix;
        }
        let raw_auth = auth.new_tree(&mut runner).unwrap().current();
        let mut request = app
            .http
            .post(app.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        let header = if case % 2 == 0 {
            let mut h = b"Basic ".to_vec();
            h.extend_from_slice(STANDARD.encode(&raw_auth).as_bytes());
            h
        } else {
            raw_auth
        };
        if let Ok(value) = reqwest::header::HeaderValue::from_bytes(&header) {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "case {case}: {status} for body {body:?}"
        );
        let json: serde_json::Value = response.json().await.expect("a JSON body");
        assert!(
            json.get("error").is_some() || json.get("access_token").is_some(),
            "case {case}: {json}"
        );
    }
}
