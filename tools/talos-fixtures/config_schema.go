// config_schema.go: `dump-schema`, a structural description of every Talos
// machine configuration document type, read by reflection from machinery.
//
// The provider's Rust config patcher (provider/talos/config) embeds this file
// to decode patches strictly (unknown keys), order keys as machinery's
// encoder does (Go struct field order), and merge like config/merge
// (pointer/omitempty/`merge:"replace"` tags, custom mergers).

package main

import (
	"encoding"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/siderolabs/talos/pkg/machinery/config/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/gendata"
	"go.yaml.in/yaml/v4"
)

// documentKinds lists the kinds machinery v1.12 registers (config/types/*).
var documentKinds = []string{
	"v1alpha1",
	"BondConfig", "BridgeConfig", "DHCPv4Config", "DHCPv6Config", "DummyLinkConfig", "EthernetConfig",
	"HCloudVIPConfig", "HostnameConfig", "KubeSpanEndpointsConfig", "Layer2VIPConfig", "LinkAliasConfig",
	"LinkConfig", "NetworkDefaultActionConfig", "NetworkRuleConfig", "ResolverConfig", "StaticHostConfig",
	"TimeSyncConfig", "VLANConfig", "WireguardConfig",
	"ExistingVolumeConfig", "RawVolumeConfig", "SwapVolumeConfig", "UserVolumeConfig", "VolumeConfig", "ZswapConfig",
	"RegistryAuthConfig", "RegistryMirrorConfig", "RegistryTLSConfig",
	"EventSinkConfig", "ExtensionServiceConfig", "KmsgLogConfig", "OOMConfig", "WatchdogTimerConfig",
	"PCIDriverRebindConfig", "SideroLinkConfig", "TrustedRootsConfig",
}

type schemaDoc struct {
	Machinery string                `json:"machinery"`
	Documents []schemaDocument      `json:"documents"`
	Types     map[string]schemaType `json:"types"`
}

type schemaDocument struct {
	Kind       string   `json:"kind"`
	APIVersion string   `json:"apiVersion"`
	Type       string   `json:"type"`
	Named      bool     `json:"named"`
	Conflicts  []string `json:"conflicts,omitempty"`
}

// schemaType describes a named Go type: a struct (fields in declaration
// order), or a named non-struct with custom behaviour.
type schemaType struct {
	Fields []schemaField `json:"fields,omitempty"`
	// Custom: "yaml" (own MarshalYAML/UnmarshalYAML) or "text" (TextMarshaler).
	Custom string `json:"custom,omitempty"`
	// Merger: the type implements config/merge's Merge(any) on its pointer.
	Merger bool `json:"merger,omitempty"`
	// Underlying is the type expression of a non-struct named type.
	Underlying *typeExpr `json:"underlying,omitempty"`
	// IsZero: the type implements yaml's IsZeroer (omitempty asks it).
	IsZero bool `json:"iszero,omitempty"`
	// Opaque: a struct without exported fields (yaml's omitempty sees it as zero).
	Opaque bool `json:"opaque,omitempty"`
	// Enum: for an integer text type, every value's text form, by value order.
	Enum []string `json:"enum,omitempty"`
	// GoKind: the reflect kind of a custom type (struct, uint8, slice, ...).
	GoKind string `json:"gokind,omitempty"`
}

type schemaField struct {
	YAML      string    `json:"yaml"`
	Omitempty bool      `json:"omitempty,omitempty"`
	Inline    bool      `json:"inline,omitempty"`
	Replace   bool      `json:"replace,omitempty"`
	Type      *typeExpr `json:"type"`
}

// typeExpr: K is ptr|slice|map|named|scalar|any; E the element (ptr, slice, map);
// N the named type or scalar kind (string, bool, int, int64, uint32, float64, ...).
type typeExpr struct {
	K string    `json:"k"`
	N string    `json:"n,omitempty"`
	E *typeExpr `json:"e,omitempty"`
}

var (
	yamlMarshaler   = reflect.TypeFor[yaml.Marshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	mergerIface     = reflect.TypeFor[interface{ Merge(other any) error }]()
	isZeroer        = reflect.TypeFor[yaml.IsZeroer]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// enumValues lists the text forms of an integer text type: every value from
// 0 up to 65535 (or the type's maximum) whose text round-trips.
func enumValues(t reflect.Type) []string {
	if !reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}

	limit := uint64(65535)
	if t.Kind() == reflect.Uint8 || t.Kind() == reflect.Int8 {
		limit = 255
	}

	var names []string

	for n := uint64(0); n <= limit; n++ {
		v := reflect.New(t).Elem()

		switch t.Kind() { //nolint:exhaustive
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.SetInt(int64(n))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			v.SetUint(n)
		default:
			return nil
		}

		text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			continue
		}

		back := reflect.New(t)
		if back.Interface().(encoding.TextUnmarshaler).UnmarshalText(text) != nil || back.Elem().Interface() != v.Interface() {
			continue
		}

		names = append(names, string(text))
	}

	return names
}

type schemaBuilder struct {
	types map[string]schemaType
}

func (b *schemaBuilder) expr(t reflect.Type) *typeExpr {
	switch {
	case t.Kind() == reflect.Pointer:
		return &typeExpr{K: "ptr", E: b.expr(t.Elem())}
	case t.Name() != "" && t.PkgPath() != "":
		b.named(t)

		return &typeExpr{K: "named", N: t.String()}
	}

	switch t.Kind() { //nolint:exhaustive
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return &typeExpr{K: "scalar", N: "bytes"}
		}

		return &typeExpr{K: "slice", E: b.expr(t.Elem())}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic(fmt.Sprintf("map key %v", t))
		}

		return &typeExpr{K: "map", E: b.expr(t.Elem())}
	case reflect.Interface:
		return &typeExpr{K: "any"}
	case reflect.Struct:
		panic(fmt.Sprintf("anonymous struct %v", t))
	default:
		return &typeExpr{K: "scalar", N: t.Kind().String()}
	}
}

func (b *schemaBuilder) named(t reflect.Type) {
	name := t.String()
	if _, seen := b.types[name]; seen {
		return
	}

	b.types[name] = schemaType{} // break recursion

	var st schemaType

	pt := reflect.PointerTo(t)

	switch {
	case t.Implements(yamlMarshaler) || pt.Implements(yamlMarshaler) || pt.Implements(yamlUnmarshaler):
		st.Custom = "yaml"
	case t.Implements(textMarshaler) || pt.Implements(textMarshaler):
		st.Custom = "text"
	}

	st.Merger = pt.Implements(mergerIface)
	st.IsZero = t.Implements(isZeroer)

	if t.Kind() == reflect.Struct {
		st.Opaque = true

		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				st.Opaque = false
			}
		}
	}

	if st.Custom == "text" {
		st.Enum = enumValues(t)
	}

	if st.Custom != "" {
		st.GoKind = t.Kind().String()
	}

	if t.Kind() == reflect.Struct && st.Custom == "" {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}

			tag := f.Tag.Get("yaml")
			parts := strings.Split(tag, ",")
			fieldName := parts[0]

			if fieldName == "-" {
				continue
			}

			if fieldName == "" {
				fieldName = strings.ToLower(f.Name)
			}

			sf := schemaField{YAML: fieldName, Type: b.expr(f.Type)}

			for _, p := range parts[1:] {
				switch p {
				case "omitempty":
					sf.Omitempty = true
				case "inline":
					sf.Inline = true
				}
			}

			for p := range strings.SplitSeq(f.Tag.Get("merge"), ",") {
				if p == "replace" {
					sf.Replace = true
				}
			}

			st.Fields = append(st.Fields, sf)
		}
	} else if t.Kind() != reflect.Struct {
		under := reflect.Type(nil)

		switch t.Kind() { //nolint:exhaustive
		case reflect.Slice:
			under = reflect.SliceOf(t.Elem())
		case reflect.Map:
			under = reflect.MapOf(t.Key(), t.Elem())
		default:
			st.Underlying = &typeExpr{K: "scalar", N: t.Kind().String()}
		}

		if under != nil {
			st.Underlying = b.expr(under)
		}
	}

	b.types[name] = st
}

func dumpSchema(args []string) error {
	fs := flag.NewFlagSet("dump-schema", flag.ContinueOnError)
	out := fs.String("out", "-", `output file, or "-" for stdout`)

	if err := fs.Parse(args); err != nil {
		return err
	}

	b := &schemaBuilder{types: map[string]schemaType{}}
	doc := schemaDoc{Machinery: gendata.VersionTag, Types: b.types}

	for _, kind := range documentKinds {
		src := "apiVersion: v1alpha1\nkind: " + kind + "\n"
		if kind == "v1alpha1" {
			src = "version: v1alpha1\ndebug: false\n"
		}

		cfg, err := configloader.NewFromBytes([]byte(src))
		if err != nil {
			return fmt.Errorf("loading an empty %s: %w", kind, err)
		}

		d := cfg.Documents()[0]
		t := reflect.TypeOf(d).Elem()
		sd := schemaDocument{Kind: d.Kind(), APIVersion: d.APIVersion(), Type: b.expr(t).N}

		if _, ok := d.(config.NamedDocument); ok {
			sd.Named = true

			// The name must be the `name` key: check by decoding one.
			named, err := configloader.NewFromBytes([]byte(src + "name: probe\n"))
			if err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}

			if got := named.Documents()[0].(config.NamedDocument).Name(); got != "probe" {
				return fmt.Errorf("%s: name is not the `name` key (got %q)", kind, got)
			}
		}

		if c, ok := d.(config.ConflictingDocument); ok {
			sd.Conflicts = c.ConflictsWithKinds()
			sort.Strings(sd.Conflicts)
		}

		doc.Documents = append(doc.Documents, sd)
	}

	if len(doc.Documents) == 0 {
		return errors.New("no documents")
	}

	data, err := encodeSchema(doc)
	if err != nil {
		return err
	}

	if *out == "-" {
		_, err = os.Stdout.Write(data)

		return err
	}

	return os.WriteFile(*out, data, 0o644)
}

// encodeSchema writes compact JSON with one document or type per line, so the
// committed file diffs well and stays short.
func encodeSchema(doc schemaDoc) ([]byte, error) {
	var buf strings.Builder

	machinery, err := json.Marshal(doc.Machinery)
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(&buf, "{\"machinery\": %s,\n\"documents\": [\n", machinery)

	for i, d := range doc.Documents {
		line, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}

		sep := ","
		if i == len(doc.Documents)-1 {
			sep = ""
		}

		fmt.Fprintf(&buf, "%s%s\n", line, sep)
	}

	buf.WriteString("],\n\"types\": {\n")

	names := make([]string, 0, len(doc.Types))
	for name := range doc.Types {
		names = append(names, name)
	}

	sort.Strings(names)

	for i, name := range names {
		key, _ := json.Marshal(name) //nolint:errcheck

		line, err := json.Marshal(doc.Types[name])
		if err != nil {
			return nil, err
		}

		sep := ","
		if i == len(names)-1 {
			sep = ""
		}

		fmt.Fprintf(&buf, "%s: %s%s\n", key, line, sep)
	}

	buf.WriteString("}}\n")

	return []byte(buf.String()), nil
}
