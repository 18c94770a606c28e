//! Worker tasks and their UPIDs, as PVE's `RPCEnvironment::fork_worker` runs them.
//!
//! Owns: starting a task ([`start`]: the UPID is returned at once, the work
//! runs in the background after `timing.taskMs`, under the VM's config lock
//! when it names one, and ends with `OK`, `WARNINGS: n` or the error text,
//! with injected task failures), and the task endpoints:
//! `GET /nodes/{node}/tasks` (PVE's list: `status` is the exit status or
//! `RUNNING`, with its filters), `GET .../tasks/{upid}`, `.../status`
//! (`running`/`stopped` + `exitstatus`), `.../log`
//! and `DELETE .../tasks/{upid}` (stop).
//! Must not: know what a task does; handlers pass the work in.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::dice::FaultKind;
use super::model::{Task, MAX_TASKS};
use super::server::{ApiError, Call, Handlers};
use super::state::{lock_timeout, now_secs, PveState};

/// What a task is: PVE's task type (`qmcreate`, `qmstart`, `download`, ...),
/// its id (the VMID, or the storage), the node it runs on, and the VM whose
/// config lock it holds while it runs.
pub struct Worker {
    pub node: String,
    pub kind: &'static str,
    pub id: String,
    pub lock_vmid: Option<u32>,
}

/// A running task's handle for its work: adds log lines and warnings.
#[derive(Clone)]
pub struct TaskLog {
    state: PveState,
    upid: String,
}

impl TaskLog {
    pub fn line(&self, text: impl Into<String>) {
        let text = text.into();
        self.state.write(|m| {
            if let Some(task) = m.task_mut(&self.upid) {
                task.log.extend(text.lines().map(str::to_string));
            }
        });
    }

    /// A `WARN: ...` line; the task then ends `WARNINGS: n` instead of `OK`.
    pub fn warn(&self, text: &str) {
        self.line(format!("WARN: {text}"));
    }

    pub fn upid(&self) -> &str {
        &self.upid
    }

    pub fn state(&self) -> &PveState {
        &self.state
    }
}

/// Starts a task and returns its UPID; `work` runs after the task duration,
/// holding the VM's lock if `worker.lock_vmid` is set.
pub fn start<F, Fut>(state: &PveState, call: &Call, worker: Worker, work: F) -> String
where
    F: FnOnce(TaskLog) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let user = call.principal.as_ref().map(|p| p.name()).unwrap_or_else(|| "root@pam".into());
    let starttime = now_secs();
    let upid = state.write(|m| {
        m.last_pid = m.last_pid.wrapping_add(1).max(1000);
        let pid = m.last_pid;
        let upid = format!(
            "UPID:{}:{pid:08X}:{:08X}:{starttime:08X}:{}:{}:{user}:",
            worker.node,
            pid.wrapping_mul(7) & 0x0fff_ffff,
            worker.kind,
            worker.id
        );
        m.tasks.push(Task {
            upid: upid.clone(),
            node: worker.node.clone(),
            kind: worker.kind.to_string(),
            id: worker.id.clone(),
            user: user.clone(),
            pid,
            starttime,
            endtime: None,
            exitstatus: None,
            log: Vec::new(),
        });
        if m.tasks.len() > MAX_TASKS {
            let excess = m.tasks.len() - MAX_TASKS;
            m.tasks.drain(..excess);
        }
        upid
    });
    let log = TaskLog { state: state.clone(), upid: upid.clone() };
    let state = state.clone();
    tokio::spawn(async move {
        let result = run(&state, &worker, log.clone(), work).await;
        finish(&state, &log.upid, result);
    });
    upid
}

async fn run<F, Fut>(state: &PveState, worker: &Worker, log: TaskLog, work: F) -> Result<(), String>
where
    F: FnOnce(TaskLog) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    if let Some(vmid) = worker.lock_vmid {
        state.lock_vm(vmid, &log.upid).await.map_err(|e| {
            if e.status == StatusCode::INTERNAL_SERVER_ERROR && e.message.contains("got timeout") {
                lock_timeout(vmid).message
            } else {
                e.message
            }
        })?;
    }
    let result = async {
        tokio::time::sleep(Duration::from_millis(state.timing().task_ms)).await;
        if state.read(|m| m.task(&log.upid).is_none_or(|t| !t.running())) {
            return Err("interrupted by signal".to_string());
        }
        // A task is known by its node, type and id; its attempt counts the tasks so named.
        let name = format!("/nodes/{}/tasks/{}:{}", worker.node, worker.kind, worker.id);
        let attempt = state.attempt("TASK", &name);
        if state.roll(FaultKind::TaskFailure, "TASK", &name, attempt) {
            return Err(format!("{} {}: injected failure (lab fault injection, taskFailure)", worker.kind, worker.id));
        }
        work(log.clone()).await
    }
    .await;
    if let Some(vmid) = worker.lock_vmid {
        state.unlock_vm(vmid, &log.upid);
    }
    result
}

fn finish(state: &PveState, upid: &str, result: Result<(), String>) {
    state.write(|m| {
        let cleanup = state.take_task_cleanup(upid);
        let Some(task) = m.task_mut(upid) else { return };
        if !task.running() {
            return; // stopped through the API meanwhile (which ran the cleanup)
        }
        if let (Err(_), Some(cleanup)) = (&result, cleanup) {
            cleanup(m);
        }
        let Some(task) = m.task_mut(upid) else { return };
        let warnings = task.log.iter().filter(|l| l.starts_with("WARN: ")).count();
        let status = match result {
            Ok(()) if warnings > 0 => format!("WARNINGS: {warnings}"),
            Ok(()) => "OK".to_string(),
            Err(e) => e.lines().next().unwrap_or("error").to_string(),
        };
        task.log.push(if status == "OK" || status.starts_with("WARNINGS") {
            format!("TASK {status}")
        } else {
            format!("TASK ERROR: {status}")
        });
        task.exitstatus = Some(status);
        task.endtime = Some(now_secs());
    });
}

/// Waits for a task to end (for handlers that chain tasks, e.g. clone + migrate).
pub async fn wait(state: &PveState, upid: &str) -> Result<(), String> {
    loop {
        let status = state.read(|m| m.task(upid).map(|t| t.exitstatus.clone()));
        match status {
            None => return Err(format!("no such task '{upid}'")),
            Some(None) => tokio::time::sleep(Duration::from_millis(10)).await,
            Some(Some(s)) if s == "OK" || s.starts_with("WARNINGS") => return Ok(()),
            Some(Some(s)) => return Err(s),
        }
    }
}

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/nodes/{node}/tasks", list);
    h.sync("GET", "/nodes/{node}/tasks/{upid}", index);
    h.sync("GET", "/nodes/{node}/tasks/{upid}/status", status);
    h.sync("GET", "/nodes/{node}/tasks/{upid}/log", task_log);
    h.sync("DELETE", "/nodes/{node}/tasks/{upid}", stop);
}

fn find(state: &PveState, call: &Call) -> Result<Task, ApiError> {
    let node = call.str("node");
    let upid = call.str("upid");
    // PVE parses the UPID first: a malformed one is a parameter error.
    if !upid.starts_with("UPID:") || upid.split(':').count() < 9 {
        return Err(ApiError::params([("upid".to_string(), format!("unable to parse worker upid '{upid}'"))].into()));
    }
    state
        .read(|m| m.task(upid).filter(|t| t.node == node).cloned())
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("no such task '{upid}'")))
}

/// The fields PVE decodes from a UPID (`PVE::Tools::upid_decode`): node, pid,
/// pstart, starttime, type, id and user; a token's tasks carry `user` and
/// `tokenid` separately. Both the list items and the status start from these.
fn upid_fields(t: &Task) -> Value {
    let mut v = json!({
        "upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pid.wrapping_mul(7) & 0x0fff_ffff,
        "starttime": t.starttime, "type": t.kind, "id": t.id, "user": t.user,
    });
    if let Some((user, token)) = t.user.split_once('!') {
        v["user"] = json!(user);
        v["tokenid"] = json!(token);
    }
    v
}

/// `GET .../tasks/{upid}/status`: `status` is `running` or `stopped`, and a
/// stopped task has its `exitstatus` (no `endtime`: PVE's status has none).
fn status_json(t: &Task) -> Value {
    let mut v = upid_fields(t);
    v["status"] = json!(if t.running() { "running" } else { "stopped" });
    if let Some(exit) = &t.exitstatus {
        v["exitstatus"] = json!(exit);
    }
    v
}

/// One item of `GET /nodes/{node}/tasks`: an archived task has its `endtime`
/// and its `status` is the exit status itself (`OK`, `WARNINGS: n` or the
/// error text); an active one has `status: RUNNING` and no `endtime`.
fn list_item(t: &Task) -> Value {
    let mut v = upid_fields(t);
    v["status"] = json!(t.exitstatus.as_deref().unwrap_or("RUNNING"));
    if let Some(end) = t.endtime {
        v["endtime"] = json!(end);
    }
    v
}

/// PVE's `upid_normalize_status_type`: `ok`, `warning`, `error` or `unknown`
/// (no status yet: a running task).
fn status_type(status: Option<&str>) -> &'static str {
    match status {
        None | Some("") | Some("unexpected status") => "unknown",
        Some("OK") => "ok",
        Some(s)
            if s.strip_prefix("WARNINGS: ").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            "warning"
        }
        Some(_) => "error",
    }
}

/// `GET /nodes/{node}/tasks` as PVE's `node_tasks`: `source` `archive`
/// (default: finished tasks), `active` (running ones) or `all` (running
/// first); filtered by `userfilter` (case-insensitive substring), `typefilter`,
/// `vmid`, `since`/`until` (start time), `statusfilter` (`ok`, `warning`,
/// `error`, `unknown`) or `errors` (everything but `ok`; it overrides
/// `statusfilter`); then `start` and `limit` (default 50). Newest first.
fn list(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = call.str("node");
    let int = |name: &str| call.int(name);
    let limit = int("limit").unwrap_or(50).max(0) as usize;
    let start = int("start").unwrap_or(0).max(0) as usize;
    let (since, until) = (int("since"), int("until"));
    let vmid = int("vmid").map(|v| v.to_string());
    let text = |name: &str| call.opt_str(name).filter(|s| !s.is_empty()).map(str::to_string);
    let (userfilter, typefilter) = (text("userfilter").map(|u| u.to_lowercase()), text("typefilter"));
    let source = call.opt_str("source").unwrap_or("archive").to_string();
    let errors = call.flag("errors");
    let wanted: Vec<String> = match text("statusfilter") {
        Some(list) if !errors => super::validate::split_list(&list).iter().map(|s| s.to_lowercase()).collect(),
        _ if errors => vec!["warning".into(), "error".into(), "unknown".into()],
        _ => vec!["ok".into(), "warning".into(), "error".into(), "unknown".into()],
    };
    let matches = |t: &Task| {
        t.node == node
            && userfilter.as_ref().is_none_or(|u| {
                // PVE matches the user with the token split off (`root@pam`, not `root@pam!lab`).
                let user = t.user.split_once('!').map_or(t.user.as_str(), |(user, _)| user);
                user.to_lowercase().contains(u.as_str())
            })
            && typefilter.as_ref().is_none_or(|k| &t.kind == k)
            && vmid.as_ref().is_none_or(|id| &t.id == id)
            && since.is_none_or(|s| t.starttime as i64 >= s)
            && until.is_none_or(|u| t.starttime as i64 <= u)
            && wanted.iter().any(|w| w == status_type(t.exitstatus.as_deref()))
    };
    let tasks: Vec<Value> = state.read(|m| {
        let active = m.tasks.iter().rev().filter(|t| t.running() && (source == "active" || source == "all"));
        let archive = m.tasks.iter().rev().filter(|t| !t.running() && source != "active");
        active.chain(archive).filter(|t| matches(t)).skip(start).take(limit).map(list_item).collect()
    });
    Ok(Value::Array(tasks))
}

fn index(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    find(state, call)?;
    Ok(json!([{ "name": "log" }, { "name": "status" }]))
}

fn status(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    Ok(status_json(&find(state, call)?))
}

fn task_log(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let task = find(state, call)?;
    let start = call.params.get("start").and_then(Value::as_u64).unwrap_or(0) as usize;
    let limit = call.params.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
    let lines: Vec<Value> =
        task.log.iter().enumerate().skip(start).take(limit).map(|(i, t)| json!({ "n": i + 1, "t": t })).collect();
    // PVE answers the number of lines the whole log has beside the page, so a client can read the end.
    call.set_result_attrib("total", json!(task.log.len()));
    Ok(Value::Array(lines))
}

fn stop(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let task = find(state, call)?;
    if task.running() {
        state.write(|m| {
            if let Some(t) = m.task_mut(&task.upid) {
                t.log.push("received interrupt".into());
                t.log.push("TASK ERROR: interrupted by signal".into());
                t.exitstatus = Some("interrupted by signal".into());
                t.endtime = Some(now_secs());
            }
            if let Some(cleanup) = state.take_task_cleanup(&task.upid) {
                cleanup(m);
            }
        });
    }
    Ok(Value::Null)
}
