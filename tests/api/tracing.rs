//! Distributed tracing: with the standard `OTEL_*` variables set, the
//! server exports its spans over OTLP/HTTP — here to a receiver the test
//! runs on 127.0.0.1 — and a W3C `traceparent` on a request is the parent of
//! its server span.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::post;
use serde_json::Value;

use crate::helpers::{ServerProcess, TestApp, both_stores};

both_stores!(spans_reach_an_otlp_receiver_under_the_callers_trace);

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Every span of every OTLP/JSON export the receiver got.
fn spans(exports: &[Value]) -> Vec<Value> {
    exports
        .iter()
        .flat_map(|e| e["resourceSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["scopeSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|s| s["spans"].as_array().cloned().unwrap_or_default())
        .collect()
}

async fn spans_reach_an_otlp_receiver_under_the_callers_trace(app: TestApp) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let receiver = Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                if let Ok(value) = serde_json::from_slice::<Value>(&body) {
                    sink.lock().unwrap().push(value);
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let (id, secret) = app.standard_client().await;
    let mut env = app.env.clone();
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            "http/json".to_owned(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
        (
            "OTEL_SERVICE_NAME".to_owned(),
            "tokenmint-under-test".to_owned(),
        ),
    ]);
    let server = ServerProcess::start(&env);
    let response = reqwest::Client::new()
        .post(format!("{}/token", server.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", crate::helpers::basic_header(&id, &secret))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // SIGTERM flushes the exporter before the process exits.
    let (code, output) = server.stop();
    assert_eq!(code, Some(0), "{output}");

    let exports = received.lock().unwrap().clone();
    let spans = spans(&exports);
    let named = |name: &str| {
        spans
            .iter()
            .filter(|s| s["name"] == name && s["traceId"].as_str() == Some(TRACE_ID))
            .cloned()
            .collect::<Vec<_>>()
    };
    let server_spans = named("POST /token");
    assert_eq!(
        server_spans.len(),
        1,
        "one server span in the caller's trace: {exports:?}"
    );
    let server_span = &server_spans[0];
    assert_eq!(
        server_span["parentSpanId"], PARENT_ID,
        "its parent is the traceparent's span"
    );
    assert_eq!(server_span["kind"], 2, "SPAN_KIND_SERVER");
    for child in ["get_client", "argon2id", "sign access token"] {
        assert!(
            !named(child).is_empty(),
            "a {child} span in the same trace: {:?}",
            spans.iter().map(|s| s["name"].clone()).collect::<Vec<_>>()
        );
    }
    let resource = exports[0]["resourceSpans"][0]["resource"].to_string();
    assert!(resource.contains("tokenmint-under-test"), "{resource}");
}
