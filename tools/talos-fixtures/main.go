// Command talos-fixtures produces and checks Talos machine-secrets fixtures
// for the proxmox-talos provider tests, using siderolabs' own machinery
// module (the library talosctl is built on).
//
// Usage:
//
//	talos-fixtures gen-secrets --talos-version v1.12 --out FILE [--force]
//	talos-fixtures check-secrets --in FILE [--talos-version v1.12] [--canonical]
package main

import (
	"bytes"
	"crypto"
	stdx509 "crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/siderolabs/crypto/x509"
	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"go.yaml.in/yaml/v4"
)

const usage = `usage:
  talos-fixtures gen-secrets --talos-version vX.Y --out FILE [--force]
  talos-fixtures check-secrets --in FILE [--talos-version vX.Y] [--canonical]
  talos-fixtures check-talosconfig --in FILE [--canonical]
  talos-fixtures dump-schema [--out FILE]
  talos-fixtures validate-config --in FILE --mode metal|cloud|container [--strict]
  talos-fixtures compare-config --ours FILE --secrets FILE --type controlplane|worker --cluster NAME --endpoint URL [--patch FILE]... [options]
  talos-fixtures dump-api-descriptors --out FILE
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}

	var err error

	switch os.Args[1] {
	case "gen-secrets":
		err = genSecrets(os.Args[2:])
	case "check-secrets":
		err = checkSecrets(os.Args[2:])
	case "check-talosconfig": // talosconfig.go
		err = checkTalosconfig(os.Args[2:])
	case "dump-schema": // config_schema.go
		err = dumpSchema(os.Args[2:])
	case "validate-config": // config_check.go
		err = validateConfig(os.Args[2:])
	case "compare-config": // config_check.go
		err = compareConfig(os.Args[2:])
	case "dump-api-descriptors": // api_descriptors.go
		err = dumpAPIDescriptors(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)

		return
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}

	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// parseContract maps "" to the current contract (nil), as talosctl does.
func parseContract(v string) (*config.VersionContract, error) {
	if v == "" {
		return config.TalosVersionCurrent, nil
	}

	c, err := config.ParseContractFromVersion(v)
	if err != nil {
		return nil, fmt.Errorf("invalid --talos-version: %w", err)
	}

	return c, nil
}

// genSecrets mirrors `talosctl gen secrets [--talos-version V] -o FILE`:
// secrets.NewBundle with a clock fixed at time.Now(), the parsed version
// contract, go.yaml.in/yaml/v4 Marshal of the bundle, file mode 0600, and a
// refusal to overwrite an existing file unless --force is given.
func genSecrets(args []string) error {
	fs := flag.NewFlagSet("gen-secrets", flag.ContinueOnError)
	talosVersion := fs.String("talos-version", "", "Talos version contract to generate for, e.g. v1.12 (empty: machinery's current)")
	out := fs.String("out", "", `output file, or "-" for stdout (required)`)
	force := fs.Bool("force", false, "overwrite an existing output file")

	if err := fs.Parse(args); err != nil {
		return err
	}

	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	if *out == "" {
		return errors.New("--out is required")
	}

	contract, err := parseContract(*talosVersion)
	if err != nil {
		return err
	}

	bundle, err := secrets.NewBundle(secrets.NewFixedClock(time.Now()), contract)
	if err != nil {
		return fmt.Errorf("failed to create secrets bundle: %w", err)
	}

	data, err := yaml.Marshal(bundle)
	if err != nil {
		return err
	}

	if *out == "-" {
		_, err = os.Stdout.Write(data)

		return err
	}

	if !*force {
		if _, statErr := os.Stat(*out); statErr == nil {
			return fmt.Errorf("file %q already exists, use --force to overwrite", *out)
		}
	}

	return os.WriteFile(*out, data, 0o600)
}

// checkSecrets loads a talosctl-format secrets YAML with machinery and
// validates it. Any failure is returned (non-zero exit) with the reason.
func checkSecrets(args []string) error {
	fs := flag.NewFlagSet("check-secrets", flag.ContinueOnError)
	in := fs.String("in", "", `secrets YAML file, or "-" for stdin (required)`)
	talosVersion := fs.String("talos-version", "", "also check contract-dependent choices (encryption secret kind, service-account key type) for this version, e.g. v1.12")
	canonical := fs.Bool("canonical", false, "also require the file to be byte-identical to machinery's re-marshalling of it")

	if err := fs.Parse(args); err != nil {
		return err
	}

	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	if *in == "" {
		return errors.New("--in is required")
	}

	path := *in

	var raw []byte

	var err error

	if path == "-" {
		raw, err = io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}

		tmp, tmpErr := os.CreateTemp("", "talos-secrets-*.yaml")
		if tmpErr != nil {
			return tmpErr
		}

		defer os.Remove(tmp.Name()) //nolint:errcheck

		if _, err = tmp.Write(raw); err != nil {
			return err
		}

		if err = tmp.Close(); err != nil {
			return err
		}

		path = tmp.Name()
	} else {
		raw, err = os.ReadFile(path)
		if err != nil {
			return err
		}
	}

	// 1. machinery's own loader (what talosctl gen config --with-secrets uses).
	bundle, err := secrets.LoadBundle(path)
	if err != nil {
		return fmt.Errorf("secrets.LoadBundle: %w", err)
	}

	// 2. LoadBundle ignores unknown keys; a misspelt key would silently
	// produce an empty field, so decode again strictly.
	if err = strictDecode(raw, &secrets.Bundle{}); err != nil {
		return fmt.Errorf("strict decode: %w", err)
	}

	// 3. machinery's validation: required fields, key/cert PEMs parse.
	if err = bundle.Validate(); err != nil {
		return fmt.Errorf("bundle.Validate: %s", strings.TrimSpace(err.Error()))
	}

	// 4. Stronger certificate checks.
	now := time.Now()

	for _, ca := range []struct {
		name string
		pair *x509.PEMEncodedCertificateAndKey
	}{
		{"certs.etcd", bundle.Certs.Etcd},
		{"certs.k8s", bundle.Certs.K8s},
		{"certs.k8saggregator", bundle.Certs.K8sAggregator},
		{"certs.os", bundle.Certs.OS},
	} {
		if err = checkCA(ca.name, ca.pair, now); err != nil {
			return err
		}
	}

	saKey, err := bundle.Certs.K8sServiceAccount.GetKey()
	if err != nil {
		return fmt.Errorf("certs.k8sserviceaccount.key: %w", err)
	}

	// 5. Contract-dependent choices, when a version is given.
	if *talosVersion != "" {
		contract, cErr := parseContract(*talosVersion)
		if cErr != nil {
			return cErr
		}

		if err = checkContract(bundle, saKey, contract); err != nil {
			return err
		}
	}

	// 6. Byte-exactness against machinery's marshalling.
	remarshalled, err := yaml.Marshal(bundle)
	if err != nil {
		return fmt.Errorf("re-marshal: %w", err)
	}

	if !bytes.Equal(raw, remarshalled) {
		if *canonical {
			return errors.New("file is not byte-identical to machinery's YAML marshalling of the same bundle (" + firstDiff(raw, remarshalled) + ")")
		}

		fmt.Fprintln(os.Stderr, "note: valid, but not byte-identical to machinery's marshalling ("+firstDiff(raw, remarshalled)+")")
	}

	fmt.Fprintf(os.Stderr, "ok: %s\n", *in)

	return nil
}

// strictDecode decodes exactly one YAML document into out, refusing unknown keys
// (machinery's own loaders silently ignore them).
func strictDecode(raw []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)

	if err := dec.Decode(out); err != nil {
		return err
	}

	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}

	return nil
}

func checkCA(name string, pair *x509.PEMEncodedCertificateAndKey, now time.Time) error {
	cert, err := pair.GetCert()
	if err != nil {
		return fmt.Errorf("%s.crt: %w", name, err)
	}

	key, err := pair.GetKey()
	if err != nil {
		return fmt.Errorf("%s.key: %w", name, err)
	}

	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("%s.crt: not a CA certificate (basicConstraints CA:TRUE missing)", name)
	}

	if cert.KeyUsage&stdx509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%s.crt: CA certificate lacks the keyCertSign key usage", name)
	}

	if err = cert.CheckSignatureFrom(cert); err != nil {
		return fmt.Errorf("%s.crt: not a self-signed root: %w", name, err)
	}

	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("%s.crt: not valid now (valid %s .. %s)", name, cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}

	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%s.key: unsupported private key type %T", name, key)
	}

	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%s: private key does not match the certificate's public key", name)
	}

	return nil
}

func checkContract(bundle *secrets.Bundle, saKey x509.Key, contract *config.VersionContract) error {
	if contract.Greater(config.TalosVersion1_2) {
		if bundle.Secrets.SecretboxEncryptionSecret == "" {
			return errors.New("secrets.secretboxencryptionsecret is expected for this Talos version")
		}
	} else if bundle.Secrets.AESCBCEncryptionSecret == "" {
		return errors.New("secrets.aescbcencryptionsecret is expected for this Talos version")
	}

	_, isRSA := saKey.(*x509.RSAKey)

	if contract.UseRSAServiceAccountKey() != isRSA {
		want := "ECDSA"
		if contract.UseRSAServiceAccountKey() {
			want = "RSA"
		}

		return fmt.Errorf("certs.k8sserviceaccount.key: expected an %s key for this Talos version, got %T", want, saKey)
	}

	return nil
}

func firstDiff(a, b []byte) string {
	line := 1

	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at line %d", line)
		}

		if a[i] == '\n' {
			line++
		}
	}

	return fmt.Sprintf("lengths differ: %d vs %d bytes", len(a), len(b))
}
