//! Worker tasks and their UPIDs, as PVE's `RPCEnvironment::fork_worker` runs them.
//!
//! Owns: starting a task ([`start`]: the UPID is returned at once, the work
//! runs in the background after `timing.taskMs`, under the VM's config lock
//! when it names one, and ends with `OK`, `WARNINGS: n` or the error text,
//! with injected task failures), and the task endpoints:
//! `GET /nodes/{node}/tasks`, `GET .../tasks/{upid}`, `.../status`, `.../log`
//! and `DELETE .../tasks/{upid}` (stop).
//! Must not: know what a task does; handlers pass the work in.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

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
        if state.roll(|f| f.task_failure) {
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
        let Some(task) = m.task_mut(upid) else { return };
        if !task.running() {
            return; // stopped through the API meanwhile
        }
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

fn task_json(t: &Task) -> Value {
    let mut v = json!({
        "upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pid.wrapping_mul(7) & 0x0fff_ffff,
        "starttime": t.starttime, "type": t.kind, "id": t.id, "user": t.user,
        "status": if t.running() { "running" } else { "stopped" },
    });
    if let Some(exit) = &t.exitstatus {
        v["exitstatus"] = json!(exit);
    }
    if let Some(end) = t.endtime {
        v["endtime"] = json!(end);
    }
    v
}

fn list(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = call.str("node");
    let limit = call.params.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
    let start = call.params.get("start").and_then(Value::as_u64).unwrap_or(0) as usize;
    let vmid = call.params.get("vmid").and_then(Value::as_u64).map(|v| v.to_string());
    let running_only = call.params.get("source").and_then(Value::as_str) == Some("active");
    let tasks: Vec<Value> = state.read(|m| {
        m.tasks
            .iter()
            .rev()
            .filter(|t| t.node == node)
            .filter(|t| vmid.as_ref().is_none_or(|id| &t.id == id))
            .filter(|t| !running_only || t.running())
            .skip(start)
            .take(limit)
            .map(task_json)
            .collect()
    });
    Ok(Value::Array(tasks))
}

fn index(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    find(state, call)?;
    Ok(json!([{ "name": "log" }, { "name": "status" }]))
}

fn status(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    Ok(task_json(&find(state, call)?))
}

fn task_log(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let task = find(state, call)?;
    let start = call.params.get("start").and_then(Value::as_u64).unwrap_or(0) as usize;
    let limit = call.params.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize;
    let lines: Vec<Value> =
        task.log.iter().enumerate().skip(start).take(limit).map(|(i, t)| json!({ "n": i + 1, "t": t })).collect();
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
        });
    }
    Ok(Value::Null)
}
