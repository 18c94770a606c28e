// Command keycheck loads certificate/key pairs the way Go programs do
// (kubectl, talosctl, client-go, Terraform providers): crypto/tls's
// X509KeyPair, which parses the PEM private key (PKCS#1, PKCS#8 or SEC1 with
// its named curve) and checks that it matches the certificate.
//
// Usage: keycheck CERT.pem KEY.pem [CERT.pem KEY.pem ...]
//
// It prints one line per pair and exits 1 if any pair fails to load, 2 on
// bad usage. Standard library only.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

func check(certPath, keyPath string) error {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if _, err := x509.ParseCertificate(pair.Certificate[0]); err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	return nil
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 || len(args)%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: keycheck CERT.pem KEY.pem [CERT.pem KEY.pem ...]")
		os.Exit(2)
	}
	failed := false
	for i := 0; i < len(args); i += 2 {
		if err := check(args[i], args[i+1]); err != nil {
			fmt.Printf("FAIL %s %s: %v\n", args[i], args[i+1], err)
			failed = true
		} else {
			fmt.Printf("ok %s %s\n", args[i], args[i+1])
		}
	}
	if failed {
		os.Exit(1)
	}
}
