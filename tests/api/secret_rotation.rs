//! Secret rotation with overlap: the previous secret works until
//! the overlap ends and never after — even for a caller whose earlier
//! success was cached.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestApp, both_stores};

both_stores!(
    rotation_keeps_the_old_secret_for_the_overlap_only,
    rotation_without_overlap_cuts_at_once
);

fn rotate(app: &TestApp, id: &str, overlap: &str) -> Value {
    app.cli_json(&["client", "rotate-secret", id, "--overlap", overlap])
}

async fn rotation_keeps_the_old_secret_for_the_overlap_only(app: TestApp) {
    let (id, old) = app.standard_client().await;
    assert_eq!(
        app.token_status(&id, &old).await,
        200,
        "the old secret, now cached"
    );

    let rotated = rotate(&app, &id, "4s");
    let new = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    assert_eq!(app.token_status(&id, &new).await, 200, "the new secret");
    assert_eq!(
        app.token_status(&id, &old).await,
        200,
        "the old secret during the overlap"
    );

    tokio::time::sleep(Duration::from_millis(5100)).await;
    assert_eq!(
        app.token_status(&id, &old).await,
        401,
        "the old secret after the overlap, though cached"
    );
    assert_eq!(
        app.token_status(&id, &new).await,
        200,
        "the new secret still"
    );
}

async fn rotation_without_overlap_cuts_at_once(app: TestApp) {
    let (id, old) = app.standard_client().await;
    assert_eq!(app.token_status(&id, &old).await, 200);
    let rotated = rotate(&app, &id, "0s");
    assert!(rotated["previous_secret_expires_at"].is_null());
    // The CLI is another process: its change reaches a cached success
    // within a second; the new secret works at once.
    let cut =
        crate::helpers::within_a_second(|| async { app.token_status(&id, &old).await == 401 })
            .await;
    assert!(cut, "the old secret is cut within a second");
    let new = rotated["client_secret"].as_str().unwrap();
    assert_eq!(app.token_status(&id, new).await, 200);

    let missing = app.cli(&["client", "rotate-secret", "nobody"], None);
    assert_eq!(missing.status.code(), Some(1), "unknown client");
    let too_long = app.cli(&["client", "rotate-secret", &id, "--overlap", "400d"], None);
    assert_eq!(too_long.status.code(), Some(2), "overlap out of range");
}
