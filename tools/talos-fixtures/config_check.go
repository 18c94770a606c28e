// config_check.go: `validate-config` and `compare-config`, machinery's own
// checks of machine configurations rendered by the provider.
//
//   - validate-config loads a config file the way `talosctl validate` does
//     (configloader, then Validate with the runtime mode and WithLocal).
//   - compare-config generates the same config with machinery (the options the
//     terraform provider's talos_machine_configuration uses, the same secrets and
//     patches) and compares the documents structurally: same documents, keys and
//     values, key order aside. It also says whether the bytes are identical.

package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/bundle"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
	"github.com/siderolabs/talos/pkg/machinery/config/validation"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"github.com/siderolabs/talos/pkg/machinery/gendata"
	"go.yaml.in/yaml/v4"
)

// runtimeMode mirrors Talos's runtime modes (internal/app/machined/pkg/runtime)
// as far as validation.RuntimeMode asks.
type runtimeMode string

func (m runtimeMode) String() string        { return string(m) }
func (m runtimeMode) RequiresInstall() bool { return m == "metal" }
func (m runtimeMode) InContainer() bool     { return m == "container" }

func validateConfig(args []string) error {
	fs := flag.NewFlagSet("validate-config", flag.ContinueOnError)
	in := fs.String("in", "", "machine configuration file (required)")
	mode := fs.String("mode", "", "runtime mode: metal, cloud or container (required)")
	strict := fs.Bool("strict", false, "treat warnings as errors (validation.WithStrict)")

	if err := fs.Parse(args); err != nil {
		return err
	}

	if *in == "" {
		return errors.New("--in is required")
	}

	switch *mode {
	case "metal", "cloud", "container":
	default:
		return fmt.Errorf("--mode must be metal, cloud or container, not %q", *mode)
	}

	cfg, err := configloader.NewFromFile(*in)
	if err != nil {
		return fmt.Errorf("loading %s: %w", *in, err)
	}

	opts := []validation.Option{validation.WithLocal()}
	if *strict {
		opts = append(opts, validation.WithStrict())
	}

	warnings, err := cfg.Validate(runtimeMode(*mode), opts...)
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}

	if err != nil {
		return fmt.Errorf("%s is invalid in %s mode: %w", *in, *mode, err)
	}

	fmt.Printf("%s is valid for %s mode\n", *in, *mode)

	return nil
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func compareConfig(args []string) error {
	fs := flag.NewFlagSet("compare-config", flag.ContinueOnError)
	ours := fs.String("ours", "", "the provider's rendered configuration (required unless --expect-error)")
	secretsPath := fs.String("secrets", "", "talosctl secrets YAML (required)")
	machineType := fs.String("type", "", "controlplane or worker (required)")
	cluster := fs.String("cluster", "", "cluster name (required)")
	endpoint := fs.String("endpoint", "", "cluster endpoint URL (required)")
	k8s := fs.String("kubernetes-version", constants.DefaultKubernetesVersion, "Kubernetes version")
	talosVersion := fs.String("talos-version", "", "version contract (default: machinery's major.minor)")
	disk := fs.String("install-disk", "/dev/sda", "install disk")
	image := fs.String("install-image", "ghcr.io/siderolabs/installer:"+gendata.VersionTag, "install image")
	machineryOut := fs.String("machinery-out", "", "also write machinery's rendering to this file")
	expectError := fs.Bool("expect-error", false, "machinery must fail: print its error and exit 0")

	var patches repeated

	fs.Var(&patches, "patch", "config patch file (repeatable, applied in order)")

	if err := fs.Parse(args); err != nil {
		return err
	}

	for name, v := range map[string]string{"secrets": *secretsPath, "type": *machineType, "cluster": *cluster, "endpoint": *endpoint} {
		if v == "" {
			return fmt.Errorf("--%s is required", name)
		}
	}

	generated, genErr := machineryConfig(*secretsPath, *machineType, *cluster, *endpoint, *k8s, *talosVersion, *disk, *image, patches)

	if *expectError {
		if genErr == nil {
			return errors.New("machinery generated the configuration; an error was expected")
		}

		fmt.Println(genErr.Error())

		return nil
	}

	if genErr != nil {
		return fmt.Errorf("machinery: %w", genErr)
	}

	if *machineryOut != "" {
		if err := os.WriteFile(*machineryOut, generated, 0o600); err != nil {
			return err
		}
	}

	if *ours == "" {
		return errors.New("--ours is required")
	}

	ourBytes, err := os.ReadFile(*ours)
	if err != nil {
		return err
	}

	diffs, err := compareDocuments(ourBytes, generated)
	if err != nil {
		return err
	}

	if len(diffs) > 0 {
		for _, d := range diffs {
			fmt.Println(d)
		}

		return fmt.Errorf("%d difference(s) from machinery's configuration", len(diffs))
	}

	fmt.Printf("same documents, keys and values as machinery; byte-identical: %v\n", bytes.Equal(ourBytes, generated))

	return nil
}

// machineryConfig follows terraform-provider-talos (pkg/talos/util.go,
// machineConfigGenerateOptions.generate) with a fixed installer image and disk.
func machineryConfig(secretsPath, machineType, cluster, endpoint, k8s, talosVersion, disk, image string, patchFiles []string) ([]byte, error) {
	secretsBundle, err := secrets.LoadBundle(secretsPath)
	if err != nil {
		return nil, fmt.Errorf("loading secrets: %w", err)
	}

	if talosVersion == "" {
		talosVersion = gendata.VersionTag
	}

	contract, err := config.ParseContractFromVersion(talosVersion)
	if err != nil {
		return nil, err
	}

	genOptions := []generate.Option{
		generate.WithClusterDiscovery(true),
		generate.WithDNSDomain(constants.DefaultDNSDomain),
		generate.WithInstallDisk(disk),
		generate.WithInstallImage(image),
		generate.WithSecretsBundle(secretsBundle),
		generate.WithVersionContract(contract),
	}

	opts := []bundle.Option{
		bundle.WithInputOptions(&bundle.InputOptions{
			ClusterName: cluster,
			Endpoint:    endpoint,
			KubeVersion: strings.TrimPrefix(k8s, "v"),
			GenOptions:  genOptions,
		}),
		bundle.WithVerbose(false),
	}

	var contents []string

	for _, p := range patchFiles {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}

		contents = append(contents, string(data))
	}

	loaded, err := configpatcher.LoadPatches(contents)
	if err != nil {
		return nil, fmt.Errorf("error parsing config patch: %w", err)
	}

	var t machine.Type

	switch machineType {
	case "controlplane":
		t = machine.TypeControlPlane
		opts = append(opts, bundle.WithPatchControlPlane(loaded))
	case "worker":
		t = machine.TypeWorker
		opts = append(opts, bundle.WithPatchWorker(loaded))
	default:
		return nil, fmt.Errorf("--type must be controlplane or worker, not %q", machineType)
	}

	b, err := bundle.NewBundle(opts...)
	if err != nil {
		return nil, err
	}

	return b.Serialize(encoder.CommentsDisabled, t)
}

type yamlDoc struct {
	id    string
	value any
}

func decodeDocuments(data []byte) ([]yamlDoc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))

	var docs []yamlDoc

	for {
		var v any

		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}

			return nil, err
		}

		m, _ := v.(map[string]any)
		str := func(k string) string { s, _ := m[k].(string); return s }
		id := str("apiVersion") + "/" + str("kind") + "/" + str("name")

		if str("kind") == "" {
			id = "v1alpha1"
		}

		docs = append(docs, yamlDoc{id: id, value: v})
	}
}

// compareDocuments lists structural differences of ours from machinery's:
// documents by apiVersion/kind/name, maps by key, lists by position.
func compareDocuments(ours, theirs []byte) ([]string, error) {
	a, err := decodeDocuments(ours)
	if err != nil {
		return nil, fmt.Errorf("ours: %w", err)
	}

	b, err := decodeDocuments(theirs)
	if err != nil {
		return nil, fmt.Errorf("machinery: %w", err)
	}

	var diffs []string

	if len(a) != len(b) {
		diffs = append(diffs, fmt.Sprintf("document count: ours %d, machinery %d", len(a), len(b)))
	}

	for i := range min(len(a), len(b)) {
		if a[i].id != b[i].id {
			diffs = append(diffs, fmt.Sprintf("document %d: ours %s, machinery %s", i, a[i].id, b[i].id))

			continue
		}

		diffs = append(diffs, diffValues(a[i].id, a[i].value, b[i].value)...)
	}

	return diffs, nil
}

func diffValues(path string, a, b any) []string {
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)

	if aIsMap && bIsMap {
		keys := map[string]struct{}{}
		for k := range am {
			keys[k] = struct{}{}
		}

		for k := range bm {
			keys[k] = struct{}{}
		}

		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}

		sort.Strings(sorted)

		var diffs []string

		for _, k := range sorted {
			av, inA := am[k]
			bv, inB := bm[k]

			switch {
			case !inA:
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing in ours (machinery: %s)", path, k, show(bv)))
			case !inB:
				diffs = append(diffs, fmt.Sprintf("%s.%s: not in machinery's (ours: %s)", path, k, show(av)))
			default:
				diffs = append(diffs, diffValues(path+"."+k, av, bv)...)
			}
		}

		return diffs
	}

	as, aIsSeq := a.([]any)
	bs, bIsSeq := b.([]any)

	if aIsSeq && bIsSeq && len(as) == len(bs) {
		var diffs []string

		for i := range as {
			diffs = append(diffs, diffValues(fmt.Sprintf("%s[%d]", path, i), as[i], bs[i])...)
		}

		return diffs
	}

	if !reflect.DeepEqual(a, b) {
		return []string{fmt.Sprintf("%s: ours %s, machinery %s", path, show(a), show(b))}
	}

	return nil
}

func show(v any) string {
	out, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}

	s := strings.TrimSpace(string(out))
	if strings.Contains(s, "\n") {
		return fmt.Sprintf("%T(%q)", v, s)
	}

	return fmt.Sprintf("%T(%s)", v, s)
}
