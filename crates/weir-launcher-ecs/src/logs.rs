//! The last lines of a task's CloudWatch log stream, for runs that died without reporting
//! themselves. Logs and final states normally come from the flow process over HTTP, so this
//! is read once per silent death, never while a task runs (GetLogEvents is throttled
//! account-wide).
//!
//! The tail is read from the end (`startFromHead=false`), then followed with
//! `nextForwardToken` until the token repeats, so no event is skipped — not even several
//! sharing one millisecond, which a `startTime = last + 1` loop would lose.

use crate::{Error, describe_error};
use std::collections::VecDeque;

/// Most pages read for one tail (each up to `lines` events).
const MAX_PAGES: usize = 20;

/// The last `lines` messages of `stream` in `group`, oldest first. A stream that does not
/// exist (the task never started its container) gives an empty tail.
pub async fn tail(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    lines: usize,
) -> Result<Vec<String>, Error> {
    let limit = i32::try_from(lines.clamp(1, 10_000)).unwrap_or(10_000);
    let mut kept: VecDeque<String> = VecDeque::with_capacity(lines);
    let mut token: Option<String> = None;
    for page in 0..MAX_PAGES {
        let mut req = logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .limit(limit);
        req = match &token {
            Some(t) => req.next_token(t).start_from_head(true),
            None => req.start_from_head(false),
        };
        let out = match req.send().await {
            Ok(out) => out,
            Err(e)
                if page == 0
                    && e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(describe_error("GetLogEvents", &e)),
        };
        for event in out.events() {
            if kept.len() == lines {
                kept.pop_front();
            }
            kept.push_back(event.message().unwrap_or("").trim_end().to_string());
        }
        let next = out.next_forward_token().map(str::to_string);
        if next.is_none() || next == token {
            break;
        }
        token = next;
    }
    Ok(kept.into())
}
