//! The Talos machine secrets bundle as the provider exposes it.
//!
//! Owns: the serde types of the `machineSecrets` and `clientConfiguration`
//! outputs, shaped and encoded exactly like pulumi-talos (camelCase names,
//! every certificate and key as base64 of its PEM), and their validation.
//! Must not: generate anything, or know the `talosctl gen secrets` YAML names
//! (that is `talosctl_yaml`); doc comments here become schema descriptions.

use serde::{Deserialize, Serialize};

use crate::schema::PulumiType;

use super::pki;
use super::SecretsError;

/// All secrets of a Talos cluster: the input to machine configuration generation
/// (pulumi-talos type `talos:machine/generated:MachineSecrets`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:MachineSecrets")]
pub struct MachineSecrets {
    /// Cluster identity used by discovery and KubeSpan.
    pub cluster: Cluster,
    /// Kubernetes bootstrap token and etcd encryption secret.
    pub secrets: Secrets,
    /// Credentials worker nodes present to trustd to obtain their certificates.
    pub trustdinfo: TrustdInfo,
    /// Certificate authorities and keys of the cluster.
    pub certs: Certs,
}

/// Cluster identity used by the discovery service and KubeSpan
/// (pulumi-talos type `talos:machine/generated:Cluster`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:Cluster")]
pub struct Cluster {
    /// Globally unique cluster ID: 32 random bytes in base64 (URL-safe alphabet up to Talos 1.13).
    pub id: String,
    /// Shared cluster secret: 32 random bytes in standard base64. Sensitive.
    pub secret: String,
}

/// Kubernetes bootstrap data (pulumi-talos type `talos:machine/generated:KubernetesSecrets`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:BundleSecrets")]
pub struct Secrets {
    /// Kubernetes bootstrap token in kubeadm format (`[a-z0-9]{6}.[a-z0-9]{16}`). Sensitive.
    pub bootstrap_token: String,
    /// Secretbox key (32 random bytes, standard base64) that encrypts Kubernetes secrets in etcd;
    /// present for Talos contracts newer than v1.2. Sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secretbox_encryption_secret: Option<String>,
    /// Legacy AES-CBC key (32 random bytes, standard base64) that encrypts Kubernetes secrets
    /// in etcd; present only for Talos v1.2 and older contracts. Sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aescbc_encryption_secret: Option<String>,
}

/// Trust daemon (trustd) credentials (pulumi-talos type `talos:machine/generated:TrustdInfo`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:TrustdInfo")]
pub struct TrustdInfo {
    /// Token machines use to authenticate to trustd, in `[a-z0-9]{6}.[a-z0-9]{16}` format. Sensitive.
    pub token: String,
}

/// The cluster's certificate authorities and signing keys
/// (pulumi-talos type `talos:machine/generated:Certificates`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:Certs")]
pub struct Certs {
    /// etcd CA (ECDSA P-256, `O=etcd`).
    pub etcd: CertAndKey,
    /// Kubernetes CA (ECDSA P-256, `O=kubernetes`).
    pub k8s: CertAndKey,
    /// Kubernetes aggregation layer (front-proxy) CA (ECDSA P-256).
    pub k8s_aggregator: CertAndKey,
    /// Kubernetes service-account token signing key (RSA-4096 for Talos contracts newer than v1.6).
    pub k8s_serviceaccount: KeyOnly,
    /// Talos API (OS) CA (Ed25519, `O=talos`).
    pub os: CertAndKey,
}

/// A certificate with its private key (pulumi-talos type `talos:machine/generated:Certificate`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:CertificateAndKey")]
pub struct CertAndKey {
    /// Certificate: base64 of its PEM (`CERTIFICATE` block).
    pub cert: String,
    /// Private key: base64 of its PEM. Sensitive.
    pub key: String,
}

/// A private key without a certificate (pulumi-talos type `talos:machine/generated:Key`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:KeyOnly")]
pub struct KeyOnly {
    /// Private key: base64 of its PEM. Sensitive.
    pub key: String,
}

/// Credentials for the Talos API, the contents of a talosconfig context
/// (pulumi-talos type `talos:machine/generated:ClientConfiguration`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "machine:ClientConfiguration")]
pub struct ClientConfiguration {
    /// Talos API (OS) CA certificate: base64 of its PEM.
    pub ca_certificate: String,
    /// Admin client certificate (`O=os:admin`): base64 of its PEM.
    pub client_certificate: String,
    /// Admin client private key: base64 of its PEM. Secret.
    #[pulumi(secret)]
    pub client_key: String,
}

impl MachineSecrets {
    /// Checks the bundle the way Talos's `Bundle.Validate` does: every value is
    /// present, exactly one etcd encryption secret is set, and every certificate
    /// and key is base64 of a well-formed PEM block of the right kind.
    /// Errors name the offending field by its camelCase path.
    pub fn validate(&self) -> Result<(), SecretsError> {
        let required = [
            ("cluster.id", &self.cluster.id),
            ("cluster.secret", &self.cluster.secret),
            ("secrets.bootstrapToken", &self.secrets.bootstrap_token),
            ("trustdinfo.token", &self.trustdinfo.token),
        ];
        for (field, value) in required {
            if value.is_empty() {
                return Err(SecretsError::invalid(field, "is required"));
            }
        }
        let secretbox = self.secrets.secretbox_encryption_secret.as_deref().unwrap_or("");
        let aescbc = self.secrets.aescbc_encryption_secret.as_deref().unwrap_or("");
        match (secretbox.is_empty(), aescbc.is_empty()) {
            (true, true) => {
                return Err(SecretsError::invalid(
                    "secrets",
                    "one of secretboxEncryptionSecret or aescbcEncryptionSecret is required",
                ))
            }
            (false, false) => {
                return Err(SecretsError::invalid(
                    "secrets",
                    "only one of secretboxEncryptionSecret or aescbcEncryptionSecret is allowed",
                ))
            }
            _ => {}
        }
        let pairs = [
            ("certs.etcd", &self.certs.etcd),
            ("certs.k8s", &self.certs.k8s),
            ("certs.k8sAggregator", &self.certs.k8s_aggregator),
            ("certs.os", &self.certs.os),
        ];
        for (field, pair) in pairs {
            pki::check_certificate_b64(&format!("{field}.cert"), &pair.cert)?;
            pki::check_private_key_b64(&format!("{field}.key"), &pair.key)?;
        }
        pki::check_private_key_b64("certs.k8sServiceaccount.key", &self.certs.k8s_serviceaccount.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MachineSecrets {
        let pair = || CertAndKey { cert: "c".into(), key: "k".into() };
        MachineSecrets {
            cluster: Cluster { id: "id".into(), secret: "s".into() },
            secrets: Secrets {
                bootstrap_token: "abcdef.0123456789abcdef".into(),
                secretbox_encryption_secret: Some("box".into()),
                aescbc_encryption_secret: None,
            },
            trustdinfo: TrustdInfo { token: "t".into() },
            certs: Certs {
                etcd: pair(),
                k8s: pair(),
                k8s_aggregator: pair(),
                k8s_serviceaccount: KeyOnly { key: "sa".into() },
                os: pair(),
            },
        }
    }

    #[test]
    fn json_shape_matches_pulumi_talos() {
        let json = serde_json::to_value(sample()).unwrap();
        let expected = serde_json::json!({
            "cluster": {"id": "id", "secret": "s"},
            "secrets": {"bootstrapToken": "abcdef.0123456789abcdef", "secretboxEncryptionSecret": "box"},
            "trustdinfo": {"token": "t"},
            "certs": {
                "etcd": {"cert": "c", "key": "k"},
                "k8s": {"cert": "c", "key": "k"},
                "k8sAggregator": {"cert": "c", "key": "k"},
                "k8sServiceaccount": {"key": "sa"},
                "os": {"cert": "c", "key": "k"}
            }
        });
        assert_eq!(json, expected);
        let back: MachineSecrets = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn client_configuration_uses_camel_case() {
        let cfg =
            ClientConfiguration { ca_certificate: "a".into(), client_certificate: "b".into(), client_key: "c".into() };
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json, serde_json::json!({"caCertificate": "a", "clientCertificate": "b", "clientKey": "c"}));
    }

    #[test]
    fn validate_names_the_bad_field() {
        let mut s = sample();
        s.cluster.secret.clear();
        assert!(s.validate().unwrap_err().to_string().contains("cluster.secret"));

        let mut s = sample();
        s.secrets.aescbc_encryption_secret = Some("x".into());
        assert!(s.validate().unwrap_err().to_string().contains("only one of"));

        let mut s = sample();
        s.secrets.secretbox_encryption_secret = None;
        assert!(s.validate().unwrap_err().to_string().contains("one of"));

        // Placeholder cert/key values are not base64 PEM.
        let err = sample().validate().unwrap_err().to_string();
        assert!(err.contains("certs.etcd.cert"), "{err}");
    }
}
