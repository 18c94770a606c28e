//! The lab for CLI tests: the Proxmox VE API on its own runtime thread (so a
//! test can block on `pulumi` while the lab serves the plugin), a loopback HTTP
//! file server for downloads, and the environment the plugin reads.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use proxmox_talos_lab::in_process::{self, InProcessLab};
use proxmox_talos_lab::pve::lab_config::LabConfig;

/// A running lab and the runtime serving it.
pub struct CliLab {
    pub lab: InProcessLab,
    pub runtime: tokio::runtime::Runtime,
    pub state_dir: tempfile::TempDir,
}

impl CliLab {
    pub fn start(config: LabConfig) -> CliLab {
        Self::start_in(config, tempfile::tempdir().unwrap())
    }

    pub fn start_in(config: LabConfig, state_dir: tempfile::TempDir) -> CliLab {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let lab = runtime.block_on(in_process::start(config, state_dir.path())).unwrap();
        CliLab { lab, runtime, state_dir }
    }

    /// What the plugin needs to reach the lab with an API token.
    pub fn token_env(&self) -> Vec<(String, String)> {
        vec![
            ("PROXMOX_VE_ENDPOINT".into(), self.lab.endpoint.clone()),
            ("PROXMOX_VE_API_TOKEN".into(), self.lab.api_token()),
            ("PROXMOX_VE_CA_CERT".into(), self.lab.ca_path.display().to_string()),
        ]
    }

    /// Serves `files` (name → bytes) over HTTP on 127.0.0.1; returns the base URL.
    pub fn serve_files(&self, files: HashMap<String, Vec<u8>>) -> String {
        let files = Arc::new(files);
        let listener = self.runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        self.runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let files = files.clone();
                tokio::spawn(serve_one(stream, files));
            }
        });
        format!("http://{addr}")
    }
}

async fn serve_one(mut stream: tokio::net::TcpStream, files: Arc<HashMap<String, Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
    let response = match files.get(name) {
        Some(body) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if method != "HEAD" {
                r.extend_from_slice(body);
            }
            r
        }
        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}
