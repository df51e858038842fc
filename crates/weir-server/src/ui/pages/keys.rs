//! API keys and the audit log (admins only): list, create (the secret shown once), revoke.

use super::{Csrf, Page, html};
use crate::access::Require;
use crate::error::ApiError;
use crate::ops;
use crate::state::AppState;
use crate::ui::UiUser;
use crate::ui::view::{AuditPage, KeyRow, KeysPage, Time};
use axum::extract::{Form, Path, Query, State};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;
use weir_core::api::CreateApiKey;
use weir_core::auth::Role;

async fn keys_page(
    st: &AppState,
    user: UiUser,
    secret: Option<String>,
    flash: Option<(&'static str, String)>,
) -> Page {
    let admin = Require::new(user.caller.clone())?;
    let keys = ops::keys::list(st, &admin).await?;
    let now = Utc::now();
    let keys = keys
        .into_iter()
        .map(|k| {
            let (status, active) = match (k.revoked_at, k.expires_at) {
                (Some(_), _) => ("revoked".to_string(), false),
                (None, Some(e)) if e <= now => ("expired".to_string(), false),
                (None, Some(e)) => (format!("expires {}", e.format("%Y-%m-%d")), true),
                (None, None) => ("active".to_string(), true),
            };
            KeyRow {
                id: k.id,
                name: k.name,
                role: k.role.to_string(),
                project: k.project.unwrap_or_else(|| "all".into()),
                created: Time::of(&k.created_at),
                status,
                active,
            }
        })
        .collect();
    html(KeysPage {
        user: user.view,
        nav: "keys",
        keys,
        secret,
        flash,
    })
}

/// `GET /keys`.
pub(crate) async fn keys(State(st): State<AppState>, user: UiUser) -> Page {
    keys_page(&st, user, None, None).await
}

/// The key creation form.
#[derive(Deserialize)]
pub(crate) struct KeyForm {
    csrf: Option<String>,
    name: String,
    role: String,
    project: Option<String>,
    expires: Option<String>,
}

/// `POST /keys`: shows the new key once.
pub(crate) async fn create_key(
    State(st): State<AppState>,
    user: UiUser,
    Form(f): Form<KeyForm>,
) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    let role: Role = match f.role.parse() {
        Ok(r) => r,
        Err(e) => return keys_page(&st, user, None, Some(("error", e))).await,
    };
    let expires_in_s = match f
        .expires
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        None => None,
        Some(text) => match weir_core::retry::parse_duration(text) {
            Ok(d) if d.as_secs() > 0 => Some(d.as_secs()),
            _ => {
                return keys_page(
                    &st,
                    user,
                    None,
                    Some(("error", format!("invalid expiry {text:?}: use e.g. 90d"))),
                )
                .await;
            }
        },
    };
    let req = CreateApiKey {
        name: f.name,
        role,
        project: f.project.filter(|p| !p.trim().is_empty()),
        expires_in_s,
    };
    let admin = Require::new(user.caller.clone())?;
    match ops::keys::create(&st, &admin, req).await {
        Ok(created) => keys_page(&st, user, Some(created.secret), None).await,
        Err(ApiError::BadRequest { message, .. }) => {
            keys_page(&st, user, None, Some(("error", message))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /keys/{id}/revoke`.
pub(crate) async fn revoke_key(
    State(st): State<AppState>,
    user: UiUser,
    Path(id): Path<String>,
    Form(f): Form<Csrf>,
) -> Page {
    user.check_csrf(f.csrf.as_deref())?;
    let admin = Require::new(user.caller.clone())?;
    let k = ops::keys::revoke(&st, &admin, &id).await?;
    keys_page(
        &st,
        user,
        None,
        Some(("ok", format!("Revoked key {} ({}).", k.id, k.name))),
    )
    .await
}

/// Pagination of the audit page.
#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    cursor: Option<Uuid>,
}

/// `GET /audit`.
pub(crate) async fn audit(
    State(st): State<AppState>,
    user: UiUser,
    Query(q): Query<AuditQuery>,
) -> Page {
    let admin = Require::new(user.caller.clone())?;
    let page = ops::keys::audit_log(&st, &admin, q.cursor, None).await?;
    let rows = page
        .items
        .into_iter()
        .map(|e| {
            (
                Time::of(&e.at),
                e.actor,
                e.action,
                e.target,
                e.detail.unwrap_or_default(),
            )
        })
        .collect();
    html(AuditPage {
        user: user.view,
        nav: "audit",
        rows,
        next: page.next_cursor.map(|c| format!("/audit?cursor={c}")),
    })
}
