//! The concurrency keys of a deployment (or of `[defaults]`): `concurrency = N` and
//! `on_limit = "wait" | "skip"`.

use super::{Item, Parser, integer};
use toml::de::DeValue;
use weir_core::limits::{self, OnLimit};

impl Parser<'_> {
    /// `concurrency`: a whole number of slots, 1 to [`limits::MAX_SLOTS`].
    pub(super) fn concurrency(&mut self, item: &Item<'_>, ctx: &str) -> Option<u32> {
        const KEY: &str = "concurrency";
        let Some(n) = integer(item.get_ref()) else {
            self.wrong_type(KEY, item, ctx, "a whole number of runs, such as 2");
            return None;
        };
        match u32::try_from(n)
            .ok()
            .filter(|n| limits::check_slots(*n).is_ok())
        {
            Some(n) => Some(n),
            None => {
                let problem = format!(
                    "{n} is out of range: use 1 to {} runs at once (leave it out for no limit)",
                    limits::MAX_SLOTS
                );
                self.invalid(KEY, item.span().start, ctx, &problem);
                None
            }
        }
    }

    /// `on_limit`: `"wait"` or `"skip"`.
    pub(super) fn on_limit(&mut self, item: &Item<'_>, ctx: &str) -> Option<OnLimit> {
        const KEY: &str = "on_limit";
        match item.get_ref() {
            DeValue::String(s) if s == "wait" => Some(OnLimit::Wait),
            DeValue::String(s) if s == "skip" => Some(OnLimit::Skip),
            DeValue::String(s) => {
                let problem = format!("{s:?} is not a choice: use \"wait\" or \"skip\"");
                self.invalid(KEY, item.span().start, ctx, &problem);
                None
            }
            _ => {
                self.wrong_type(KEY, item, ctx, "\"wait\" or \"skip\"");
                None
            }
        }
    }
}
