//! `POST /nodes/{node}/storage/{storage}/download-url` and
//! `GET /nodes/{node}/query-url-metadata`: the node fetches a URL itself.
//!
//! Owns: the checks PVE makes before forking (storage has a path, content
//! type enabled, file-name rules; pve-storage `API2/Storage/Status.pm`), the
//! `download` task as pve-common's `download_file_from_url` runs it (refuses
//! an existing file, wget's log lines, checksum, decompression, the checks on
//! untrusted images, `.tmp_dwnl.PID` then rename), and `query-url-metadata`
//! (a HEAD request, as pve-manager's `Nodes.pm` makes it).
//! The lab fetches for real, but only from loopback (`127.0.0.0/8`, `::1`,
//! `localhost`, also after redirects) and never through a proxy; anything
//! else fails as a download error. Must not: write outside the storage's
//! directory.

use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::super::cluster::node_of;
use super::super::server::{ApiError, Call, Handlers};
use super::super::state::PveState;
use super::super::tasks::{self, TaskLog, Worker};
use super::files;
use super::{allows, dir_file, has_path, normalize_filename, storage_config, DirFile};

pub fn register(h: &mut Handlers) {
    h.sync("POST", "/nodes/{node}/storage/{storage}/download-url", download_url);
    h.r#async("GET", "/nodes/{node}/query-url-metadata", |state, call| Box::pin(query_url_metadata(state, call)));
}

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
}

fn param_error(name: &str, msg: &str) -> ApiError {
    ApiError::params([(name.to_string(), msg.to_string())].into())
}

/// `verify-certificates` (default 1).
fn verify_certificates(call: &Call) -> bool {
    call.params.get("verify-certificates").is_none() || call.flag("verify-certificates")
}

/// The file-name rule of a content type for upload and download-url: the
/// format of an `import` image, `None` for ISOs and templates, or PVE's 400.
pub fn check_filename(content: &str, filename: &str) -> Result<Option<&'static str>, ApiError> {
    match content {
        "iso" if files::is_iso_name(filename) => Ok(None),
        "vztmpl" if files::vztmpl_ext(filename).is_some() => Ok(None),
        "iso" | "vztmpl" => Err(param_error("filename", "wrong file extension")),
        "import" => files::upload_import_format(filename)
            .map(Some)
            .ok_or_else(|| param_error("filename", "invalid filename or wrong extension")),
        other => Err(param_error("content", &format!("upload content-type '{other}' is not allowed"))),
    }
}

/// The checks PVE runs on a file before it enters a storage (`assert_file_validity`).
pub fn assert_valid(content: &str, format: Option<&str>, path: &std::path::Path, shown: &str) -> Result<(), String> {
    match (content, format) {
        ("iso", _) => files::assert_untrusted_image(path, None, shown),
        (_, Some("ova")) => files::assert_ova_contents(path, shown),
        (_, Some(format)) => files::assert_untrusted_image(path, Some(format), shown),
        _ => Ok(()),
    }
}

struct Download {
    url: String,
    content: String,
    format: Option<&'static str>,
    dest: DirFile,
    checksum: Option<(String, String)>,
    compression: Option<String>,
    verify: bool,
}

fn download_url(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let sid = call.str("storage");
    let s = storage_config(state, sid)?;
    if !has_path(&s) {
        return Err(internal(format!("can't upload to storage type '{}', not a file based storage!", s.kind)));
    }
    let content = call.str("content");
    if !allows(&s, content) {
        return Err(internal(format!("storage '{sid}' is not configured for content-type '{content}'")));
    }
    let filename = normalize_filename(call.str("filename"));
    let format = check_filename(content, &filename)?;
    let dest = dir_file(state, &node, sid, content, &filename);
    if let Some(dir) = dest.real_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| internal(format!("mkdir {}: {e}", dir.display())))?;
    }
    let checksum = match (call.opt_str("checksum"), call.opt_str("checksum-algorithm")) {
        (Some(sum), Some(alg)) if !sum.is_empty() => Some((alg.to_string(), sum.to_string())),
        _ => None,
    };
    let job = Download {
        url: call.str("url").to_string(),
        content: content.to_string(),
        format,
        dest,
        checksum,
        compression: call.opt_str("compression").filter(|c| !c.is_empty()).map(str::to_string),
        verify: verify_certificates(call),
    };
    let worker = Worker { node, kind: "download", id: filename, lock_vmid: None };
    let upid = tasks::start(state, call, worker, move |log| run(log, job));
    Ok(json!(upid))
}

/// The worker's "pid" from its UPID (temporary files carry it).
fn task_pid(upid: &str) -> u32 {
    upid.split(':').nth(2).and_then(|p| u32::from_str_radix(p, 16).ok()).unwrap_or(0)
}

async fn run(log: TaskLog, job: Download) -> Result<(), String> {
    if let Some(compression) = &job.compression {
        if job.content != "iso" {
            return Err(format!("decompression not supported for {}", job.content));
        }
        if files::decompressor(compression).is_none() {
            return Err("no decompression method found".into());
        }
    }
    let dest = &job.dest;
    log.line(format!("downloading {} to {}", job.url, dest.node_path));
    if dest.real_path.is_file() {
        let Some((algorithm, expected)) = &job.checksum else {
            return Err(format!("refusing to override existing file '{}'", dest.node_path));
        };
        let got = files::file_hash(algorithm, &dest.real_path)?;
        if got.eq_ignore_ascii_case(expected) {
            log.line("calculating checksum of existing file...OK, got correct file already, no need to download");
            return Ok(());
        }
        log.line("calculating checksum of existing file...");
        return Err(format!("checksum mismatch: got '{got}' != expect '{expected}', aborting"));
    }
    let pid = task_pid(log.upid());
    let tmp_download =
        (format!("{}.tmp_dwnl.{pid}", dest.node_path), suffixed(&dest.real_path, &format!(".tmp_dwnl.{pid}")));
    let tmp_decomp =
        (format!("{}.tmp_dcom.{pid}", dest.node_path), suffixed(&dest.real_path, &format!(".tmp_dcom.{pid}")));
    let result = fetch_and_place(&log, &job, &tmp_download, &tmp_decomp).await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_download.1);
        let _ = std::fs::remove_file(&tmp_decomp.1);
    }
    result?;
    log.line(format!("download of '{}' to '{}' finished", job.url, dest.node_path));
    Ok(())
}

fn suffixed(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

type Tmp = (String, std::path::PathBuf);

async fn fetch_and_place(log: &TaskLog, job: &Download, tmp_download: &Tmp, tmp_decomp: &Tmp) -> Result<(), String> {
    wget(log, &job.url, tmp_download, job.verify).await.map_err(|e| format!("download failed: {e}"))?;
    if let Some((algorithm, expected)) = &job.checksum {
        let got = files::file_hash(algorithm, &tmp_download.1)?;
        if !got.eq_ignore_ascii_case(expected) {
            log.line("calculating checksum...");
            return Err(format!("checksum mismatch: got '{got}' != expect '{expected}'"));
        }
        log.line("calculating checksum...OK, checksum verified");
    }
    let mut ready = tmp_download;
    if let Some(compression) = &job.compression {
        let command = files::decompressor(compression).unwrap_or_default();
        log.line(format!("decompressing {} to {}", tmp_download.0, tmp_decomp.0));
        let (c, src, dst, shown) =
            (compression.clone(), tmp_download.1.clone(), tmp_decomp.1.clone(), tmp_download.0.clone());
        let result = tokio::task::spawn_blocking(move || files::decompress(&c, &src, &dst, &shown))
            .await
            .map_err(|e| e.to_string())?;
        if let Err(stderr) = result {
            log.line(stderr);
            return Err(format!("command '{command} {}' failed: exit code 1", tmp_download.0));
        }
        let _ = std::fs::remove_file(&tmp_download.1);
        ready = tmp_decomp;
    }
    assert_valid(&job.content, job.format, &ready.1, &ready.0).map_err(|e| format!("failed to verify file: {e}"))?;
    std::fs::rename(&ready.1, &job.dest.real_path).map_err(|e| format!("unable to rename temporary file: {e}"))
}

/// Whether a URL's host is loopback: `Err(host)` if not.
pub fn loopback(url: &reqwest::Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or("");
    let ok = host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.trim_start_matches('[').trim_end_matches(']').parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    if ok {
        Ok(())
    } else {
        Err(host.to_string())
    }
}

/// An HTTP client that never uses a proxy, follows no redirects by itself
/// and resolves `localhost` to 127.0.0.1.
fn client(verify: bool) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(!verify)
        .resolve("localhost", (Ipv4Addr::LOCALHOST, 0).into())
        .connect_timeout(Duration::from_secs(10))
        .user_agent("Wget/1.21.3")
        .build()
        .map_err(|e| e.to_string())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), as wget stamps its lines.
fn timestamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// wget's short sizes: `512`, `121K`, `1.9G`.
fn human(n: u64) -> String {
    let units = [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in units {
        if n >= size {
            let v = n as f64 / size as f64;
            return if v < 10.0 { format!("{v:.1}{unit}") } else { format!("{v:.0}{unit}") };
        }
    }
    n.to_string()
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let per_sec = bytes as f64 / elapsed.as_secs_f64().max(0.001);
    if per_sec >= (1 << 20) as f64 {
        format!("{:.1} MB/s", per_sec / (1 << 20) as f64)
    } else {
        format!("{:.0} KB/s", per_sec / 1024.0)
    }
}

/// wget's `--progress=dot:giga` line: 32 dots of 1M each, in groups of 8.
fn dots(mib: u64) -> String {
    let mut s = String::new();
    for i in 0..32 {
        if i > 0 && i % 8 == 0 {
            s.push(' ');
        }
        s.push(if i < mib { '.' } else { ' ' });
    }
    s
}

/// Fetches `url` into `dest` as `wget --progress=dot:giga -O dest url`
/// does, logging its lines; the error is wget's last stderr line (or its
/// exit code, as `run_command` reports it).
async fn wget(log: &TaskLog, url: &str, dest: &Tmp, verify: bool) -> Result<u64, String> {
    let mut url = reqwest::Url::parse(url).map_err(|_| format!("{url}: Invalid URL."))?;
    let client = client(verify)?;
    for _ in 0..=20 {
        log.line(format!("--{}--  {url}", timestamp()));
        if let Err(host) = loopback(&url) {
            return Err(format!("refusing to download from non-loopback address in the lab ('{host}')"));
        }
        let host = url.host_str().unwrap_or("").to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let connecting = if host.eq_ignore_ascii_case("localhost") {
            log.line(format!("Resolving {host} ({host})... 127.0.0.1"));
            format!("Connecting to {host} ({host})|127.0.0.1|:{port}...")
        } else {
            format!("Connecting to {host}:{port}...")
        };
        let response = match client.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e)
                if e.is_connect() && url.scheme() == "https" && verify && format!("{e:?}").contains("certificate") =>
            {
                log.line(format!("{connecting} connected."));
                log.line(format!("ERROR: cannot verify {host}'s certificate: {e}"));
                return Err(format!("To connect to {host} insecurely, use `--no-check-certificate'."));
            }
            Err(e) if e.is_connect() => {
                let reason = if format!("{e:?}").contains("ConnectionRefused") {
                    "Connection refused"
                } else {
                    "Connection timed out"
                };
                return Err(format!("{connecting} failed: {reason}."));
            }
            Err(e) => return Err(format!("{connecting} failed: {e}.")),
        };
        log.line(format!("{connecting} connected."));
        let status = response.status();
        let reason = status.canonical_reason().unwrap_or("Unknown");
        log.line(format!("HTTP request sent, awaiting response... {} {reason}", status.as_u16()));
        if status.is_redirection() {
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
            let Some(next) = location.and_then(|l| url.join(l).ok()) else {
                return Err("exit code 8".into());
            };
            log.line(format!("Location: {next} [following]"));
            url = next;
            continue;
        }
        if !status.is_success() {
            log.line(format!("{} ERROR {}: {reason}.", timestamp(), status.as_u16()));
            return Err("exit code 8".into());
        }
        return save(log, response, dest).await;
    }
    Err("20 redirections exceeded.".into())
}

async fn save(log: &TaskLog, mut response: reqwest::Response, dest: &Tmp) -> Result<u64, String> {
    let total = response
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mime = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = if mime.is_empty() { String::new() } else { format!(" [{mime}]") };
    log.line(match total {
        Some(n) if n >= 1024 => format!("Length: {n} ({}){mime}", human(n)),
        Some(n) => format!("Length: {n}{mime}"),
        None => format!("Length: unspecified{mime}"),
    });
    log.line(format!("Saving to: '{}'", dest.0));
    let mut file = std::fs::File::create(&dest.1).map_err(|e| format!("{}: {e}", dest.0))?;
    let (start, mut written, mut line_start) = (Instant::now(), 0u64, 0u64);
    const LINE: u64 = 32 << 20;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "{} ({}) - Read error at byte {written} ({e}). Giving up.",
                    timestamp(),
                    rate(written, start.elapsed())
                ));
            }
        };
        file.write_all(&chunk).map_err(|e| format!("Cannot write to '{}' ({e}).", dest.0))?;
        written += chunk.len() as u64;
        while written - line_start >= LINE {
            let pct = total.map(|t| format!("{:>3}%", (line_start + LINE) * 100 / t.max(1))).unwrap_or_default();
            log.line(format!(
                "{:>6}K {} {pct} {}",
                line_start >> 10,
                dots(32),
                rate(line_start + LINE, start.elapsed())
            ));
            line_start += LINE;
        }
    }
    file.flush().map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    let pct = if total.is_some() { "100%".to_string() } else { String::new() };
    log.line(format!(
        "{:>6}K {} {pct} {}={:.1}s",
        line_start >> 10,
        dots((written - line_start) >> 20),
        rate(written, elapsed),
        elapsed.as_secs_f64()
    ));
    let of = total.map(|t| format!("/{t}")).unwrap_or_default();
    log.line(format!("{} ({}) - '{}' saved [{written}{of}]", timestamp(), rate(written, elapsed), dest.0));
    Ok(written)
}

/// `GET /nodes/{node}/query-url-metadata`: a HEAD request; any answer but 200
/// is PVE's "invalid server response" with LWP's status line.
async fn query_url_metadata(state: PveState, call: Call) -> Result<Value, ApiError> {
    node_of(&state, &call)?;
    let invalid = |line: String| internal(format!("invalid server response: '{line}'"));
    let mut url = reqwest::Url::parse(call.str("url")).map_err(|e| invalid(format!("400 URL invalid: {e}")))?;
    let client = client(verify_certificates(&call)).map_err(|e| invalid(format!("500 {e}")))?;
    let mut redirects = 0;
    let response = loop {
        let host_port = format!("{}:{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(80));
        if loopback(&url).is_err() {
            return Err(invalid(format!(
                "500 Can't connect to {host_port} (the lab only connects to loopback addresses)"
            )));
        }
        let response = client.head(url.clone()).send().await.map_err(|e| {
            let reason = if format!("{e:?}").contains("ConnectionRefused") {
                "Connection refused".to_string()
            } else {
                e.to_string()
            };
            invalid(format!("500 Can't connect to {host_port} ({reason})"))
        })?;
        let next = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
        match next.and_then(|l| url.join(l).ok()) {
            Some(next) if response.status().is_redirection() && redirects < 7 => {
                redirects += 1;
                url = next;
            }
            _ => break response,
        }
    };
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(invalid(format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Unknown"))));
    }
    let header = |name: reqwest::header::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    };
    let mut out = Map::new();
    let from_disposition = header(reqwest::header::CONTENT_DISPOSITION).and_then(|d| disposition_filename(&d));
    let filename = from_disposition.or_else(|| url_filename(call.str("url")));
    if let Some(filename) = filename.filter(|f| !f.is_empty()) {
        out.insert("filename".into(), json!(filename));
    }
    if let Some(size) =
        header(reqwest::header::CONTENT_LENGTH).and_then(|s| s.trim().parse::<u64>().ok()).filter(|s| *s > 0)
    {
        out.insert("size".into(), json!(size));
    }
    if let Some(mime) = header(reqwest::header::CONTENT_TYPE).filter(|m| !m.is_empty()) {
        let mime = match mime.split_once(';') {
            Some((head, _)) if !head.is_empty() => head.to_string(),
            _ => mime,
        };
        out.insert("mimetype".into(), json!(mime));
    }
    Ok(Value::Object(out))
}

/// `filename="x"` or `filename=x` of a Content-Disposition header.
fn disposition_filename(d: &str) -> Option<String> {
    let at = d.find("filename=")?;
    let rest = &d[at + "filename=".len()..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split_once('"').map(|(name, _)| name.to_string());
    }
    Some(rest.split(';').next().unwrap_or("").to_string())
}

/// The last path segment of a URL (before any query), as PVE takes it.
fn url_filename(url: &str) -> Option<String> {
    let path = url.split('?').next().unwrap_or(url);
    let (_, last) = path.rsplit_once('/')?;
    Some(last.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_fetched() {
        for ok in ["http://127.0.0.1:8080/x", "https://127.8.9.10/x", "http://localhost/x", "http://[::1]:1/x"] {
            assert!(loopback(&reqwest::Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for bad in ["http://10.0.0.1/x", "https://example.com/x", "http://192.168.1.1/x", "http://localhost.evil.com/"]
        {
            assert!(loopback(&reqwest::Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_file_names_come_from_the_disposition_or_the_path() {
        assert_eq!(disposition_filename("attachment; filename=\"a b.iso\"").as_deref(), Some("a b.iso"));
        assert_eq!(disposition_filename("attachment; filename=x.raw; size=3").as_deref(), Some("x.raw"));
        assert_eq!(url_filename("http://127.0.0.1/a/b/talos.iso?x=1").as_deref(), Some("talos.iso"));
        assert_eq!(human(1_048_576), "1.0M");
        assert_eq!(human(512), "512");
        assert_eq!(timestamp().len(), 19);
    }
}
