//! The SFTP operations the provider makes on a node, over one subsystem
//! channel (`russh-sftp`'s raw session: it exposes the extensions).
//!
//! Owns: the atomic write ([`Sftp::write_atomic`]: a hidden temporary name
//! in the target directory, written with several requests in flight while
//! the content is hashed, its mode set explicitly (no umask), the checksum
//! verified, then renamed over the target with `posix-rename@openssh.com`,
//! which replaces atomically; servers without it get remove + rename), reads
//! bounded by a size limit, stat, mkdir and remove; and SFTP status codes in
//! errors (`No such file` is recognisable, see [`SshError::is_not_found`]).
//! Must not: know storages or content types (callers pass directories).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;

use super::SshError;

/// Bytes per write request (every server takes 32 KiB).
const CHUNK: usize = 32 * 1024;
/// Write requests in flight.
const WINDOW: usize = 16;
/// Seconds one SFTP request may take.
const REQUEST_TIMEOUT: u64 = 60;

const POSIX_RENAME: &str = "posix-rename@openssh.com";

/// An SFTP session.
pub struct Sftp {
    raw: Arc<RawSftpSession>,
    addr: String,
    posix_rename: bool,
}

/// What [`Sftp::write_atomic`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
}

fn reason(e: &SftpError) -> String {
    match e {
        SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => "No such file".into(),
        SftpError::Status(s) if !s.error_message.is_empty() => s.error_message.clone(),
        SftpError::Status(s) => s.status_code.to_string(),
        other => other.to_string(),
    }
}

fn is_eof(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::Eof)
}

fn is_no_such_file(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// An SFTP `string`: u32 length, bytes.
fn sftp_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A name no other writer picks: `.NAME.PID-N-NANOS.tmp` (hidden: PVE lists no dot files).
fn temp_name(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!(".{name}.{}-{n}-{nanos}.tmp", std::process::id())
}

/// `dir/name` without doubling the slash.
pub fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

impl Sftp {
    /// Starts SFTP on a subsystem channel's stream.
    pub(super) async fn start<S>(stream: S, addr: &str) -> Result<Sftp, SshError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let raw = RawSftpSession::new(stream);
        raw.set_timeout(REQUEST_TIMEOUT);
        let version = raw.init().await.map_err(|e| SshError::Sftp {
            op: "start",
            path: addr.to_string(),
            reason: format!("{} (is the SFTP subsystem enabled in the node's sshd_config?)", reason(&e)),
        })?;
        let posix_rename = version.extensions.get(POSIX_RENAME).is_some_and(|v| v == "1");
        Ok(Sftp { raw: Arc::new(raw), addr: addr.to_string(), posix_rename })
    }

    fn err(&self, op: &'static str, path: &str, e: &SftpError) -> SshError {
        SshError::Sftp { op, path: format!("{}:{path}", self.addr), reason: reason(e) }
    }

    /// The attributes of `path`; `None` when it does not exist.
    pub async fn stat(&self, path: &str) -> Result<Option<FileAttributes>, SshError> {
        match self.raw.stat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(e) if is_no_such_file(&e) => Ok(None),
            Err(e) => Err(self.err("stat", path, &e)),
        }
    }

    /// Makes the directory `path` (mode 0755) when it does not exist; its parent must.
    pub async fn ensure_dir(&self, path: &str) -> Result<(), SshError> {
        match self.stat(path).await? {
            Some(a) if a.is_dir() => Ok(()),
            Some(_) => Err(SshError::Sftp {
                op: "mkdir",
                path: format!("{}:{path}", self.addr),
                reason: "exists and is not a directory".into(),
            }),
            None => {
                let attrs = FileAttributes { permissions: Some(0o755), ..FileAttributes::empty() };
                self.raw.mkdir(path, attrs).await.map(|_| ()).map_err(|e| self.err("mkdir", path, &e))
            }
        }
    }

    /// Writes `source` to `dir/name` atomically with `mode`: readers see the old file or
    /// the whole new one. With `expected_sha256`, a different content is not renamed into
    /// place. `progress` hears the bytes written so far.
    pub async fn write_atomic<R: AsyncRead + Unpin>(
        &self,
        dir: &str,
        name: &str,
        mut source: R,
        mode: u32,
        expected_sha256: Option<&str>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Written, SshError> {
        let target = join(dir, name);
        let temp = join(dir, &temp_name(name));
        let attrs = FileAttributes { permissions: Some(mode), ..FileAttributes::empty() };
        let handle = self
            .raw
            .open(&temp, OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE, attrs.clone())
            .await
            .map_err(|e| self.err("open", &temp, &e))?
            .handle;
        let written = self.write_handle(&handle, &temp, &mut source, progress).await;
        let written = match written {
            Ok(w) => {
                self.raw.fsetstat(handle.clone(), attrs).await.map(|_| w).map_err(|e| self.err("chmod", &temp, &e))
            }
            Err(e) => Err(e),
        };
        let closed = self.raw.close(handle).await.map_err(|e| self.err("close", &temp, &e));
        let result = written.and_then(|w| closed.map(|_| w)).and_then(|w| match expected_sha256 {
            Some(expected) if !expected.eq_ignore_ascii_case(&w.sha256) => Err(SshError::Checksum {
                path: target.clone(),
                expected: expected.to_ascii_lowercase(),
                actual: w.sha256,
            }),
            _ => Ok(w),
        });
        let result = match result {
            Ok(w) => self.rename_over(&temp, &target).await.map(|_| w),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = self.raw.remove(&temp).await;
        }
        result
    }

    async fn write_handle<R: AsyncRead + Unpin>(
        &self,
        handle: &str,
        path: &str,
        source: &mut R,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Written, SshError> {
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        let mut in_flight: JoinSet<Result<(), SftpError>> = JoinSet::new();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                let n = source.read(&mut buf[filled..]).await.map_err(|e| SshError::Sftp {
                    op: "write",
                    path: format!("{}:{path}", self.addr),
                    reason: format!("reading the local source: {e}"),
                })?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            hasher.update(&buf);
            while in_flight.len() >= WINDOW {
                self.join_one(&mut in_flight, path).await?;
            }
            let (raw, handle, at) = (self.raw.clone(), handle.to_string(), offset);
            in_flight.spawn(async move { raw.write(handle, at, buf).await.map(|_| ()) });
            offset += filled as u64;
            progress(offset);
        }
        while !in_flight.is_empty() {
            self.join_one(&mut in_flight, path).await?;
        }
        Ok(Written { size: offset, sha256: hex(&hasher.finalize()) })
    }

    async fn join_one(&self, set: &mut JoinSet<Result<(), SftpError>>, path: &str) -> Result<(), SshError> {
        match set.join_next().await {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(self.err("write", path, &e)),
            Some(Err(e)) => {
                Err(SshError::Sftp { op: "write", path: format!("{}:{path}", self.addr), reason: e.to_string() })
            }
        }
    }

    /// Renames `from` over `to`, replacing it.
    async fn rename_over(&self, from: &str, to: &str) -> Result<(), SshError> {
        if self.posix_rename {
            let mut data = Vec::new();
            sftp_string(&mut data, from);
            sftp_string(&mut data, to);
            return match self.raw.extended(POSIX_RENAME, data).await {
                Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
                Ok(Packet::Status(s)) => Err(self.err("rename", to, &SftpError::Status(s))),
                Ok(_) => Err(self.err("rename", to, &SftpError::UnexpectedPacket)),
                Err(e) => Err(self.err("rename", to, &e)),
            };
        }
        // Plain SFTP rename refuses an existing target: remove it first (not atomic).
        match self.raw.remove(to).await {
            Ok(_) => {}
            Err(e) if is_no_such_file(&e) => {}
            Err(e) => return Err(self.err("remove", to, &e)),
        }
        self.raw.rename(from, to).await.map(|_| ()).map_err(|e| self.err("rename", to, &e))
    }

    /// Reads `path` whole; more than `limit` bytes is an error.
    pub async fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, SshError> {
        let handle = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| self.err("open", path, &e))?;
        let handle = handle.handle;
        let result = self.read_handle(&handle, path, limit).await;
        let _ = self.raw.close(handle).await;
        result
    }

    async fn read_handle(&self, handle: &str, path: &str, limit: u64) -> Result<Vec<u8>, SshError> {
        let mut out = Vec::new();
        loop {
            match self.raw.read(handle, out.len() as u64, CHUNK as u32).await {
                Ok(d) if d.data.is_empty() => break,
                Ok(d) => {
                    out.extend_from_slice(&d.data);
                    if out.len() as u64 > limit {
                        return Err(SshError::TooLarge {
                            path: format!("{}:{path}", self.addr),
                            size: out.len() as u64,
                            limit,
                        });
                    }
                }
                Err(e) if is_eof(&e) => break,
                Err(e) => return Err(self.err("read", path, &e)),
            }
        }
        Ok(out)
    }

    /// Removes `path`; `false` when it was not there.
    pub async fn remove(&self, path: &str) -> Result<bool, SshError> {
        match self.raw.remove(path).await {
            Ok(_) => Ok(true),
            Err(e) if is_no_such_file(&e) => Ok(false),
            Err(e) => Err(self.err("remove", path, &e)),
        }
    }

    /// Ends the session (best effort).
    pub fn close(&self) {
        let _ = self.raw.close_session();
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_encodings() {
        let t = temp_name("user-data.yaml");
        assert!(t.starts_with(".user-data.yaml.") && t.ends_with(".tmp"), "{t}");
        assert_ne!(t, temp_name("user-data.yaml"));
        assert_eq!(join("/var/lib/vz/snippets/", "a.yaml"), "/var/lib/vz/snippets/a.yaml");
        let mut data = Vec::new();
        sftp_string(&mut data, "ab");
        assert_eq!(data, [0, 0, 0, 2, b'a', b'b']);
        assert_eq!(hex(&[0x00, 0xab]), "00ab");
    }
}
