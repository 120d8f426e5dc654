//! Per-call resource limits: defaults, tenant and plugin overrides, and the memory limiter.

use serde::{Deserialize, Serialize};

/// Limits applied to one plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Wall-clock deadline of one call, including host work such as HTTP.
    pub timeout_ms: u64,
    /// Largest linear memory one instance may grow to.
    pub memory_bytes: u64,
    /// Largest total size of the strings a call may return.
    pub max_output_bytes: u64,
    /// Deadline of one outbound HTTP request.
    pub http_timeout_ms: u64,
    /// Largest outbound HTTP response body.
    pub http_max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 2_000,
            memory_bytes: 64 * 1024 * 1024,
            max_output_bytes: 4 * 1024 * 1024,
            http_timeout_ms: 10_000,
            http_max_response_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The largest memory cap any tenant may configure: the pooling allocator reserves slots of
/// this size.
pub const MAX_MEMORY_BYTES: u64 = 512 * 1024 * 1024;

/// What the operator lets any one tenant ask for: a tenant admin writes its config, and a
/// config asking for long deadlines, large memories or many plugin instances would let one
/// tenant hold the shared instance pool for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ceilings {
    /// Longest deadline of one call a tenant may configure.
    pub timeout_ms: u64,
    /// Largest memory cap a tenant may configure.
    pub memory_bytes: u64,
    /// Most plugin instances (connectors, classifiers, shadows, suggesters) in one tenant config.
    pub plugin_instances: usize,
}

impl Default for Ceilings {
    fn default() -> Self {
        Ceilings {
            timeout_ms: 60_000,
            memory_bytes: MAX_MEMORY_BYTES,
            plugin_instances: 64,
        }
    }
}

impl Ceilings {
    /// Refuse `limits` above the ceilings, naming the key a tenant admin would change.
    pub fn check(&self, limits: &Limits) -> Result<(), String> {
        if limits.timeout_ms > self.timeout_ms {
            return Err(format!(
                "timeout_ms {} is above the operator's ceiling of {}",
                limits.timeout_ms, self.timeout_ms
            ));
        }
        if limits.memory_bytes > self.memory_bytes {
            return Err(format!(
                "memory_mb {} is above the operator's ceiling of {}",
                limits.memory_bytes >> 20,
                self.memory_bytes >> 20
            ));
        }
        Ok(())
    }
}

/// Optional overrides, as written in a tenant config (`[limits]` or per plugin).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub max_output_kb: Option<u64>,
    pub http_timeout_ms: Option<u64>,
    pub http_max_response_kb: Option<u64>,
}

impl LimitOverrides {
    /// `self` applied over `base`.
    pub fn apply(&self, base: Limits) -> Limits {
        Limits {
            timeout_ms: self.timeout_ms.unwrap_or(base.timeout_ms),
            memory_bytes: self
                .memory_mb
                .map_or(base.memory_bytes, |m| m * 1024 * 1024),
            max_output_bytes: self
                .max_output_kb
                .map_or(base.max_output_bytes, |k| k * 1024),
            http_timeout_ms: self.http_timeout_ms.unwrap_or(base.http_timeout_ms),
            http_max_response_bytes: self
                .http_max_response_kb
                .map_or(base.http_max_response_bytes, |k| k * 1024),
        }
    }

    /// Reject values that would disable a limit or exceed what the host can enforce.
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout_ms.is_some_and(|t| t == 0 || t > 600_000) {
            return Err("timeout_ms must be between 1 and 600000".into());
        }
        if self
            .memory_mb
            .is_some_and(|m| m == 0 || m * 1024 * 1024 > MAX_MEMORY_BYTES)
        {
            return Err(format!(
                "memory_mb must be between 1 and {}",
                MAX_MEMORY_BYTES >> 20
            ));
        }
        if self.max_output_kb == Some(0) || self.http_max_response_kb == Some(0) {
            return Err("size limits must be positive".into());
        }
        if self.http_timeout_ms == Some(0) {
            return Err("http_timeout_ms must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_refuse_what_a_tenant_may_not_ask_for() {
        let c = Ceilings::default();
        assert!(c.check(&Limits::default()).is_ok());
        let long = LimitOverrides {
            timeout_ms: Some(600_000),
            ..Default::default()
        }
        .apply(Limits::default());
        assert!(long.timeout_ms <= 600_000 && c.check(&long).unwrap_err().contains("timeout_ms"));
        let big = Limits {
            memory_bytes: MAX_MEMORY_BYTES,
            ..Limits::default()
        };
        let tight = Ceilings {
            memory_bytes: 128 << 20,
            ..c
        };
        assert!(tight.check(&big).unwrap_err().contains("memory_mb 512"));
    }
}

/// Enforces the memory cap of one store and remembers whether it was hit, so a failure can be
/// reported as memory exhaustion rather than a bare trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub limit: usize,
    pub hit: bool,
    /// The largest linear memory the plugin asked for and got (for metrics).
    pub peak: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
