//! Waiting on Talos nodes, shared by `cluster:Kubeconfig` and `cluster:getHealth`.
//!
//! Owns: timeouts (`timeouts.*` as Go durations, checked at Check), the
//! deadline of one operation, which Talos API failures are worth another
//! attempt (the node is down, rebooting, still in maintenance mode, or not
//! bootstrapped yet) and which are final (a refused client certificate, a role
//! that may not call the method, a worker asked for a control-plane call), the
//! bound on each call, and the pause between attempts (cancellable).
//! Must not: decide what is waited for, or log anything itself.

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::Code;

use crate::framework::{CheckFailure, Context, ResourceError};
use crate::talos::api_client::TalosApiError;

/// The pause between attempts.
pub const POLL: Duration = Duration::from_millis(500);
/// The longest one Talos API call (or connection) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The default of every `timeouts.*` value (terraform-provider-talos's).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Parses a `timeouts.*` value: a positive Go duration (`10m`, `90s`, `1h`).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let nanos = crate::talos::config::parse_go_duration(text)
        .map_err(|e| format!("{e}; expected a Go duration such as \"10m\", \"90s\" or \"1h30m\""))?;
    match u64::try_from(nanos) {
        Ok(n) if n > 0 => Ok(Duration::from_nanos(n)),
        _ => Err(format!("{text:?} is not a positive duration; expected e.g. \"10m\"")),
    }
}

/// A check failure at `field` when `value` is set and not a valid timeout.
pub fn check_timeout(field: &str, value: Option<&str>) -> Option<CheckFailure> {
    value.and_then(|v| parse_timeout(v).err()).map(|reason| CheckFailure::new(field, reason))
}

/// The timeout of an operation: `value` when set, else the engine's `customTimeouts`, else ten minutes.
pub fn timeout(ctx: &Context, value: Option<&str>) -> Duration {
    value.and_then(|v| parse_timeout(v).ok()).or(ctx.timeout()).unwrap_or(DEFAULT_TIMEOUT)
}

/// Go's `time.Duration` text for whole seconds and up (`10m0s`, `3s`), as Talos users read them.
pub fn go_text(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let millis = d.subsec_millis();
    let s =
        if millis == 0 { format!("{s}s") } else { format!("{s}.{}s", format!("{millis:03}").trim_end_matches('0')) };
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// The time one operation may take.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    started: Instant,
    limit: Duration,
}

impl Deadline {
    /// Starts now, ending after `limit`.
    pub fn after(limit: Duration) -> Self {
        Deadline { started: Instant::now(), limit }
    }

    /// How long the operation has run.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The limit it was given.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether time is up.
    pub fn expired(&self) -> bool {
        self.started.elapsed() >= self.limit
    }

    /// The bound for one call: [`CALL_TIMEOUT`], or what is left when less (at least a second).
    pub fn call_bound(&self) -> Duration {
        self.limit.saturating_sub(self.started.elapsed()).clamp(Duration::from_secs(1), CALL_TIMEOUT)
    }

    /// Waits [`POLL`] before the next attempt; the engine's cancellation ends the wait.
    pub async fn pause(&self, ctx: &Context) -> Result<(), ResourceError> {
        let left = self.limit.saturating_sub(self.started.elapsed());
        tokio::select! {
            () = tokio::time::sleep(POLL.min(left)) => Ok(()),
            () = ctx.cancelled() => Err(ResourceError::Cancelled),
        }
    }

    /// Runs one Talos call bounded by [`Self::call_bound`]; a call that takes longer
    /// counts as the node not answering at `target`.
    pub async fn call<T>(
        &self,
        target: &str,
        call: impl Future<Output = Result<T, TalosApiError>>,
    ) -> Result<T, TalosApiError> {
        let bound = self.call_bound();
        tokio::time::timeout(bound, call).await.unwrap_or_else(|_| {
            Err(TalosApiError::Unreachable {
                endpoint: target.to_string(),
                reason: format!("no answer within {}", go_text(bound)),
            })
        })
    }
}

/// Whether another attempt may succeed: the node is down or rebooting (unreachable,
/// Unavailable), still in maintenance mode or rebooting into its configuration (its
/// certificate is not from the cluster's CA yet), or not ready for the call yet
/// (FailedPrecondition, e.g. etcd not bootstrapped). A refused client certificate, a
/// role that may not call the method, bad credentials and every other status are final.
pub fn retriable(e: &TalosApiError) -> bool {
    match e {
        TalosApiError::Unreachable { .. } | TalosApiError::WrongCa { .. } => true,
        TalosApiError::Status { code, .. } => {
            matches!(code, Code::Unavailable | Code::FailedPrecondition | Code::DeadlineExceeded | Code::Aborted)
        }
        TalosApiError::Invalid(_)
        | TalosApiError::ClientCertificateRefused { .. }
        | TalosApiError::NotAuthorized { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_positive_go_durations() {
        assert_eq!(parse_timeout("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_timeout("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_timeout("2.5s").unwrap(), Duration::from_millis(2500));
        assert!(parse_timeout("0").unwrap_err().contains("not a positive duration"));
        assert!(parse_timeout("-1m").is_err());
        let err = parse_timeout("10 minutes").unwrap_err();
        assert!(err.contains("\"10m\""), "{err}");
        let f = check_timeout("timeouts.read", Some("5")).unwrap();
        assert_eq!(f.property, "timeouts.read");
        assert!(f.reason.contains("missing unit"), "{}", f.reason);
        assert!(check_timeout("timeouts.read", None).is_none());
    }

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(go_text(Duration::from_secs(600)), "10m0s");
        assert_eq!(go_text(Duration::from_secs(3)), "3s");
        assert_eq!(go_text(Duration::from_millis(2500)), "2.5s");
        assert_eq!(go_text(Duration::from_secs(5405)), "1h30m5s");
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |code| TalosApiError::Status { method: "Kubeconfig".into(), code, message: String::new() };
        assert!(retriable(&status(Code::Unavailable)));
        assert!(retriable(&status(Code::FailedPrecondition)));
        assert!(!retriable(&status(Code::Unimplemented)), "a worker never serves control-plane calls");
        assert!(!retriable(&status(Code::InvalidArgument)));
        assert!(retriable(&TalosApiError::Unreachable { endpoint: "a".into(), reason: "refused".into() }));
        assert!(retriable(&TalosApiError::WrongCa { endpoint: "a".into(), reason: "x".into() }));
        assert!(!retriable(&TalosApiError::ClientCertificateRefused { endpoint: "a".into(), reason: "x".into() }));
        assert!(!retriable(&TalosApiError::NotAuthorized { method: "Kubeconfig".into(), roles: vec![] }));
    }
}
