//! The hash cost follows the secret: generated secrets at argon2id's
//! minimum, imported ones strong; hashes stored before the origin was
//! recorded are re-made on their next successful verification.

use std::time::Duration;

use tokenmint::admin::{ClientAdmin, NewClient};
use tokenmint::clock::unix_now;
use tokenmint::crypto::{ClientSecret, HashCost};

use crate::helpers::{TestApp, both_stores, eventually};

both_stores!(
    generated_secrets_are_hashed_light_and_imported_ones_strong,
    hashes_from_before_origins_are_remade_on_success,
);

const LIGHT: &str = "$argon2id$v=19$m=8,t=1,p=1$";
const STRONG: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

async fn stored_hash(app: &TestApp, id: &str) -> (String, Option<&'static str>) {
    let client = app.store.get_client(id).await.unwrap().unwrap();
    let secrets = client.secrets.unwrap();
    (secrets.current, secrets.origin.map(|o| o.as_str()))
}

async fn generated_secrets_are_hashed_light_and_imported_ones_strong(app: TestApp) {
    let (generated, secret) = app.standard_client().await;
    let (hash, origin) = stored_hash(&app, &generated).await;
    assert!(hash.starts_with(LIGHT), "{hash}");
    assert_eq!(origin, Some("generated"));
    assert_eq!(app.token_status(&generated, &secret).await, 200);
    assert_eq!(app.token_status(&generated, "wrong").await, 401);

    let imported_secret = "correct horse battery staple 42";
    let (imported, _) = app
        .create_client_with_secret(
            NewClient {
                client_id: "imported".into(),
                ..NewClient::default()
            },
            Some(imported_secret),
        )
        .await;
    let (hash, origin) = stored_hash(&app, &imported).await;
    assert!(hash.starts_with(STRONG), "{hash}");
    assert_eq!(origin, Some("imported"));
    assert_eq!(app.token_status(&imported, imported_secret).await, 200);

    // A rotation generates, so the new hash is light.
    let admin = ClientAdmin::new(app.store.as_ref(), &app.hasher);
    let rotated = admin.rotate_secret(&imported, 0, unix_now()).await.unwrap();
    let (hash, origin) = stored_hash(&app, &imported).await;
    assert!(hash.starts_with(LIGHT), "{hash}");
    assert_eq!(origin, Some("generated"));
    assert_eq!(
        app.token_status(&imported, rotated.client_secret.expose())
            .await,
        200
    );
}

async fn hashes_from_before_origins_are_remade_on_success(app: TestApp) {
    // Two rows as a version before origins wrote them: strong hashes, no
    // origin; one secret of the generated shape, one chosen by a person.
    let generated = ClientSecret::generate().unwrap();
    let chosen = ClientSecret::new("a person chose this one, 2019".into());
    let mut ids = Vec::new();
    for (id, secret) in [("old-generated", &generated), ("old-chosen", &chosen)] {
        app.create_client_with_secret(
            NewClient {
                client_id: id.into(),
                ..NewClient::default()
            },
            Some(secret.expose()),
        )
        .await;
        let mut client = app.store.get_client(id).await.unwrap().unwrap();
        let secrets = client.secrets.as_mut().unwrap();
        secrets.current = app
            .hasher
            .hash(secret.clone(), HashCost::Strong)
            .await
            .unwrap();
        secrets.origin = None;
        assert!(app.store.update_client(&client, None).await.unwrap());
        ids.push((id, secret.expose().to_owned()));
    }
    for (id, secret) in &ids {
        assert_eq!(app.token_status(id, secret).await, 200, "{id}");
    }
    let remade = eventually(Duration::from_secs(5), || async {
        let (hash, origin) = stored_hash(&app, "old-generated").await;
        (hash.starts_with(LIGHT) && origin == Some("generated")).then_some(())
    })
    .await;
    assert!(
        remade.is_some(),
        "the generated-shape secret is re-hashed light"
    );
    let judged = eventually(Duration::from_secs(5), || async {
        let (hash, origin) = stored_hash(&app, "old-chosen").await;
        (hash.starts_with(STRONG) && origin == Some("imported")).then_some(())
    })
    .await;
    assert!(
        judged.is_some(),
        "a chosen secret stays strong, recorded as imported"
    );
    // Both still work, and a wrong secret still does not.
    for (id, secret) in &ids {
        assert_eq!(app.token_status(id, secret).await, 200, "{id} after");
        assert_eq!(app.token_status(id, "wrong").await, 401, "{id} wrong");
    }
}
