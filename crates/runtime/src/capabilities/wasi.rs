//! The WASI context of one call: nothing ambient. No environment, no arguments, no sockets,
//! no stdin; stdout/stderr go to the log; at most one directory, and only if the tenant
//! grants it, opened read-only through cap-std (wasmtime-wasi's preopens).

use std::path::PathBuf;

use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::log::{LogContext, LogPipe};

/// Where a granted directory appears inside the plugin.
pub const GRANTED_DIR_GUEST_PATH: &str = "/data";

/// Build the per-call WASI context.
pub fn context(log: &LogContext, granted_dir: Option<&PathBuf>) -> std::io::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(LogPipe::stdout(log.clone()))
        .stderr(LogPipe::stderr(log.clone()))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(dir) = granted_dir {
        builder
            .preopened_dir(dir, GRANTED_DIR_GUEST_PATH, FsPerms::ReadOnly)
            .map_err(|e| {
                std::io::Error::other(format!("granted directory {}: {e}", dir.display()))
            })?;
    }
    Ok(builder.build())
}
