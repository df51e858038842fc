//! Identities and what they may do: roles, permissions, and the shape of API keys.
//!
//! Deny by default: every endpoint names the [`Permission`] it needs, and a role grants a
//! fixed set of them. Project scoping and "only runs it claimed" are checked by the server on
//! top of this table.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A service account's role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including keys and the audit log.
    Admin,
    /// Deploy, run, cancel, retry and read, in its projects.
    Developer,
    /// Register and heartbeat, claim from its queues, and report on the runs it claimed.
    Agent,
    /// Read.
    Viewer,
}

/// Something an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read projects, deployments, runs, task runs, logs, agents, queues.
    Read,
    /// Start, cancel and retry runs.
    Run,
    /// Create or change deployments and projects, pause and resume schedules.
    Deploy,
    /// Propose states, write task runs and logs, heartbeat (for runs the caller may touch).
    Report,
    /// Register as an agent, heartbeat, claim runs.
    AgentWork,
    /// Manage API keys and read the audit log.
    Admin,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Run,
        Permission::Deploy,
        Permission::Report,
        Permission::AgentWork,
        Permission::Admin,
    ];

    /// The name the OpenAPI document gives it (`x-weir-permission`).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Run => "run",
            Permission::Deploy => "deploy",
            Permission::Report => "report",
            Permission::AgentWork => "agent_work",
            Permission::Admin => "admin",
        }
    }
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Developer, Role::Agent, Role::Viewer];

    /// Whether this role grants `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Admin => true,
            Role::Developer => matches!(p, P::Read | P::Run | P::Deploy | P::Report),
            Role::Agent => matches!(p, P::AgentWork | P::Report),
            Role::Viewer => matches!(p, P::Read),
        }
    }

    /// The name used in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    /// Whether a key of this role, scoped to `scope`, may create a key of role `role` scoped
    /// to `project`: only admins create keys, and never one with more power than their own
    /// (a project-scoped admin creates keys for its project only).
    pub fn may_grant(self, scope: Option<&str>, role: Role, project: Option<&str>) -> bool {
        if self != Role::Admin {
            return false;
        }
        let _ = role;
        match scope {
            None => true,
            Some(s) => project == Some(s),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use admin, developer, agent or viewer"))
    }
}

/// Prefix of every API key, so secret scanners can find leaked ones.
pub const KEY_PREFIX: &str = "weir_";
/// Prefix of per-run tokens handed to flow processes.
pub const RUN_TOKEN_PREFIX: &str = "weirrun_";

/// Splits an API key `weir_<id>_<secret>` into its public id and its secret.
pub fn parse_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (id.len() == 12 && hex(id) && secret.len() == 64 && hex(secret)).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_deny_by_default() {
        assert!(Role::Admin.allows(Permission::Admin));
        assert!(!Role::Developer.allows(Permission::Admin));
        assert!(!Role::Developer.allows(Permission::AgentWork));
        assert!(!Role::Agent.allows(Permission::Deploy));
        assert!(!Role::Agent.allows(Permission::Read));
        assert!(!Role::Viewer.allows(Permission::Run));
        assert!(Role::Viewer.allows(Permission::Read));
    }

    #[test]
    fn grants_never_exceed_the_granter() {
        assert!(Role::Admin.may_grant(None, Role::Admin, None));
        assert!(Role::Admin.may_grant(Some("dev"), Role::Viewer, Some("dev")));
        assert!(!Role::Admin.may_grant(Some("dev"), Role::Viewer, None));
        assert!(!Role::Admin.may_grant(Some("dev"), Role::Viewer, Some("main")));
        assert!(!Role::Developer.may_grant(None, Role::Viewer, None));
    }

    #[test]
    fn keys_parse() {
        let key = format!("weir_{}_{}", "a1b2c3d4e5f6", "0".repeat(64));
        assert_eq!(
            parse_key(&key),
            Some(("a1b2c3d4e5f6", "0".repeat(64).as_str()))
        );
        assert_eq!(parse_key("weir_short_x"), None);
        assert_eq!(parse_key("Bearer xyz"), None);
        assert_eq!("viewer".parse::<Role>(), Ok(Role::Viewer));
        assert!("root".parse::<Role>().is_err());
    }
}
