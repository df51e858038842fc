//! A deployment's (or `[defaults]`') `catchup` key: what the scheduler does with ticks missed
//! while no server ran (`weir_core::schedule::catchup`).

use super::{Item, Parser};
use toml::de::DeValue;
use weir_core::schedule::Catchup;

impl Parser<'_> {
    /// `catchup`: `"none"`, `"latest"` or `"all"`.
    pub(super) fn catchup(&mut self, item: &Item<'_>, ctx: &str) -> Option<Catchup> {
        const KEY: &str = "catchup";
        const CHOICES: &str = "\"none\", \"latest\" (the default) or \"all\"";
        match item.get_ref() {
            DeValue::String(s) => match s.parse::<Catchup>() {
                Ok(c) => Some(c),
                Err(_) => {
                    let problem = format!("{s:?} is not a choice: use {CHOICES}");
                    self.invalid(KEY, item.span().start, ctx, &problem);
                    None
                }
            },
            _ => {
                self.wrong_type(KEY, item, ctx, CHOICES);
                None
            }
        }
    }
}
