//! `POST /nodes/{node}/storage/{storage}/upload`: a file the client sent as
//! `multipart/form-data` (spooled by the server, see [`super::multipart`])
//! enters a `dir` storage through an `imgcopy` task, as pve-storage's
//! `API2/Storage/Status.pm` `upload` does it: storage and file-name checks
//! before the task; in the task the checksum, the checks on untrusted images,
//! then the move into place (an existing file is overwritten, as in PVE).
//!
//! Owns: that handler. Must not: parse HTTP bodies.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::super::cluster::node_of;
use super::super::server::{ApiError, Call, Handlers};
use super::super::state::PveState;
use super::super::tasks::{self, Worker};
use super::download::{assert_valid, check_filename};
use super::files;
use super::{allows, dir_file, has_path, normalize_filename, storage_config};

pub fn register(h: &mut Handlers) {
    h.sync("POST", "/nodes/{node}/storage/{storage}/upload", upload);
}

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
}

fn upload(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let sid = call.str("storage");
    let s = storage_config(state, sid)?;
    if !has_path(&s) {
        return Err(internal(format!("can't upload to storage type '{}'", s.kind)));
    }
    let content = call.str("content").to_string();
    let Some(file) = &call.file else {
        return Err(internal(match call.opt_str("tmpfilename") {
            Some(t) => format!("temporary file '{t}' does not exist"),
            None => "missing temporary file name".to_string(),
        }));
    };
    let filename = normalize_filename(call.str("filename"));
    let format = check_filename(&content, &filename).map_err(|e| {
        // The upload's text for a content type it does not take differs from download-url's.
        match e.errors.as_ref().and_then(|m| m.get("content")) {
            Some(_) => {
                ApiError::params([("content".into(), format!("upload content type '{content}' not allowed"))].into())
            }
            None => e,
        }
    })?;
    if !allows(&s, &content) {
        return Err(internal(format!("storage '{sid}' does not support '{content}' content")));
    }
    let dest = dir_file(state, &node, sid, &content, &filename);
    if let Some(dir) = dest.real_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| internal(format!("mkdir {}: {e}", dir.display())))?;
    }
    // The task owns the spooled file from here on (the server removes what is left after a request).
    let mut owned = file.path.as_os_str().to_owned();
    owned.push(".imgcopy");
    let owned = std::path::PathBuf::from(owned);
    std::fs::rename(&file.path, &owned).map_err(|e| internal(format!("temporary file: {e}")))?;
    let shown_tmp = call.opt_str("tmpfilename").unwrap_or("/var/tmp/pveupload").to_string();
    let checksum = match (call.opt_str("checksum"), call.opt_str("checksum-algorithm")) {
        (Some(sum), Some(alg)) => Some((alg.to_string(), sum.to_string())),
        _ => None,
    };
    let size = file.size;
    let worker = Worker { node: node.clone(), kind: "imgcopy", id: String::new(), lock_vmid: None };
    let upid = tasks::start(state, call, worker, move |log| async move {
        log.line(format!("starting file import from: {shown_tmp}"));
        let checked = (|| {
            if let Some((algorithm, expected)) = &checksum {
                let got = files::file_hash(algorithm, &owned)?;
                if !got.eq_ignore_ascii_case(expected) {
                    log.line("calculating checksum...");
                    return Err(format!("checksum mismatch: got '{got}' != expect '{expected}'"));
                }
                log.line("calculating checksum...OK, checksum verified");
            }
            assert_valid(&content, format, &owned, &shown_tmp)
        })();
        if let Err(e) = checked {
            let _ = std::fs::remove_file(&owned);
            return Err(e);
        }
        log.line(format!("target node: {node}"));
        log.line(format!("target file: {}", dest.node_path));
        log.line(format!("file size is: {size}"));
        log.line(format!("command: cp -- {shown_tmp} {}", dest.node_path));
        let moved = std::fs::rename(&owned, &dest.real_path).or_else(|_| {
            std::fs::copy(&owned, &dest.real_path).map(|_| ()).inspect(|()| {
                let _ = std::fs::remove_file(&owned);
            })
        });
        if let Err(e) = moved {
            let _ = std::fs::remove_file(&owned);
            return Err(format!("import failed: {e}"));
        }
        log.line("finished file import successfully");
        Ok(())
    });
    Ok(json!(upid))
}
