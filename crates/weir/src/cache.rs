//! Input fingerprints and the task cache.
//!
//! A fingerprint is the SHA-256 (first 16 bytes, hex) of the JSON serialization of a call's
//! inputs, streamed into the hasher without building the JSON text. `cache = true` uses the
//! fingerprint as the cache key; `cache_key = fn` lets the user compute one.
//!
//! Cache entries live in the result storage (see [`crate::results`]) under
//! `cache/{task}/{sha256(key)}.json`, so they are shared by every flow run that uses the same
//! storage; `cache_expiration` bounds their age (no expiration: valid forever). Entries are
//! written create-only: two runs racing on one key leave the first whole entry.

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

/// What the cache holds for a key.
pub(crate) enum Lookup<T> {
    /// A valid entry: its value and location.
    Hit(T, String),
    /// Nothing (or nothing readable).
    Miss,
    /// An entry older than the expiration: replace it.
    Expired,
}

/// The cached value of `task` for `key`, if present, readable and not expired.
pub(crate) async fn lookup<T: DeserializeOwned>(
    store: &ResultStore,
    task: &str,
    key: &str,
    expiration: Option<Duration>,
) -> Lookup<T> {
    let skey = entry_key(task, key);
    let Ok(Some(bytes)) = store.get(&skey).await else {
        return Lookup::Miss;
    };
    let Ok(entry) = serde_json::from_slice::<Entry<T>>(&bytes) else {
        return Lookup::Miss;
    };
    if let Some(exp) = expiration {
        let age = chrono::Utc::now().signed_duration_since(entry.created_at);
        if age.to_std().map(|a| a > exp).unwrap_or(false) {
            return Lookup::Expired;
        }
    }
    Lookup::Hit(entry.value, store.location(&skey))
}

/// Writes a cache entry create-only, so that runs racing on one key leave one whole entry
/// (the first); an expired entry is deleted first. `Ok(false)`: another run's entry won.
pub(crate) async fn store(
    store: &ResultStore,
    task: &str,
    key: &str,
    bytes: Vec<u8>,
    expired: bool,
) -> Result<bool, crate::results::Error> {
    let skey = entry_key(task, key);
    if expired {
        store.delete(&skey).await?;
    }
    store.put_new(&skey, bytes).await
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
    async fn cache_roundtrip_expiry_and_create_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ResultStore::in_dir(dir.path());
        assert!(matches!(
            lookup::<u32>(&s, "t", "k", None).await,
            Lookup::Miss
        ));
        let bytes = encode("k", &7u32).expect("encode");
        assert!(store(&s, "t", "k", bytes, false).await.expect("store"));
        let again = encode("k", &8u32).expect("encode");
        assert!(!store(&s, "t", "k", again, false).await.expect("exists"));
        assert!(matches!(
            lookup::<u32>(&s, "t", "k", None).await,
            Lookup::Hit(7, _)
        ));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let expired = lookup::<u32>(&s, "t", "k", Some(Duration::from_millis(10))).await;
        assert!(matches!(expired, Lookup::Expired));
        let fresh = encode("k", &9u32).expect("encode");
        assert!(store(&s, "t", "k", fresh, true).await.expect("replace"));
        assert!(matches!(
            lookup::<u32>(&s, "t", "k", None).await,
            Lookup::Hit(9, _)
        ));
    }
}
