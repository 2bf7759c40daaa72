//! Wall-clock time as Unix seconds, the unit of every stored time and claim.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Sleeps until the wall clock reaches the Unix second `unix` (at once if
/// it has).
pub async fn wait_until(unix: i64) {
    let target = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    if let Ok(left) = target.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

/// RFC 3339 in UTC, e.g. `2026-11-25T03:52:16Z`.
pub fn rfc3339(unix: i64) -> String {
    let secs = u64::try_from(unix).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}
