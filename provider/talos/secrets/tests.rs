//! Tests for the secrets bundle: every generated certificate is parsed back
//! and checked against the Talos templates.
//!
//! Owns: cross-module tests (generation, client certificates) and the
//! seeded fixtures other test modules reuse.
//! Must not: do IO or use OS randomness (except the RSA-4096 key, which
//! AWS-LC always seeds from the OS); RSA-4096 generation runs twice.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ED25519,
};
use x509_parser::x509::X509Version;

use super::*;

/// 2026-01-01T00:00:00Z plus a fraction, to check whole-second handling.
pub(super) fn clock() -> FixedClock {
    FixedClock(OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap() + Duration::milliseconds(250))
}

pub(super) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A bundle with the fast (ECDSA) service-account key.
pub(super) fn ecdsa_bundle(seed: u64) -> MachineSecrets {
    generate(VersionContract::V1_6, &clock(), &mut rng(seed)).unwrap()
}

fn pem_block(b64: &str) -> pem::Pem {
    let raw = STANDARD.decode(b64).expect("base64");
    let text = String::from_utf8(raw).expect("PEM is text");
    // Go's pem.EncodeToMemory layout: LF only, 64-column lines, trailing newline.
    assert!(text.ends_with("-----\n") && !text.contains('\r'), "{text}");
    assert!(text.lines().all(|l| l.len() <= 64), "{text}");
    pem::parse(text).expect("PEM")
}

fn cert_der(b64: &str) -> Vec<u8> {
    let block = pem_block(b64);
    assert_eq!(block.tag(), "CERTIFICATE");
    block.into_contents()
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).expect("X.509");
    assert!(rest.is_empty());
    cert
}

fn organizations(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject().iter_organization().map(|o| o.as_str().unwrap().to_owned()).collect()
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
        _ => None,
    })
}

fn authority_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|k| k.0.to_vec()),
        _ => None,
    })
}

/// Verifies `cert`'s signature with `issuer`'s public key (Ed25519 or ECDSA P-256).
fn assert_signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) {
    let tbs = cert.tbs_certificate.as_ref();
    let signature: &[u8] = &cert.signature_value.data;
    let key: &[u8] = &issuer.public_key().subject_public_key.data;
    let alg = &cert.signature_algorithm.algorithm;
    if *alg == OID_SIG_ED25519 {
        use ed25519_dalek::Verifier;
        let key = ed25519_dalek::VerifyingKey::from_bytes(key.try_into().unwrap()).unwrap();
        key.verify(tbs, &ed25519_dalek::Signature::from_slice(signature).unwrap()).expect("Ed25519 signature");
    } else if *alg == OID_SIG_ECDSA_WITH_SHA256 {
        use p256::ecdsa::signature::Verifier;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).unwrap();
        key.verify(tbs, &p256::ecdsa::Signature::from_der(signature).unwrap()).expect("ECDSA signature");
    } else {
        panic!("unexpected signature algorithm {alg}");
    }
}

/// Public key bytes of a private key PEM, for matching against a certificate.
fn public_key_of(b64: &str) -> (String, Vec<u8>) {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let block = pem_block(b64);
    let public = match block.tag() {
        "ED25519 PRIVATE KEY" => {
            assert_eq!(block.contents().len(), 48, "PKCS#8 v1 without public key, as Go writes it");
            ed25519_dalek::SigningKey::from_pkcs8_der(block.contents()).unwrap().verifying_key().to_bytes().to_vec()
        }
        "EC PRIVATE KEY" => {
            // SEC1 with the named curve (Go and OpenSSL cannot load it without).
            assert_eq!(block.contents().len(), 121);
            assert_eq!(
                block.contents()[39..51],
                [0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
            );
            let key = p256::SecretKey::from_sec1_der(block.contents()).unwrap();
            key.public_key().to_encoded_point(false).as_bytes().to_vec()
        }
        other => panic!("unexpected key PEM type {other}"),
    };
    (block.tag().to_owned(), public)
}

#[test]
fn cas_match_the_talos_templates() {
    let s = ecdsa_bundle(1);
    let now = clock().0.replace_nanosecond(0).unwrap();
    // (field, pair, organizations, signature algorithm, key PEM type)
    let cases: [(&str, &CertAndKey, &[&str], Oid<'static>, &str); 4] = [
        ("etcd", &s.certs.etcd, &["etcd"], OID_SIG_ECDSA_WITH_SHA256, "EC PRIVATE KEY"),
        ("k8s", &s.certs.k8s, &["kubernetes"], OID_SIG_ECDSA_WITH_SHA256, "EC PRIVATE KEY"),
        ("k8sAggregator", &s.certs.k8s_aggregator, &[], OID_SIG_ECDSA_WITH_SHA256, "EC PRIVATE KEY"),
        ("os", &s.certs.os, &["talos"], OID_SIG_ED25519, "ED25519 PRIVATE KEY"),
    ];
    for (field, pair, orgs, sig_alg, key_type) in cases {
        let der = cert_der(&pair.cert);
        let cert = parse(&der);
        assert_eq!(cert.version(), X509Version::V3, "{field}");
        assert_eq!(cert.signature_algorithm.algorithm, sig_alg, "{field}");
        let spki = &cert.public_key().algorithm;
        if sig_alg == OID_SIG_ED25519 {
            assert_eq!(spki.algorithm, OID_SIG_ED25519, "{field}");
        } else {
            assert_eq!(spki.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY, "{field}");
            let curve = spki.parameters.as_ref().unwrap().as_oid().unwrap();
            assert_eq!(curve, OID_EC_P256, "{field}");
        }
        assert_eq!(organizations(&cert), orgs, "{field}");
        assert_eq!(cert.subject().iter_common_name().count(), 0, "{field}: Talos CAs have no CN");
        assert_eq!(cert.subject().as_raw(), cert.issuer().as_raw(), "{field}");

        let bc = cert.basic_constraints().unwrap().expect("basic constraints");
        assert!(bc.critical && bc.value.ca && bc.value.path_len_constraint.is_none(), "{field}");
        let ku = cert.key_usage().unwrap().expect("key usage");
        assert!(ku.critical, "{field}");
        assert_eq!(ku.value.flags, 0b10_0001, "{field}: DigitalSignature | CertSign only");
        let eku = cert.extended_key_usage().unwrap().expect("ext key usage");
        assert!(!eku.critical && eku.value.server_auth && eku.value.client_auth, "{field}");
        assert!(!eku.value.any && eku.value.other.is_empty() && !eku.value.code_signing, "{field}");
        assert_eq!(subject_key_id(&cert).map(|k| k.len()), Some(20), "{field}");
        assert_eq!(authority_key_id(&cert), None, "{field}");
        assert_eq!(cert.extensions().len(), 4, "{field}");

        assert!(cert.serial.bits() <= 128 && cert.serial.bits() > 64, "{field}: 128-bit random serial");
        let validity = cert.validity();
        assert_eq!(validity.not_before.to_datetime(), now, "{field}");
        assert_eq!(validity.not_after.to_datetime() - validity.not_before.to_datetime(), Duration::hours(87_600));
        assert_signed_by(&cert, &cert);

        let (label, public) = public_key_of(&pair.key);
        assert_eq!(label, key_type, "{field}");
        assert_eq!(public, cert.public_key().subject_public_key.data.as_ref(), "{field}: key matches cert");
    }
    s.validate().unwrap();
}

#[test]
fn v1_12_bundle_uses_rsa_4096_and_secretbox() {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let started = std::time::Instant::now();
    let s = generate(VersionContract::V1_12, &clock(), &mut rng(1)).unwrap();
    eprintln!("generate(v1.12) with RSA-4096 took {:?}", started.elapsed());
    let block = pem_block(&s.certs.k8s_serviceaccount.key);
    assert_eq!(block.tag(), "RSA PRIVATE KEY");
    // Parsing checks the key is consistent (d, primes and CRT values).
    let key = rsa::RsaPrivateKey::from_pkcs1_der(block.contents()).expect("PKCS#1");
    assert_eq!(key.size() * 8, 4096);
    assert_eq!(key.e(), &rsa::BigUint::from(65_537u32));
    assert_eq!(key.primes().len(), 2);
    assert!(s.secrets.aescbc_encryption_secret.is_none());
    assert_eq!(STANDARD.decode(s.secrets.secretbox_encryption_secret.as_deref().unwrap()).unwrap().len(), 32);
    assert_eq!(URL_SAFE.decode(&s.cluster.id).unwrap().len(), 32);
    s.validate().unwrap();

    // The RSA key comes from AWS-LC's own OS-seeded DRBG, not the injected RNG:
    // the same seed gives a fresh key, and everything else stays reproducible.
    let mut again = generate(VersionContract::V1_12, &clock(), &mut rng(1)).unwrap();
    assert_ne!(again.certs.k8s_serviceaccount, s.certs.k8s_serviceaccount);
    again.certs.k8s_serviceaccount = s.certs.k8s_serviceaccount.clone();
    assert_eq!(again, s);
}

#[test]
fn service_account_key_and_encryption_secret_follow_the_contract() {
    let v16 = ecdsa_bundle(2);
    let (label, public) = public_key_of(&v16.certs.k8s_serviceaccount.key);
    assert_eq!((label.as_str(), public.len()), ("EC PRIVATE KEY", 65));
    assert!(v16.secrets.secretbox_encryption_secret.is_some() && v16.secrets.aescbc_encryption_secret.is_none());

    let v12 = generate(VersionContract::V1_2, &clock(), &mut rng(2)).unwrap();
    assert!(v12.secrets.secretbox_encryption_secret.is_none());
    assert_eq!(STANDARD.decode(v12.secrets.aescbc_encryption_secret.as_deref().unwrap()).unwrap().len(), 32);
    v12.validate().unwrap();
    assert_eq!(import_contract(&v12), VersionContract::V1_2);
    assert_eq!(import_contract(&v16), VersionContract::new(1, 3));
}

fn is_kubeadm_token(s: &str) -> bool {
    let ok = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    matches!(s.split_once('.'), Some((a, b)) if ok(a, 6) && ok(b, 16))
}

#[test]
fn tokens_and_secrets_have_talos_formats() {
    for seed in 0..500 {
        let token = generate::kubeadm_token(&mut rng(seed));
        assert!(is_kubeadm_token(&token), "{token}");
    }
    for seed in 0..3 {
        let s = ecdsa_bundle(seed);
        assert!(is_kubeadm_token(&s.secrets.bootstrap_token), "{}", s.secrets.bootstrap_token);
        assert!(is_kubeadm_token(&s.trustdinfo.token), "{}", s.trustdinfo.token);
        assert_ne!(s.secrets.bootstrap_token, s.trustdinfo.token);
        assert_eq!(URL_SAFE.decode(&s.cluster.id).unwrap().len(), 32, "URL-safe base64 with padding");
        assert_eq!(STANDARD.decode(&s.cluster.secret).unwrap().len(), 32);
    }
}

#[test]
fn generation_is_deterministic_for_a_seed_and_clock() {
    assert_eq!(ecdsa_bundle(42), ecdsa_bundle(42));
    let other = ecdsa_bundle(43);
    let first = ecdsa_bundle(42);
    assert_ne!(first.certs.os, other.certs.os);
    assert_ne!(first.cluster, other.cluster);
}

#[test]
fn client_certificate_matches_the_talos_admin_certificate() {
    let s = ecdsa_bundle(5);
    let cfg = client_configuration(&s, &clock()).unwrap();
    assert_eq!(cfg.ca_certificate, s.certs.os.cert);
    let ca_der = cert_der(&s.certs.os.cert);
    let ca = parse(&ca_der);
    let der = cert_der(&cfg.client_certificate);
    let cert = parse(&der);

    assert_eq!(cert.signature_algorithm.algorithm, OID_SIG_ED25519);
    assert_eq!(cert.public_key().algorithm.algorithm, OID_SIG_ED25519);
    assert_eq!(organizations(&cert), ["os:admin"]);
    assert_eq!(cert.subject().iter_common_name().count(), 0);
    assert_eq!(cert.issuer().as_raw(), ca.subject().as_raw());
    assert_eq!(authority_key_id(&cert), subject_key_id(&ca));
    assert_eq!(subject_key_id(&cert), None);
    assert!(cert.basic_constraints().unwrap().is_none() && !cert.is_ca());
    let ku = cert.key_usage().unwrap().expect("key usage");
    assert!(ku.critical && ku.value.flags == 1, "DigitalSignature only");
    let eku = cert.extended_key_usage().unwrap().expect("ext key usage").value;
    assert!(eku.client_auth && !eku.server_auth && eku.other.is_empty());
    assert!(cert.serial.bits() <= 128);

    let now = clock().0.replace_nanosecond(0).unwrap();
    assert_eq!(cert.validity().not_before.to_datetime(), now);
    assert_eq!(cert.validity().not_after.to_datetime(), now + Duration::days(365));
    assert_signed_by(&cert, &ca);
    let (label, public) = public_key_of(&cfg.client_key);
    assert_eq!(label, "ED25519 PRIVATE KEY");
    assert_eq!(public, cert.public_key().subject_public_key.data.as_ref());
}

#[test]
fn client_configuration_is_a_function_of_bundle_and_second() {
    let s = ecdsa_bundle(6);
    let base = clock().0;
    let at = |t: OffsetDateTime| client_configuration(&s, &FixedClock(t)).unwrap();
    assert_eq!(at(base), at(base + Duration::milliseconds(500)), "same second, same credentials");
    let later = at(base + Duration::seconds(1));
    assert_ne!(at(base).client_key, later.client_key);
    assert_ne!(at(base).client_certificate, later.client_certificate);
}

#[test]
fn client_configuration_rejects_a_non_ed25519_os_ca() {
    let mut s = ecdsa_bundle(8);
    s.certs.os = s.certs.etcd.clone();
    let err = client_configuration(&s, &clock()).unwrap_err();
    assert!(matches!(err, SecretsError::Unsupported(_)), "{err}");
    let mut s = ecdsa_bundle(8);
    s.certs.os.key = ecdsa_bundle(9).certs.os.key;
    assert!(client_configuration(&s, &clock()).unwrap_err().to_string().contains("do not match"));
}

#[test]
fn renewal_is_due_inside_the_threshold() {
    let s = ecdsa_bundle(10);
    let issued = clock().0.replace_nanosecond(0).unwrap();
    let cfg = client_configuration(&s, &FixedClock(issued)).unwrap();
    let expiry = issued + Duration::days(365);
    let cases = [
        (issued, false),
        (expiry - Duration::days(31), false),
        (expiry - Duration::days(30), false),
        (expiry - Duration::days(30) + Duration::seconds(1), true),
        (expiry - Duration::days(1), true),
        (expiry + Duration::days(1), true),
    ];
    for (now, due) in cases {
        assert_eq!(
            client_certificate_needs_renewal(&cfg, now, CLIENT_CERTIFICATE_RENEWAL_THRESHOLD_DAYS),
            due,
            "at {now}"
        );
    }
    let broken = ClientConfiguration { client_certificate: "not base64!".into(), ..cfg };
    assert!(client_certificate_needs_renewal(&broken, issued, 30));
}
