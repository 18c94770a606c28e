// Command schematic-golden writes the golden vectors the provider's schematic
// tests check (provider/talos/schematic/golden.jsonl): for each input
// schematic, the canonical YAML and ID that gopkg.in/yaml.v3 produces for the
// Image Factory's schematic type (field names, order and omitempty as in
// siderolabs/image-factory pkg/schematic), or the parse error.
//
//	cd tools/schematic-golden && go run . > ../../provider/talos/schematic/golden.jsonl
//
// The inputs are a fixed list plus schematics generated from a fixed seed, so
// the output is reproducible.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// bootloader mirrors the factory's enum: an int whose zero value is "none",
// written and read as its name (case-insensitively).
type bootloader int

var bootloaderNames = []string{"none", "dual-boot", "sd-boot", "grub"}

func (b bootloader) MarshalText() ([]byte, error) { return []byte(bootloaderNames[b]), nil }

func (b *bootloader) UnmarshalText(text []byte) error {
	for i, name := range bootloaderNames {
		if strings.EqualFold(name, string(text)) {
			*b = bootloader(i)
			return nil
		}
	}
	return fmt.Errorf("%s does not belong to BootloaderKind values", text)
}

type schematic struct {
	Overlay       overlay       `yaml:"overlay,omitempty"`
	Customization customization `yaml:"customization"`
}

type customization struct {
	EmbeddedMachineConfiguration string           `yaml:"embeddedMachineConfiguration,omitempty"`
	ExtraKernelArgs              []string         `yaml:"extraKernelArgs,omitempty"`
	Meta                         []metaValue      `yaml:"meta,omitempty"`
	SystemExtensions             systemExtensions `yaml:"systemExtensions,omitempty"`
	Bootloader                   bootloader       `yaml:"bootloader,omitempty"`
	SecureBoot                   secureBoot       `yaml:"secureboot,omitempty"`
	DiskImage                    diskImage        `yaml:"diskImage,omitempty"`
}

type metaValue struct {
	Key   uint8  `yaml:"key"`
	Value string `yaml:"value"`
}

type systemExtensions struct {
	OfficialExtensions []string `yaml:"officialExtensions,omitempty"`
}

type overlay struct {
	Image   string         `yaml:"image"`
	Name    string         `yaml:"name"`
	Options map[string]any `yaml:"options,omitempty"`
}

type secureBoot struct {
	EnrollKeys                   string `yaml:"enrollKeys,omitempty"`
	IncludeWellKnownCertificates bool   `yaml:"includeWellKnownCertificates,omitempty"`
}

type diskImage struct {
	SectorSize uint `yaml:"sectorSize,omitempty"`
}

type vector struct {
	Input     string `json:"input"`
	Canonical string `json:"canonical,omitempty"`
	ID        string `json:"id,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Fixed inputs: the well-known IDs and YAML spellings.
var fixed = []string{
	"",
	"{}",
	"customization: {}",
	"customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/iscsi-tools\n      - siderolabs/qemu-guest-agent\n      - siderolabs/util-linux-tools\n",
	"customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/iscsi-tools, siderolabs/util-linux-tools, siderolabs/qemu-guest-agent]\n",
	"customization:\n  extraKernelArgs: [noapic, nolapic]\n",
	`{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [], "systemExtensions": {}}}`,
	"customization:\n  meta:\n    - key: 0xa\n      value: |\n        addresses:\n          - address: 192.168.1.50/24\n            linkName: eth0\n        routes:\n          - gateway: 192.168.1.1\n",
	`{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"}}`,
	`{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}`,
	"customization:\n  bootloader: SD-Boot\n",
	"customization:\n  bootloader: none\n",
	"customization:\n  embeddedMachineConfiguration: |\n    apiVersion: v1alpha1\n    kind: HostnameConfig\n    hostname: x\n",
	"overlay:\n  image: siderolabs/sbc-raspberrypi\n  name: rpi_generic\n  options:\n    configTxtAppend: dtoverlay=disable-bt\n    z10: 1\n    z9: [a, {b: 1.5, c: null}]\n    a01: true\n    a1: 1e21\ncustomization:\n  extraKernelArgs: [console=ttyS0, net.ifnames=0]\n  bootloader: grub\n  secureboot:\n    enrollKeys: force\n    includeWellKnownCertificates: true\n  diskImage:\n    sectorSize: 4096\n",
	`customization: {extraKernelArgs: [".51_000", "._5", "1e400", "2024-02-30", "2024-02-29", "2024-01-01T10:00:00Z", "2024-1-1 1:2:3.5", "0x_1", "\uFEFFx, y", "x\u2028y", "1:20", "<<", "y", "-", "- a", "a: b", "#c", "a #c", " lead", "trail "]}`,
	"customization:\n  systemExtension: {}\n",
	"customization:\n  meta:\n    - key: 256\n      value: x\n",
	"customization:\n  bootloader: bogus\n",
}

// Pieces random strings are made of: YAML indicators, spaces and breaks,
// resolver lookalikes and characters that need escapes.
var pieces = []string{
	"a", "Z", "x", "0", "1", "9", " ", "  ", "\t", "\n", ":", ": ", "#", " #", "-", "- ", "?", ",", "[", "]", "{", "}",
	"&", "*", "!", "|", ">", "'", "\"", "%", "@", "`", ".", "_", "+", "~", "é", "\u00a0", "\u0085", "\u2028",
	"\U0001F600", "\r", "\x07", "\x7f", "\ufeff", "\\", "yes", "No", "on", "true", "null", "2024-01-02", "2024-1-2 3:04:05",
	"0x1F", "0o17", "0b101", "1e3", "1.5", ".5", "+1", "-2", "1_000", "1:20", "---", "...", "<<", "console=ttyS0",
	"siderolabs/", "=",
}

func randString(r *rand.Rand) string {
	var b strings.Builder
	for n := r.Intn(5); n >= 0; n-- {
		b.WriteString(pieces[r.Intn(len(pieces))])
	}
	if r.Intn(6) == 0 {
		return ""
	}
	return b.String()
}

func randStrings(r *rand.Rand) []any {
	out := []any{}
	for n := r.Intn(4); n > 0; n-- {
		out = append(out, randString(r))
	}
	return out
}

var keyPieces = []string{"a", "b", "Z", "_", "-", "0", "1", "2", "10", "01", "x y", ":", "é"}

func randKey(r *rand.Rand) string {
	var b strings.Builder
	for n := r.Intn(4); n >= 0; n-- {
		b.WriteString(keyPieces[r.Intn(len(keyPieces))])
	}
	return b.String()
}

func randOption(r *rand.Rand, depth int) any {
	switch k := r.Intn(9); {
	case k == 0:
		return nil
	case k == 1:
		return r.Intn(2) == 0
	case k == 2:
		return r.Intn(2000) - 1000
	case k == 3:
		return []float64{0.5, 1.0, 1e6, 123456.0, 1e-5, 0.0001, 1e21, -2.5, 3.25e-7}[r.Intn(9)]
	case k < 7 || depth > 2:
		return randString(r)
	case k == 7:
		list := []any{}
		for n := r.Intn(3); n > 0; n-- {
			list = append(list, randOption(r, depth+1))
		}
		return list
	default:
		m := map[string]any{}
		for n := r.Intn(4); n > 0; n-- {
			m[randKey(r)] = randOption(r, depth+1)
		}
		return m
	}
}

func randSchematic(r *rand.Rand) string {
	custom := map[string]any{}
	if r.Intn(4) == 0 {
		custom["embeddedMachineConfiguration"] = randString(r)
	}
	if r.Intn(2) == 0 {
		custom["extraKernelArgs"] = randStrings(r)
	}
	if r.Intn(3) == 0 {
		meta := []any{}
		for n := r.Intn(3); n > 0; n-- {
			meta = append(meta, map[string]any{"key": r.Intn(256), "value": randString(r)})
		}
		custom["meta"] = meta
	}
	if r.Intn(2) == 0 {
		custom["systemExtensions"] = map[string]any{"officialExtensions": randStrings(r)}
	}
	if r.Intn(4) == 0 {
		custom["bootloader"] = bootloaderNames[r.Intn(4)]
	}
	if r.Intn(4) == 0 {
		custom["secureboot"] = map[string]any{
			"enrollKeys":                   []string{"", "off", "manual", "if-safe", "force"}[r.Intn(5)],
			"includeWellKnownCertificates": r.Intn(2) == 0,
		}
	}
	if r.Intn(5) == 0 {
		custom["diskImage"] = map[string]any{"sectorSize": []int{0, 512, 4096}[r.Intn(3)]}
	}
	doc := map[string]any{"customization": custom}
	if r.Intn(3) == 0 {
		options := map[string]any{}
		for n := r.Intn(5); n > 0; n-- {
			options[randKey(r)] = randOption(r, 0)
		}
		doc["overlay"] = map[string]any{"image": randString(r), "name": randString(r), "options": options}
	}
	text, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return yamlEscapes(string(text))
}

// yamlEscapes rewrites the characters YAML forbids in a document (controls,
// U+0085, U+FEFF, U+2028/9 and, for libyaml, characters beyond the BMP) as
// YAML double-quoted escapes; in this JSON text they only occur inside strings.
func yamlEscapes(text string) string {
	var b strings.Builder
	for _, c := range text {
		switch {
		case c == 0x7f || (c >= 0x80 && c < 0xa0) || c == 0x2028 || c == 0x2029 || c == 0xfeff:
			fmt.Fprintf(&b, "\\u%04X", c)
		case c > 0xffff:
			fmt.Fprintf(&b, "\\U%08X", c)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func run(input string) vector {
	dec := yaml.NewDecoder(bytes.NewReader([]byte(input)))
	dec.KnownFields(true)
	var s schematic
	if err := dec.Decode(&s); err != nil && err.Error() != "EOF" {
		return vector{Input: input, Error: err.Error()}
	}
	out, err := yaml.Marshal(&s)
	if err != nil {
		return vector{Input: input, Error: "marshal: " + err.Error()}
	}
	sum := sha256.Sum256(out)
	return vector{Input: input, Canonical: string(out), ID: hex.EncodeToString(sum[:])}
}

func main() {
	r := rand.New(rand.NewSource(20260722))
	inputs := append([]string{}, fixed...)
	for i := 0; i < 400; i++ {
		inputs = append(inputs, randSchematic(r))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, input := range inputs {
		if err := enc.Encode(run(input)); err != nil {
			panic(err)
		}
	}
}
