//! The plugin's own resource usage, written at exit for benchmarks: with
//! `PROXMOX_TALOS_RUSAGE_FILE` set, the plugin writes
//! `{"pid", "utimeSeconds", "stimeSeconds", "cpuSeconds", "peakRssKib", "wallSeconds"}`
//! there after it stops serving (`tools/bench-vms.sh` reads it). When the
//! variable names a directory, the file is `DIR/rusage-PID.json` (the engine
//! may start more than one plugin process for one command).
//!
//! Linux only and without new dependencies: CPU times come from
//! `/proc/self/stat` (fields 14 and 15, `utime` and `stime`, in clock ticks;
//! taken as 100 per second, `CLK_TCK` on every Linux the provider runs on:
//! x86-64 and arm64 kernels fix `USER_HZ` at 100), peak RSS from `VmHWM` in
//! `/proc/self/status`. Elsewhere the file is not written.
//! Must not: cost anything when the variable is unset.

use std::time::Instant;

/// The variable naming the file to write.
pub const ENV: &str = "PROXMOX_TALOS_RUSAGE_FILE";

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// What the plugin used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub utime_seconds: f64,
    pub stime_seconds: f64,
    pub peak_rss_kib: u64,
}

/// `utime` and `stime` in seconds from a `/proc/PID/stat` line.
pub fn parse_stat(stat: &str) -> Option<(f64, f64)> {
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime as f64 / CLK_TCK, stime as f64 / CLK_TCK))
}

/// `VmHWM` in KiB from a `/proc/PID/status` text.
pub fn parse_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// This process's usage so far (None where `/proc` is missing).
pub fn current() -> Option<Usage> {
    let (utime_seconds, stime_seconds) = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let peak_rss_kib = parse_hwm(&std::fs::read_to_string("/proc/self/status").ok()?)?;
    Some(Usage { utime_seconds, stime_seconds, peak_rss_kib })
}

/// Writes the usage to `$PROXMOX_TALOS_RUSAGE_FILE` if it is set; `started` is
/// when the process began serving. Errors go to stderr (the engine's log).
pub fn write_if_requested(started: Instant) {
    let Some(path) = std::env::var_os(ENV).filter(|p| !p.is_empty()) else { return };
    let mut path = std::path::PathBuf::from(path);
    if path.is_dir() {
        path = path.join(format!("rusage-{}.json", std::process::id()));
    }
    let Some(u) = current() else {
        eprintln!("pulumi-resource-proxmox-talos: {ENV}: /proc/self is not readable here");
        return;
    };
    let json = serde_json::json!({
        "pid": std::process::id(),
        "utimeSeconds": u.utime_seconds,
        "stimeSeconds": u.stime_seconds,
        "cpuSeconds": u.utime_seconds + u.stime_seconds,
        "peakRssKib": u.peak_rss_kib,
        "wallSeconds": started.elapsed().as_secs_f64(),
    });
    // Written whole then renamed, so a reader never sees half a file.
    let tmp = std::path::PathBuf::from(format!("{}.{}.tmp", path.display(), std::process::id()));
    if let Err(e) = std::fs::write(&tmp, format!("{json}\n")).and_then(|_| std::fs::rename(&tmp, &path)) {
        eprintln!("pulumi-resource-proxmox-talos: writing {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_are_read() {
        let stat = "4242 (pulumi-resource (x)) S 1 2 3 4 5 6 7 8 9 10 250 37 0 0 20 0 9 0 100 1000 200";
        assert_eq!(parse_stat(stat), Some((2.5, 0.37)));
        assert_eq!(parse_hwm("Name:\tx\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n"), Some(12345));
        assert_eq!(parse_stat("garbage"), None);
        let me = current().expect("Linux /proc");
        assert!(me.peak_rss_kib > 0);
    }
}
