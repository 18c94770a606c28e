//! Waiting for Proxmox VE worker tasks by UPID.
//!
//! Owns: parsing a UPID (`UPID:node:pid:pstart:starttime:type:id:user:`) for
//! the node to poll, polling `GET /nodes/{node}/tasks/{upid}/status` with a
//! short backoff (fast tasks end in tens of milliseconds; long ones are
//! polled once a second), treating an early 400/404 as "not visible yet",
//! reporting progress through a callback, honouring a deadline and
//! cancellation, and turning a failed task into [`ProxmoxError::Task`] with
//! the tail of its log (read from the end: the first page's `total` says where). `WARNINGS: n` is success; its warnings are returned.
//! Must not: decide whether to retry the call that started the task.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::client::{as_u64, PveClient};
use super::error::ProxmoxError;

/// A parsed UPID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    pub raw: String,
    pub node: String,
    /// `qmcreate`, `qmclone`, `qmstart`, `download`, ...
    pub kind: String,
    pub id: String,
}

impl Upid {
    pub fn parse(raw: &str) -> Option<Upid> {
        let parts: Vec<&str> = raw.split(':').collect();
        if parts.len() < 9 || parts[0] != "UPID" || parts[1].is_empty() {
            return None;
        }
        Some(Upid { raw: raw.to_string(), node: parts[1].into(), kind: parts[5].into(), id: parts[6].into() })
    }

    /// The UPID a task-starting call returned as its `data`.
    pub fn from_data(data: &Value, method: &str, path: &str) -> Result<Upid, ProxmoxError> {
        data.as_str().and_then(Upid::parse).ok_or_else(|| ProxmoxError::Decode {
            method: method.into(),
            path: path.into(),
            reason: format!("expected a task UPID, got {data}"),
        })
    }
}

/// A finished task that did not fail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskOutcome {
    /// `WARN:` lines of a task that ended `WARNINGS: n`.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct TaskStatus {
    status: String,
    #[serde(default)]
    exitstatus: Option<String>,
}

/// How long a task may take and who hears about it.
pub struct TaskWait<'a> {
    /// Give up (with an error saying the task is still running) after this long.
    pub timeout: Duration,
    /// Called about once a second with the time waited so far.
    pub progress: &'a (dyn Fn(Duration) + Send + Sync),
    /// Resolves when the caller is cancelled.
    pub cancelled: &'a (dyn Fn() -> bool + Send + Sync),
}

/// Polls until the task stops; its error, with the log tail, if it failed.
pub async fn wait(client: &PveClient, upid: &Upid, how: &TaskWait<'_>) -> Result<TaskOutcome, ProxmoxError> {
    let path = format!("/nodes/{}/tasks/{}/status", upid.node, encode(&upid.raw));
    let started = Instant::now();
    let mut delay = Duration::from_millis(25);
    let mut last_progress = Instant::now();
    loop {
        match client.get::<TaskStatus>(&path, &[]).await {
            Ok(s) if s.status != "running" => {
                let exit = s.exitstatus.unwrap_or_default();
                if exit == "OK" {
                    return Ok(TaskOutcome::default());
                }
                if exit.starts_with("WARNINGS") {
                    let log = log_lines(client, upid).await;
                    let warnings = log.into_iter().filter(|l| l.starts_with("WARN")).collect();
                    return Ok(TaskOutcome { warnings });
                }
                let tail = log_tail(client, upid, TAIL_LINES).await;
                return Err(ProxmoxError::Task { upid: upid.raw.clone(), exitstatus: exit, log_tail: tail });
            }
            Ok(_) => {}
            // Right after creation a task may not be visible yet (400/404, or 500 "no such task").
            Err(e)
                if (matches!(e.status(), Some(400 | 404)) || e.mentions("no such task"))
                    && started.elapsed() < Duration::from_secs(10) => {}
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
        if (how.cancelled)() {
            return Err(ProxmoxError::Task {
                upid: upid.raw.clone(),
                exitstatus: "the wait was cancelled; the task may still be running on Proxmox VE".into(),
                log_tail: vec![],
            });
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            (how.progress)(started.elapsed());
            last_progress = Instant::now();
        }
        if started.elapsed() > how.timeout {
            return Err(ProxmoxError::Task {
                upid: upid.raw.clone(),
                exitstatus: format!("still running after {}s (timeout)", how.timeout.as_secs()),
                log_tail: vec![],
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// How many of a failed task's last log lines its error shows.
pub const TAIL_LINES: u64 = 10;

fn log_path(upid: &Upid) -> String {
    format!("/nodes/{}/tasks/{}/log", upid.node, encode(&upid.raw))
}

/// The task's log lines, the first 500 (best effort: empty if the log cannot be read).
pub async fn log_lines(client: &PveClient, upid: &Upid) -> Vec<String> {
    match client.get::<Vec<Value>>(&log_path(upid), &[("limit", "500")]).await {
        Ok(lines) => numbered(&lines),
        Err(_) => Vec::new(),
    }
}

/// The last `n` lines of the task's log, where a failure says why (best effort: empty if the
/// log cannot be read). PVE pages a log from its start; the first page's `total` says where
/// the end is, so a long log (a migration, a clone, a download) is read again from there.
pub async fn log_tail(client: &PveClient, upid: &Upid, n: u64) -> Vec<String> {
    let path = log_path(upid);
    let limit = n.to_string();
    let Ok((first, attribs)) = client.get_with_attribs::<Vec<Value>>(&path, &[("start", "0"), ("limit", &limit)]).await
    else {
        return Vec::new();
    };
    let lines = match attribs.get("total").and_then(as_u64) {
        Some(total) if total > n => {
            let start = (total - n).to_string();
            client.get::<Vec<Value>>(&path, &[("start", &start), ("limit", &limit)]).await.unwrap_or(first)
        }
        _ => first,
    };
    let lines = numbered(&lines);
    let skip = lines.len().saturating_sub(n as usize);
    lines[skip..].to_vec()
}

/// PVE's `{n, t}` log lines, in order.
fn numbered(lines: &[Value]) -> Vec<String> {
    let mut lines: Vec<(u64, String)> =
        lines.iter().filter_map(|l| Some((l.get("n").and_then(as_u64)?, l.get("t")?.as_str()?.to_string()))).collect();
    lines.sort_by_key(|(n, _)| *n);
    lines.into_iter().map(|(_, t)| t).collect()
}

/// Percent-encodes a path segment (UPIDs hold `:` and `@`).
pub fn encode(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upids_name_their_node_type_and_id() {
        let u = Upid::parse("UPID:pve-ms01-01:000003E9:00001B57:6740A1B2:qmclone:90001:root@pam!lab:").unwrap();
        assert_eq!((u.node.as_str(), u.kind.as_str(), u.id.as_str()), ("pve-ms01-01", "qmclone", "90001"));
        assert!(Upid::parse("not a upid").is_none());
        assert_eq!(encode("UPID:pve:1:root@pam!x:"), "UPID%3Apve%3A1%3Aroot%40pam%21x%3A");
    }
}
