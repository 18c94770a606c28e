//! `/cluster/...`: the cluster calls the provider makes, typed.
//!
//! Owns: the members `GET /cluster/status` lists (a standalone node lists
//! itself) with their addresses. Must not: retry, or know Pulumi args.

use serde::Deserialize;

use super::client::PveClient;
use super::error::ProxmoxError;

/// One entry of `GET /cluster/status`: the cluster itself or a node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusEntry {
    /// `cluster` or `node`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// A node's cluster address.
    #[serde(default)]
    pub ip: Option<String>,
}

/// `GET /cluster/status`.
pub async fn status(client: &PveClient) -> Result<Vec<StatusEntry>, ProxmoxError> {
    client.get("/cluster/status", &[]).await
}

/// The nodes' names (`GET /nodes`, which every authenticated caller may list).
pub async fn node_names(client: &PveClient) -> Result<Vec<String>, ProxmoxError> {
    let nodes: Vec<serde_json::Value> = client.get("/nodes", &[]).await?;
    Ok(nodes.iter().filter_map(|n| n.get("node")?.as_str().map(str::to_string)).collect())
}

/// The address `/cluster/status` gives for `node`, if it lists the node with one.
pub async fn node_address(client: &PveClient, node: &str) -> Result<Option<String>, ProxmoxError> {
    Ok(status(client).await?.into_iter().find(|e| e.kind == "node" && e.name == node).and_then(|e| e.ip))
}
