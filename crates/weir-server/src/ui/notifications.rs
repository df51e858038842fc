//! `GET /notifications`: the rules the caller's projects have and the delivery log. Shows
//! destinations as written (secret references, never their values) and reads through the
//! store with the caller's project filter, like every page.

use super::view::{Time, User};
use super::{UiError, UiUser};
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;
use weir_core::api::notifications::Destination;

/// One rule as the page shows it.
pub(crate) struct RuleRow {
    pub name: String,
    pub on: String,
    pub deployments: String,
    pub destination: String,
    pub target: String,
    pub rate: String,
    pub source: &'static str,
}

/// One delivery as the page shows it.
pub(crate) struct DeliveryRow {
    pub at: Time,
    pub rule: String,
    pub event: &'static str,
    pub title: String,
    pub destination: String,
    pub status: &'static str,
    pub attempts: u32,
    pub error: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
pub(crate) struct NotificationsPage {
    pub user: User,
    pub nav: &'static str,
    pub rules: Vec<RuleRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub next: Option<String>,
}

/// Pagination of the delivery log.
#[derive(Deserialize)]
pub(crate) struct LogQuery {
    cursor: Option<Uuid>,
}

/// `GET /notifications`.
pub(crate) async fn page(
    State(st): State<AppState>,
    user: UiUser,
    Query(q): Query<LogQuery>,
) -> Result<Response, UiError> {
    let projects = user.caller.projects();
    let rules = st
        .store
        .notification_rules(projects.as_deref())
        .await?
        .into_iter()
        .map(|r| {
            let (destination, target) = match &r.spec.destination {
                Destination::Webhook { url, signing_key } => (
                    if signing_key.is_some() {
                        "webhook (signed)"
                    } else {
                        "webhook"
                    },
                    url.clone(),
                ),
                Destination::Slack { url } => ("slack", url.clone()),
                Destination::Sns { topic_arn } => ("sns", topic_arn.clone()),
            };
            RuleRow {
                name: format!("{}/{}", r.project, r.name),
                on: r
                    .spec
                    .on
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                deployments: if r.spec.deployments.is_empty() {
                    "all".into()
                } else {
                    r.spec.deployments.join(", ")
                },
                destination: destination.into(),
                target,
                rate: format!(
                    "{} per {} s",
                    r.spec.rate_limit.count, r.spec.rate_limit.per_s
                ),
                source: r.source.as_str(),
            }
        })
        .collect();
    let log = st
        .store
        .deliveries(projects.as_deref(), None, q.cursor, 100)
        .await?;
    let deliveries = log
        .items
        .into_iter()
        .map(|d| DeliveryRow {
            at: Time::of(&d.created_at),
            rule: format!("{}/{}", d.project, d.rule),
            event: d.event.as_str(),
            title: d.title,
            destination: d.destination,
            status: d.status.as_str(),
            attempts: d.attempts,
            error: d.last_error.unwrap_or_default(),
        })
        .collect();
    let page = NotificationsPage {
        user: user.view,
        nav: "notifications",
        rules,
        deliveries,
        next: log
            .next_cursor
            .map(|c| format!("/notifications?cursor={c}")),
    };
    page.render().map(|s| Html(s).into_response()).map_err(|e| {
        UiError(ApiError::Internal(format!(
            "page could not be rendered: {e}"
        )))
    })
}
