//! What an operation can reach: the resolved provider configuration, a log that
//! goes to the engine (never stdout), the resource's URN, and cancellation.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::ProviderConfig;

/// Message severity, as the engine shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Hidden unless the user asks for verbose output.
    Debug,
    /// Shown as a diagnostic.
    Info,
    /// Shown as a warning.
    Warning,
    /// Shown as an error.
    Error,
}

/// Where user-visible messages go: the engine's Log RPC in the plugin, a buffer in tests.
pub trait LogSink: Send + Sync {
    /// Sends one message; `ephemeral` marks a status line shown in the progress
    /// display rather than kept in the diagnostics.
    fn log(&self, severity: Severity, urn: &str, message: &str, ephemeral: bool);
}

/// A sink that drops everything (schema generation, benches).
#[derive(Debug, Default)]
pub struct NullSink;

impl LogSink for NullSink {
    fn log(&self, _: Severity, _: &str, _: &str, _: bool) {}
}

/// The environment of one operation.
#[derive(Clone)]
pub struct Context {
    config: Arc<ProviderConfig>,
    sink: Arc<dyn LogSink>,
    urn: String,
    cancelled: watch::Receiver<bool>,
    timeout: Option<Duration>,
}

impl Context {
    /// A context for the resource `urn` (empty for invokes).
    pub fn new(
        config: Arc<ProviderConfig>,
        sink: Arc<dyn LogSink>,
        urn: impl Into<String>,
        cancelled: watch::Receiver<bool>,
        timeout: Option<Duration>,
    ) -> Self {
        Context { config, sink, urn: urn.into(), cancelled, timeout }
    }

    /// The provider configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The resource's URN (empty for invokes).
    pub fn urn(&self) -> &str {
        &self.urn
    }

    /// The timeout the user set with `customTimeouts`, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// A diagnostic attached to this resource.
    pub fn log(&self, severity: Severity, message: &str) {
        self.sink.log(severity, &self.urn, message, false);
    }

    /// An ephemeral status line ("vm 101: waiting for guest agent, 12s").
    pub fn status(&self, message: &str) {
        self.sink.log(Severity::Info, &self.urn, message, true);
    }

    /// Whether the engine has asked the provider to stop.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Resolves when the engine asks the provider to stop.
    pub async fn cancelled(&self) {
        let mut rx = self.cancelled.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                // Sender gone: the provider is shutting down, treat as cancelled.
                return;
            }
        }
    }
}
