//! The lab CA and the PVE API's server certificate.
//!
//! Owns: the lab CA (an ECDSA P-256 key and a self-signed CA certificate,
//! created at first start and kept in the state directory as `pve-ca.pem` and
//! `pve-ca-key.pem`, so clients can pin it across restarts), a fresh server
//! certificate signed by it at every start for `127.0.0.1`, `::1`,
//! `localhost`, the listen address and every node's address and name (as a
//! PVE node's certificate names its addresses), and the rustls server config
//! (ring provider).
//! Must not: disable verification anywhere; clients verify against the CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA certificate file in the state directory.
pub const CA_CERT_FILE: &str = "pve-ca.pem";
/// The CA key file in the state directory.
pub const CA_KEY_FILE: &str = "pve-ca-key.pem";

/// The lab CA, loaded or created.
pub struct LabCa {
    cert_pem: String,
    cert_path: PathBuf,
    key: KeyPair,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "proxmox-talos lab CA");
    params.distinguished_name.push(DnType::OrganizationName, "proxmox-talos lab");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

impl LabCa {
    /// Loads the CA from `state_dir`, creating the directory and the CA if absent.
    pub fn load_or_create(state_dir: &Path) -> Result<LabCa, String> {
        std::fs::create_dir_all(state_dir).map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
        let cert_path = state_dir.join(CA_CERT_FILE);
        let key_path = state_dir.join(CA_KEY_FILE);
        if cert_path.is_file() && key_path.is_file() {
            let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()));
            let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| format!("{}: {e}", key_path.display()))?;
            return Ok(LabCa { cert_pem: read(&cert_path)?, cert_path, key });
        }
        let key = KeyPair::generate().map_err(|e| format!("generating the lab CA key: {e}"))?;
        let cert = ca_params().self_signed(&key).map_err(|e| format!("creating the lab CA: {e}"))?;
        let cert_pem = cert.pem();
        write_private(&key_path, &key.serialize_pem())?;
        std::fs::write(&cert_path, &cert_pem).map_err(|e| format!("writing {}: {e}", cert_path.display()))?;
        Ok(LabCa { cert_pem, cert_path, key })
    }

    /// The CA certificate (PEM), for clients' trust stores.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Where the CA certificate is stored.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// [`Self::server_config_for`] the loopback names only (tests on `127.0.0.1`).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        self.server_config_for(&[])
    }

    /// A rustls server config with a new leaf certificate (made at every
    /// start, so it always names the current set) for `localhost`,
    /// `127.0.0.1`, `::1` and `names`: what real PVE's node certificate
    /// (`pve-ssl.pem`) names besides those, the node's addresses and host
    /// names, and here also the address the API listens on (`--listen`).
    /// IP addresses become IP SANs, anything else a DNS SAN.
    pub fn server_config_for(&self, names: &[String]) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut all = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        for name in names {
            let name = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => name.to_ascii_lowercase(),
            };
            if !all.contains(&name) {
                all.push(name);
            }
        }
        let mut params = CertificateParams::new(all).map_err(|e| format!("server certificate names: {e}"))?;
        params.distinguished_name.push(DnType::CommonName, "pve.lab");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().map_err(|e| format!("generating the server key: {e}"))?;
        let issuer = Issuer::new(ca_params(), &self.key);
        let leaf = params.signed_by(&leaf_key, &issuer).map_err(|e| format!("signing the server certificate: {e}"))?;
        let ca_der = rustls_pem_to_der(&self.cert_pem)?;
        let chain = vec![CertificateDer::from(leaf.der().to_vec()), ca_der];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("TLS server certificate: {e}"))?;
        Ok(Arc::new(config))
    }
}

/// The names the API's certificate carries besides the loopback ones: the
/// address it listens on, then each node's address and name.
pub fn certificate_names(config: &super::lab_config::LabConfig, listen: std::net::IpAddr) -> Vec<String> {
    let mut names = vec![listen.to_string()];
    for node in &config.nodes {
        names.push(node.address.to_string());
        names.push(node.name.clone());
    }
    names
}

fn rustls_pem_to_der(pem_text: &str) -> Result<CertificateDer<'static>, String> {
    let parsed = pem::parse(pem_text).map_err(|e| format!("the lab CA certificate: {e}"))?;
    Ok(CertificateDer::from(parsed.contents().to_vec()))
}

/// Creates `path` readable by the owner only (fails if it exists).
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))
}
