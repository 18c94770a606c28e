//! The `timeouts` input of the Talos node resources (`machine:ConfigurationApply`,
//! `machine:Bootstrap`), as pulumi-talos takes it: `{create, update, delete}`,
//! each a Go duration (`10m`, `1h30m`, `90s`) or a number of seconds (`600`),
//! 10 minutes by default.
//!
//! Owns: the type, its Check failures (with property paths) and the resolved
//! durations (the input, else the engine's `customTimeouts`, else the default).
//! Must not: wait; the resources do.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::framework::{CheckFailure, Context};
use crate::resources::vm::format::parse_duration;
use crate::schema::PulumiType;

/// How long an operation may wait when nothing says otherwise.
pub const DEFAULT: Duration = Duration::from_secs(600);
/// The longest timeout accepted: a week.
const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long each operation may wait for the node: a Go duration (`10m`, `1h30m`, `90s`) or a
/// number of seconds (`600`). Each defaults to the resource's `customTimeouts`, else 10 minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "machine:Timeouts")]
pub struct Timeouts {
    /// Create: how long to wait for the node (default 10m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create: Option<String>,
    /// Update: how long to wait for the node (default 10m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    /// Delete: how long to wait for the node (default 10m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
}

/// Which operation a timeout is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// `10m`, `1h30m`, `90s` or `600` (seconds), between 1 second and a week.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let d = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => parse_duration(text).map_err(|e| format!("{e}, or a number of seconds such as \"600\""))?,
    };
    if d < Duration::from_secs(1) || d > MAX {
        return Err(format!("{text:?} is out of range; use between 1s and 168h"));
    }
    Ok(d)
}

impl Timeouts {
    fn get(&self, op: Operation) -> Option<&str> {
        match op {
            Operation::Create => self.create.as_deref(),
            Operation::Update => self.update.as_deref(),
            Operation::Delete => self.delete.as_deref(),
        }
    }
}

/// Check failures for `timeouts` (at `timeouts.create` etc.).
pub fn failures(timeouts: Option<&Timeouts>) -> Vec<CheckFailure> {
    let Some(t) = timeouts else { return Vec::new() };
    [("create", Operation::Create), ("update", Operation::Update), ("delete", Operation::Delete)]
        .into_iter()
        .filter_map(|(name, op)| {
            let text = t.get(op)?;
            parse(text).err().map(|e| CheckFailure::new(format!("timeouts.{name}"), e))
        })
        .collect()
}

/// The timeout of `op`: the input, else `customTimeouts`, else [`DEFAULT`].
pub fn resolve(ctx: &Context, timeouts: Option<&Timeouts>, op: Operation) -> Duration {
    timeouts.and_then(|t| t.get(op)).and_then(|t| parse(t).ok()).or_else(|| ctx.timeout()).unwrap_or(DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_plain_seconds() {
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("90"), Ok(Duration::from_secs(90)));
        assert!(parse("0").unwrap_err().contains("out of range"));
        assert!(parse("ten minutes").unwrap_err().contains("number of seconds"));
    }

    #[test]
    fn failures_name_the_operation() {
        let t = Timeouts { create: Some("5m".into()), update: Some("soon".into()), delete: Some("0s".into()) };
        let f = failures(Some(&t));
        let paths: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(paths, ["timeouts.update", "timeouts.delete"]);
    }
}
