//! Ids the seeding benchmarks give the rows they import.

use uuid::Uuid;
use weir_core::Timestamp;

/// A UUIDv7 id created at `t`, so a seeded history's id order is its creation order, as it
/// is for the ids the server makes (times before 1970 count as 1970).
pub fn id_at(t: Timestamp) -> Uuid {
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        secs,
        t.timestamp_subsec_nanos(),
    ))
}
