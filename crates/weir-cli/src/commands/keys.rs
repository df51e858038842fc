//! `weir keys create|ls|revoke` and `weir audit`.

use crate::cli::KeysCommand;
use crate::output;
use anyhow::{Result, bail};
use std::process::ExitCode;
use weir_core::api::CreateApiKey;
use weir_core::auth::Role;

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
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let expires_in_s = match expires {
                Some(text) => match weir_core::retry::parse_duration(&text) {
                    Ok(d) if d.as_secs() > 0 => Some(d.as_secs()),
                    Ok(_) => bail!("--expires {text:?}: use at least one second, e.g. 90d"),
                    Err(e) => bail!("--expires: {e}"),
                },
                None => None,
            };
            let created = client
                .create_key(&CreateApiKey {
                    name,
                    role,
                    project,
                    expires_in_s,
                })
                .await
                .map_err(super::explain)?;
            if json {
                output::json(&created);
            } else {
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
        }
        KeysCommand::Ls => {
            let keys = client.keys().await.map_err(super::explain)?;
            if json {
                output::json(&keys);
                return Ok(ExitCode::SUCCESS);
            }
            let rows = keys
                .iter()
                .map(|k| {
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
                })
                .collect();
            output::table(
                &["ID", "NAME", "ROLE", "PROJECT", "CREATED", "STATUS"],
                rows,
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

/// `weir audit`.
pub async fn audit(api: &str, limit: u32, json: bool) -> Result<ExitCode> {
    let page = super::client(api)?
        .audit(None, limit)
        .await
        .map_err(super::explain)?;
    if json {
        output::json(&page);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = page
        .items
        .iter()
        .map(|e| {
            vec![
                output::time(&e.at),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["AT", "WHO", "ACTION", "TARGET", "DETAIL"], rows);
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
