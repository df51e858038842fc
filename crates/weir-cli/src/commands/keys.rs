//! `weir keys create|ls|revoke` and `weir audit`.

use crate::cli::KeysCommand;
use crate::output;
use anyhow::{Result, bail};
use std::process::ExitCode;
use weir_core::api::{ApiKey, CreateApiKey, CreatedApiKey};

/// `weir keys …`.
pub async fn keys(api: &str, cmd: KeysCommand, json: bool) -> Result<ExitCode> {
    if let KeysCommand::Recover { db } = &cmd {
        return recover(db).await;
    }
    let client = super::client(api)?;
    match cmd {
        KeysCommand::Create {
            name,
            role,
            project,
            expires,
        } => {
            let create = CreateApiKey {
                name,
                role: role.parse().map_err(anyhow::Error::msg)?,
                project,
                expires_in_s: expires_in_s(expires.as_deref())?,
            };
            let created = client.create_key(&create).await.map_err(super::explain)?;
            print_created(&created, json);
        }
        KeysCommand::Ls => {
            let keys = client.keys().await.map_err(super::explain)?;
            output::list(
                json,
                &keys,
                &keys,
                None,
                &["ID", "NAME", "ROLE", "PROJECT", "CREATED", "STATUS"],
                key_row,
            );
        }
        KeysCommand::Recover { .. } => {}
        KeysCommand::Revoke { id } => {
            let k = client.revoke_key(&id).await.map_err(super::explain)?;
            if json {
                output::json(&k);
            } else {
                println!("revoked key {} ({})", k.id, k.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--expires` in seconds: a duration such as `90d`, at least one second (`None`: the key
/// never expires).
fn expires_in_s(expires: Option<&str>) -> Result<Option<u64>> {
    let Some(text) = expires else {
        return Ok(None);
    };
    match weir_core::retry::parse_duration(text) {
        Ok(d) if d.as_secs() > 0 => Ok(Some(d.as_secs())),
        Ok(_) => bail!("--expires {text:?}: use at least one second, e.g. 90d"),
        Err(e) => bail!("--expires: {e}"),
    }
}

/// A new key: its secret alone on stdout (shown this once), what it is on stderr.
fn print_created(created: &CreatedApiKey, json: bool) {
    if json {
        output::json(created);
        return;
    }
    eprintln!(
        "created key {} for {} ({}{}); it is shown once, store it now:",
        created.key.id,
        created.key.name,
        created.key.role,
        created
            .key
            .project
            .as_deref()
            .map(|p| format!(" in {p}"))
            .unwrap_or_default()
    );
    println!("{}", created.secret);
}

/// A key's row of `weir keys ls`; its status says whether it still works, and until when.
fn key_row(k: &ApiKey) -> Vec<String> {
    let status = match (k.revoked_at, k.expires_at) {
        (Some(_), _) => "revoked".to_string(),
        (None, Some(e)) if e <= chrono::Utc::now() => "expired".to_string(),
        (None, Some(e)) => format!("expires {}", output::time(&e)),
        (None, None) => "active".to_string(),
    };
    vec![
        k.id.clone(),
        k.name.clone(),
        k.role.to_string(),
        k.project.clone().unwrap_or_else(|| "*".into()),
        output::time(&k.created_at),
        status,
    ]
}

/// `weir audit`.
pub async fn audit(api: &str, limit: u32, json: bool) -> Result<ExitCode> {
    let page = super::client(api)?
        .audit(None, limit)
        .await
        .map_err(super::explain)?;
    output::list(
        json,
        &page,
        &page.items,
        None,
        &["AT", "WHO", "ACTION", "TARGET", "DETAIL"],
        |e| {
            vec![
                output::time(&e.at),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.detail.clone().unwrap_or_default(),
            ]
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// `weir keys recover --db URL`: a fresh admin key written by the database's owner.
async fn recover(db: &str) -> Result<ExitCode> {
    let key = weir_server::auth::recover_admin_key(db)
        .await
        .map_err(anyhow::Error::msg)?;
    eprintln!("wrote a new admin key (recorded in the audit log); it is shown once, store it now:");
    println!("{key}");
    Ok(ExitCode::SUCCESS)
}
