//! Certificates and TLS for the lab's Talos nodes.
//!
//! Owns: loading a CA from an applied configuration (Ed25519 keys as Talos
//! writes them, `ED25519 PRIVATE KEY` around PKCS#8; ECDSA keys as SEC1 `EC
//! PRIVATE KEY` or PKCS#8), issuing leaves with the CA's exact subject (so
//! chains verify), the rustls server configs (maintenance: a fresh
//! self-signed certificate, no client authentication; apid: a certificate
//! from the OS CA and mandatory client certificates from that CA; the
//! Kubernetes API on a VIP: a serving certificate from the Kubernetes CA),
//! the roles in a client certificate (its Organization values, as Talos's
//! authz reads them), and the admin kubeconfig Talos generates.
//! Must not: decide who may call what (that is `api`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use base64::Engine as _;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType,
    PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// The crypto provider every lab Talos TLS config uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA loaded from a configuration: its certificate and signing key.
pub struct Ca {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    key: KeyPair,
}

impl Ca {
    /// Loads a CA from PEM texts.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, String> {
        let cert_der = pem::parse(cert_pem).map_err(|e| format!("CA certificate: {e}"))?.into_contents();
        Ok(Ca { cert_pem: cert_pem.to_string(), cert_der, key: key_pair_from_pem(key_pem)? })
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, String> {
        Issuer::from_ca_cert_der(&CertificateDer::from(self.cert_der.clone()), &self.key)
            .map_err(|e| format!("CA certificate: {e}"))
    }

    /// Signs `params` for `key`; returns the leaf's DER.
    fn sign(&self, params: CertificateParams, key: &KeyPair) -> Result<Vec<u8>, String> {
        let cert = params.signed_by(key, &self.issuer()?).map_err(|e| format!("signing a certificate: {e}"))?;
        Ok(cert.der().to_vec())
    }
}

/// A private key in any of the PEM forms Talos configurations carry.
pub fn key_pair_from_pem(key_pem: &str) -> Result<KeyPair, String> {
    let block = pem::parse(key_pem).map_err(|e| format!("private key: {e}"))?;
    let pkcs8 = match block.tag() {
        "EC PRIVATE KEY" => {
            use p256::pkcs8::EncodePrivateKey as _;
            let key = p256::SecretKey::from_sec1_der(block.contents()).map_err(|e| format!("EC private key: {e}"))?;
            key.to_pkcs8_der().map_err(|e| format!("EC private key: {e}"))?.as_bytes().to_vec()
        }
        "ED25519 PRIVATE KEY" | "PRIVATE KEY" => block.contents().to_vec(),
        other => return Err(format!("unsupported private key type {other:?}")),
    };
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_ED25519)
        .or_else(|_| KeyPair::from_pkcs8_der_and_sign_algo(&der, &PKCS_ECDSA_P256_SHA256))
        .map_err(|e| format!("private key: {e}"))
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(days);
}

fn server_params(ips: &[Ipv4Addr], names: &[String]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress((*ip).into())).collect();
    for name in names {
        match name.parse::<std::net::IpAddr>() {
            Ok(ip) => params.subject_alt_names.push(SanType::IpAddress(ip)),
            Err(_) => {
                if let Ok(dns) = name.clone().try_into() {
                    params.subject_alt_names.push(SanType::DnsName(dns));
                }
            }
        }
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, 365);
    params
}

fn server_config(
    chain: Vec<Vec<u8>>,
    key: &KeyPair,
    client_ca: Option<&[u8]>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca.to_vec())).map_err(|e| format!("client CA: {e}"))?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("client verifier: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = builder.with_single_cert(chain, key).map_err(|e| format!("TLS server certificate: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Maintenance mode: a fresh self-signed Ed25519 certificate for `address`,
/// no client authentication (clients connect with verification off).
pub fn maintenance_tls(address: Ipv4Addr) -> Result<Arc<rustls::ServerConfig>, String> {
    let key = KeyPair::generate_for(&PKCS_ED25519).map_err(|e| format!("maintenance key: {e}"))?;
    let mut params = server_params(&[address], &[]);
    params.distinguished_name.push(DnType::OrganizationName, "talos");
    let cert = params.self_signed(&key).map_err(|e| format!("maintenance certificate: {e}"))?;
    server_config(vec![cert.der().to_vec()], &key, None, &[b"h2"])
}

/// apid: a certificate from the OS CA for the node's address, hostname and
/// `machine.certSANs`; client certificates from the same CA are mandatory.
pub fn apid_tls(
    os_ca: &Ca,
    address: Ipv4Addr,
    hostname: &str,
    sans: &[String],
) -> Result<Arc<rustls::ServerConfig>, String> {
    let key = KeyPair::generate_for(&PKCS_ED25519).map_err(|e| format!("apid key: {e}"))?;
    let mut names = vec![hostname.to_string()];
    names.extend(sans.iter().cloned());
    let mut params = server_params(&[address], &names);
    params.distinguished_name.push(DnType::CommonName, hostname);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = os_ca.sign(params, &key)?;
    server_config(vec![leaf], &key, Some(&os_ca.cert_der), &[b"h2"])
}

/// The Kubernetes API server's serving certificate on the VIP, from the
/// Kubernetes CA (names as Talos's apiserver certificate has them).
pub fn kube_apiserver_tls(
    kubernetes_ca: &Ca,
    vip: Ipv4Addr,
    endpoint_host: &str,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("apiserver key: {e}"))?;
    let names: Vec<String> = [
        endpoint_host,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut params = server_params(&[vip], &names);
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    let leaf = kubernetes_ca.sign(params, &key)?;
    server_config(vec![leaf], &key, None, &[b"http/1.1"])
}

/// The roles in a client certificate: its subject's Organization values.
pub fn roles(cert_der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert_der) else { return Vec::new() };
    cert.subject().iter_organization().filter_map(|o| o.as_str().ok()).map(str::to_string).collect()
}

/// A client certificate from `ca` with Organization = `roles` (Ed25519, ClientAuth,
/// one year), as `talosctl gen` issues them: returns (certificate PEM, key PEM).
pub fn client_certificate(ca: &Ca, roles: &[&str]) -> Result<(String, String), String> {
    let key = KeyPair::generate_for(&PKCS_ED25519).map_err(|e| format!("client key: {e}"))?;
    let mut params = CertificateParams::default();
    for role in roles {
        params.distinguished_name.push(DnType::OrganizationName, *role);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, 365);
    let der = ca.sign(params, &key)?;
    let cert_pem = pem::encode(&pem::Pem::new("CERTIFICATE", der));
    let key_pem = pem::encode(&pem::Pem::new("ED25519 PRIVATE KEY", key.serialize_der()));
    Ok((cert_pem, key_pem))
}

/// SEC1 `ECPrivateKey` DER of a P-256 key as Go's `x509.MarshalECPrivateKey`
/// writes it: version 1, the 32-byte scalar, the named curve (`[0]
/// prime256v1`) and the uncompressed public key (`[1]`). p256's own
/// `to_sec1_der` leaves the curve out, and neither Go (`x509: unknown elliptic
/// curve`, hence kubectl's `tls: failed to parse private key`) nor OpenSSL
/// can load such a key.
pub fn p256_sec1_der(secret: &p256::SecretKey) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    const PRIME256V1: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let public = secret.public_key().to_encoded_point(false);
    let mut der = vec![0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(&secret.to_bytes());
    der.extend_from_slice(&[0xa0, PRIME256V1.len() as u8]);
    der.extend_from_slice(&PRIME256V1);
    der.extend_from_slice(&[0xa1, 0x44, 0x03, 0x42, 0x00]);
    der.extend_from_slice(public.as_bytes());
    debug_assert_eq!(der.len(), 0x77 + 2);
    der
}

/// The admin kubeconfig Talos's `Kubeconfig` call returns: cluster
/// `cluster_name` at `endpoint` trusting the Kubernetes CA, user
/// `admin@<cluster>` with a fresh ECDSA P-256 certificate (`CN=admin`,
/// `O=system:masters`, ClientAuth, one year) signed by that CA.
pub fn admin_kubeconfig(kubernetes_ca: &Ca, cluster_name: &str, endpoint: &str) -> Result<String, String> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("admin key: {e}"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "admin");
    params.distinguished_name.push(DnType::OrganizationName, "system:masters");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, 365);
    let der = kubernetes_ca.sign(params, &key)?;
    let sec1 = {
        use p256::pkcs8::DecodePrivateKey as _;
        let secret = p256::SecretKey::from_pkcs8_der(&key.serialize_der()).map_err(|e| format!("admin key: {e}"))?;
        p256_sec1_der(&secret)
    };
    let b64 = |label: &str, der: &[u8]| {
        base64::engine::general_purpose::STANDARD.encode(pem::encode(&pem::Pem::new(label, der.to_vec())))
    };
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&kubernetes_ca.cert_pem);
    let context = format!("admin@{cluster_name}");
    Ok(format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n    - name: {cluster_name}\n      cluster:\n        server: {endpoint}\n        certificate-authority-data: {ca_b64}\n\
         users:\n    - name: {context}\n      user:\n        client-certificate-data: {}\n        client-key-data: {}\n\
         contexts:\n    - context:\n        cluster: {cluster_name}\n        namespace: default\n        user: {context}\n      name: {context}\n\
         current-context: {context}\n",
        b64("CERTIFICATE", &der),
        b64("EC PRIVATE KEY", &sec1),
    ))
}
