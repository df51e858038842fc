//! A tracked task's results beyond one run of its body: the one it need not run for (kept
//! by an earlier attempt of a resumed flow run, or cached), and keeping the one it made
//! (persisted, cached).

use super::{TaskDef, Tracked};
use crate::cache;
use crate::results::ResultStore;
use serde::{Serialize, de::DeserializeOwned};
use weir_core::StateKind;

/// A result the task need not run again for, reported Completed: its persisted result from
/// an earlier attempt of a resumed flow run, or a cache hit. `Err(expired)` when there is
/// none, saying whether the cache held an expired entry (replaced once the task ran).
pub(super) async fn earlier_result<T: DeserializeOwned>(
    def: &'static TaskDef,
    t: &Tracked,
    store: &ResultStore,
    result_key: Option<&str>,
) -> Result<T, bool> {
    if t.ctx.resume
        && let Some(key) = result_key
        && let Ok(Some(bytes)) = store.get(key).await
        && let Ok(v) = serde_json::from_slice::<T>(&bytes)
    {
        let msg = format!(
            "result reused from an earlier attempt (flow run attempt {} resumed)",
            t.ctx.attempt
        );
        t.report(
            def,
            StateKind::Completed,
            1,
            Some(msg),
            Some(store.location(key)),
        );
        return Ok(v);
    }
    let Some(key) = &t.cache_key else {
        return Err(false);
    };
    match cache::lookup::<T>(store, def.name, key, def.cache_expiration).await {
        cache::Lookup::Hit(v, location) => {
            t.report(
                def,
                StateKind::Completed,
                1,
                Some("cache hit".to_string()),
                Some(location),
            );
            Ok(v)
        }
        cache::Lookup::Expired => Err(true),
        cache::Lookup::Miss => Err(false),
    }
}

/// Keeps a task's result `v`: persisted under `result_key` (its location returned with it;
/// failing to persist fails the task) and written to the cache under the task's cache key (a
/// failure there is only a warning; `expired`: an expired entry is replaced).
pub(super) async fn keep<T: Serialize>(
    def: &'static TaskDef,
    t: &Tracked,
    store: &ResultStore,
    result_key: Option<&str>,
    v: T,
    expired: bool,
) -> anyhow::Result<(T, Option<String>)> {
    let mut location = None;
    if let Some(key) = result_key {
        let written = match serde_json::to_vec(&v) {
            Ok(bytes) => store.put(key, bytes).await.map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = written {
            return Err(anyhow::anyhow!("could not persist the result: {e:#}"));
        }
        location = Some(store.location(key));
    }
    if let Some(key) = &t.cache_key {
        let written = match cache::encode(key, &v) {
            Ok(bytes) => cache::store(store, def.name, key, bytes, expired)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = written {
            t.warn(format!("could not write the cache entry: {e:#}"));
        }
    }
    Ok((v, location))
}
