//! Create-only writes (`ResultStore::put_new`) under a race of sixteen writers, on the local
//! backend and on a real S3 API (moto's server at `WEIR_TEST_AWS_ENDPOINT`).

use std::sync::Arc;
use weir_results::ResultStore;
use weir_testkit::moto;

/// Sixteen writers race to create `key` in `store`, each with a distinct 64 KiB body: the
/// bodies of the writers told they created it, and what is stored at `key` afterwards.
async fn race(store: ResultStore, key: &'static str) -> (Vec<Vec<u8>>, Vec<u8>) {
    let store = Arc::new(store);
    let writers: Vec<_> = (0..16u32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let body = format!("{{\"writer\":{i},\"pad\":\"{}\"}}", "x".repeat(64 * 1024));
                let won = store.put_new(key, body.clone().into_bytes()).await;
                (won.expect("create-only put"), body.into_bytes())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for w in writers {
        let (won, body) = w.await.expect("writer");
        if won {
            winners.push(body);
        }
    }
    let stored = store.get(key).await.expect("get").expect("entry");
    assert!(
        !store.put_new(key, b"{}".to_vec()).await.expect("put_new"),
        "a create-only write after the race is refused"
    );
    assert_eq!(
        store.get(key).await.expect("get").expect("entry"),
        stored,
        "the refused write changed nothing"
    );
    (winners, stored)
}

/// The local backend creates with a hard link that fails when the name exists: exactly one
/// writer wins, and the entry is its body, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_local_backend_exactly_one_writer_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (winners, stored) = race(ResultStore::in_dir(dir.path().join("r")), "t/k.json").await;
    assert_eq!(winners.len(), 1, "exactly one writer creates the entry");
    assert_eq!(stored, winners[0], "the winner's entry, whole");
}

/// S3 itself makes `If-None-Match: *` atomic, so exactly one racing writer wins there. moto
/// checks for the key and then writes it without a lock, so two writers racing on its
/// threaded server can both be told they created the entry: what this test holds moto to is
/// what it does guarantee, that every racing write is answered, at least one wins, the
/// stored entry is one winner's body whole, and a write after the race is refused.
#[tokio::test]
async fn on_s3_one_whole_entry_wins() {
    let Some(ep) = moto::endpoint("on_s3_one_whole_entry_wins") else {
        return;
    };
    let bucket = moto::create_bucket(&ep, "race");
    let store = ResultStore::open(&format!("s3://{bucket}/cache"))
        .expect("valid url")
        .with_endpoint(&ep);
    let (winners, stored) = race(store, "cache/t/k.json").await;
    assert!(!winners.is_empty(), "one writer creates the entry");
    assert!(
        winners.contains(&stored),
        "the entry is one winner's body, whole ({} bytes stored)",
        stored.len()
    );
}
