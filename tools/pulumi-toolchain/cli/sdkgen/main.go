// Command pulumi-sdkgen generates the nodejs, python and go SDKs of a Pulumi
// package from its schema.json, using Pulumi's own codegen libraries at the same
// pkg/v3 release as the CLI built from this module.
//
// It stands in for `pulumi package gen-sdk SCHEMA --language L`, which does the
// same two steps: the CLI binds the schema (and applies --version), then the
// language host plugin (pulumi-language-<L>) re-binds the marshalled package and
// calls <L>codegen.GeneratePackage. The python, nodejs and go language-host
// modules are not obtainable from the Go module proxy, so here both steps run
// in-process, with the same binding options and the same codegen entry points
// and tool name as the hosts, so the output matches theirs.
//
// Usage:
//
//	pulumi-sdkgen --schema schema.json --out DIR --language nodejs|python|go|all [--version 0.1.0] [--local]
//
// Files are written under DIR/<language>/, which is emptied first (as gen-sdk does).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blang/semver"
	"github.com/hashicorp/hcl/v2"

	gocodegen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

// noPluginLoader resolves no external packages. Our schema references only its
// own types and the built-in pulumi.json types (Any, Archive, Asset, Json),
// which the binder handles without a loader; anything else is an error rather
// than an attempt to boot or download a provider plugin.
type noPluginLoader struct{}

var _ schema.ReferenceLoader = noPluginLoader{}

func errExternal(name string) error {
	return fmt.Errorf("pulumi-sdkgen: schema references external package %q; "+
		"loading other packages' schemas (provider plugins) is not supported", name)
}

func (noPluginLoader) LoadPackage(pkg string, _ *semver.Version) (*schema.Package, error) {
	return nil, errExternal(pkg)
}

func (noPluginLoader) LoadPackageV2(_ context.Context, d *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, errExternal(d.Name)
}

func (noPluginLoader) LoadPackageReference(pkg string, _ *semver.Version) (schema.PackageReference, error) {
	return nil, errExternal(pkg)
}

func (noPluginLoader) LoadPackageReferenceV2(
	_ context.Context, d *schema.PackageDescriptor,
) (schema.PackageReference, error) {
	return nil, errExternal(d.Name)
}

// bind validates and binds a spec exactly like the CLI's packages.BindSpec and
// the language hosts' GeneratePackage (AllowDanglingReferences as the go host and CLI do).
func bind(spec schema.PackageSpec) (*schema.Package, hcl.Diagnostics, error) {
	return schema.BindSpec(spec, noPluginLoader{}, schema.ValidationOptions{AllowDanglingReferences: true})
}

func printDiags(diags hcl.Diagnostics) {
	for _, d := range diags {
		sev := "warning"
		if d.Severity == hcl.DiagError {
			sev = "error"
		}
		fmt.Fprintf(os.Stderr, "%s: %s", sev, d.Summary)
		if d.Detail != "" {
			fmt.Fprintf(os.Stderr, ": %s", d.Detail)
		}
		fmt.Fprintln(os.Stderr)
	}
}

func generate(language string, schemaJSON []byte, local bool) (map[string][]byte, error) {
	// Like the hosts: each language binds its own copy, because the generators
	// mutate pkg.Language.
	var spec schema.PackageSpec
	if err := json.Unmarshal(schemaJSON, &spec); err != nil {
		return nil, err
	}
	pkg, diags, err := bind(spec)
	if err != nil {
		return nil, err
	}
	printDiags(diags)
	if diags.HasErrors() {
		return nil, fmt.Errorf("binding schema for %s failed", language)
	}
	loader := schema.NewCachedLoader(noPluginLoader{})
	switch language {
	case "nodejs":
		return nodejs.GeneratePackage("pulumi-language-nodejs", pkg, nil, nil, local, loader)
	case "python":
		return python.GeneratePackage("pulumi-language-python", pkg, nil, loader)
	case "go":
		return gocodegen.GeneratePackage("pulumi-language-go", pkg, nil)
	default:
		return nil, fmt.Errorf("unsupported language %q (want nodejs, python, go or all)", language)
	}
}

func writeFiles(dir string, files map[string][]byte) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

func run() error {
	var schemaPath, out, language, version string
	var local bool
	flag.StringVar(&schemaPath, "schema", "", "path to the package schema.json (required)")
	flag.StringVar(&out, "out", "./sdk", "output directory; files go to OUT/<language>/")
	flag.StringVar(&language, "language", "all", "nodejs, python, go or all (comma-separated list also accepted)")
	flag.StringVar(&version, "version", "", "package version to stamp into the SDKs (overrides the schema's)")
	flag.BoolVar(&local, "local", false, "nodejs: generate a local SDK (as gen-sdk --local)")
	flag.Parse()
	if schemaPath == "" || flag.NArg() != 0 {
		flag.Usage()
		return errors.New("--schema is required and no positional arguments are accepted")
	}

	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("parse %s: %w", schemaPath, err)
	}

	// CLI side of gen-sdk: bind (validate) and apply --version.
	pkg, diags, err := bind(spec)
	if err != nil {
		return err
	}
	printDiags(diags)
	if diags.HasErrors() {
		return errors.New("schema has errors")
	}
	if version != "" {
		v, err := semver.Parse(strings.TrimPrefix(version, "v"))
		if err != nil {
			return fmt.Errorf("invalid version %q: %w", version, err)
		}
		if pkg.Version != nil {
			fmt.Fprintf(os.Stderr, "overriding package version %s with %s\n", pkg.Version, v)
		}
		pkg.Version = &v
	}
	// What the CLI sends to the language host.
	bound, err := pkg.MarshalJSON()
	if err != nil {
		return err
	}

	var langs []string
	if language == "all" {
		langs = []string{"go", "nodejs", "python"}
	} else {
		langs = strings.Split(language, ",")
	}
	for _, lang := range langs {
		lang = strings.TrimSpace(lang)
		files, err := generate(lang, bound, local)
		if err != nil {
			return fmt.Errorf("%s: %w", lang, err)
		}
		dir := filepath.Join(out, lang)
		if err := writeFiles(dir, files); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "SDK has been written to %s (%d files)\n", dir, len(files))
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-sdkgen:", err)
		os.Exit(1)
	}
}
