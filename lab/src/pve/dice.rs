//! Fault injection's decisions, each a pure function of the seed, the fault
//! kind and the request's identity: method, concrete path (with the node and
//! VMID in it) and attempt — how many times the lab has seen this exact
//! (method, path) since the faults were set. The same seed replays the same
//! faults for the same program, whatever order different requests arrive in.
//!
//! Owns: [`Dice`] (the attempt counters and the per-kind count of injected
//! faults), [`draw`] and [`identity`]. Must not: know handlers or HTTP.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// A kind of injected fault, named as in [`super::lab_config::Faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    LockTimeout,
    ServerError,
    DroppedConnection,
    TaskFailure,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] =
        [FaultKind::LockTimeout, FaultKind::ServerError, FaultKind::DroppedConnection, FaultKind::TaskFailure];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::LockTimeout => "lockTimeout",
            FaultKind::ServerError => "serverError",
            FaultKind::DroppedConnection => "droppedConnection",
            FaultKind::TaskFailure => "taskFailure",
        }
    }
}

/// A uniform number in [0, 1) from (seed, salt, method, path, attempt); the
/// salt tells apart the decisions made about one request (the fault kind, or
/// "whether a dropped connection comes before the call took effect").
pub fn draw(seed: u64, salt: &str, method: &str, path: &str, attempt: u64) -> f64 {
    // FNV-1a over the identity, then splitmix64's finalizer to spread the bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [salt.as_bytes(), b"\0", method.as_bytes(), b"\0", path.as_bytes(), b"\0", &attempt.to_le_bytes()] {
        for &b in part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mut z = h ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The path a request is known by: a UPID segment loses what differs from
/// run to run (pid, pstart, start time) and keeps node, type, id and user; a
/// `vmid` sent in the body (a create) is appended, so the VMID is part of the
/// identity even when the path does not carry it.
pub fn identity(path: &str, body_vmid: Option<&str>) -> String {
    let mut out: String = path
        .split('/')
        .map(|segment| {
            let decoded = segment.replace("%3A", ":").replace("%3a", ":");
            let parts: Vec<&str> = decoded.split(':').collect();
            if parts.len() >= 9 && parts[0] == "UPID" {
                format!("UPID:{}:{}:{}:{}:", parts[1], parts[5], parts[6], parts[7])
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if let Some(vmid) = body_vmid {
        out.push_str("?vmid=");
        out.push_str(vmid);
    }
    out
}

/// The attempt counters and what was injected since the faults were set.
#[derive(Default)]
pub struct Dice {
    seen: HashMap<(String, String), u64>,
    injected: BTreeMap<FaultKind, u64>,
}

impl Dice {
    /// Counts one more request (method, path) and returns its attempt, from 1.
    pub fn attempt(&mut self, method: &str, path: &str) -> u64 {
        let n = self.seen.entry((method.to_string(), path.to_string())).or_insert(0);
        *n += 1;
        *n
    }

    /// Whether `kind` (at probability `rate`) hits this request; counted if so.
    pub fn roll(&mut self, seed: u64, kind: FaultKind, rate: f64, method: &str, path: &str, attempt: u64) -> bool {
        let hit = rate > 0.0 && draw(seed, kind.name(), method, path, attempt) < rate;
        if hit {
            *self.injected.entry(kind).or_insert(0) += 1;
        }
        hit
    }

    /// Injected faults by kind (every kind, zero included).
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        FaultKind::ALL.iter().map(|k| (k.name(), self.injected.get(k).copied().unwrap_or(0))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every decision for one request, as the API makes them.
    fn decide(dice: &mut Dice, seed: u64, method: &str, path: &str) -> Vec<(String, String, u64, FaultKind)> {
        let attempt = dice.attempt(method, path);
        FaultKind::ALL
            .iter()
            .filter(|&&k| dice.roll(seed, k, 0.3, method, path, attempt))
            .map(|&k| (method.to_string(), path.to_string(), attempt, k))
            .collect()
    }

    #[test]
    fn two_interleavings_of_the_same_requests_inject_the_same_faults() {
        let mut requests = Vec::new();
        for vmid in [101, 102, 103, 104] {
            for _ in 0..3 {
                requests.push(("POST", format!("/nodes/pve/qemu/{vmid}/config")));
                requests.push(("GET", format!("/nodes/pve/qemu/{vmid}/status/current")));
            }
            requests.push(("POST", format!("/nodes/pve/qemu/{vmid}/status/start")));
        }
        let mut reversed = requests.clone();
        reversed.reverse();
        // A different interleaving that keeps each (method, path)'s own order:
        // the reversed list's attempts are renumbered per (method, path) anyway.
        let run = |order: &[(&str, String)]| {
            let mut dice = Dice::default();
            let mut faults: Vec<_> = order.iter().flat_map(|(m, p)| decide(&mut dice, 42, m, p)).collect();
            faults.sort();
            (faults, dice.injected())
        };
        let (a, counts_a) = run(&requests);
        let (b, counts_b) = run(&reversed);
        let mut rotated = requests.clone();
        rotated.rotate_left(7);
        let (c, _) = run(&rotated);
        assert!(!a.is_empty(), "a 30% rate over {} requests injects something", requests.len());
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(counts_a, counts_b);
        assert_eq!(counts_a.values().sum::<u64>() as usize, a.len());

        // Another seed injects differently.
        let mut dice = Dice::default();
        let mut other: Vec<_> = requests.iter().flat_map(|(m, p)| decide(&mut dice, 43, m, p)).collect();
        other.sort();
        assert_ne!(a, other);
    }

    #[test]
    fn draws_are_uniform_enough_and_depend_on_every_part() {
        let hits = (0..10_000).filter(|&i| draw(7, "serverError", "DELETE", "/x", i) < 0.25).count();
        assert!((2_200..2_800).contains(&hits), "{hits} of 10000 below 0.25");
        let base = draw(7, "serverError", "POST", "/nodes/pve/qemu/100/config", 1);
        assert_ne!(base, draw(8, "serverError", "POST", "/nodes/pve/qemu/100/config", 1));
        assert_ne!(base, draw(7, "lockTimeout", "POST", "/nodes/pve/qemu/100/config", 1));
        assert_ne!(base, draw(7, "serverError", "PUT", "/nodes/pve/qemu/100/config", 1));
        assert_ne!(base, draw(7, "serverError", "POST", "/nodes/pve/qemu/101/config", 1));
        assert_ne!(base, draw(7, "serverError", "POST", "/nodes/pve/qemu/100/config", 2));
    }

    #[test]
    fn a_upid_is_known_by_what_does_not_change_between_runs() {
        let a = identity("/nodes/pve/tasks/UPID:pve:000003E9:00001B5F:6751A2B0:qmstart:100:root@pam:/status", None);
        let b = identity(
            "/nodes/pve/tasks/UPID%3Apve%3A000003EA%3A00001B60%3A6751A2B9%3Aqmstart%3A100%3Aroot@pam%3A/status",
            None,
        );
        assert_eq!(a, "/nodes/pve/tasks/UPID:pve:qmstart:100:root@pam:/status");
        assert_eq!(a, b);
        assert_eq!(identity("/nodes/pve/qemu", Some("105")), "/nodes/pve/qemu?vmid=105");
    }
}
