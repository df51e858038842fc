//! The first admin key given by the operator (`Options::admin_key`, `WEIR_ADMIN_KEY`): how a
//! server in a container gets a key someone holds. Registered only on an empty database,
//! stored as a digest; a malformed one stops the start with a message saying what to write.

use weir_client::Client;
use weir_server::{Options, Server, StartError};

const GIVEN: &str =
    "weir_0123456789ab_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const OTHER: &str =
    "weir_ba9876543210_ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

async fn start(db: &str, admin_key: Option<&str>) -> Result<Server, StartError> {
    Server::start(Options {
        database_url: db.to_string(),
        bind: "127.0.0.1:0".into(),
        admin_key: admin_key.map(str::to_string),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn the_given_key_is_the_first_admin_key_and_only_on_an_empty_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("weir.db").display());

    let server = start(&db, Some(GIVEN)).await.expect("start");
    assert_eq!(server.bootstrap_key, None, "nothing generated to hand out");
    let url = format!("http://{}", server.addr);
    let admin = Client::new(&url, Some(GIVEN.to_string())).expect("client");
    let keys = admin.keys().await.expect("the given key is an admin's");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, "0123456789ab");
    server.stop().await;

    // Once the database has a key, another given key changes nothing.
    let server = start(&db, Some(OTHER)).await.expect("restart");
    let url = format!("http://{}", server.addr);
    let other = Client::new(&url, Some(OTHER.to_string())).expect("client");
    assert!(
        other.keys().await.is_err(),
        "a later given key is not registered"
    );
    let admin = Client::new(&url, Some(GIVEN.to_string())).expect("client");
    assert_eq!(admin.keys().await.expect("still admin").len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_malformed_given_key_stops_the_start_and_says_what_to_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("weir.db").display());
    let Err(e) = start(&db, Some("hunter2")).await else {
        panic!("a malformed first admin key must be refused");
    };
    let message = e.to_string();
    assert!(
        message.contains("WEIR_ADMIN_KEY") && message.contains("openssl rand -hex 32"),
        "{message}"
    );
    assert!(
        !message.contains("hunter2"),
        "the value is never echoed: {message}"
    );
    // Nothing was registered: a server without a given key still bootstraps its own.
    let server = start(&db, None).await.expect("start");
    assert!(server.bootstrap_key.is_some());
    server.stop().await;
}
