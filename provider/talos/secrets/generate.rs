//! Generation of a fresh Talos secrets bundle and of the admin Talos API
//! client certificate.
//!
//! Owns: which key type, subject and validity every bundle entry gets (as
//! Talos's `secrets.NewBundle` / `NewAdminCertificateAndKey` decide them),
//! the order randomness is drawn in, token and secret formats, and the
//! client-certificate renewal rule.
//! Must not: read the clock or OS randomness itself (a [`Clock`] and an RNG
//! are injected), do IO, or know any serialisation format.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use super::bundle::{CertAndKey, Certs, ClientConfiguration, Cluster, KeyOnly, MachineSecrets, Secrets, TrustdInfo};
use super::contract::VersionContract;
use super::pki::{self, Ed25519Key, OsCa, P256Key};
use super::SecretsError;

/// Talos role carried as the Organization of the admin client certificate.
pub const ADMIN_ROLE: &str = "os:admin";
/// `TalosAPIDefaultCertificateValidityDuration`: 365 days.
pub const CLIENT_CERTIFICATE_VALIDITY: Duration = Duration::days(365);
/// Renew the client certificate when it has less than this many days left
/// (terraform-provider-talos uses one month).
pub const CLIENT_CERTIFICATE_RENEWAL_THRESHOLD_DAYS: i64 = 30;

/// Cluster ID, cluster secret and encryption secrets are 32 random bytes.
const SECRET_LEN: usize = 32;
/// kubeadm token alphabet; bytes >= 252 are rejected so `% 36` is unbiased.
const TOKEN_ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const TOKEN_REJECT_FROM: u8 = 252;
/// Domain separation for the client key derivation; bump the suffix if the derivation changes.
const CLIENT_KEY_SALT: &[u8] = b"proxmox-talos talos-api-client-certificate v1";

/// Source of the current time.
pub trait Clock {
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
}

/// The system wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock frozen at one instant (Talos's `NewFixedClock`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// Generates a complete secrets bundle for `contract`, drawing randomness in
/// Talos's order: etcd CA, Kubernetes CA, aggregator CA, service-account key,
/// OS CA, bootstrap token, etcd encryption secret, trustd token, cluster ID,
/// cluster secret. Every CA starts at `clock.now()` and lasts 87600h.
pub fn generate(
    contract: VersionContract,
    clock: &dyn Clock,
    rng: &mut dyn CryptoRngCore,
) -> Result<MachineSecrets, SecretsError> {
    let now = clock.now();
    let etcd = ecdsa_ca("etcd", Some("etcd"), now, rng)?;
    let k8s = ecdsa_ca("Kubernetes", Some("kubernetes"), now, rng)?;
    // Talos asks for CN=front-proxy here, but its CA builder only copies the
    // Organization, so the aggregator CA subject is empty.
    let k8s_aggregator = ecdsa_ca("Kubernetes aggregator", None, now, rng)?;
    let service_account_key = if contract.service_account_key_is_rsa() {
        pki::rsa_4096_private_key_pem_b64(rng)?
    } else {
        P256Key::generate(rng).private_key_pem_b64()
    };
    let os_key = Ed25519Key::generate(rng);
    let os = CertAndKey {
        cert: pki::self_signed_ca("Talos API", &os_key, Some("talos"), now, rng)?,
        key: os_key.private_key_pem_b64(),
    };

    let bootstrap_token = kubeadm_token(rng);
    let encryption_secret = STANDARD.encode(pki::random_array::<SECRET_LEN>(rng));
    let (secretbox_encryption_secret, aescbc_encryption_secret) = if contract.secretbox_encryption_supported() {
        (Some(encryption_secret), None)
    } else {
        (None, Some(encryption_secret))
    };
    let trustd_token = kubeadm_token(rng);
    let id_bytes = pki::random_array::<SECRET_LEN>(rng);
    let id =
        if contract.cluster_id_uses_url_safe_base64() { URL_SAFE.encode(id_bytes) } else { STANDARD.encode(id_bytes) };
    let secret = STANDARD.encode(pki::random_array::<SECRET_LEN>(rng));

    Ok(MachineSecrets {
        cluster: Cluster { id, secret },
        secrets: Secrets { bootstrap_token, secretbox_encryption_secret, aescbc_encryption_secret },
        trustdinfo: TrustdInfo { token: trustd_token },
        certs: Certs { etcd, k8s, k8s_aggregator, k8s_serviceaccount: KeyOnly { key: service_account_key }, os },
    })
}

fn ecdsa_ca(
    what: &'static str,
    organization: Option<&str>,
    now: OffsetDateTime,
    rng: &mut dyn CryptoRngCore,
) -> Result<CertAndKey, SecretsError> {
    let key = P256Key::generate(rng);
    let cert = pki::self_signed_ca(what, &key, organization, now, rng)?;
    Ok(CertAndKey { cert, key: key.private_key_pem_b64() })
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`, rejection-sampled byte by byte like Talos's `genToken(6, 16)`.
pub(super) fn kubeadm_token(rng: &mut dyn CryptoRngCore) -> String {
    let mut token = String::with_capacity(23);
    for (i, len) in [6, 16].into_iter().enumerate() {
        if i > 0 {
            token.push('.');
        }
        let mut taken = 0;
        while taken < len {
            let [byte] = pki::random_array::<1>(rng);
            if byte < TOKEN_REJECT_FROM {
                token.push(char::from(TOKEN_ALPHABET[usize::from(byte % 36)]));
                taken += 1;
            }
        }
    }
    token
}

/// Issues the admin Talos API client certificate from the bundle's OS CA:
/// Ed25519 key, subject `O=os:admin`, ClientAuth, valid for 365 days from
/// `clock.now()` (whole seconds).
///
/// The key and serial are derived (HKDF-SHA256) from the CA key and the
/// issuance second instead of drawn at random, so the result is a pure
/// function of the bundle and the time: retries and previews reproduce the
/// same credentials, while each renewal (a later time) gets a new key.
pub fn client_configuration(secrets: &MachineSecrets, clock: &dyn Clock) -> Result<ClientConfiguration, SecretsError> {
    let ca = OsCa::load(&secrets.certs.os)?;
    let not_before = clock.now().replace_nanosecond(0).map_err(|e| SecretsError::certificate("Talos API client", e))?;
    let info = format!("{ADMIN_ROLE}|{}", not_before.unix_timestamp());
    let mut okm = [0u8; 48];
    Hkdf::<Sha256>::new(Some(CLIENT_KEY_SALT), &ca.key.seed())
        .expand(info.as_bytes(), &mut okm)
        .map_err(|e| SecretsError::key("Talos API client key", e))?;
    let (seed, serial) = okm.split_at(32);
    let leaf = Ed25519Key::from_seed(seed.try_into().expect("32-byte split"));
    let serial: [u8; 16] = serial.try_into().expect("16-byte split");
    let client_certificate =
        ca.issue_client_certificate(&leaf, ADMIN_ROLE, &serial, not_before, CLIENT_CERTIFICATE_VALIDITY)?;
    Ok(ClientConfiguration {
        ca_certificate: secrets.certs.os.cert.clone(),
        client_certificate,
        client_key: leaf.private_key_pem_b64(),
    })
}

/// True when the client certificate expires in less than `threshold_days`
/// from `now` (or has expired), or cannot be read at all.
pub fn client_certificate_needs_renewal(cfg: &ClientConfiguration, now: OffsetDateTime, threshold_days: i64) -> bool {
    match pki::certificate_not_after("clientConfiguration.clientCertificate", &cfg.client_certificate) {
        Ok(not_after) => not_after - now < Duration::days(threshold_days),
        Err(_) => true,
    }
}
