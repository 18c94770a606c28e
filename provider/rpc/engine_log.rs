//! The engine's Log RPC as a [`LogSink`]: every user-visible message, ephemeral
//! status lines included, goes here and never to stdout. Messages are queued and
//! sent in order by one task, so a slow engine never blocks an operation.

use std::sync::Mutex;

use tokio::sync::mpsc;
use tonic::transport::Endpoint;

use super::proto::pulumirpc::{engine_client::EngineClient, LogRequest, LogSeverity};
use crate::framework::{LogSink, Severity};

/// Sends log messages to the engine once its address is known.
#[derive(Default)]
pub struct EngineLog {
    queue: Mutex<Option<mpsc::UnboundedSender<LogRequest>>>,
}

impl EngineLog {
    /// A sink with no engine yet: messages are dropped until [`EngineLog::connect`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts sending to the engine at `address` (`127.0.0.1:port`). A second call
    /// with a new address replaces the first (Attach after launch).
    pub fn connect(&self, address: &str) {
        let Ok(endpoint) = Endpoint::from_shared(format!("http://{address}")) else { return };
        let channel = endpoint.connect_lazy();
        let (tx, mut rx) = mpsc::unbounded_channel::<LogRequest>();
        tokio::spawn(async move {
            let mut client = EngineClient::new(channel);
            while let Some(req) = rx.recv().await {
                // A failed log is not worth failing an operation for.
                let _ = client.log(req).await;
            }
        });
        *self.queue.lock().expect("log queue lock") = Some(tx);
    }
}

impl LogSink for EngineLog {
    fn log(&self, severity: Severity, urn: &str, message: &str, ephemeral: bool) {
        let severity = match severity {
            Severity::Debug => LogSeverity::Debug,
            Severity::Info => LogSeverity::Info,
            Severity::Warning => LogSeverity::Warning,
            Severity::Error => LogSeverity::Error,
        };
        if let Some(tx) = self.queue.lock().expect("log queue lock").as_ref() {
            let _ = tx.send(LogRequest {
                severity: severity as i32,
                message: message.to_string(),
                urn: urn.to_string(),
                stream_id: 0,
                ephemeral,
            });
        }
    }
}
