//! With the most verbose logging, neither a secret nor a token reaches the
//! server's output; JSON logs are one object per line.

use crate::helpers::{ServerProcess as Server, TestApp, both_stores, form, json};

both_stores!(
    trace_logs_hold_no_secret_and_no_token,
    caller_strings_are_cut_in_the_logs
);

/// A 16 KiB client id or path is refused at once, and no log line carries
/// more than a short excerpt of it: a caller cannot inflate the logs.
async fn caller_strings_are_cut_in_the_logs(app: TestApp) {
    let mut env = app.env.clone();
    env.push(("TOKENMINT_LOG".into(), "debug".into()));
    let server = Server::start(&env);
    let http = reqwest::Client::new();
    let huge = "i".repeat(16 * 1024);
    for _ in 0..20 {
        let response = http
            .post(format!("{}/token", server.address))
            .header("authorization", crate::helpers::basic_header(&huge, "s"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "an absurd id is refused");
        let body = format!(
            "grant_type=client_credentials&{}",
            form(&[("client_id", &huge[..8 * 1024]), ("client_secret", "s")])
        );
        let response = http
            .post(format!("{}/token", server.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let path = format!("{}/{}", server.address, "p".repeat(8 * 1024));
        assert_eq!(http.get(path).send().await.unwrap().status(), 404);
    }
    let (_, output) = server.stop();
    let longest = output.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 1024, "a log line of {longest} bytes");
    assert!(
        output.len() < 128 * 1024,
        "60 requests wrote {} bytes of log",
        output.len()
    );
}

async fn trace_logs_hold_no_secret_and_no_token(app: TestApp) {
    let imported = "Sup3r-Secret-Value:%+ é";
    let created = app.cli(
        &[
            "client",
            "create",
            "svc:logs",
            "--scope",
            "a",
            "--secret-stdin",
            "--json",
        ],
        Some(imported),
    );
    assert!(created.status.success(), "client created");

    for format in ["text", "json"] {
        let mut env = app.env.clone();
        env.push(("TOKENMINT_LOG".into(), "trace".into()));
        env.push(("TOKENMINT_LOG_FORMAT".into(), format.into()));
        let server = Server::start(&env);
        let http = reqwest::Client::new();
        let token_url = format!("{}/token", server.address);
        let mut tokens = Vec::new();
        let bodies = [
            format!(
                "grant_type=client_credentials&{}",
                form(&[("client_id", "svc:logs"), ("client_secret", imported)])
            ),
            format!(
                "grant_type=client_credentials&{}",
                form(&[
                    ("client_id", "svc:logs"),
                    ("client_secret", "Wrong-Secret-Value")
                ])
            ),
        ];
        for body in &bodies {
            let response = http
                .post(&token_url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                tokens.push(
                    json(response).await["access_token"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        let basic = http
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                crate::helpers::basic_header("svc:logs", imported),
            )
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        tokens.push(
            json(basic).await["access_token"]
                .as_str()
                .expect("basic works")
                .to_owned(),
        );
        assert_eq!(tokens.len(), 2, "{format}: two tokens issued");

        let (code, output) = server.stop();
        assert_eq!(code, Some(0), "{format}: SIGTERM exits 0");
        assert!(
            output.contains("issued an access token"),
            "{format}: the logs are at trace and mention the issue"
        );
        // Every line logged while a request runs carries its request id.
        let in_request: Vec<&str> = output
            .lines()
            .filter(|l| {
                [
                    "request finished",
                    "client authentication failed",
                    "issued an access token",
                ]
                .iter()
                .any(|m| l.contains(m))
            })
            .collect();
        assert!(
            in_request.len() >= 4,
            "{format}: request lines were logged: {in_request:?}"
        );
        for line in &in_request {
            assert!(
                line.contains("request_id"),
                "{format}: no request id in {line}"
            );
        }
        for needle in [
            imported,
            "Sup3r-Secret-Value",
            "Wrong-Secret-Value",
            "U3VwM3It",
        ] {
            assert!(
                !output.contains(needle),
                "{format}: a secret ({needle}) leaked into the logs"
            );
        }
        for token in &tokens {
            for (i, part) in token.split('.').enumerate().skip(1) {
                assert!(
                    !output.contains(part),
                    "{format}: token part {i} leaked into the logs"
                );
            }
        }
        if format == "json" {
            for line in output.lines().filter(|l| !l.trim().is_empty()) {
                let value: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
                assert!(value.is_object(), "one object per line");
            }
        }
    }
    // An imported secret is echoed on neither stream.
    for stream in [&created.stdout, &created.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(imported),
            "no imported secret in the CLI's output"
        );
    }
}
