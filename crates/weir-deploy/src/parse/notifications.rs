//! `[[notifications]]`: the project's notification rules, each checked where it is written
//! and then by weir-core's one rule for specs (`weir_core::notify::check_rule`), the one the
//! server applies too.

use super::{Item, Parser, entries};
use crate::suggest::suggest;
use crate::{Location, NotificationEntry};
use toml::de::{DeTable, DeValue};
use weir_core::api::notifications::{
    Destination, NotificationEvent, NotificationRuleSpec, RateLimit,
};

const KEYS: &[&str] = &["name", "on", "deployments", "destination", "rate_limit"];
const TYPES: &[&str] = &["webhook", "slack", "sns"];

/// The keys each destination type takes besides `type`.
fn keys_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "webhook" => &["url", "signing_key"],
        "slack" => &["url"],
        _ => &["topic_arn"],
    }
}

impl Parser<'_> {
    /// Every rule of the `notifications` array; `deployments` are the file's deployment names.
    pub(super) fn notifications(
        &mut self,
        item: &Item<'_>,
        deployments: &[&str],
    ) -> Vec<NotificationEntry> {
        const CTX: &str = "at the top level";
        let DeValue::Array(rules) = item.get_ref() else {
            self.wrong_type(
                "notifications",
                item,
                CTX,
                "an array of tables ([[notifications]])",
            );
            return vec![];
        };
        let mut out: Vec<NotificationEntry> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let DeValue::Table(t) = rule.get_ref() else {
                self.wrong_type("notifications", rule, CTX, "a table per rule");
                continue;
            };
            let at = rule.span().start;
            if let Some(entry) = self.rule(t, at, i, deployments) {
                if out.iter().any(|e| e.name == entry.name) {
                    self.error(
                        at,
                        format!("notification rule {:?} is defined twice", entry.name),
                    );
                    continue;
                }
                out.push(entry);
            }
        }
        out
    }

    fn rule(
        &mut self,
        t: &DeTable<'_>,
        at: usize,
        index: usize,
        deployments: &[&str],
    ) -> Option<NotificationEntry> {
        let ctx = format!("in notification rule {}", index + 1);
        let (mut name, mut on, mut only, mut dest, mut rate) =
            (None, None, Some(vec![]), None, None);
        let mut ok = true;
        for (key, key_at, item) in entries(t) {
            match key {
                "name" => {
                    name = self
                        .string(key, item, &ctx)
                        .filter(|n| self.check_name("notification rule", n, item.span().start));
                }
                "on" => on = self.events(item, &ctx),
                "deployments" => {
                    only = self.strings(key, item, &ctx);
                    for d in only.iter().flatten() {
                        if !deployments.contains(&d.as_str()) {
                            let hint = suggest(d, deployments)
                                .map(|s| format!(" (did you mean {s:?}?)"))
                                .unwrap_or_default();
                            let problem = format!("this file has no deployment {d:?}{hint}");
                            self.invalid(key, item.span().start, &ctx, &problem);
                            ok = false;
                        }
                    }
                }
                "destination" => dest = self.destination(item, &ctx),
                "rate_limit" => {
                    rate = self.string(key, item, &ctx).and_then(|s| {
                        RateLimit::parse(&s)
                            .map_err(|e| self.invalid(key, item.span().start, &ctx, &e))
                            .ok()
                    })
                }
                other => {
                    self.unknown(other, key_at, &ctx, KEYS);
                    ok = false;
                }
            }
        }
        for (missing, set) in [
            ("name", name.is_some()),
            ("on", on.is_some()),
            ("destination", dest.is_some()),
        ] {
            if !set && !t.contains_key(missing) {
                self.error(at, format!("{ctx}: key {missing:?} is required"));
            }
        }
        let spec = NotificationRuleSpec {
            on: on?,
            deployments: only?,
            destination: dest?,
            rate_limit: rate.unwrap_or_default(),
        };
        let name = name?;
        if let Err(e) = weir_core::notify::check_rule(&spec) {
            self.error(at, format!("{ctx} ({name:?}): {}", e.message));
            return None;
        }
        ok.then(|| NotificationEntry {
            name,
            spec,
            location: Location::of_offset(self.text, at),
        })
    }

    fn events(&mut self, item: &Item<'_>, ctx: &str) -> Option<Vec<NotificationEvent>> {
        let names = self.strings("on", item, ctx)?;
        let known: Vec<&str> = NotificationEvent::ALL.iter().map(|e| e.as_str()).collect();
        let mut out = Vec::new();
        for n in &names {
            match NotificationEvent::parse(n) {
                Some(e) => out.push(e),
                None => {
                    let hint = match suggest(n, &known) {
                        Some(s) => format!("did you mean {s:?}?"),
                        None => format!("use {}", known.join(", ")),
                    };
                    let problem = format!("unknown event {n:?} ({hint})");
                    self.invalid("on", item.span().start, ctx, &problem);
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.invalid("on", item.span().start, ctx, "name at least one event");
            return None;
        }
        Some(out)
    }

    fn destination(&mut self, item: &Item<'_>, ctx: &str) -> Option<Destination> {
        let t = self.table("destination", item, ctx)?;
        let kind = match t.get("type") {
            Some(v) => self.string("type", v, ctx)?,
            None => {
                self.invalid(
                    "destination",
                    item.span().start,
                    ctx,
                    "needs a type: \"webhook\", \"slack\" or \"sns\"",
                );
                return None;
            }
        };
        if !TYPES.contains(&kind.as_str()) {
            let hint = suggest(&kind, TYPES)
                .map(|s| format!("did you mean {s:?}?"))
                .unwrap_or_else(|| "use \"webhook\", \"slack\" or \"sns\"".into());
            let at = t.get("type").map_or(item.span().start, |v| v.span().start);
            self.invalid(
                "type",
                at,
                ctx,
                &format!("unknown destination type {kind:?} ({hint})"),
            );
            return None;
        }
        let mut values = std::collections::BTreeMap::new();
        let mut ok = true;
        let allowed = keys_of(&kind);
        for (key, key_at, v) in entries(t) {
            if key == "type" {
                continue;
            }
            if !allowed.contains(&key) {
                let dctx = format!("{ctx}, destination type {kind:?}");
                self.unknown(key, key_at, &dctx, allowed);
                ok = false;
                continue;
            }
            match self.non_empty_string(key, v, ctx) {
                Some(s) => {
                    values.insert(key, s);
                }
                None => ok = false,
            }
        }
        let mut take = |k: &str, p: &mut Self| {
            let v = values.remove(k);
            if v.is_none() && ok {
                p.invalid(
                    "destination",
                    item.span().start,
                    ctx,
                    &format!("type {kind:?} needs {k:?}"),
                );
            }
            v
        };
        let dest = match kind.as_str() {
            "webhook" => Destination::Webhook {
                url: take("url", self)?,
                signing_key: values.remove("signing_key"),
            },
            "slack" => Destination::Slack {
                url: take("url", self)?,
            },
            _ => Destination::Sns {
                topic_arn: take("topic_arn", self)?,
            },
        };
        ok.then_some(dest)
    }
}
