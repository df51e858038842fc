//! How this process's allocator gives memory back (glibc only; elsewhere nothing happens).
//!
//! glibc gives each thread that allocates at once an arena of its own (up to 8 per core), and
//! keeps what is freed in them for reuse. A server's threads (the runtime's workers, one per
//! SQLite connection, the blocking pool) then each hold the peaks of their own past work:
//! measured with `weir-bench server` (idle after a 10,000-task chain), 39 MiB resident with
//! the default arenas, 33 MiB with two, 29 MiB with two and a trim once the burst was over.
//! SQLite's page caches are heap too (2.2 MB of the 4.9 MB it held in that idle server, read
//! with `sqlite3_memory_used`): the server frees them before each trim (`Store::release_memory`).

/// Limits the allocator to two arenas. Call first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers and changes a setting of the allocator, which
    // takes its own lock; no memory is handed over.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the free memory of every arena to the system.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes an integer and works under the arenas' own locks; no memory
    // is handed over.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims once after each burst of work: when `activity` (a counter the server bumps on every
/// write) has not moved for half a second but moved since the last trim, first awaiting
/// `release` (which frees caches, e.g. SQLite's pages), then trimming. Never while busy, where
/// freed memory is reused at once. Runs until the process ends.
pub async fn trim_when_idle<F: std::future::Future<Output = ()>>(
    activity: impl Fn() -> u64,
    release: impl Fn() -> F,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Boot (migrations, the routes and their OpenAPI document) counts as a burst.
    let mut trimmed_at = u64::MAX;
    let mut last = activity();
    loop {
        tick.tick().await;
        let now = activity();
        if now == last && now != trimmed_at {
            release().await;
            trim();
            trimmed_at = now;
        }
        last = now;
    }
}
