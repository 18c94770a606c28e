//! The `talosctl gen secrets` file format (`secrets.yaml`) ⇄ [`MachineSecrets`].
//!
//! Owns: the YAML field names Talos's `secrets.Bundle` uses (Go's lower-cased
//! field names: `bootstraptoken`, `k8saggregator`, `crt`, …), canonicalising
//! the base64-of-PEM values on import, and the contract an imported bundle is
//! assumed to have.
//! Must not: read or write files (callers pass strings), or generate secrets.
//!
//! Reading uses `serde_norway`, the maintained continuation of `serde_yaml`
//! (libyaml-derived YAML 1.1 parsing, like Go's yaml packages for these plain
//! scalars). Writing uses [`goyaml`](crate::talos::goyaml), so the export is
//! byte-identical to `talosctl gen secrets` (4-space indentation, Go's quoting).

use serde::Deserialize;

use super::bundle::{CertAndKey, Certs, Cluster, KeyOnly, MachineSecrets, Secrets, TrustdInfo};
use super::contract::VersionContract;
use super::pki;
use super::SecretsError;
use crate::talos::goyaml::{self, Value};

#[derive(Deserialize)]
struct YamlBundle {
    cluster: YamlCluster,
    secrets: YamlSecrets,
    trustdinfo: YamlTrustdInfo,
    certs: YamlCerts,
}

#[derive(Deserialize)]
struct YamlCluster {
    #[serde(default)]
    id: String,
    #[serde(default)]
    secret: String,
}

/// Field order follows the Go struct; both encryption secrets are `omitempty`
/// (written only when set).
#[derive(Deserialize)]
struct YamlSecrets {
    #[serde(default)]
    bootstraptoken: String,
    #[serde(default)]
    aescbcencryptionsecret: String,
    #[serde(default)]
    secretboxencryptionsecret: String,
}

#[derive(Deserialize)]
struct YamlTrustdInfo {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct YamlCerts {
    etcd: YamlCertAndKey,
    k8s: YamlCertAndKey,
    k8saggregator: YamlCertAndKey,
    k8sserviceaccount: YamlKey,
    os: YamlCertAndKey,
}

#[derive(Deserialize)]
struct YamlCertAndKey {
    crt: String,
    key: String,
}

#[derive(Deserialize)]
struct YamlKey {
    key: String,
}

/// Reads a `talosctl gen secrets` YAML document. Base64 values are
/// canonicalised (embedded line breaks dropped) and the result is validated
/// like Talos's `Bundle.Validate`; errors name fields by their YAML path.
pub fn from_talosctl_yaml(yaml: &str) -> Result<MachineSecrets, SecretsError> {
    let doc: YamlBundle = serde_norway::from_str(yaml).map_err(|e| SecretsError::Yaml(e.to_string()))?;
    let pair = |name: &str, p: &YamlCertAndKey| -> Result<CertAndKey, SecretsError> {
        let crt_field = format!("certs.{name}.crt");
        let key_field = format!("certs.{name}.key");
        let cert = pki::canonical_pem_b64(&crt_field, &p.crt)?;
        let key = pki::canonical_pem_b64(&key_field, &p.key)?;
        pki::check_certificate_b64(&crt_field, &cert)?;
        pki::check_private_key_b64(&key_field, &key)?;
        Ok(CertAndKey { cert, key })
    };
    let sa_key = pki::canonical_pem_b64("certs.k8sserviceaccount.key", &doc.certs.k8sserviceaccount.key)?;
    pki::check_private_key_b64("certs.k8sserviceaccount.key", &sa_key)?;
    let non_empty = |s: String| (!s.is_empty()).then_some(s);

    let secrets = MachineSecrets {
        cluster: Cluster { id: doc.cluster.id, secret: doc.cluster.secret },
        secrets: Secrets {
            bootstrap_token: doc.secrets.bootstraptoken,
            secretbox_encryption_secret: non_empty(doc.secrets.secretboxencryptionsecret),
            aescbc_encryption_secret: non_empty(doc.secrets.aescbcencryptionsecret),
        },
        trustdinfo: TrustdInfo { token: doc.trustdinfo.token },
        certs: Certs {
            etcd: pair("etcd", &doc.certs.etcd)?,
            k8s: pair("k8s", &doc.certs.k8s)?,
            k8s_aggregator: pair("k8saggregator", &doc.certs.k8saggregator)?,
            k8s_serviceaccount: KeyOnly { key: sa_key },
            os: pair("os", &doc.certs.os)?,
        },
    };
    secrets.validate()?;
    Ok(secrets)
}

/// Writes the bundle as a `talosctl gen secrets` YAML document (after
/// validating it), byte for byte as talosctl writes it: Go's YAML encoder with
/// 4-space indentation, Go's field order, `omitempty` encryption secrets.
pub fn to_talosctl_yaml(secrets: &MachineSecrets) -> Result<String, SecretsError> {
    secrets.validate()?;
    fn pair(p: &CertAndKey) -> Value<'_> {
        Value::Map(vec![("crt", Value::Str(&p.cert)), ("key", Value::Str(&p.key))])
    }
    fn non_empty(s: &Option<String>) -> Option<&str> {
        s.as_deref().filter(|s| !s.is_empty())
    }
    let mut bundle_secrets = vec![("bootstraptoken", Value::Str(&secrets.secrets.bootstrap_token))];
    if let Some(s) = non_empty(&secrets.secrets.aescbc_encryption_secret) {
        bundle_secrets.push(("aescbcencryptionsecret", Value::Str(s)));
    }
    if let Some(s) = non_empty(&secrets.secrets.secretbox_encryption_secret) {
        bundle_secrets.push(("secretboxencryptionsecret", Value::Str(s)));
    }
    let certs = &secrets.certs;
    let doc = [
        (
            "cluster",
            Value::Map(vec![("id", Value::Str(&secrets.cluster.id)), ("secret", Value::Str(&secrets.cluster.secret))]),
        ),
        ("secrets", Value::Map(bundle_secrets)),
        ("trustdinfo", Value::Map(vec![("token", Value::Str(&secrets.trustdinfo.token))])),
        (
            "certs",
            Value::Map(vec![
                ("etcd", pair(&certs.etcd)),
                ("k8s", pair(&certs.k8s)),
                ("k8saggregator", pair(&certs.k8s_aggregator)),
                ("k8sserviceaccount", Value::Map(vec![("key", Value::Str(&certs.k8s_serviceaccount.key))])),
                ("os", pair(&certs.os)),
            ]),
        ),
    ];
    goyaml::to_string(&doc).map_err(|e| SecretsError::Yaml(e.to_string()))
}

/// The contract terraform-provider-talos records for an imported bundle:
/// v1.2 when it carries a legacy AES-CBC secret, v1.3 otherwise.
pub fn import_contract(secrets: &MachineSecrets) -> VersionContract {
    if secrets.secrets.aescbc_encryption_secret.as_deref().is_some_and(|s| !s.is_empty()) {
        VersionContract::V1_2
    } else {
        VersionContract::new(1, 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talos::secrets::generate::generate;
    use crate::talos::secrets::tests::{clock, ecdsa_bundle, rng};

    #[test]
    fn talosctl_yaml_round_trips_with_talos_field_names() {
        let s = ecdsa_bundle(11);
        let yaml = to_talosctl_yaml(&s).unwrap();
        for key in [
            "cluster:",
            "id:",
            "secret:",
            "secrets:",
            "bootstraptoken:",
            "secretboxencryptionsecret:",
            "trustdinfo:",
            "token:",
            "certs:",
            "etcd:",
            "k8s:",
            "k8saggregator:",
            "k8sserviceaccount:",
            "os:",
            "crt:",
            "key:",
        ] {
            assert!(yaml.contains(key), "missing {key} in\n{yaml}");
        }
        assert!(!yaml.contains("aescbcencryptionsecret"), "omitempty");
        assert_eq!(from_talosctl_yaml(&yaml).unwrap(), s);
    }

    #[test]
    fn export_is_byte_identical_to_talosctl_gen_secrets() {
        // Written by machinery v1.12.4 itself (tools/talos-fixtures gen-secrets).
        let fixture = include_str!("../../../tests/fixtures/talosctl-secrets.yaml");
        let imported = from_talosctl_yaml(fixture).unwrap();
        assert_eq!(to_talosctl_yaml(&imported).unwrap(), fixture);
        assert!(fixture.contains("\n    etcd:\n        crt: "), "the fixture uses Go's 4-space indentation");
    }

    #[test]
    fn export_writes_the_legacy_secret_in_go_field_order() {
        let s = generate(VersionContract::V1_2, &clock(), &mut rng(14)).unwrap();
        let yaml = to_talosctl_yaml(&s).unwrap();
        let expected = format!(
            "secrets:\n    bootstraptoken: {}\n    aescbcencryptionsecret: {}\ntrustdinfo:\n",
            s.secrets.bootstrap_token,
            s.secrets.aescbc_encryption_secret.as_deref().unwrap()
        );
        assert!(yaml.contains(&expected), "{yaml}");
        assert_eq!(from_talosctl_yaml(&yaml).unwrap(), s);
    }

    #[test]
    fn talosctl_yaml_import_accepts_talos_layout_and_canonicalises() {
        let s = generate(VersionContract::V1_2, &clock(), &mut rng(12)).unwrap();
        let wrap = |b64: &str| {
            b64.as_bytes()
                .chunks(76)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\n            ")
        };
        let pair = |name: &str, p: &CertAndKey| {
            format!("    {name}:\n        crt: >-\n            {}\n        key: {}\n", wrap(&p.cert), p.key)
        };
        // Go's yaml layout: 4-space indentation; a folded scalar stands in for a hand-wrapped value.
        let yaml = format!(
            "cluster:\n    id: {}\n    secret: {}\nsecrets:\n    bootstraptoken: {}\n    aescbcencryptionsecret: {}\n\
             trustdinfo:\n    token: {}\ncerts:\n{}{}{}    k8sserviceaccount:\n        key: {}\n{}",
            s.cluster.id,
            s.cluster.secret,
            s.secrets.bootstrap_token,
            s.secrets.aescbc_encryption_secret.as_deref().unwrap(),
            s.trustdinfo.token,
            pair("etcd", &s.certs.etcd),
            pair("k8s", &s.certs.k8s),
            pair("k8saggregator", &s.certs.k8s_aggregator),
            s.certs.k8s_serviceaccount.key,
            pair("os", &s.certs.os),
        );
        let imported = from_talosctl_yaml(&yaml).unwrap();
        assert_eq!(imported, s);
        assert_eq!(import_contract(&imported), VersionContract::V1_2);
    }

    #[test]
    fn talosctl_yaml_import_errors_name_the_field() {
        let s = ecdsa_bundle(13);
        let yaml = to_talosctl_yaml(&s).unwrap();
        let bad_cert = yaml.replace(&s.certs.k8s_aggregator.cert, "bm90IHBlbQ==");
        let err = from_talosctl_yaml(&bad_cert).unwrap_err().to_string();
        assert!(err.contains("certs.k8saggregator.crt"), "{err}");
        let bad_b64 = yaml.replace(&s.certs.os.key, "!!notbase64");
        assert!(from_talosctl_yaml(&bad_b64).unwrap_err().to_string().contains("certs.os.key"));
        let no_secret = yaml.replace(s.secrets.secretbox_encryption_secret.as_deref().unwrap(), "''");
        assert!(from_talosctl_yaml(&no_secret).unwrap_err().to_string().contains("one of"));
        assert!(matches!(from_talosctl_yaml("cluster: [").unwrap_err(), SecretsError::Yaml(_)));
    }
}
