//! Counting the ECS requests a client really sends, by operation: an SDK interceptor that
//! sees every attempt on the wire (the SDK's own retries included), so benchmarks and logs
//! report what AWS saw, not what the code meant to call.

use aws_sdk_ecs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ecs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ecs::error::BoxError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Requests sent so far, by ECS operation name (`RunTask`, `DescribeTasks`, …). Cheap to
/// clone; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct Requests(Arc<Mutex<BTreeMap<String, u64>>>);

impl Requests {
    /// Requests of `operation` sent so far.
    pub fn get(&self, operation: &str) -> u64 {
        self.snapshot().get(operation).copied().unwrap_or(0)
    }

    /// Every operation's count.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `config` with this counter's interceptor added.
    pub fn attach(&self, config: aws_sdk_ecs::config::Builder) -> aws_sdk_ecs::config::Builder {
        config.interceptor(Counter(self.clone()))
    }
}

#[derive(Debug)]
struct Counter(Requests);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "weir-ecs-request-counter"
    }

    /// ECS speaks JSON 1.1: the operation is the `X-Amz-Target` header's last part.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target");
        let op = target
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown");
        let mut counts = (self.0).0.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(op.to_string()).or_default() += 1;
        Ok(())
    }
}
