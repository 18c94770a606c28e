package main

// check-talosconfig: loads a talosconfig file with machinery's client config
// loader (the code talosctl uses for --talosconfig and ~/.talos/config) and
// checks that its current context can authenticate, for the provider's
// client:getConfiguration tests.

import (
	"bytes"
	"crypto/tls"
	stdx509 "crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
)

// talosconfigSummary is what check-talosconfig prints on stdout (JSON).
type talosconfigSummary struct {
	Context   string   `json:"context"`
	Contexts  []string `json:"contexts"`
	Endpoints []string `json:"endpoints"`
	Nodes     []string `json:"nodes"`
	Roles     []string `json:"roles"`
	NotAfter  string   `json:"notAfter"`
}

// checkTalosconfig runs these checks in order; the first failure is returned:
//  1. clientconfig.Open (machinery's loader) reads the file;
//  2. a strict decode rejects unknown or misspelt keys and extra documents;
//  3. the current context exists and has at least one endpoint;
//  4. ca, crt and key are standard base64 of PEM; crt and key form a TLS key
//     pair (as the Talos client loads them) and crt chains to ca for client auth now;
//  5. with --canonical, the file is byte-identical to machinery's marshalling.
//
// On success it prints a JSON summary (context, contexts, endpoints, nodes,
// the certificate's roles and expiry) to stdout.
func checkTalosconfig(args []string) error {
	fs := flag.NewFlagSet("check-talosconfig", flag.ContinueOnError)
	in := fs.String("in", "", "talosconfig file (required)")
	canonical := fs.Bool("canonical", false, "also require the file to be byte-identical to machinery's YAML marshalling of it")

	if err := fs.Parse(args); err != nil {
		return err
	}

	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	if *in == "" {
		return errors.New("--in is required")
	}

	raw, err := os.ReadFile(*in)
	if err != nil {
		return err
	}

	cfg, err := clientconfig.Open(*in)
	if err != nil {
		return fmt.Errorf("clientconfig.Open: %w", err)
	}

	if err = strictDecode(raw, &clientconfig.Config{}); err != nil {
		return fmt.Errorf("strict decode: %w", err)
	}

	ctx, ok := cfg.Contexts[cfg.Context]
	if cfg.Context == "" || !ok {
		return fmt.Errorf("the current context %q is not defined", cfg.Context)
	}

	if len(ctx.Endpoints) == 0 {
		return fmt.Errorf("context %q has no endpoints", cfg.Context)
	}

	leaf, err := checkClientCredentials(ctx)
	if err != nil {
		return fmt.Errorf("context %q: %w", cfg.Context, err)
	}

	if *canonical {
		remarshalled, mErr := cfg.Bytes()
		if mErr != nil {
			return fmt.Errorf("re-marshal: %w", mErr)
		}

		if !bytes.Equal(raw, remarshalled) {
			return errors.New("file is not byte-identical to machinery's YAML marshalling of the same config (" + firstDiff(raw, remarshalled) + ")")
		}
	}

	summary := talosconfigSummary{
		Context:   cfg.Context,
		Endpoints: ctx.Endpoints,
		Nodes:     ctx.Nodes,
		Roles:     leaf.Subject.Organization,
		NotAfter:  leaf.NotAfter.UTC().Format(time.RFC3339),
	}

	for name := range cfg.Contexts {
		summary.Contexts = append(summary.Contexts, name)
	}

	if summary.Nodes == nil {
		summary.Nodes = []string{}
	}

	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)

	if err = enc.Encode(summary); err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "ok: %s\n", *in)

	return nil
}

// checkClientCredentials loads the context's key pair the way the Talos
// client does and verifies the certificate against the context's CA.
func checkClientCredentials(ctx *clientconfig.Context) (*stdx509.Certificate, error) {
	ca, err := pemFromBase64("ca", ctx.CA, "CERTIFICATE")
	if err != nil {
		return nil, err
	}

	crt, err := pemFromBase64("crt", ctx.Crt, "CERTIFICATE")
	if err != nil {
		return nil, err
	}

	key, err := base64.StdEncoding.DecodeString(ctx.Key)
	if err != nil {
		return nil, fmt.Errorf("key: not standard base64: %w", err)
	}

	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("crt/key: %w", err)
	}

	leaf, err := stdx509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("crt: %w", err)
	}

	roots := stdx509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, errors.New("ca: no certificate could be parsed")
	}

	if _, err = leaf.Verify(stdx509.VerifyOptions{Roots: roots, KeyUsages: []stdx509.ExtKeyUsage{stdx509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("crt is not a client certificate issued by ca: %w", err)
	}

	return leaf, nil
}

func pemFromBase64(field, value, blockType string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("%s: not standard base64: %w", field, err)
	}

	block, _ := pem.Decode(raw)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("%s: expected base64 of a PEM %s block", field, blockType)
	}

	return raw, nil
}
