//! The verified-credential cache never accepts a secret the store would
//! refuse: every change below follows a cached success.

use tokenmint::admin::{ClientAdmin, NewClient};
use tokenmint::clock::unix_now;
use tokenmint::crypto::{ClientSecret, HashCost};

use crate::helpers::{TestApp, both_stores};

both_stores!(a_cached_success_never_outlives_the_store);

async fn a_cached_success_never_outlives_the_store(app: TestApp) {
    let admin = ClientAdmin::new(app.store.as_ref(), &app.hasher);
    let new = || NewClient {
        client_id: "cached".into(),
        scopes: vec!["a".into()],
        ..NewClient::default()
    };
    let (id, secret) = app.create_client(new()).await;

    // Warm the cache, then disable: refused at once.
    assert_eq!(app.token_status(&id, &secret).await, 200);
    assert_eq!(app.token_status(&id, &secret).await, 200, "warm");
    admin.set_enabled(&id, false, unix_now()).await.unwrap();
    assert_eq!(
        app.token_status(&id, &secret).await,
        401,
        "disabled after a cached success"
    );
    admin.set_enabled(&id, true, unix_now()).await.unwrap();
    assert_eq!(app.token_status(&id, &secret).await, 200, "enabled again");

    // The secret replaced in the store (what a rotation without overlap does).
    let mut client = app.store.get_client(&id).await.unwrap().unwrap();
    client.secrets.as_mut().unwrap().current = app
        .hasher
        .hash(ClientSecret::new("the-new-one".into()), HashCost::Strong)
        .await
        .unwrap();
    assert!(app.store.update_client(&client, None).await.unwrap());
    assert_eq!(
        app.token_status(&id, &secret).await,
        401,
        "old secret after replacement"
    );
    assert_eq!(
        app.token_status(&id, "the-new-one").await,
        200,
        "new secret"
    );

    // Deleted, then re-created under the same id with another secret.
    admin.delete(&id).await.unwrap();
    assert_eq!(
        app.token_status(&id, "the-new-one").await,
        401,
        "deleted after a cached success"
    );
    let (_, recreated_secret) = app.create_client(new()).await;
    assert_eq!(
        app.token_status(&id, "the-new-one").await,
        401,
        "a re-created client does not inherit the cache"
    );
    assert_eq!(app.token_status(&id, &recreated_secret).await, 200);

    // A wrong secret for a cached client is still refused.
    assert_eq!(
        app.token_status(&id, "wrong").await,
        401,
        "wrong secret beside a cached right one"
    );
}
