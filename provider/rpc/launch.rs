//! How the engine starts the plugin: parse its arguments (the engine address is
//! the last one, after optional `--logtostderr`, `-v=N`, `--tracing X`), bind
//! 127.0.0.1:0, print the port as the first stdout line, serve until SIGINT or
//! SIGTERM. Without an address the plugin waits for `Attach` (debug mode).

use std::io::Write;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use super::engine_log::EngineLog;
use super::proto::pulumirpc::resource_provider_server::ResourceProviderServer;
use super::server::ProviderService;
use crate::framework::Registry;

/// The engine's gRPC message limit (400 MiB); tonic's default is 4 MiB.
pub const MAX_MESSAGE_SIZE: usize = 400 * 1024 * 1024;

/// The engine address from the plugin's arguments, if any.
pub fn engine_address(args: &[String]) -> Option<String> {
    let mut positional = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tracing" => {
                it.next();
            }
            flag if flag.starts_with('-') => {} // --logtostderr, -v=9, --tracing=x
            addr => positional = Some(addr.to_string()),
        }
    }
    positional
}

/// Serves the provider on 127.0.0.1, printing the port first.
pub async fn serve(registry: Registry, engine: Option<String>) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    {
        // The engine reads stdout up to the first newline: nothing may come before the port.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{port}")?;
        out.flush()?;
    }
    let log = Arc::new(EngineLog::new());
    if let Some(addr) = &engine {
        log.connect(addr);
    }
    let service = ResourceProviderServer::new(ProviderService::new(registry, log))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    Server::builder()
        .add_service(service)
        // Without TCP_NODELAY small responses wait ~40 ms for a delayed ACK.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown_signal())
        .await
        .map_err(std::io::Error::other)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::engine_address;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_address_is_the_last_positional_argument() {
        assert_eq!(engine_address(&args(&["127.0.0.1:1234"])).as_deref(), Some("127.0.0.1:1234"));
        assert_eq!(
            engine_address(&args(&["--logtostderr", "-v=9", "--tracing", "127.0.0.1:9", "127.0.0.1:55"])).as_deref(),
            Some("127.0.0.1:55")
        );
        assert_eq!(engine_address(&args(&["--tracing=file:/x", "127.0.0.1:7"])).as_deref(), Some("127.0.0.1:7"));
        assert_eq!(engine_address(&args(&["--logtostderr"])), None);
        assert_eq!(engine_address(&[]), None);
    }
}
