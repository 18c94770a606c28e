//! Retries with backoff for the transient failures real Proxmox VE clusters
//! produce (research §3: config lock "got timeout", "got no worker upid",
//! HTTP 5xx, dropped connections).
//!
//! Owns: the backoff schedule and the loop. The caller's closure decides what
//! a retry means: for a create or clone, "already exists" on a later attempt
//! is its own earlier attempt having taken effect, which the closure checks.
//! Must not: retry errors that are not transient.

use std::future::Future;
use std::time::Duration;

use super::error::ProxmoxError;

/// How often and how long to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, first_delay: Duration::from_millis(200), max_delay: Duration::from_secs(5) }
    }
}

/// Runs `op` until it succeeds, fails for good, or the attempts run out.
/// `on_retry(attempt, error)` is told before each new attempt.
pub async fn retry<T, F, Fut>(
    policy: RetryPolicy,
    mut on_retry: impl FnMut(u32, &ProxmoxError),
    mut op: F,
) -> Result<T, ProxmoxError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProxmoxError>>,
{
    let mut delay = policy.first_delay;
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt < policy.attempts => {
                on_retry(attempt, &e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(policy.max_delay);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn lock() -> ProxmoxError {
        ProxmoxError::Api {
            method: "PUT".into(),
            path: "/x".into(),
            status: 500,
            message: "can't lock file '/var/lock/qemu-server/lock-1.conf' - got timeout".into(),
            errors: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_others_are_not() {
        let fast =
            RetryPolicy { attempts: 4, first_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        let mut retries = 0;
        let v = retry(
            fast,
            |_, _| retries += 1,
            |n| async move {
                if n < 3 {
                    Err(lock())
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(v.unwrap(), 3);
        assert_eq!(retries, 2);
        let e = retry(fast, |_, _| {}, |_| async { Err::<(), _>(lock()) }).await.unwrap_err();
        assert!(e.is_lock_timeout());
        let mut calls = 0;
        let e = retry(
            fast,
            |_, _| {},
            |_| {
                calls += 1;
                async { Err::<(), _>(ProxmoxError::Config("bad".into())) }
            },
        )
        .await;
        assert!(e.is_err());
        assert_eq!(calls, 1);
    }
}
