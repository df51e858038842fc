//! Who is calling, and what they may do.
//!
//! Every API request carries `Authorization: Bearer <token>`: an API key
//! (`weir_<id>_<secret>`, stored as a SHA-256 digest and compared in constant time) or a
//! per-run token (`weirrun_<run>_<attempt>_<mac>`, an HMAC the server can check without
//! storing it) that an agent hands to the flow process it launches. [`Caller`] is the
//! extractor; handlers ask it for the [`Permission`] they need and to check the project or
//! run they touch. Anything a caller may not see answers 404, exactly like something that
//! does not exist.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use weir_core::api::ApiKey;
use weir_core::audit::AuditAction;
use weir_core::auth::{KEY_PREFIX, Permission, RUN_TOKEN_PREFIX, Role, parse_key};
use weir_core::run::Run;

/// How far up the subflow chain a run token reaches.
const MAX_SUBFLOW_DEPTH: usize = 16;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A service account's API key.
    Key {
        /// The key's public id (the part after `weir_`), as audit entries name it.
        id: String,
        /// The service account's name given at the key's creation.
        name: String,
        /// What the key may do; a route's `Require<P>` checks it.
        role: Role,
        /// Project it is restricted to.
        project: Option<String>,
    },
    /// A flow process holding the token of one run attempt.
    Run {
        /// The one run the token is for: its process may report on this run only.
        run: Uuid,
        /// The attempt the token was issued to; a report naming another one is refused.
        attempt: u32,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(n: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)?;
    Ok(hex(&buf))
}

/// SHA-256 of a key's secret, as stored.
pub(crate) fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A new key for `name` with `role`: its record (to store with the digest) and the full key
/// (to show once).
pub(crate) fn new_key(
    name: &str,
    role: Role,
    project: Option<String>,
    expires_in: Option<chrono::Duration>,
    created_by: &str,
) -> ApiResult<(ApiKey, String, String)> {
    let unavailable = |_| ApiError::Unavailable("no randomness available to make a key".into());
    let id = random_hex(6).map_err(unavailable)?;
    let secret = random_hex(32).map_err(unavailable)?;
    let now = Utc::now();
    let key = ApiKey {
        id: id.clone(),
        name: name.to_string(),
        role,
        project,
        created_at: now,
        expires_at: expires_in.map(|d| now + d),
        revoked_at: None,
        created_by: created_by.to_string(),
    };
    Ok((key, digest(&secret), format!("{KEY_PREFIX}{id}_{secret}")))
}

/// Creates the first admin key when the database has none: `given` (checked, see
/// [`crate::Options::admin_key`]) or a new one. Returns a key it generated, to be stored where
/// the local CLI finds it (never `given`: its holder has it already).
pub async fn bootstrap_admin_key(
    store: &weir_store::Store,
    given: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if store.api_key_count().await? > 0 {
        return Ok(None);
    }
    let (key, digest, full) = match given {
        None => new_key("local-admin", Role::Admin, None, None, "bootstrap")?,
        Some(given) => {
            let (id, secret) = parse_key(given.trim()).ok_or_else(|| ApiError::BadRequest {
                message: "the given first admin key (WEIR_ADMIN_KEY) is not a Weir key: \
                              it must be weir_<12 hex digits>_<64 hex digits>, e.g. from \
                              `echo \"weir_$(openssl rand -hex 6)_$(openssl rand -hex 32)\"`"
                    .into(),
                field: None,
            })?;
            let (mut key, _, _) = new_key("admin", Role::Admin, None, None, "bootstrap")?;
            key.id = id.to_string();
            (key, digest(secret), String::new())
        }
    };
    store.create_api_key(&key, &digest).await?;
    store
        .audit(
            "bootstrap",
            AuditAction::KeyCreate.as_str(),
            &format!("{} (admin)", key.id),
            None,
            Utc::now(),
        )
        .await?;
    Ok(given.is_none().then_some(full))
}

/// Writes a fresh unscoped admin key straight into the database, for its owner after every
/// admin key was lost (`weir keys recover --db URL`): no server and no other key needed.
/// Recorded in the audit log. Returns the full key, shown once.
pub async fn recover_admin_key(database_url: &str) -> Result<String, String> {
    let store = weir_store::Store::connect(database_url)
        .await
        .map_err(|e| format!("cannot open the database {database_url:?}: {e}"))?;
    let written = async {
        let (key, digest, full) = new_key("recovered-admin", Role::Admin, None, None, "recovery")
            .map_err(|e| format!("{e:?}"))?;
        store
            .create_api_key(&key, &digest)
            .await
            .map_err(|e| e.to_string())?;
        store
            .audit(
                "recovery",
                "key.recover",
                &key.id,
                Some("admin key written by weir keys recover".into()),
                Utc::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(full)
    }
    .await;
    store.close().await;
    written.map_err(|e| format!("cannot write a new admin key: {e}"))
}

fn mac(secret: &[u8], run: Uuid, attempt: u32) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    m.update(format!("{run}:{attempt}").as_bytes());
    hex(&m.finalize().into_bytes()[..16])
}

/// A token valid only for `run`'s `attempt` (and its subflows), for the flow process.
pub(crate) fn run_token(secret: &[u8], run: Uuid, attempt: u32) -> String {
    format!(
        "{RUN_TOKEN_PREFIX}{}_{attempt}_{}",
        run.simple(),
        mac(secret, run, attempt)
    )
}

fn parse_run_token(secret: &[u8], token: &str) -> Option<(Uuid, u32)> {
    let rest = token.strip_prefix(RUN_TOKEN_PREFIX)?;
    let mut parts = rest.splitn(3, '_');
    let run = Uuid::parse_str(parts.next()?).ok()?;
    let attempt: u32 = parts.next()?.parse().ok()?;
    let given = parts.next()?;
    let expected = mac(secret, run, attempt);
    (!expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes())))
        .then_some((run, attempt))
}

/// Reads the bearer token (or the UI's session cookie) of a request.
pub(crate) fn bearer(parts: &Parts) -> Option<String> {
    if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        // The scheme is case-insensitive (RFC 9110).
        let (scheme, token) = h.to_str().ok()?.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    session_from_cookie(parts)
}

/// Name of the UI's session cookie.
pub(crate) const SESSION_COOKIE: &str = "weir_session";

/// The UI's session cookie, if the request has one.
pub(crate) fn session_from_cookie(parts: &Parts) -> Option<String> {
    let cookies = parts
        .headers
        .get(axum::http::header::COOKIE)?
        .to_str()
        .ok()?;
    cookies.split(';').find_map(|c| {
        let (n, v) = c.trim().split_once('=')?;
        (n == SESSION_COOKIE).then(|| v.to_string())
    })
}

/// Prefix of UI session cookies.
pub(crate) const SESSION_PREFIX: &str = "weirsess_";

/// A session for the key `key_id` until `expires` (unix seconds), signed by the server.
pub(crate) fn session_token(secret: &[u8], key_id: &str, expires: i64) -> String {
    format!(
        "{SESSION_PREFIX}{key_id}_{expires}_{}",
        session_mac(secret, key_id, expires)
    )
}

fn session_mac(secret: &[u8], key_id: &str, expires: i64) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    m.update(format!("session:{key_id}:{expires}").as_bytes());
    hex(&m.finalize().into_bytes()[..16])
}

/// The key id of a valid, unexpired session token.
fn parse_session(secret: &[u8], token: &str) -> Option<String> {
    let rest = token.strip_prefix(SESSION_PREFIX)?;
    let mut parts = rest.splitn(3, '_');
    let key_id = parts.next()?;
    let expires: i64 = parts.next()?.parse().ok()?;
    let given = parts.next()?;
    let expected = session_mac(secret, key_id, expires);
    let valid: bool = expected.as_bytes().ct_eq(given.as_bytes()).into();
    (valid && !expected.is_empty() && expires > Utc::now().timestamp()).then(|| key_id.to_string())
}

/// Resolves a token to a caller, or None when it is missing, malformed, wrong, revoked or
/// expired.
pub(crate) async fn authenticate(st: &AppState, token: &str) -> ApiResult<Option<Caller>> {
    if token.starts_with(RUN_TOKEN_PREFIX) {
        return Ok(parse_run_token(&st.run_secret, token)
            .map(|(run, attempt)| Caller::Run { run, attempt }));
    }
    let (id, secret) = if token.starts_with(SESSION_PREFIX) {
        match parse_session(&st.run_secret, token) {
            Some(id) => (id, None),
            None => return Ok(None),
        }
    } else {
        match parse_key(token) {
            Some((id, secret)) => (id.to_string(), Some(secret)),
            None => return Ok(None),
        }
    };
    let Some((key, stored)) = st.store.api_key(&id).await? else {
        return Ok(None);
    };
    // A session was signed by the server after a key check; a key is checked now.
    let matches: bool = match secret {
        Some(secret) => digest(secret).as_bytes().ct_eq(stored.as_bytes()).into(),
        None => true,
    };
    let now = Utc::now();
    if !matches || key.revoked_at.is_some() || key.expires_at.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    Ok(Some(Caller::Key {
        id: key.id,
        name: key.name,
        role: key.role,
        project: key.project,
    }))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        authenticate(st, &token)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}

fn verb(p: Permission) -> &'static str {
    match p {
        Permission::Read => "read",
        Permission::Run => "start, cancel or retry runs",
        Permission::Deploy => "deploy",
        Permission::Report => "report run states and logs",
        Permission::AgentWork => "act as an agent",
        Permission::Admin => "manage keys or read the audit log",
    }
}

impl Caller {
    /// The role, for keys.
    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Key { role, .. } => Some(*role),
            Caller::Run { .. } => None,
        }
    }

    /// The key id, for keys.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Caller::Key { id, .. } => Some(id),
            Caller::Run { .. } => None,
        }
    }

    /// Who this is, for the audit log.
    pub fn actor(&self) -> String {
        match self {
            Caller::Key { id, name, .. } => format!("{name} ({id})"),
            Caller::Run { run, attempt } => format!("run {run} attempt {attempt}"),
        }
    }

    /// 403 unless the caller's role grants `p`. A run token grants reporting on (and reading)
    /// its own run only.
    pub fn require(&self, p: Permission) -> ApiResult<()> {
        let ok = match self {
            Caller::Key { role, .. } => role.allows(p),
            Caller::Run { .. } => matches!(p, Permission::Report),
        };
        if ok {
            return Ok(());
        }
        Err(ApiError::Forbidden(match self {
            Caller::Key { role, .. } => format!("a key with role {role} may not {}", verb(p)),
            Caller::Run { .. } => format!("a run token may not {}; use an API key", verb(p)),
        }))
    }

    /// Projects the caller sees: `None` for all.
    pub fn projects(&self) -> Option<Vec<String>> {
        match self {
            Caller::Key { project: None, .. } => None,
            Caller::Key {
                project: Some(p), ..
            } => Some(vec![p.clone()]),
            Caller::Run { .. } => Some(vec![]),
        }
    }

    /// The projects to list for a request asking for `requested` (or all): what the caller
    /// sees, narrowed to the request. `None` means every project.
    pub fn narrow(&self, requested: Option<String>) -> Option<Vec<String>> {
        match requested {
            Some(p) if self.sees(&p) => Some(vec![p]),
            Some(_) => Some(vec![]),
            None => self.projects(),
        }
    }

    /// Whether the caller may see `project`.
    pub fn sees(&self, project: &str) -> bool {
        self.projects()
            .is_none_or(|ps| ps.iter().any(|p| p == project))
    }

    /// 404 (as if it did not exist) unless the caller may see `project`.
    pub fn check_project(&self, project: &str, what: impl FnOnce() -> String) -> ApiResult<()> {
        if self.sees(project) {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("{} not found", what())))
        }
    }

    /// Checks the caller may touch `run` with permission `p`: its role, its project, and for
    /// agent keys that the run was claimed by one of its agents (which may then also read
    /// it), for run tokens that it is their run (or a subflow of it). Anything else is 404.
    pub async fn check_run(&self, st: &AppState, run: &Run, p: Permission) -> ApiResult<()> {
        let hidden = || ApiError::NotFound(format!("flow run {} not found", run.id));
        match self {
            Caller::Key { role, id, .. } => {
                self.check_project(&run.project, || format!("flow run {}", run.id))?;
                if *role == Role::Agent {
                    let Some(agent) = run.agent_id else {
                        return Err(hidden());
                    };
                    // A database failure is a 503 the caller retries, never a 404.
                    let owner = st.store.agent_key(agent).await?;
                    if owner.as_deref() != Some(id.as_str()) {
                        return Err(hidden());
                    }
                    // An agent reads the runs it claimed (to settle how a launch ended).
                    if p == Permission::Read {
                        return Ok(());
                    }
                }
                self.require(p)
            }
            Caller::Run {
                run: token_run,
                attempt,
            } => {
                if !matches!(p, Permission::Report | Permission::Read) {
                    return Err(ApiError::Forbidden(format!(
                        "a run token may not {}; use an API key",
                        verb(p)
                    )));
                }
                let mut current = run.clone();
                for _ in 0..MAX_SUBFLOW_DEPTH {
                    if current.id == *token_run {
                        if current.attempt != *attempt {
                            return Err(ApiError::Unauthorized);
                        }
                        // The token ends with its attempt: the flow process sends everything
                        // before its final state, so nothing legitimate comes later.
                        if current.state.is_terminal() {
                            return Err(ApiError::Unauthorized);
                        }
                        return Ok(());
                    }
                    let Some(parent) = current.parent_flow_run_id else {
                        break;
                    };
                    current = st.store.flow_run(parent).await.map_err(|_| hidden())?;
                }
                Err(hidden())
            }
        }
    }

    /// Records an action in the audit log (failures are logged, never fatal).
    pub async fn audit(
        &self,
        st: &AppState,
        action: AuditAction,
        target: &str,
        detail: Option<String>,
    ) {
        let action = action.as_str();
        if let Err(error) = st
            .store
            .audit(&self.actor(), action, target, detail, Utc::now())
            .await
        {
            tracing::warn!(message = "audit log write failed", %error, action, target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_tokens_verify_only_for_their_run_and_attempt() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let run = Uuid::now_v7();
        let t = run_token(secret, run, 2);
        assert_eq!(parse_run_token(secret, &t), Some((run, 2)));
        assert_eq!(
            parse_run_token(b"another secret, another server!", &t),
            None
        );
        let forged = t.replace("_2_", "_3_");
        assert_eq!(parse_run_token(secret, &forged), None);
        assert_eq!(parse_run_token(secret, "weirrun_garbage"), None);
    }

    #[test]
    fn keys_are_stored_as_digests() {
        let (key, digest_hex, full) =
            new_key("ci", Role::Developer, None, None, "test").expect("key");
        assert!(full.starts_with("weir_"));
        let (id, secret) = parse_key(&full).expect("well-formed");
        assert_eq!(id, key.id);
        assert_eq!(digest(secret), digest_hex);
        assert!(!digest_hex.contains(secret));
    }
}
