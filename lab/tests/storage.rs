//! The lab's storage endpoints over real HTTPS: status and content listings,
//! `download-url` from a loopback HTTP server started here (checksums, every
//! compression PVE knows, PVE's file-name rules and refusals), multipart
//! `upload`, content deletion and `query-url-metadata`.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::Auth;
use proxmox_talos_lab::pve::lab_config::{LabConfig, StorageConfig, Timing};
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;
use serde_json::Value;
use sha2::Digest as _;

const TOKEN: &str = "PVEAPIToken=root@pam!lab=00000000-1111-2222-3333-444444444444";

struct Lab {
    url: String,
    ca_pem: String,
    state: PveState,
    _dir: tempfile::TempDir,
}

async fn start() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::load_or_create(dir.path()).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let auth = Auth::new().with_token("root@pam!lab", "00000000-1111-2222-3333-444444444444");
    let mut config = LabConfig::single_node();
    config.timing = Timing::instant();
    // A second dir storage that only takes ISOs.
    config.storages.push(StorageConfig {
        id: "isos".into(),
        kind: "dir".into(),
        content: vec!["iso".into()],
        shared: false,
        capacity_gib: 10,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = PveState::new(apidoc, auth, config, dir.path()).unwrap();
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state.clone(), std::future::pending()));
    Lab { url: server::base_url(addr), ca_pem: ca.cert_pem().to_string(), state, _dir: dir }
}

impl Lab {
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .no_proxy()
            .build()
            .unwrap()
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.header("Authorization", TOKEN).send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client().get(format!("{}{path}", self.url))).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.send(self.client().post(format!("{}{path}", self.url)).form(form)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.client().delete(format!("{}{path}", self.url))).await
    }

    /// Waits for a task; its exit status and log lines.
    async fn task(&self, upid: &str) -> (String, Vec<String>) {
        for _ in 0..500 {
            let (status, body) = self.get(&format!("/nodes/pve/tasks/{upid}/status")).await;
            assert_eq!(status, 200, "{body}");
            if body["data"]["status"] == "stopped" {
                let (_, log) = self.get(&format!("/nodes/pve/tasks/{upid}/log?limit=1000")).await;
                let lines =
                    log["data"].as_array().unwrap().iter().map(|l| l["t"].as_str().unwrap().to_string()).collect();
                return (body["data"]["exitstatus"].as_str().unwrap().to_string(), lines);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {upid} did not end");
    }

    /// Starts a download and waits for its task.
    async fn download(&self, storage: &str, form: &[(&str, &str)]) -> (String, Vec<String>) {
        let (status, body) = self.post(&format!("/nodes/pve/storage/{storage}/download-url"), form).await;
        assert_eq!(status, 200, "{body}");
        let upid = body["data"].as_str().unwrap().to_string();
        assert!(upid.contains(":download:"), "{upid}");
        self.task(&upid).await
    }

    async fn content(&self, storage: &str, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/nodes/pve/storage/{storage}/content{query}")).await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    fn local_file(&self, sub: &str) -> std::path::PathBuf {
        self.state.dir_storage_path("pve", "local").join(sub)
    }
}

/// A file the test HTTP server serves.
struct Served {
    body: Vec<u8>,
    mime: &'static str,
    disposition: Option<&'static str>,
}

fn served(body: Vec<u8>) -> Served {
    Served { body, mime: "application/octet-stream", disposition: None }
}

/// A loopback HTTP server for `files` (plus `/go-*` redirects to `/*`); its base URL.
async fn file_server(files: Vec<(&str, Served)>) -> String {
    let files: Arc<HashMap<String, Served>> = Arc::new(files.into_iter().map(|(k, v)| (format!("/{k}"), v)).collect());
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri| {
        let files = files.clone();
        async move {
            if let Some(target) = uri.path().strip_prefix("/go-") {
                return (StatusCode::FOUND, [(header::LOCATION, format!("/{target}"))]).into_response();
            }
            let Some(file) = files.get(uri.path()) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let mut response = Response::builder()
                .header(header::CONTENT_TYPE, file.mime)
                .header(header::CONTENT_LENGTH, file.body.len());
            if let Some(d) = file.disposition {
                response = response.header(header::CONTENT_DISPOSITION, d);
            }
            let body = if method == Method::HEAD { Vec::new() } else { file.body.clone() };
            response.body(axum::body::Body::from(body)).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Compressible test data of `n` bytes.
fn payload(n: usize, seed: u8) -> Vec<u8> {
    let mut data = Vec::with_capacity(n);
    let mut i = 0u64;
    while data.len() < n {
        data.extend_from_slice(format!("line {i} of the lab image, seed {seed}\n").as_bytes());
        i += 1;
    }
    data.truncate(n);
    data
}

fn sha256(data: &[u8]) -> String {
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bz2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zst(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// An lzop file (what `lzop -c` writes): header, LZO1X-1 blocks with Adler-32 of the data.
fn lzo(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x89, b'L', b'Z', b'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
    let mut h = Vec::new();
    h.extend_from_slice(&0x1030u16.to_be_bytes()); // lzop version
    h.extend_from_slice(&0x2080u16.to_be_bytes()); // LZO library version
    h.extend_from_slice(&0x0940u16.to_be_bytes()); // version needed to extract
    h.extend_from_slice(&[1, 5]); // LZO1X-1, level 5
    h.extend_from_slice(&1u32.to_be_bytes()); // F_ADLER32_D
    h.extend_from_slice(&0o100644u32.to_be_bytes());
    h.extend_from_slice(&[0; 8]); // mtime
    h.push(0); // no file name
    out.extend_from_slice(&h);
    out.extend_from_slice(&adler32(&h).to_be_bytes());
    for block in data.chunks(64 * 1024) {
        let packed = lzokay_native::compress(block).unwrap();
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        let stored = if packed.len() < block.len() { &packed[..] } else { block };
        out.extend_from_slice(&(stored.len() as u32).to_be_bytes());
        out.extend_from_slice(&adler32(block).to_be_bytes());
        out.extend_from_slice(stored);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

/// A minimal qcow2 (v3 header, 1 GiB virtual size), optionally with a backing file.
fn qcow2(backing: bool) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    if backing {
        h[8..16].copy_from_slice(&200u64.to_be_bytes());
        h[16..20].copy_from_slice(&8u32.to_be_bytes());
        h[200..208].copy_from_slice(b"base.img");
    }
    h[20..24].copy_from_slice(&16u32.to_be_bytes());
    h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
    h[100..104].copy_from_slice(&104u32.to_be_bytes());
    h
}

/// A request written as is over TLS; the response as text.
async fn raw_request(lab: &Lab, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(pem::parse(&lab.ca_pem).unwrap().contents().to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = lab.url.trim_start_matches("https://").trim_end_matches("/api2/json").to_string();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

fn find<'a>(items: &'a [Value], volid: &str) -> Option<&'a Value> {
    items.iter().find(|i| i["volid"] == volid)
}

#[tokio::test]
async fn storage_status_and_index() {
    let lab = start().await;
    let (status, body) = lab.get("/nodes/pve/storage").await;
    assert_eq!(status, 200, "{body}");
    let local = body["data"].as_array().unwrap().iter().find(|s| s["storage"] == "local").unwrap().clone();
    assert_eq!(local["type"], "dir");
    assert_eq!(
        (local["active"].as_i64(), local["enabled"].as_i64(), local["shared"].as_i64()),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(local["total"], 100u64 << 30);
    assert!(local["used_fraction"].is_number() && local["avail"].is_number());
    // The seed template's disks use local-zfs.
    let zfs = body["data"].as_array().unwrap().iter().find(|s| s["storage"] == "local-zfs").unwrap().clone();
    assert!(zfs["used"].as_u64().unwrap() >= 20 << 30, "{zfs}");
    // Filters: content (any of a list), storage, target (shared only).
    let (_, body) = lab.get("/nodes/pve/storage?content=images").await;
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|s| s["storage"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ceph", "local-lvm", "local-zfs"]);
    let (_, body) = lab.get("/nodes/pve/storage?content=snippets,images&storage=local").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (status, body) = lab.get("/nodes/pve/storage?content=images&storage=local").await;
    assert_eq!((status, body["errors"]["storage"].as_str()), (400, Some("No such storage.")));
    let (_, body) = lab.get("/nodes/pve/storage?target=other-node").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    let (_, body) = lab.get("/nodes/pve/storage?format=1&storage=local").await;
    assert_eq!(body["data"][0]["formats"]["default"], "raw");
    // One storage.
    let (status, body) = lab.get("/nodes/pve/storage/local/status").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["content"], "iso,vztmpl,snippets,import,backup");
    let (status, body) = lab.get("/nodes/pve/storage/nope/status").await;
    assert_eq!((status, body["errors"]["storage"].as_str()), (400, Some("No such storage.")));
    let (_, body) = lab.get("/nodes/pve/storage/local").await;
    assert!(body["data"].as_array().unwrap().iter().any(|d| d["subdir"] == "download-url"));
    let (status, body) = lab.get("/nodes/nope/storage").await;
    assert_eq!(status, 500);
    assert!(body["message"].as_str().unwrap().starts_with("hostname lookup 'nope' failed"));
}

#[tokio::test]
async fn download_url_fetches_verifies_and_lists_the_file() {
    let lab = start().await;
    let iso = payload(100_000, 1);
    let base = file_server(vec![("talos.iso", served(iso.clone()))]).await;
    let url = format!("{base}/go-talos.iso");
    let sum = sha256(&iso);
    let form = [
        ("url", url.as_str()),
        ("content", "iso"),
        ("filename", "talos.iso"),
        ("checksum", sum.as_str()),
        ("checksum-algorithm", "sha256"),
    ];
    let (status, log) = lab.download("local", &form).await;
    assert_eq!(status, "OK", "{log:#?}");
    assert_eq!(log[0], format!("downloading {url} to /var/lib/vz/template/iso/talos.iso"));
    assert!(log.iter().any(|l| l.starts_with("Location: ") && l.ends_with("/talos.iso [following]")), "{log:#?}");
    assert!(log.iter().any(|l| l == "HTTP request sent, awaiting response... 200 OK"), "{log:#?}");
    assert!(log.iter().any(|l| l.contains("100%")), "{log:#?}");
    assert!(log.contains(&"calculating checksum...OK, checksum verified".to_string()), "{log:#?}");
    assert!(log.contains(&format!("download of '{url}' to '/var/lib/vz/template/iso/talos.iso' finished")));
    assert_eq!(std::fs::read(lab.local_file("template/iso/talos.iso")).unwrap(), iso);
    let items = lab.content("local", "?content=iso").await;
    let item = find(&items, "local:iso/talos.iso").expect("listed");
    assert_eq!(
        (item["size"].as_u64(), item["format"].as_str(), item["content"].as_str()),
        (Some(100_000), Some("iso"), Some("iso"))
    );
    assert!(item["ctime"].as_u64().unwrap() > 0);
    let (status, body) = lab.get("/nodes/pve/storage/local/content/local:iso/talos.iso").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["path"], "/var/lib/vz/template/iso/talos.iso");
    assert_eq!((body["data"]["size"].as_u64(), body["data"]["format"].as_str()), (Some(100_000), Some("raw")));
    // Again: the right checksum needs no download; without one the file is not overwritten.
    let (status, log) = lab.download("local", &form).await;
    assert_eq!(status, "OK");
    assert!(log.iter().any(|l| l.ends_with("OK, got correct file already, no need to download")), "{log:#?}");
    let (status, _) = lab.download("local", &form[..3]).await;
    assert_eq!(status, "refusing to override existing file '/var/lib/vz/template/iso/talos.iso'");
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(lab.local_file("template/iso"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["talos.iso"]);
}

#[tokio::test]
async fn download_url_refuses_a_wrong_checksum() {
    let lab = start().await;
    let base = file_server(vec![("a.iso", served(payload(5000, 2)))]).await;
    let url = format!("{base}/a.iso");
    let wrong = "0".repeat(64);
    let form = [
        ("url", url.as_str()),
        ("content", "iso"),
        ("filename", "a.iso"),
        ("checksum", wrong.as_str()),
        ("checksum-algorithm", "sha256"),
    ];
    let (status, log) = lab.download("local", &form).await;
    let got = sha256(&payload(5000, 2));
    assert_eq!(status, format!("checksum mismatch: got '{got}' != expect '{wrong}'"));
    assert_eq!(log[log.len() - 2], "calculating checksum...");
    assert_eq!(std::fs::read_dir(lab.local_file("template/iso")).unwrap().count(), 0);
    // md5 works as well (upper case too), and `localhost` is loopback.
    let data = payload(5000, 2);
    let md5: String = md5::Md5::digest(&data).iter().map(|b| format!("{b:02X}")).collect();
    let url = url.replace("127.0.0.1", "localhost");
    let form = [
        ("url", url.as_str()),
        ("content", "iso"),
        ("filename", "a.iso"),
        ("checksum", md5.as_str()),
        ("checksum-algorithm", "md5"),
    ];
    let (status, log) = lab.download("local", &form).await;
    assert_eq!(status, "OK", "{log:#?}");
    assert!(log.iter().any(|l| l == "Resolving localhost (localhost)... 127.0.0.1"), "{log:#?}");
}

#[tokio::test]
async fn download_url_decompresses_what_pve_can() {
    let lab = start().await;
    let image = payload(150_000, 3);
    let base = file_server(vec![
        ("i.iso.gz", served(gz(&image))),
        ("i.iso.zst", served(zst(&image))),
        ("i.iso.bz2", served(bz2(&image))),
        ("i.iso.lzo", served(lzo(&image))),
        ("i.iso.xz", served(image.clone())),
        ("broken.gz", served(b"not gzip at all".to_vec())),
        ("talos.raw.zst", served(zst(&image))),
    ])
    .await;
    for comp in ["gz", "zst", "bz2", "lzo"] {
        let url = format!("{base}/i.iso.{comp}");
        let name = format!("i-{comp}.img");
        let form = [("url", url.as_str()), ("content", "iso"), ("filename", name.as_str()), ("compression", comp)];
        let (status, log) = lab.download("local", &form).await;
        assert_eq!(status, "OK", "{comp}: {log:#?}");
        assert!(log
            .iter()
            .any(|l| l.starts_with("decompressing /var/lib/vz/template/iso/") && l.contains(".tmp_dcom.")));
        assert_eq!(std::fs::read(lab.local_file(&format!("template/iso/{name}"))).unwrap(), image, "{comp}");
    }
    // The schema has no enum for `compression` (PVE's is undefined), so xz
    // passes verification and the task fails as PVE's does.
    let url = format!("{base}/i.iso.xz");
    let form = [("url", url.as_str()), ("content", "iso"), ("filename", "x.iso"), ("compression", "xz")];
    assert_eq!(lab.download("local", &form).await.0, "no decompression method found");
    // Only ISOs are decompressed.
    let url = format!("{base}/talos.raw.zst");
    let form = [("url", url.as_str()), ("content", "import"), ("filename", "talos.raw"), ("compression", "zst")];
    assert_eq!(lab.download("local", &form).await.0, "decompression not supported for import");
    // A payload that is not what it claims.
    let url = format!("{base}/broken.gz");
    let form = [("url", url.as_str()), ("content", "iso"), ("filename", "b.iso"), ("compression", "gz")];
    let (status, log) = lab.download("local", &form).await;
    assert!(status.starts_with("command 'zcat /var/lib/vz/template/iso/b.iso.tmp_dwnl."), "{status}");
    assert!(log.iter().any(|l| l.starts_with("gzip: ") && l.ends_with("not in gzip format")), "{log:#?}");
    assert!(!lab.local_file("template/iso/b.iso").exists());
}

#[tokio::test]
async fn download_url_applies_pve_file_rules_and_refusals() {
    let lab = start().await;
    let base = file_server(vec![
        ("talos.qcow2", served(qcow2(false))),
        ("backed.qcow2", served(qcow2(true))),
        ("notqcow.qcow2", served(payload(2000, 4))),
    ])
    .await;
    let url = format!("{base}/talos.qcow2");
    let post = |storage: &'static str, content: &'static str, filename: &'static str| {
        let url = url.clone();
        let lab = &lab;
        async move {
            let form = [("url", url.as_str()), ("content", content), ("filename", filename)];
            lab.post(&format!("/nodes/pve/storage/{storage}/download-url"), &form).await
        }
    };
    for (content, filename, message) in [
        ("iso", "talos.qcow2", "wrong file extension"),
        ("vztmpl", "debian.tar", "wrong file extension"),
        ("import", "talos.img", "invalid filename or wrong extension"),
        ("import", "talos.QCOW2", "invalid filename or wrong extension"),
    ] {
        let (status, body) = post("local", content, filename).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"]["filename"], message, "{content} {filename}");
    }
    let (status, body) = post("isos", "import", "talos.qcow2").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (500, Some("storage 'isos' is not configured for content-type 'import'\n"))
    );
    let (status, body) = post("local-zfs", "iso", "x.iso").await;
    assert_eq!(status, 500);
    assert_eq!(body["message"], "can't upload to storage type 'zfspool', not a file based storage!\n");
    let (status, body) = post("nope", "iso", "x.iso").await;
    assert_eq!((status, body["message"].as_str()), (500, Some("storage 'nope' does not exist\n")));
    // Schema: only iso, vztmpl and import; only http(s) URLs.
    let (status, body) = post("local", "snippets", "x.yaml").await;
    assert_eq!(status, 400);
    assert!(body["errors"]["content"].as_str().unwrap().contains("enumeration"), "{body}");
    // An import image: a qcow2 is checked as untrusted.
    let form = [("url", url.as_str()), ("content", "import"), ("filename", "talos v1.qcow2")];
    let (status, log) = lab.download("local", &form).await;
    assert_eq!(status, "OK", "{log:#?}");
    let items = lab.content("local", "?content=import").await;
    let item = find(&items, "local:import/talos_v1.qcow2").expect("normalized name listed");
    assert_eq!(item["format"], "qcow2");
    let (_, body) = lab.get("/nodes/pve/storage/local/content/import/talos_v1.qcow2").await;
    assert_eq!((body["data"]["size"].as_u64(), body["data"]["format"].as_str()), (Some(1 << 30), Some("qcow2")));
    let backed = format!("{base}/backed.qcow2");
    let form = [("url", backed.as_str()), ("content", "import"), ("filename", "backed.qcow2")];
    let status = lab.download("local", &form).await.0;
    assert!(status.starts_with("failed to verify file: backing file not allowed for untrusted image '/var/lib/vz/import/backed.qcow2.tmp_dwnl."), "{status}");
    let fake = format!("{base}/notqcow.qcow2");
    let form = [("url", fake.as_str()), ("content", "import"), ("filename", "fake.qcow2")];
    assert_eq!(
        lab.download("local", &form).await.0,
        "failed to verify file: failed to query file information with qemu-img"
    );
    // Fetch failures.
    let missing = format!("{base}/missing.iso");
    let form = [("url", missing.as_str()), ("content", "iso"), ("filename", "m.iso")];
    let (status, log) = lab.download("local", &form).await;
    assert_eq!(status, "download failed: exit code 8");
    assert!(log.iter().any(|l| l.ends_with("ERROR 404: Not Found.")), "{log:#?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let refused = format!("http://{closed}/x.iso");
    let form = [("url", refused.as_str()), ("content", "iso"), ("filename", "r.iso")];
    assert_eq!(
        lab.download("local", &form).await.0,
        format!("download failed: Connecting to {}:{}... failed: Connection refused.", closed.ip(), closed.port())
    );
    for outside in
        ["https://example.com/talos.iso", "http://10.1.2.3:8080/talos.iso", "http://localhost.example.org/x.iso"]
    {
        let form = [("url", outside), ("content", "iso"), ("filename", "o.iso")];
        let status = lab.download("local", &form).await.0;
        assert!(status.contains("refusing to download from non-loopback address in the lab"), "{outside}: {status}");
    }
}

#[tokio::test]
async fn upload_takes_isos_and_import_images_but_not_snippets() {
    let lab = start().await;
    let client = lab.client();
    let url = format!("{}/nodes/pve/storage/local/upload", lab.url);
    let iso = payload(300_000, 5);
    let sum = sha256(&iso);
    let form = reqwest::multipart::Form::new()
        .text("content", "iso")
        .text("checksum-algorithm", "sha256")
        .text("checksum", sum.clone())
        .part("filename", reqwest::multipart::Part::bytes(iso.clone()).file_name("my talos.iso"));
    let (status, body) = lab.send(client.post(&url).multipart(form)).await;
    assert_eq!(status, 200, "{body}");
    let upid = body["data"].as_str().unwrap();
    assert!(upid.contains(":imgcopy::root@pam!lab:"), "{upid}");
    let (status, log) = lab.task(upid).await;
    assert_eq!(status, "OK", "{log:#?}");
    assert!(log[0].starts_with("starting file import from: /var/tmp/pveupload-"), "{log:#?}");
    assert!(log.contains(&"target file: /var/lib/vz/template/iso/my_talos.iso".to_string()), "{log:#?}");
    assert!(log.contains(&"file size is: 300000".to_string()));
    assert_eq!(log[log.len() - 2], "finished file import successfully");
    assert_eq!(std::fs::read(lab.local_file("template/iso/my_talos.iso")).unwrap(), iso);
    // An import image, and the listing.
    let form = reqwest::multipart::Form::new()
        .text("content", "import")
        .part("filename", reqwest::multipart::Part::bytes(qcow2(false)).file_name("talos-1.12.qcow2"));
    let (status, body) = lab.send(client.post(&url).multipart(form)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(lab.task(body["data"].as_str().unwrap()).await.0, "OK");
    let items = lab.content("local", "").await;
    assert_eq!(find(&items, "local:import/talos-1.12.qcow2").unwrap()["size"], 512);
    assert_eq!(find(&items, "local:iso/my_talos.iso").unwrap()["size"], 300_000);
    // A checksum mismatch leaves nothing behind.
    let form = reqwest::multipart::Form::new()
        .text("content", "iso")
        .text("checksum-algorithm", "sha256")
        .text("checksum", "0".repeat(64))
        .part("filename", reqwest::multipart::Part::bytes(iso.clone()).file_name("bad.iso"));
    let (_, body) = lab.send(client.post(&url).multipart(form)).await;
    let (status, _) = lab.task(body["data"].as_str().unwrap()).await;
    assert_eq!(status, format!("checksum mismatch: got '{sum}' != expect '{}'", "0".repeat(64)));
    assert!(!lab.local_file("template/iso/bad.iso").exists());
    // Snippets cannot be uploaded: the schema's enum says so.
    let form = reqwest::multipart::Form::new()
        .text("content", "snippets")
        .part("filename", reqwest::multipart::Part::bytes(b"#cloud-config\n".to_vec()).file_name("user-data.yaml"));
    let (status, body) = lab.send(client.post(&url).multipart(form)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"]["content"],
        "value 'snippets' does not have a value in the enumeration 'iso, vztmpl, import'"
    );
    // Wrong extension, and a storage without the content type.
    let form = reqwest::multipart::Form::new()
        .text("content", "iso")
        .part("filename", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.qcow2"));
    let (status, body) = lab.send(client.post(&url).multipart(form)).await;
    assert_eq!((status, body["errors"]["filename"].as_str()), (400, Some("wrong file extension")));
    let form = reqwest::multipart::Form::new()
        .text("content", "import")
        .part("filename", reqwest::multipart::Part::bytes(qcow2(false)).file_name("x.qcow2"));
    let isos = format!("{}/nodes/pve/storage/isos/upload", lab.url);
    let (status, body) = lab.send(client.post(&isos).multipart(form)).await;
    assert_eq!((status, body["message"].as_str()), (500, Some("storage 'isos' does not support 'import' content\n")));
    // pveproxy's multipart rules: the file part is named `filename`.
    let form = reqwest::multipart::Form::new()
        .text("content", "iso")
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.iso"));
    let (status, body) = lab.send(client.post(&url).multipart(form)).await;
    assert_eq!(status, 501, "{body}");
    assert_eq!(body["message"], "wrong field name 'file' for file upload, expected 'filename'\n");
    // pveproxy needs a Content-Length: a chunked upload is refused.
    let chunked = raw_request(
        &lab,
        &format!(
            "POST /api2/json/nodes/pve/storage/local/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {TOKEN}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             5\r\n--b\r\n\r\n0\r\n\r\n"
        ),
    )
    .await;
    assert!(chunked.starts_with("HTTP/1.1 501 chunked transfer encoding not supported\r\n"), "{chunked}");
    // No spooled upload is left behind, whatever happened (the handler may still be unwinding).
    let spool = lab.state.state_dir().join("upload-tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(&spool).unwrap().count() != 0 {
        assert!(std::time::Instant::now() < deadline, "a spooled upload was left behind");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn content_lists_volumes_and_deletes() {
    let lab = start().await;
    // Block storage: the seed template's disks, per VM.
    let items = lab.content("local-zfs", "").await;
    let disk = find(&items, "local-zfs:base-90001-disk-0").expect("template disk");
    assert_eq!(
        (disk["vmid"].as_u64(), disk["format"].as_str(), disk["size"].as_u64()),
        (Some(90001), Some("raw"), Some(20 << 30))
    );
    assert!(lab.content("local-zfs", "?vmid=100").await.is_empty());
    assert!(lab.content("local", "?content=images").await.is_empty());
    let (status, body) = lab.get("/nodes/pve/storage/local/content?content=bogus").await;
    assert_eq!(
        (status, body["errors"]["content"].as_str()),
        (400, Some("invalid format - invalid content type 'bogus'\n"))
    );
    // Allocate, list, delete a disk.
    let form = [("filename", "vm-100-disk-0"), ("vmid", "100"), ("size", "1G")];
    let (status, body) = lab.post("/nodes/pve/storage/local-zfs/content", &form).await;
    assert_eq!((status, body["data"].as_str()), (200, Some("local-zfs:vm-100-disk-0")), "{body}");
    let (status, body) = lab.post("/nodes/pve/storage/local-zfs/content", &form).await;
    assert_eq!(status, 500);
    assert_eq!(body["message"], "zfs error: cannot create 'rpool/data/vm-100-disk-0': dataset already exists\n");
    assert_eq!(lab.content("local-zfs", "?vmid=100").await[0]["size"], 1u64 << 30);
    let (status, body) = lab.delete("/nodes/pve/storage/local-zfs/content/vm-100-disk-0").await;
    assert_eq!(status, 200, "{body}");
    let upid = body["data"].as_str().unwrap();
    assert!(upid.contains(":imgdel:100@local-zfs:"), "{upid}");
    let (status, log) = lab.task(upid).await;
    assert_eq!(status, "OK");
    assert!(log.contains(&"Removed volume 'local-zfs:vm-100-disk-0'".to_string()));
    assert!(lab.content("local-zfs", "?vmid=100").await.is_empty());
    let (_, body) = lab.delete("/nodes/pve/storage/local-zfs/content/vm-100-disk-0").await;
    assert_eq!(
        lab.task(body["data"].as_str().unwrap()).await.0,
        "zfs error: cannot open 'rpool/data/vm-100-disk-0': dataset does not exist"
    );
    // A snippet put on disk (as SFTP would) is listed and deleted; `delay` waits for the task.
    std::fs::write(lab.local_file("snippets/user-data.yaml"), "#cloud-config\n").unwrap();
    let items = lab.content("local", "?content=snippets").await;
    let snippet = find(&items, "local:snippets/user-data.yaml").unwrap();
    assert_eq!((snippet["format"].as_str(), snippet["size"].as_u64()), (Some("snippet"), Some(14)));
    let (status, body) = lab.delete("/nodes/pve/storage/local/content/local:snippets/user-data.yaml?delay=5").await;
    assert_eq!((status, &body["data"]), (200, &Value::Null), "{body}");
    assert!(!lab.local_file("snippets/user-data.yaml").exists());
    let (status, body) = lab.delete("/nodes/pve/storage/local/content/ceph:vm-1-disk-0").await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"]["volume"], "storage ID mismatch (ceph != local)\n");
    let (status, body) = lab.delete("/nodes/pve/storage/local/content/iso/x.qcow2").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (500, Some("unable to parse directory volume name 'iso/x.qcow2'\n"))
    );
    let (status, body) = lab.get("/nodes/pve/storage/local/content/iso/none.iso").await;
    assert_eq!((status, body["message"].as_str()), (500, Some("volume_size_info on 'local:iso/none.iso' failed\n")));
}

#[tokio::test]
async fn query_url_metadata_asks_with_head() {
    let lab = start().await;
    let base = file_server(vec![
        ("v1/talos.iso", served(payload(4096, 6))),
        (
            "image",
            Served {
                body: payload(100, 7),
                mime: "application/x-iso9660-image; charset=binary",
                disposition: Some("attachment; filename=\"metal-amd64.iso\""),
            },
        ),
    ])
    .await;
    let get = |url: String| {
        let lab = &lab;
        async move {
            let url: String = url
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect();
            lab.get(&format!("/nodes/pve/query-url-metadata?url={url}")).await
        }
    };
    let (status, body) = get(format!("{base}/v1/talos.iso?x=1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        serde_json::json!({ "filename": "talos.iso", "size": 4096, "mimetype": "application/octet-stream" })
    );
    let (_, body) = get(format!("{base}/go-image")).await;
    assert_eq!(
        body["data"],
        serde_json::json!({ "filename": "metal-amd64.iso", "size": 100, "mimetype": "application/x-iso9660-image" })
    );
    let (status, body) = get(format!("{base}/missing")).await;
    assert_eq!((status, body["message"].as_str()), (500, Some("invalid server response: '404 Not Found'\n")));
    let (status, body) = get("https://example.com/talos.iso".into()).await;
    assert_eq!(status, 500);
    assert!(body["message"].as_str().unwrap().contains("loopback"), "{body}");
    let (status, body) = get("ftp://127.0.0.1/x".into()).await;
    assert_eq!(status, 400, "{body}");
}
