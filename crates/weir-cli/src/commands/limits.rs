//! `weir limits …` (tag concurrency limits) and the text of `weir runs why`.

use crate::cli::LimitsCommand;
use crate::output;
use anyhow::Result;
use std::process::ExitCode;
use weir_core::api::Explanation;
use weir_core::limits::{check_slots, check_tag};

/// `weir limits set|ls|rm`.
pub async fn limits(api: &str, cmd: LimitsCommand, json: bool) -> Result<ExitCode> {
    let client = super::client(api)?;
    match cmd {
        LimitsCommand::Set { tag, slots } => {
            check_tag(&tag).map_err(anyhow::Error::msg)?;
            check_slots(slots).map_err(anyhow::Error::msg)?;
            let l = client
                .set_tag_limit(&tag, slots)
                .await
                .map_err(super::explain)?;
            if json {
                output::json(&l);
            } else {
                println!(
                    "tag {}: at most {} runs at once ({} running now)",
                    l.tag,
                    l.slots,
                    l.holders.len()
                );
            }
        }
        LimitsCommand::Ls => {
            let ls = client.tag_limits().await.map_err(super::explain)?;
            output::list(
                json,
                &ls,
                &ls,
                Some("no tag limits (set one with `weir limits set TAG N`)"),
                &["TAG", "SLOTS", "HELD", "HELD BY"],
                |l| {
                    vec![
                        l.tag.clone(),
                        l.slots.to_string(),
                        l.holders.len().to_string(),
                        l.holders
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]
                },
            );
        }
        LimitsCommand::Rm { tag } => {
            check_tag(&tag).map_err(anyhow::Error::msg)?;
            let l = client
                .remove_tag_limit(&tag)
                .await
                .map_err(super::explain)?;
            if json {
                output::json(&l);
            } else {
                println!("tag {}: limit of {} removed", l.tag, l.slots);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `weir runs why` as text: the verdict, then one line per reason.
pub fn render_why(e: &Explanation) -> String {
    let verdict = if e.waiting {
        format!("run {} is {} and not running:\n", e.run, e.state)
    } else {
        format!("run {} is {}:\n", e.run, e.state)
    };
    let mut out = verdict;
    for m in &e.messages {
        out.push_str(&format!("  - {m}\n"));
    }
    out
}
