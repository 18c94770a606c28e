//! The running lab's shared state: the model behind a lock, its persistence,
//! VM config locks, the realism knobs, fault injection and the request log.
//!
//! Owns: [`PveState`], which every handler receives. Reads and writes of the
//! [`Model`] go through [`PveState::read`] / [`PveState::write`] (a write
//! saves the state file); a VM's config lock (PVE's
//! `/var/lock/qemu-server/lock-N.conf`) is taken with [`PveState::lock_vm`],
//! which waits up to `timing.lockWaitMs` and then fails with PVE's
//! "got timeout" text; files of `dir` storages live under
//! [`PveState::dir_storage_path`].
//! Must not: parse HTTP or know endpoints (that is [`super::server`] and the
//! handler modules).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde::Serialize;

use super::apidoc::ApiDoc;
use super::auth::Auth;
use super::dice::FaultKind;
use super::lab_config::{Faults, LabConfig, Timing};
use super::model::Model;
use super::server::{ApiError, Handlers};

/// The API's shared state; cheap to clone.
#[derive(Clone)]
pub struct PveState {
    inner: Arc<Inner>,
}

struct Inner {
    apidoc: ApiDoc,
    auth: Auth,
    access: super::access::Access,
    handlers: Handlers,
    state_dir: PathBuf,
    bridges: Vec<super::lab_config::BridgeConfig>,
    pve_version: String,
    model: Mutex<Model>,
    knobs: Mutex<Knobs>,
    requests: Mutex<RequestLog>,
    interleaved: Mutex<Vec<Interleave>>,
    /// What a task's failure undoes (a migration's lock), by UPID: run in the same model write
    /// that ends the task, so no client sees the task failed and the cleanup not done yet.
    failure_cleanups: Mutex<std::collections::HashMap<String, TaskCleanup>>,
}

/// A change to the model when a task fails.
pub(crate) type TaskCleanup = Box<dyn FnOnce(&mut Model) + Send>;

/// Another client's edit, made just before the lab handles a given call (after its checks):
/// what a test uses to put a concurrent change between a client's read and its write,
/// deterministically.
struct Interleave {
    method: String,
    path: String,
    edit: Edit,
}

/// Another client's change to the lab's state.
pub type Edit = Box<dyn FnOnce(&PveState) + Send>;

struct Knobs {
    timing: Timing,
    faults: Faults,
    dice: super::dice::Dice,
}

/// One request as the lab saw it.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Default)]
struct RequestLog {
    total: u64,
    recent: VecDeque<LoggedRequest>,
}

/// How many requests the log keeps.
const REQUEST_LOG: usize = 20_000;

impl PveState {
    /// Keeps `cleanup` for the failure of task `upid` (see [`PveState::take_task_cleanup`]).
    /// Call it inside the model write that looks at the task, so the task cannot end between.
    pub(crate) fn keep_task_cleanup(&self, upid: &str, cleanup: TaskCleanup) {
        self.inner.failure_cleanups.lock().unwrap_or_else(|e| e.into_inner()).insert(upid.to_string(), cleanup);
    }

    /// The cleanup kept for task `upid`, once (the task ended: run it on failure, drop it else).
    pub(crate) fn take_task_cleanup(&self, upid: &str) -> Option<TaskCleanup> {
        self.inner.failure_cleanups.lock().unwrap_or_else(|e| e.into_inner()).remove(upid)
    }
}

impl PveState {
    /// The lab in `state_dir`: the saved state if there is one, else a fresh
    /// cluster from `config` (whose timing and faults apply either way).
    /// Users and tokens of `config.access` with a password or secret join `auth`.
    pub fn new(apidoc: ApiDoc, auth: Auth, config: LabConfig, state_dir: &Path) -> Result<PveState, String> {
        config.check()?;
        let mut auth = auth;
        for u in &config.access.users {
            if let Some(password) = &u.password {
                auth = auth.with_user(&u.userid, password);
            }
            for t in &u.tokens {
                if let Some(secret) = &t.secret {
                    auth = auth.with_token(&format!("{}!{}", u.userid, t.id), secret);
                }
            }
        }
        let access = super::access::Access::new(&config.access);
        std::fs::create_dir_all(state_dir).map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
        let model = match Model::load(state_dir)? {
            Some(model) => model,
            None => {
                let model = Model::from_config(&config);
                model.save(state_dir)?;
                model
            }
        };
        let state = PveState {
            inner: Arc::new(Inner {
                apidoc,
                auth,
                access,
                handlers: super::server::handlers(),
                state_dir: state_dir.to_path_buf(),
                bridges: config.bridges.clone(),
                pve_version: config.pve_version.clone().unwrap_or_else(|| super::server::PVE_VERSION.into()),
                model: Mutex::new(model),
                knobs: Mutex::new(Knobs { timing: config.timing, faults: config.faults, dice: Default::default() }),
                requests: Mutex::new(RequestLog::default()),
                interleaved: Mutex::new(Vec::new()),
                failure_cleanups: Mutex::new(Default::default()),
            }),
        };
        state.make_storage_dirs()?;
        Ok(state)
    }

    pub fn apidoc(&self) -> &ApiDoc {
        &self.inner.apidoc
    }

    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// Users, tokens and ACL entries.
    pub fn access(&self) -> &super::access::Access {
        &self.inner.access
    }

    pub fn handlers(&self) -> &Handlers {
        &self.inner.handlers
    }

    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// Runs `edit` (another client's change) once, right before the next `method path` call is
    /// handled: a write computed from an earlier read then meets a changed configuration.
    pub fn interleave_before(&self, method: &str, path: &str, edit: impl FnOnce(&PveState) + Send + 'static) {
        self.inner.interleaved.lock().unwrap_or_else(|e| e.into_inner()).push(Interleave {
            method: method.into(),
            path: path.into(),
            edit: Box::new(edit),
        });
    }

    /// The edit registered for `method path`, taken (it runs once).
    pub(crate) fn take_interleave(&self, method: &str, path: &str) -> Option<Edit> {
        let mut all = self.inner.interleaved.lock().unwrap_or_else(|e| e.into_inner());
        let i = all.iter().position(|x| x.method == method && x.path == path)?;
        Some(all.remove(i).edit)
    }

    /// The release the lab reports (`GET /version`, nodes' `pveversion`).
    pub fn pve_version(&self) -> &str {
        &self.inner.pve_version
    }

    pub fn bridges(&self) -> &[super::lab_config::BridgeConfig] {
        &self.inner.bridges
    }

    /// The node names, in config order.
    pub fn nodes(&self) -> Vec<String> {
        self.read(|m| m.nodes.keys().cloned().collect())
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.inner.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the model.
    pub fn read<R>(&self, f: impl FnOnce(&Model) -> R) -> R {
        f(&self.model())
    }

    /// Changes the model and saves it.
    pub fn write<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let mut model = self.model();
        let result = f(&mut model);
        if let Err(e) = model.save(&self.inner.state_dir) {
            eprintln!("proxmox-talos-lab: saving the state: {e}");
        }
        result
    }

    pub fn timing(&self) -> Timing {
        self.knobs().timing.clone()
    }

    pub fn set_timing(&self, timing: Timing) {
        self.knobs().timing = timing;
    }

    pub fn faults(&self) -> Faults {
        self.knobs().faults.clone()
    }

    /// Sets the faults; the attempt counters and injected counts start over,
    /// so the same seed replays the same run.
    pub fn set_faults(&self, faults: Faults) {
        let mut knobs = self.knobs();
        knobs.dice = Default::default();
        knobs.faults = faults;
    }

    /// Injected faults by kind since the faults were last set.
    pub fn injected_faults(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.knobs().dice.injected()
    }

    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.inner.knobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more request `method path` (see [`super::dice::identity`])
    /// and returns its attempt number, from 1.
    pub fn attempt(&self, method: &str, path: &str) -> u64 {
        self.knobs().dice.attempt(method, path)
    }

    /// Whether fault `kind` hits attempt `attempt` of `method path`: a pure
    /// function of the seed and that identity, counted when it hits.
    pub fn roll(&self, kind: FaultKind, method: &str, path: &str, attempt: u64) -> bool {
        let mut knobs = self.knobs();
        let rate = match kind {
            FaultKind::LockTimeout => knobs.faults.lock_timeout,
            FaultKind::ServerError => knobs.faults.server_error,
            FaultKind::DroppedConnection => knobs.faults.dropped_connection,
            FaultKind::TaskFailure => knobs.faults.task_failure,
        };
        let seed = knobs.faults.seed;
        knobs.dice.roll(seed, kind, rate, method, path, attempt)
    }

    /// An even coin for `method path attempt` under the seed, named by `salt`.
    pub fn coin(&self, salt: &str, method: &str, path: &str, attempt: u64) -> bool {
        super::dice::draw(self.knobs().faults.seed, salt, method, path, attempt) < 0.5
    }

    /// The root of `node`'s file system in the lab: `STATE/nodes/NODE/root`
    /// (what the node's SSH server is chrooted to).
    pub fn node_root(&self, node: &str) -> PathBuf {
        self.inner.state_dir.join("nodes").join(node).join("root")
    }

    /// Where a `dir` storage's files live for `node`: its [`storage_path`]
    /// under [`Self::node_root`] (with `template/iso`, `snippets`, ...).
    pub fn dir_storage_path(&self, node: &str, storage: &str) -> PathBuf {
        self.node_root(node).join(storage_path(storage).trim_start_matches('/'))
    }

    fn make_storage_dirs(&self) -> Result<(), String> {
        let (nodes, dirs): (Vec<String>, Vec<String>) = self.read(|m| {
            (
                m.nodes.keys().cloned().collect(),
                m.storages.values().filter(|s| s.kind == "dir").map(|s| s.id.clone()).collect(),
            )
        });
        for node in &nodes {
            for storage in &dirs {
                let root = self.dir_storage_path(node, storage);
                for sub in ["template/iso", "template/cache", "snippets", "import", "images", "dump"] {
                    let dir = root.join(sub);
                    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
                }
            }
        }
        Ok(())
    }

    /// Takes VM `vmid`'s config lock for `holder`, waiting up to
    /// `timing.lockWaitMs` as PVE's `lock_config` does.
    pub async fn lock_vm(&self, vmid: u32, holder: &str) -> Result<(), ApiError> {
        let deadline = Instant::now() + Duration::from_millis(self.timing().lock_wait_ms);
        loop {
            let taken = self.write(|m| match m.vms.get_mut(&vmid) {
                None => Err(no_such_vm(vmid, None)),
                Some(vm) if vm.busy.is_none() => {
                    vm.busy = Some(holder.to_string());
                    Ok(true)
                }
                Some(_) => Ok(false),
            })?;
            if taken {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(lock_timeout(vmid));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Releases the config lock if `holder` has it.
    pub fn unlock_vm(&self, vmid: u32, holder: &str) {
        self.write(|m| {
            if let Some(vm) = m.vms.get_mut(&vmid) {
                if vm.busy.as_deref() == Some(holder) {
                    vm.busy = None;
                }
            }
        });
    }

    pub fn log_request(&self, method: &str, path: &str, status: u16) {
        let mut log = self.inner.requests.lock().unwrap_or_else(|e| e.into_inner());
        log.total += 1;
        if log.recent.len() == REQUEST_LOG {
            log.recent.pop_front();
        }
        log.recent.push_back(LoggedRequest { method: method.into(), path: path.into(), status });
    }

    /// The total and the most recent requests (oldest first).
    pub fn requests(&self) -> (u64, Vec<LoggedRequest>) {
        let log = self.inner.requests.lock().unwrap_or_else(|e| e.into_inner());
        (log.total, log.recent.iter().cloned().collect())
    }

    pub fn clear_requests(&self) {
        let mut log = self.inner.requests.lock().unwrap_or_else(|e| e.into_inner());
        *log = RequestLog::default();
    }

    /// Counts by "METHOD path" of the logged requests.
    pub fn request_counts(&self) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for r in self.requests().1 {
            *counts.entry(format!("{} {}", r.method, r.path)).or_insert(0) += 1;
        }
        counts
    }
}

/// A `dir` storage's path as `/storage` reports it: `/var/lib/vz` for
/// `local`, `/mnt/pve/ID` for others (as the PVE installer and GUI make them).
pub fn storage_path(storage: &str) -> String {
    if storage == "local" {
        "/var/lib/vz".to_string()
    } else {
        format!("/mnt/pve/{storage}")
    }
}

/// PVE's text when a config lock cannot be had in time.
pub fn lock_timeout(vmid: u32) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout"),
    )
}

/// PVE's 500 for a VM that is not on `node` (or nowhere).
pub fn no_such_vm(vmid: u32, node: Option<&str>) -> ApiError {
    let node = node.unwrap_or("pve");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"),
    )
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
