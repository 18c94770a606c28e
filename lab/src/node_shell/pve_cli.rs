//! `pvesm` and `qm` in the lab's node shell: the subcommands clients run
//! over SSH, answered through the running lab (its PVE API, and the lab
//! routes of `pve::node_cli` where PVE's tools act on the node directly),
//! with PVE's output lines, error texts and exit status 255 on errors.
//!
//! - `pvesm path VOLUME`, `pvesm status [--storage S] [--content C]`,
//!   `pvesm list STORAGE [--content C] [--vmid N]`,
//!   `pvesm alloc STORAGE VMID FILENAME SIZE [--format F]`;
//! - `qm disk import|qm importdisk VMID SOURCE STORAGE [--format F] [--target-disk D]`,
//!   `qm set VMID --OPTION VALUE... [--delete KEYS]`, `qm config VMID [--current]`,
//!   `qm resize VMID DISK SIZE`, `qm status VMID`.
//!
//! Other subcommands answer "command not available in the lab" (127).

use std::io::Write;

use serde_json::{json, Value};

use super::{not_available, Options};
use crate::pve::auth::{LabCredentials, CREDENTIALS_FILE};
use crate::pve::tls::CA_CERT_FILE;

/// A client for the running lab, made before the shell chroots.
pub struct Api {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// `https://127.0.0.1:8006/api2/json`.
    base: String,
    /// `https://127.0.0.1:8006`.
    lab: String,
    auth: String,
}

/// PVE's CLI error: message printed, exit 255.
type CliResult = Result<(), String>;

impl Api {
    pub fn connect(options: &Options) -> Result<Api, String> {
        let read = |name: &str| {
            let path = options.state_dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))
        };
        let creds: LabCredentials = serde_json::from_str(&read(CREDENTIALS_FILE)?).map_err(|e| e.to_string())?;
        let ca = reqwest::Certificate::from_pem(read(CA_CERT_FILE)?.as_bytes()).map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .no_proxy()
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let base = options.api.trim_end_matches('/').to_string();
        let lab = base.trim_end_matches("/api2/json").to_string();
        Ok(Api { client, runtime, base, lab, auth: creds.token_header() })
    }

    /// Sends a request; the `data` on success, PVE's error text otherwise.
    fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        self.runtime.block_on(async {
            let response = request.header("Authorization", &self.auth).send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| e.to_string())?;
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(body["data"].clone());
            }
            let message = body["message"].as_str().unwrap_or(status.canonical_reason().unwrap_or("error")).trim_end();
            let mut text = match status.as_u16() {
                400 | 501 => format!("{} {message}", status.as_u16()),
                _ => message.to_string(),
            };
            if let Some(errors) = body["errors"].as_object() {
                for (k, v) in errors {
                    text.push_str(&format!("\n{k}: {}", v.as_str().unwrap_or_default().trim_end()));
                }
            }
            Err(text)
        })
    }

    fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, String> {
        self.send(self.client.get(format!("{}{path}", self.base)).query(query))
    }

    fn form(&self, method: reqwest::Method, path: &str, form: &[(String, String)]) -> Result<Value, String> {
        self.send(self.client.request(method, format!("{}{path}", self.base)).form(form))
    }
}

/// `--name value` / `-name value` options (a lone flag is `1`) and the positional arguments.
fn options(args: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    let mut opts = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let name = a.strip_prefix("--").or_else(|| a.strip_prefix('-')).filter(|n| !n.is_empty());
        match name {
            Some(name) => {
                if let Some((n, v)) = name.split_once('=') {
                    opts.push((n.to_string(), v.to_string()));
                    i += 1;
                } else if let Some(v) = args.get(i + 1).filter(|v| !v.starts_with('-') || v.len() == 1) {
                    opts.push((name.to_string(), v.clone()));
                    i += 2;
                } else {
                    opts.push((name.to_string(), "1".to_string()));
                    i += 1;
                }
            }
            None => {
                positional.push(a.clone());
                i += 1;
            }
        }
    }
    (opts, positional)
}

fn opt<'a>(opts: &'a [(String, String)], name: &str) -> Option<&'a str> {
    opts.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Prints a CLI error as PVE's tools do and answers 255.
fn finish(result: CliResult, err: &mut Vec<u8>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "{}", e.trim_end());
            255
        }
    }
}

fn usage(args: usize, need: usize, text: &str) -> CliResult {
    if args < need {
        return Err(format!("400 not enough arguments\n{text}"));
    }
    if args > need {
        return Err(format!("400 too many arguments\n{text}"));
    }
    Ok(())
}

pub fn pvesm(api: &Api, node: &str, args: &[String], out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
    let Some(sub) = args.first() else {
        let _ = writeln!(err, "ERROR: no command specified\nUSAGE: pvesm <COMMAND> [ARGS] [OPTIONS]");
        return 255;
    };
    let (opts, pos) = options(&args[1..]);
    let result = match sub.as_str() {
        "path" => usage(pos.len(), 1, "pvesm path <volume>").and_then(|()| {
            let path = api.send(
                api.client
                    .get(format!("{}/lab/nodes/{node}/pvesm/path", api.lab))
                    .query(&[("volume", pos[0].as_str())]),
            )?;
            let _ = writeln!(out, "{}", path.as_str().unwrap_or_default());
            Ok(())
        }),
        "status" => pvesm_status(api, node, &opts, out),
        "list" => usage(pos.len(), 1, "pvesm list <storage> [OPTIONS]")
            .and_then(|()| pvesm_list(api, node, &pos[0], &opts, out)),
        "alloc" => usage(pos.len(), 4, "pvesm alloc <storage> <vmid> <filename> <size> [OPTIONS]").and_then(|()| {
            let mut form = vec![
                ("vmid".to_string(), pos[1].clone()),
                ("filename".to_string(), pos[2].clone()),
                ("size".to_string(), pos[3].clone()),
            ];
            form.extend(opts.iter().filter(|(n, _)| n == "format").cloned());
            let volid = api.form(reqwest::Method::POST, &format!("/nodes/{node}/storage/{}/content", pos[0]), &form)?;
            let _ = writeln!(out, "successfully created '{}'", volid.as_str().unwrap_or_default());
            Ok(())
        }),
        other => {
            let _ = err.write_all(not_available(&format!("pvesm {other}")).as_bytes());
            return 127;
        }
    };
    finish(result, err)
}

fn pvesm_status(api: &Api, node: &str, opts: &[(String, String)], out: &mut Vec<u8>) -> CliResult {
    let query: Vec<(&str, String)> =
        opts.iter().filter(|(n, _)| n == "content" || n == "storage").map(|(n, v)| (n.as_str(), v.clone())).collect();
    let list = api.get(&format!("/nodes/{node}/storage"), &query)?;
    let mut items: Vec<&Value> = list.as_array().map(|a| a.iter().collect()).unwrap_or_default();
    items.sort_by_key(|i| i["storage"].as_str().unwrap_or_default().to_string());
    let width = items.iter().map(|i| i["storage"].as_str().unwrap_or_default().len()).max().unwrap_or(0).max(16);
    let _ = writeln!(
        out,
        "{:<width$} {:>8} {:>10} {:>15} {:>15} {:>15} {:>8}",
        "Name", "Type", "Status", "Total", "Used", "Available", "%"
    );
    for i in items {
        let kib = |k: &str| i[k].as_u64().unwrap_or(0) / 1024;
        let status = if i["enabled"].as_u64() == Some(0) {
            "disabled"
        } else if i["active"].as_u64() == Some(1) {
            "active"
        } else {
            "inactive"
        };
        let total = kib("total");
        let percent = if total > 0 { kib("used") as f64 * 100.0 / total as f64 } else { 0.0 };
        let _ = writeln!(
            out,
            "{:<width$} {:>8} {:>10} {:>15} {:>15} {:>15} {:>7.2}%",
            i["storage"].as_str().unwrap_or_default(),
            i["type"].as_str().unwrap_or_default(),
            status,
            total,
            kib("used"),
            kib("avail"),
            percent
        );
    }
    Ok(())
}

fn pvesm_list(api: &Api, node: &str, storage: &str, opts: &[(String, String)], out: &mut Vec<u8>) -> CliResult {
    let query: Vec<(&str, String)> =
        opts.iter().filter(|(n, _)| n == "content" || n == "vmid").map(|(n, v)| (n.as_str(), v.clone())).collect();
    let list = api.get(&format!("/nodes/{node}/storage/{storage}/content"), &query)?;
    let mut items: Vec<&Value> = list.as_array().map(|a| a.iter().collect()).unwrap_or_default();
    items.sort_by_key(|i| i["volid"].as_str().unwrap_or_default().to_string());
    let width = items.iter().map(|i| i["volid"].as_str().unwrap_or_default().len()).max().unwrap_or(0).max(5);
    let _ = writeln!(out, "{:<width$} {:<8} {:<12} {:>12} VMID", "Volid", "Format", "Type", "Size");
    for i in items {
        let vmid = i["vmid"].as_u64().map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<width$} {:<8} {:<12} {:>12} {}",
            i["volid"].as_str().unwrap_or_default(),
            i["format"].as_str().unwrap_or_default(),
            i["content"].as_str().unwrap_or_default(),
            i["size"].as_u64().unwrap_or(0),
            vmid
        );
    }
    Ok(())
}

/// Bytes as qemu-img's progress shows them (`2.0 GiB`).
fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

fn vmid_arg(text: &str) -> Result<u32, String> {
    text.parse::<u32>().ok().filter(|v| (100..=999_999_999).contains(v)).ok_or_else(|| {
        "400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID".to_string()
    })
}

pub fn qm(api: &Api, node: &str, args: &[String], out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
    let Some(sub) = args.first() else {
        let _ = writeln!(err, "ERROR: no command specified\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]");
        return 255;
    };
    let (sub, rest) = match (sub.as_str(), args.get(1).map(String::as_str)) {
        ("disk", Some("import")) => ("importdisk", &args[2..]),
        ("disk", Some("resize")) => ("resize", &args[2..]),
        (s, _) => (s, &args[1..]),
    };
    let (opts, pos) = options(rest);
    let result = match sub {
        "importdisk" => usage(pos.len(), 3, "qm disk import <vmid> <source> <storage> [OPTIONS]")
            .and_then(|()| import_disk(api, node, &pos, &opts, out)),
        "set" => usage(pos.len(), 1, "qm set <vmid> [OPTIONS]").and_then(|()| {
            let vmid = vmid_arg(&pos[0])?;
            let _ = writeln!(
                out,
                "update VM {vmid}: {}",
                opts.iter().map(|(n, v)| format!("-{n} {v}")).collect::<Vec<_>>().join(" ")
            );
            api.form(reqwest::Method::PUT, &format!("/nodes/{node}/qemu/{vmid}/config"), &opts).map(|_| ())
        }),
        "config" => usage(pos.len(), 1, "qm config <vmid> [OPTIONS]").and_then(|()| {
            let vmid = vmid_arg(&pos[0])?;
            let query: Vec<(&str, String)> = opts.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
            let config = api.get(&format!("/nodes/{node}/qemu/{vmid}/config"), &query)?;
            for (k, v) in config.as_object().into_iter().flatten().filter(|(k, _)| *k != "digest") {
                let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                let _ = writeln!(out, "{k}: {text}");
            }
            Ok(())
        }),
        "resize" => usage(pos.len(), 3, "qm resize <vmid> <disk> <size> [OPTIONS]").and_then(|()| {
            let vmid = vmid_arg(&pos[0])?;
            let form = [("disk".to_string(), pos[1].clone()), ("size".to_string(), pos[2].clone())];
            api.form(reqwest::Method::PUT, &format!("/nodes/{node}/qemu/{vmid}/resize"), &form).map(|_| ())
        }),
        "status" => usage(pos.len(), 1, "qm status <vmid> [OPTIONS]").and_then(|()| {
            let vmid = vmid_arg(&pos[0])?;
            let status = api.get(&format!("/nodes/{node}/qemu/{vmid}/status/current"), &[])?;
            let _ = writeln!(out, "status: {}", status["status"].as_str().unwrap_or_default());
            Ok(())
        }),
        other => {
            let _ = err.write_all(not_available(&format!("qm {other}")).as_bytes());
            return 127;
        }
    };
    finish(result, err)
}

fn import_disk(api: &Api, node: &str, pos: &[String], opts: &[(String, String)], out: &mut Vec<u8>) -> CliResult {
    let vmid = vmid_arg(&pos[0])?;
    let (source, storage) = (&pos[1], &pos[2]);
    let mut body = json!({ "vmid": vmid, "source": source, "storage": storage });
    for name in ["format", "target-disk"] {
        if let Some(v) = opt(opts, name) {
            body[name] = json!(v);
        }
    }
    if let Some((n, _)) = opts.iter().find(|(n, _)| n != "format" && n != "target-disk") {
        return Err(format!("400 Parameter verification failed.\n{n}: property is not defined in schema and the schema does not allow additional properties"));
    }
    let _ = writeln!(out, "importing disk '{source}' to VM {vmid} ...");
    let done = api.send(
        api.client
            .post(format!("{}/lab/nodes/{node}/qm/importdisk", api.lab))
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )?;
    let size = done["size"].as_u64().unwrap_or(0);
    let _ = writeln!(out, "transferred {} of {} (0.00%)", human(0), human(size));
    let _ = writeln!(out, "transferred {} of {} (100.00%)", human(size), human(size));
    let _ = writeln!(
        out,
        "Successfully imported disk as '{}:{}'",
        done["key"].as_str().unwrap_or_default(),
        done["volid"].as_str().unwrap_or_default()
    );
    Ok(())
}
