//! The `schedules` array: each schedule's keys, and the schedule itself checked by
//! `weir_core::Schedule`.

use super::{Item, Parser, SCHEDULE_KEYS, entries, integer};
use serde_json::Value;
use std::collections::BTreeMap;
use toml::de::DeValue;
use weir_core::Schedule;
use weir_core::api::ScheduleSpec;

impl Parser<'_> {
    pub(super) fn schedules(&mut self, item: &Item<'_>, ctx: &str) -> Option<Vec<ScheduleSpec>> {
        const EXPECTED: &str = "an array of tables such as [{ cron = \"0 3 * * *\" }]";
        let DeValue::Array(items) = item.get_ref() else {
            self.wrong_type("schedules", item, ctx, EXPECTED);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, el) in items.iter().enumerate() {
            let sctx = format!("in schedules[{i}] {ctx}");
            let DeValue::Table(t) = el.get_ref() else {
                self.wrong_type(&format!("schedules[{i}]"), el, ctx, "a table");
                ok = false;
                continue;
            };
            let mut spec = ScheduleSpec::default();
            let mut at = BTreeMap::new();
            let errors_before = self.diagnostics.len();
            for (key, key_at, v) in entries(t) {
                at.insert(key, v.span().start);
                match key {
                    "cron" => spec.cron = self.string(key, v, &sctx),
                    "interval" => {
                        spec.interval = match v.get_ref() {
                            // A bare number of seconds.
                            DeValue::Integer(_) => integer(v.get_ref()).map(|n| format!("{n}s")),
                            _ => self.string(key, v, &sctx),
                        }
                    }
                    "timezone" => spec.timezone = self.string(key, v, &sctx),
                    "anchor" => {
                        let text = match v.get_ref() {
                            DeValue::Datetime(d) => Some(d.to_string()),
                            DeValue::String(s) => Some(s.to_string()),
                            _ => {
                                self.wrong_type(key, v, &sctx, "a date-time");
                                None
                            }
                        };
                        if let Some(text) = text {
                            match serde_json::from_value(Value::String(text.clone())) {
                                Ok(ts) => spec.anchor = Some(ts),
                                Err(_) => {
                                    let problem = format!(
                                        "{text:?} is not a date-time with an offset, e.g. \
                                         2026-01-01T00:00:00Z"
                                    );
                                    self.invalid(key, v.span().start, &sctx, &problem);
                                }
                            }
                        }
                    }
                    other => self.unknown(other, key_at, &sctx, SCHEDULE_KEYS),
                }
            }
            if self.diagnostics.len() > errors_before {
                ok = false;
                continue;
            }
            if let Err(e) = Schedule::parse(&spec) {
                let key = weir_core::deployment::schedule_error_field(&e);
                let offset = at.get(key).copied().unwrap_or(el.span().start);
                self.error(offset, format!("invalid schedule {ctx}: {e}"));
                ok = false;
                continue;
            }
            out.push(spec);
        }
        ok.then_some(out)
    }
}
