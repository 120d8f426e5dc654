//! `switchboard:plugin/log` and the plugin's stdout/stderr, both into `tracing` with the
//! tenant, plugin and version as fields. Bounded per call so a chatty plugin cannot flood logs.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use switchboard_contract::switchboard::plugin::log::{Host, Level};

/// Longest logged message; longer ones are cut.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Most bytes of log output one call may produce; the rest is dropped.
pub const MAX_BYTES_PER_CALL: usize = 64 * 1024;

/// Who is logging, attached to every event.
#[derive(Debug, Clone)]
pub struct LogContext {
    pub tenant: Arc<str>,
    pub plugin: Arc<str>,
    pub version: Arc<str>,
    /// Bytes still allowed in this call, shared by `log` and stdout/stderr.
    pub budget: Arc<AtomicUsize>,
}

impl LogContext {
    pub fn new(tenant: &str, plugin: &str, version: &str) -> Self {
        LogContext {
            tenant: tenant.into(),
            plugin: plugin.into(),
            version: version.into(),
            budget: Arc::new(AtomicUsize::new(MAX_BYTES_PER_CALL)),
        }
    }

    /// Take `n` bytes from the budget; false when it is spent.
    fn spend(&self, n: usize) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }

    pub fn emit(&self, level: Level, source: &str, message: &str) {
        let mut end = message.len().min(MAX_MESSAGE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        if !self.spend(message.len().max(1)) {
            return;
        }
        let (tenant, plugin, version) = (&*self.tenant, &*self.plugin, &*self.version);
        match level {
            Level::Trace => tracing::trace!(tenant, plugin, version, source, "{message}"),
            Level::Debug => tracing::debug!(tenant, plugin, version, source, "{message}"),
            Level::Info => tracing::info!(tenant, plugin, version, source, "{message}"),
            Level::Warn => tracing::warn!(tenant, plugin, version, source, "{message}"),
            Level::Error => tracing::error!(tenant, plugin, version, source, "{message}"),
        }
    }
}

/// A call's `log` import writes through its own context (linked with `HasSelf<LogContext>`).
impl Host for LogContext {
    async fn log(&mut self, level: Level, message: String) {
        self.emit(level, "log", &message);
    }
}

/// A plugin's stdout or stderr: complete lines become log events.
#[derive(Clone)]
pub struct LogPipe {
    ctx: LogContext,
    source: &'static str,
    level: Level,
}

impl LogPipe {
    pub fn stdout(ctx: LogContext) -> Self {
        LogPipe {
            ctx,
            source: "stdout",
            level: Level::Info,
        }
    }
    pub fn stderr(ctx: LogContext) -> Self {
        LogPipe {
            ctx,
            source: "stderr",
            level: Level::Warn,
        }
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            pipe: self.clone(),
            line: Vec::new(),
        })
    }

    /// Writes are consumed synchronously (they only format a log line), so the stream is
    /// always ready: no background task and no round trip per `println!`.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter {
            pipe: self.clone(),
            line: Vec::new(),
        })
    }
}

struct LineWriter {
    pipe: LogPipe,
    line: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, buf: &[u8]) {
        for &b in buf {
            if b == b'\n' {
                self.flush_line();
            } else if self.line.len() < MAX_MESSAGE_BYTES {
                self.line.push(b);
            }
        }
    }

    fn flush_line(&mut self) {
        if !self.line.is_empty() {
            let text = String::from_utf8_lossy(&self.line).into_owned();
            self.pipe
                .ctx
                .emit(self.pipe.level, self.pipe.source, text.trim_end());
            self.line.clear();
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_line();
        Poll::Ready(Ok(()))
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_line();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_cannot_log_more_than_its_budget() {
        let ctx = LogContext::new("t", "p", "1");
        let line = "x".repeat(1000);
        let mut written = 0;
        for _ in 0..1000 {
            if ctx.spend(line.len()) {
                written += line.len();
            }
        }
        assert_eq!(written, MAX_BYTES_PER_CALL / 1000 * 1000);
        assert!(!ctx.spend(1000), "the budget stays spent");
        // Oversized messages are cut, not refused outright.
        let fresh = LogContext::new("t", "p", "1");
        fresh.emit(Level::Info, "log", &"é".repeat(MAX_MESSAGE_BYTES));
        let left = fresh.budget.load(Ordering::Relaxed);
        assert_eq!(MAX_BYTES_PER_CALL - left, MAX_MESSAGE_BYTES);
    }
}
