//! Input fingerprints and the task cache.
//!
//! A fingerprint is the SHA-256 (first 16 bytes, hex) of the JSON serialization of a call's
//! inputs, streamed into the hasher without building the JSON text. `cache = true` uses the
//! fingerprint as the cache key; `cache_key = fn` lets the user compute one.
//!
//! Cache entries live in the result storage (see [`crate::results`]) under
//! `cache/{task}/{sha256(key)}.json`, so they are shared by every flow run that uses the same
//! storage; `cache_expiration` bounds their age (no expiration: valid forever).

use crate::results::ResultStore;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use std::time::Duration;
use weir_core::Timestamp;

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The fingerprint of `inputs`, or `None` when they cannot be serialized.
pub(crate) fn fingerprint<T: Serialize + ?Sized>(inputs: &T) -> Option<String> {
    let mut w = HashWriter(Sha256::new());
    serde_json::to_writer(&mut w, inputs).ok()?;
    Some(hex(&w.0.finalize()[..16]))
}

/// The storage key of the cache entry of `task` for `key`.
pub(crate) fn entry_key(task: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("cache/{task}/{}.json", hex(&digest))
}

#[derive(Serialize)]
struct EntryRef<'a, T> {
    created_at: Timestamp,
    key: &'a str,
    value: &'a T,
}

#[derive(Deserialize)]
struct Entry<T> {
    created_at: Timestamp,
    value: T,
}

/// The cached value of `task` for `key`, if present, readable and not expired.
pub(crate) async fn lookup<T: DeserializeOwned>(
    store: &ResultStore,
    task: &str,
    key: &str,
    expiration: Option<Duration>,
) -> Option<(T, String)> {
    let skey = entry_key(task, key);
    let bytes = store.get(&skey).await.ok()??;
    let entry: Entry<T> = serde_json::from_slice(&bytes).ok()?;
    if let Some(exp) = expiration {
        let age = chrono::Utc::now().signed_duration_since(entry.created_at);
        if age.to_std().map(|a| a > exp).unwrap_or(false) {
            return None;
        }
    }
    Some((entry.value, store.location(&skey)))
}

/// The bytes of a cache entry holding `value` (serialize before awaiting the write, so `T`
/// need not be `Sync`).
pub(crate) fn encode<T: Serialize>(key: &str, value: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&EntryRef {
        created_at: chrono::Utc::now(),
        key,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = fingerprint(&(&1u32, &"x")).expect("fp");
        assert_eq!(a, fingerprint(&(1u32, "x")).expect("fp"));
        assert_ne!(a, fingerprint(&(2u32, "x")).expect("fp"));
        assert_eq!(a.len(), 32);
    }

    #[tokio::test]
    async fn cache_roundtrip_and_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ResultStore::in_dir(dir.path());
        assert!(lookup::<u32>(&s, "t", "k", None).await.is_none());
        let bytes = encode("k", &7u32).expect("encode");
        s.put(&entry_key("t", "k"), bytes).await.expect("store");
        assert_eq!(
            lookup::<u32>(&s, "t", "k", None).await.map(|v| v.0),
            Some(7)
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        let expired = lookup::<u32>(&s, "t", "k", Some(Duration::from_millis(10))).await;
        assert!(expired.is_none());
    }
}
