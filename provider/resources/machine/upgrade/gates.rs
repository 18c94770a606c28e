//! Per-cluster rollout gates in this provider process: Pulumi updates every node's
//! `ConfigurationApply` in parallel, so the provider itself lets one control plane and one batch
//! of workers of a cluster upgrade at a time, and stops a cluster's rollout once a node failed.
//!
//! Must not: outlive the process (a new `up` starts with open gates; a node that failed is
//! upgraded again only when its update runs again).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::super::talos_node::Deadline;
use super::Failed;
use crate::framework::Context;

/// One cluster's rollout.
pub struct Rollout {
    control_plane: tokio::sync::Semaphore,
    workers: tokio::sync::Semaphore,
    /// Who is upgrading now (for progress lines).
    upgrading: Mutex<Vec<String>>,
    /// The first failure; later nodes do not start.
    stopped: Mutex<Option<String>>,
}

static ROLLOUTS: LazyLock<Mutex<HashMap<String, Arc<Rollout>>>> = LazyLock::new(Default::default);

/// The rollout of the cluster `key`; the first caller's `worker_batch` sets its batch size.
pub fn rollout(key: &str, worker_batch: usize) -> Arc<Rollout> {
    let mut map = ROLLOUTS.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key.to_string())
        .or_insert_with(|| {
            Arc::new(Rollout {
                control_plane: tokio::sync::Semaphore::new(1),
                workers: tokio::sync::Semaphore::new(worker_batch.max(1)),
                upgrading: Mutex::new(Vec::new()),
                stopped: Mutex::new(None),
            })
        })
        .clone()
}

/// A node's turn: the gate opens for the next node when it is dropped.
pub struct Turn<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    rollout: &'a Rollout,
    label: String,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.rollout.upgrading.lock().unwrap_or_else(|e| e.into_inner()).retain(|l| l != &self.label);
    }
}

impl Rollout {
    /// Waits for the node's turn (control planes one at a time, workers by batch), with progress.
    pub async fn turn(
        &self,
        ctx: &Context,
        label: &str,
        control_plane: bool,
        deadline: &Deadline,
    ) -> Result<Turn<'_>, String> {
        let gate = if control_plane { &self.control_plane } else { &self.workers };
        let permit = loop {
            self.refuse_if_stopped(label)?;
            if let Ok(p) = gate.try_acquire() {
                break p;
            }
            let others = self.upgrading.lock().unwrap_or_else(|e| e.into_inner()).join(", ");
            let kind = if control_plane { "control plane" } else { "worker batch" };
            ctx.status(&format!(
                "{label}: waiting for its turn to upgrade (one {kind} at a time; upgrading: {others}), {}s",
                deadline.elapsed_secs()
            ));
            if !deadline.pause(ctx).await {
                return Err(format!("{label}: its turn to upgrade did not come within {:?}", deadline.total()));
            }
        };
        self.refuse_if_stopped(label)?;
        self.upgrading.lock().unwrap_or_else(|e| e.into_inner()).push(label.to_string());
        Ok(Turn { _permit: permit, rollout: self, label: label.to_string() })
    }

    fn refuse_if_stopped(&self, label: &str) -> Result<(), String> {
        match &*self.stopped.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(why) => Err(format!("{label}: not upgraded: the rollout of its cluster stopped after {why}")),
            None => Ok(()),
        }
    }

    /// Stops the rollout for the nodes still waiting, saying why; returns `failed`.
    pub fn stop(&self, failed: Failed) -> Failed {
        let why = match &failed {
            Failed::Clean(m) | Failed::Uncertain(m) => m.clone(),
        };
        self.stopped.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(why);
        failed
    }
}
