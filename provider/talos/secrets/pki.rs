//! Key and certificate primitives for the Talos secrets bundle.
//!
//! Owns: key generation from an injected RNG (Ed25519, ECDSA P-256) and, via
//! AWS-LC's own OS-seeded DRBG, RSA-4096 (see [`rsa_4096_private_key_pem_b64`]),
//! the PEM blocks Talos writes (`ED25519 PRIVATE KEY` holding PKCS#8 v1,
//! `EC PRIVATE KEY` holding SEC1, `RSA PRIVATE KEY` holding PKCS#1,
//! `CERTIFICATE`), the base64-of-PEM field encoding, and X.509 building with
//! rcgen using our own deterministic signers (Ed25519, RFC 6979 ECDSA).
//! Must not: decide which key or subject a bundle entry gets (that is
//! `generate`), read clocks or OS randomness (RSA-4096 generation inside
//! AWS-LC excepted), or do any IO.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm, SigningKey,
};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::ParsedExtension;
use x509_parser::x509::X509Name;

use super::bundle::CertAndKey;
use super::SecretsError;

/// `CAValidityTime` in Talos: 87600h (3650 days, not calendar years).
pub(crate) const CA_VALIDITY: Duration = Duration::hours(87_600);

pub(crate) const PEM_CERTIFICATE: &str = "CERTIFICATE";
pub(crate) const PEM_EC_PRIVATE_KEY: &str = "EC PRIVATE KEY";
pub(crate) const PEM_ED25519_PRIVATE_KEY: &str = "ED25519 PRIVATE KEY";
pub(crate) const PEM_RSA_PRIVATE_KEY: &str = "RSA PRIVATE KEY";
const PEM_PKCS8_PRIVATE_KEY: &str = "PRIVATE KEY";

/// DER prefix of a PKCS#8 v1 `OneAsymmetricKey` holding an Ed25519 seed
/// (RFC 8410): what Go's `MarshalPKCS8PrivateKey` writes, without a public key.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// SEC1 (RFC 5915) `ECPrivateKey` for P-256: SEQUENCE (119 bytes), version 1,
/// then the 32-byte private key OCTET STRING ...
const SEC1_P256_PREFIX: [u8; 7] = [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
/// ... then `[0]` prime256v1 (1.2.840.10045.3.1.7) and `[1]` a BIT STRING (no unused
/// bits) header for the 65-byte uncompressed point.
const SEC1_P256_CURVE_AND_KEY_HEADER: [u8; 17] =
    [0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0xa1, 0x44, 0x03, 0x42, 0x00];

/// Serial numbers are uniformly random below 2^128, as in siderolabs/crypto.
const SERIAL_LEN: usize = 16;
/// Go's CA templates carry a random 20-byte SubjectKeyId.
const SUBJECT_KEY_ID_LEN: usize = 20;

/// Go's `pem.EncodeToMemory` layout (64-column lines, LF, trailing newline), then base64.
pub(crate) fn pem_b64(label: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    STANDARD.encode(pem::encode_config(&pem::Pem::new(label, der.to_vec()), config))
}

/// Decodes a base64 field; ASCII whitespace (line wrapping) is ignored, as Go does.
fn decode_b64(field: &str, value: &str) -> Result<Vec<u8>, SecretsError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).map_err(|e| SecretsError::invalid(field, format!("is not base64: {e}")))
}

fn parse_pem(field: &str, raw: &[u8]) -> Result<pem::Pem, SecretsError> {
    pem::parse(raw).map_err(|e| SecretsError::invalid(field, format!("is not base64 of a PEM block: {e}")))
}

/// Decodes a base64-of-PEM field.
pub(crate) fn decode_pem_b64(field: &str, value: &str) -> Result<pem::Pem, SecretsError> {
    parse_pem(field, &decode_b64(field, value)?)
}

/// Re-encodes a base64-of-PEM field canonically (standard alphabet, no
/// whitespace) after checking it holds a PEM block; the PEM bytes are kept as is.
pub(crate) fn canonical_pem_b64(field: &str, value: &str) -> Result<String, SecretsError> {
    let raw = decode_b64(field, value)?;
    parse_pem(field, &raw)?;
    Ok(STANDARD.encode(raw))
}

/// Checks that `value` is base64 of a PEM `CERTIFICATE` holding a parseable X.509 certificate.
pub(crate) fn check_certificate_b64(field: &str, value: &str) -> Result<(), SecretsError> {
    let block = decode_pem_b64(field, value)?;
    if block.tag() != PEM_CERTIFICATE {
        return Err(SecretsError::invalid(field, format!("has PEM type {:?}, want CERTIFICATE", block.tag())));
    }
    parse_certificate(field, block.contents()).map(|_| ())
}

/// Checks that `value` is base64 of a PEM private key of a type Talos can load.
pub(crate) fn check_private_key_b64(field: &str, value: &str) -> Result<(), SecretsError> {
    let block = decode_pem_b64(field, value)?;
    match block.tag() {
        PEM_EC_PRIVATE_KEY | PEM_ED25519_PRIVATE_KEY | PEM_RSA_PRIVATE_KEY | PEM_PKCS8_PRIVATE_KEY => Ok(()),
        other => Err(SecretsError::invalid(field, format!("has unsupported PEM type {other:?}"))),
    }
}

fn parse_certificate<'a>(field: &str, der: &'a [u8]) -> Result<X509Certificate<'a>, SecretsError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| SecretsError::invalid(field, format!("is not an X.509 certificate: {e}")))
}

/// Fills `N` bytes from the RNG.
pub(crate) fn random_array<const N: usize>(rng: &mut dyn CryptoRngCore) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

/// An Ed25519 key usable as an rcgen signer.
pub(crate) struct Ed25519Key {
    signing: ed25519_dalek::SigningKey,
    public: [u8; 32],
}

impl Ed25519Key {
    /// Builds the key from its 32-byte seed (what Go's `ed25519.GenerateKey` reads from its RNG).
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(seed);
        let public = signing.verifying_key().to_bytes();
        Self { signing, public }
    }

    pub(crate) fn generate(rng: &mut dyn CryptoRngCore) -> Self {
        Self::from_seed(&random_array(rng))
    }

    /// The 32-byte seed, used as key material for derivations.
    pub(crate) fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// base64 of the `ED25519 PRIVATE KEY` PEM wrapping PKCS#8 v1, as siderolabs/crypto writes it.
    pub(crate) fn private_key_pem_b64(&self) -> String {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
        der.extend_from_slice(&self.signing.to_bytes());
        pem_b64(PEM_ED25519_PRIVATE_KEY, &der)
    }

    /// Loads a base64-of-PEM Ed25519 private key (PKCS#8 v1 or v2).
    pub(crate) fn from_private_key_pem_b64(field: &str, value: &str) -> Result<Self, SecretsError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let block = decode_pem_b64(field, value)?;
        if !matches!(block.tag(), PEM_ED25519_PRIVATE_KEY | PEM_PKCS8_PRIVATE_KEY) {
            return Err(SecretsError::Unsupported(format!(
                "{field} has PEM type {:?}; only Ed25519 Talos API CAs are supported",
                block.tag()
            )));
        }
        let signing = ed25519_dalek::SigningKey::from_pkcs8_der(block.contents())
            .map_err(|e| SecretsError::invalid(field, format!("is not an Ed25519 PKCS#8 key: {e}")))?;
        Ok(Self::from_seed(&signing.to_bytes()))
    }
}

impl PublicKeyData for Ed25519Key {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl SigningKey for Ed25519Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        use ed25519_dalek::Signer;
        Ok(self.signing.sign(msg).to_bytes().to_vec())
    }
}

/// An ECDSA P-256 key usable as an rcgen signer (RFC 6979 deterministic signatures).
pub(crate) struct P256Key {
    secret: p256::SecretKey,
    signing: p256::ecdsa::SigningKey,
    /// Uncompressed SEC1 point, the SubjectPublicKeyInfo bit string.
    public: Vec<u8>,
}

impl P256Key {
    pub(crate) fn generate(rng: &mut dyn CryptoRngCore) -> Self {
        let secret = p256::SecretKey::random(&mut &mut *rng);
        let signing = p256::ecdsa::SigningKey::from(&secret);
        let public = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
        Self { secret, signing, public }
    }

    /// base64 of the `EC PRIVATE KEY` PEM wrapping SEC1 `ECPrivateKey` with the named
    /// curve and the public key, field for field what Go's `MarshalECPrivateKey` writes.
    /// (p256's own `to_sec1_der` omits the curve, which Go and OpenSSL cannot load.)
    pub(crate) fn private_key_pem_b64(&self) -> String {
        let mut der = Vec::with_capacity(121);
        der.extend_from_slice(&SEC1_P256_PREFIX);
        der.extend_from_slice(&self.secret.to_bytes());
        der.extend_from_slice(&SEC1_P256_CURVE_AND_KEY_HEADER);
        der.extend_from_slice(&self.public);
        pem_b64(PEM_EC_PRIVATE_KEY, &der)
    }
}

impl PublicKeyData for P256Key {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for P256Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::Signature = self.signing.sign(msg);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// base64 of an `RSA PRIVATE KEY` PEM (PKCS#1) holding a fresh RSA-4096 key, e = 65537.
///
/// The key comes from AWS-LC (`aws-lc-rs`), seeded from the OS by AWS-LC's own
/// DRBG: it does NOT use the injected RNG, so a v1.12 bundle's service-account
/// key is never reproducible from a seed (everything else in the bundle still
/// is). This is deliberate: the `rsa` crate, which could take our RNG, needs
/// 3-12 s per key in release builds versus well under 1 s here, and no slower
/// fallback exists. AWS-LC emits PKCS#8, whose `privateKey` field is exactly the
/// PKCS#1 `RSAPrivateKey` Talos writes; it is parsed back and checked (4096
/// bits, e = 65537) before being returned.
pub(crate) fn rsa_4096_private_key_pem_b64() -> Result<String, SecretsError> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::der::Decode;
    use rsa::traits::PublicKeyParts;
    const WHAT: &str = "RSA-4096 key";

    let pair =
        aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa4096).map_err(|e| SecretsError::key(WHAT, e))?;
    let pkcs8: Pkcs8V1Der<'static> = pair.as_der().map_err(|e| SecretsError::key(WHAT, e))?;
    let info = rsa::pkcs8::PrivateKeyInfo::from_der(pkcs8.as_ref()).map_err(|e| SecretsError::key(WHAT, e))?;
    if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
        return Err(SecretsError::key(WHAT, format!("AWS-LC returned algorithm {}", info.algorithm.oid)));
    }
    let pkcs1 = info.private_key;
    let key = rsa::RsaPrivateKey::from_pkcs1_der(pkcs1).map_err(|e| SecretsError::key(WHAT, e))?;
    if key.n().bits() != 4096 || *key.e() != rsa::BigUint::from(65_537u32) {
        return Err(SecretsError::key(WHAT, "AWS-LC returned a key other than 4096 bits with e = 65537"));
    }
    Ok(pem_b64(PEM_RSA_PRIVATE_KEY, pkcs1))
}

fn printable(what: &'static str, value: &str) -> Result<DnValue, SecretsError> {
    PrintableString::try_from(value).map(DnValue::PrintableString).map_err(|e| SecretsError::certificate(what, e))
}

/// A self-signed CA as siderolabs/crypto `NewSelfSignedCertificateAuthority` builds it:
/// random 128-bit serial, random 20-byte SubjectKeyId, subject holding only the
/// given Organization (no CN), CA:TRUE, KeyUsage CertSign+DigitalSignature,
/// ExtKeyUsage ServerAuth+ClientAuth, valid from `now` for [`CA_VALIDITY`].
/// Returns base64 of the certificate PEM.
pub(crate) fn self_signed_ca(
    what: &'static str,
    key: &impl SigningKey,
    organization: Option<&str>,
    now: OffsetDateTime,
    rng: &mut dyn CryptoRngCore,
) -> Result<String, SecretsError> {
    let serial: [u8; SERIAL_LEN] = random_array(rng);
    let subject_key_id: [u8; SUBJECT_KEY_ID_LEN] = random_array(rng);
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(org) = organization {
        params.distinguished_name.push(DnType::OrganizationName, printable(what, org)?);
    }
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = now;
    params.not_after = now + CA_VALIDITY;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.key_identifier_method = KeyIdMethod::PreSpecified(subject_key_id.to_vec());
    let cert = params.self_signed(key).map_err(|e| SecretsError::certificate(what, e))?;
    Ok(pem_b64(PEM_CERTIFICATE, cert.der()))
}

/// The Talos API (OS) CA loaded from a bundle, ready to issue client certificates.
pub(crate) struct OsCa {
    pub(crate) key: Ed25519Key,
    subject: DistinguishedName,
    subject_raw: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
}

impl OsCa {
    /// Loads `certs.os`; only Ed25519 CAs (every Talos release since 0.5) are supported.
    pub(crate) fn load(os: &CertAndKey) -> Result<Self, SecretsError> {
        let key = Ed25519Key::from_private_key_pem_b64("certs.os.key", &os.key)?;
        let block = decode_pem_b64("certs.os.cert", &os.cert)?;
        let cert = parse_certificate("certs.os.cert", block.contents())?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public.as_slice() {
            return Err(SecretsError::invalid("certs.os", "certificate and key do not match"));
        }
        let subject_key_id = cert.extensions().iter().find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
        Ok(Self {
            key,
            subject: distinguished_name(cert.subject())?,
            subject_raw: cert.subject().as_raw().to_vec(),
            subject_key_id,
        })
    }

    /// Issues a client certificate the way siderolabs/crypto `NewKeyPair` does for an
    /// Ed25519 CA: subject Organization = `organizations` (no CN), no BasicConstraints,
    /// KeyUsage DigitalSignature, ExtKeyUsage ClientAuth, AuthorityKeyId = CA SubjectKeyId.
    /// Returns base64 of the certificate PEM.
    pub(crate) fn issue_client_certificate(
        &self,
        leaf: &Ed25519Key,
        organization: &str,
        serial: &[u8; SERIAL_LEN],
        not_before: OffsetDateTime,
        validity: Duration,
    ) -> Result<String, SecretsError> {
        const WHAT: &str = "Talos API client";
        let mut issuer_params = CertificateParams::default();
        issuer_params.distinguished_name = self.subject.clone();
        issuer_params.key_identifier_method =
            KeyIdMethod::PreSpecified(self.subject_key_id.clone().unwrap_or_default());
        let issuer = Issuer::new(issuer_params, &self.key);

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, printable(WHAT, organization)?);
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.not_before = not_before;
        params.not_after = not_before + validity;
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = self.subject_key_id.is_some();
        let cert = params.signed_by(leaf, &issuer).map_err(|e| SecretsError::certificate(WHAT, e))?;

        // Chain building compares names byte for byte; refuse to emit a certificate
        // whose issuer does not reproduce the CA subject exactly.
        let (_, parsed) =
            x509_parser::parse_x509_certificate(cert.der()).map_err(|e| SecretsError::certificate(WHAT, e))?;
        if parsed.issuer().as_raw() != self.subject_raw.as_slice() {
            return Err(SecretsError::Unsupported(
                "the Talos API CA subject cannot be reproduced as an issuer name".into(),
            ));
        }
        Ok(pem_b64(PEM_CERTIFICATE, cert.der()))
    }
}

/// Rebuilds an rcgen name from a parsed one, keeping each attribute's string type.
fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, SecretsError> {
    let unsupported = || SecretsError::Unsupported("the Talos API CA subject uses an unsupported name form".into());
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        if rdn.iter().count() != 1 {
            return Err(unsupported());
        }
        for attr in rdn.iter() {
            let arcs: Vec<u64> = attr.attr_type().iter().ok_or_else(unsupported)?.collect();
            let ty = DnType::from_oid(&arcs);
            if dn.get(&ty).is_some() {
                return Err(unsupported());
            }
            let text = attr.as_str().map_err(|_| unsupported())?;
            let value = match attr.attr_value().header.tag() {
                Tag::PrintableString => DnValue::PrintableString(text.try_into().map_err(|_| unsupported())?),
                Tag::Utf8String => DnValue::Utf8String(text.to_owned()),
                Tag::Ia5String => DnValue::Ia5String(text.try_into().map_err(|_| unsupported())?),
                _ => return Err(unsupported()),
            };
            dn.push(ty, value);
        }
    }
    Ok(dn)
}

/// NotAfter of a base64-of-PEM certificate.
pub(crate) fn certificate_not_after(field: &str, value: &str) -> Result<OffsetDateTime, SecretsError> {
    let block = decode_pem_b64(field, value)?;
    let cert = parse_certificate(field, block.contents())?;
    Ok(cert.validity().not_after.to_datetime())
}
