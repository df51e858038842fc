//! The permission of each endpoint, written in its handler's signature so the router, the
//! OpenAPI document and the checks come from the one registration.
//!
//! A handler takes one of two extractors, parameterised by a marker of [`perm`]:
//!
//! - [`Require<P>`]: the caller's role must grant `P`, checked before the handler runs (401
//!   without valid credentials, 403 when the role does not grant it). Project scoping is
//!   still the handler's, through [`Caller::check_project`] and friends.
//! - [`OnRun<P>`]: `P` is needed on a particular run, checked by [`OnRun::run`] against that
//!   run (its project, for agent keys the agent that claimed it, for run tokens their own run
//!   and attempt). A run the caller may not touch answers 404.
//!
//! Both document themselves ([`aide::OperationInput`]): the operation gets the bearer
//! security requirement, `x-weir-permission` (`{"permission": "read", "checked": "role" |
//! "run"}`) and its 401/403 answers. A handler with neither extractor is public.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use aide::generate::GenContext;
use aide::openapi::{Operation, Response, StatusCode};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::marker::PhantomData;
use std::ops::Deref;
use uuid::Uuid;
use weir_core::auth::Permission;
use weir_core::run::Run;

/// Marker types naming a [`Permission`] at the type level.
pub mod perm {
    use weir_core::auth::Permission;

    /// A permission as a type, for [`super::Require`] and [`super::OnRun`].
    pub trait Perm: Send + Sync + 'static {
        /// The permission a route names by this type.
        const PERMISSION: Permission;
    }

    macro_rules! perms {
        ($($name:ident => $p:ident;)*) => {$(
            #[doc = concat!("[`Permission::", stringify!($p), "`].")]
            pub struct $name;
            impl Perm for $name {
                const PERMISSION: Permission = Permission::$p;
            }
        )*};
    }

    perms! {
        Read => Read;
        Run => Run;
        Deploy => Deploy;
        Report => Report;
        AgentWork => AgentWork;
        Admin => Admin;
    }
}

use perm::Perm;

/// A caller whose role grants `P` (see the module doc).
pub struct Require<P> {
    /// The caller, already checked to hold `P`.
    pub caller: Caller,
    _p: PhantomData<P>,
}

impl<P: Perm> Require<P> {
    /// Checks `caller` for `P`: 403 naming what the role may not do.
    pub fn new(caller: Caller) -> ApiResult<Self> {
        caller.require(P::PERMISSION)?;
        Ok(Require {
            caller,
            _p: PhantomData,
        })
    }
}

impl<P> Deref for Require<P> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<P: Perm> FromRequestParts<AppState> for Require<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        Require::new(Caller::from_request_parts(parts, st).await?)
    }
}

/// A caller who needs `P` on the run the request names (see the module doc).
pub struct OnRun<P> {
    /// The caller, already checked to hold `P` on the run of the path.
    pub caller: Caller,
    _p: PhantomData<P>,
}

impl<P: Perm> OnRun<P> {
    /// The caller, whose permission on a run is checked when the run is loaded.
    pub fn new(caller: Caller) -> Self {
        OnRun {
            caller,
            _p: PhantomData,
        }
    }

    /// The permission this endpoint needs on its run.
    pub fn permission(&self) -> Permission {
        P::PERMISSION
    }

    /// Loads run `id` if the caller may touch it with `P`; 404 for one it may not see.
    pub async fn run(&self, st: &AppState, id: Uuid) -> ApiResult<Run> {
        visible_run(st, &self.caller, id, P::PERMISSION).await
    }
}

impl<P> Deref for OnRun<P> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<P: Perm> FromRequestParts<AppState> for OnRun<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        Ok(OnRun::new(Caller::from_request_parts(parts, st).await?))
    }
}

/// Loads a run the caller may touch with `p`; 404 for one it may not see.
pub(crate) async fn visible_run(
    st: &AppState,
    caller: &Caller,
    id: Uuid,
    p: Permission,
) -> ApiResult<Run> {
    let run = st.store.flow_run(id).await?;
    caller.check_run(st, &run, p).await?;
    Ok(run)
}

/// Documents an operation as needing `p`, checked as `checked` (`role` or `run`).
fn document(operation: &mut Operation, p: Permission, checked: &str) {
    operation.security = vec![[("bearer".to_string(), vec![])].into_iter().collect()];
    operation.extensions.insert(
        "x-weir-permission".into(),
        serde_json::json!({"permission": p.as_str(), "checked": checked}),
    );
}

fn auth_responses(ctx: &mut GenContext) -> Vec<(Option<StatusCode>, Response)> {
    vec![
        crate::openapi::error_response(ctx, 401, "Missing, invalid, revoked or expired key"),
        crate::openapi::error_response(ctx, 403, "The caller's role does not grant this"),
    ]
}

impl<P: Perm> aide::OperationInput for Require<P> {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        document(operation, P::PERMISSION, "role");
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        auth_responses(ctx)
    }
}

impl<P: Perm> aide::OperationInput for OnRun<P> {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        document(operation, P::PERMISSION, "run");
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        auth_responses(ctx)
    }
}
