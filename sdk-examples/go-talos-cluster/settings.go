package main

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// settings is the stack configuration (Pulumi.yaml declares it), checked before anything is made.
type settings struct {
	node, datastore, imageDatastore, bridge, gpuPciID string
	clusterName, talosVersion, kubernetesVersion      string
	vip, gateway                                      netip.Addr
	dnsServers                                        []netip.Addr
	controllerAddresses, workerAddresses              []netip.Prefix
}

// nodeSpec is one machine of the cluster.
type nodeSpec struct {
	name                  string
	vmID                  int
	controlPlane, gpu     bool
	cores, memoryMB, disk int
	address               netip.Prefix
}

var talosVersionPattern = regexp.MustCompile(`^v(\d+)\.(\d+)\.\d+$`)

func loadSettings(ctx *pulumi.Context) (settings, error) {
	cfg := config.New(ctx, "")
	s := settings{
		node:           cfg.Require("node"),
		datastore:      cfg.Require("datastore"),
		imageDatastore: cfg.Require("imageDatastore"),
		bridge:         cfg.Require("bridge"),
		gpuPciID:       cfg.Require("gpuPciId"),
		clusterName:    cfg.Require("clusterName"),
		talosVersion:   cfg.Require("talosVersion"),
		// Optional: getConfiguration's default (Talos v1.12's Kubernetes) when unset.
		kubernetesVersion: cfg.Get("kubernetesVersion"),
	}
	if !talosVersionPattern.MatchString(s.talosVersion) {
		return s, fmt.Errorf("talosVersion: %q is not a Talos release such as v1.12.4", s.talosVersion)
	}
	var err error
	if s.vip, err = address("vip", cfg.Require("vip")); err != nil {
		return s, err
	}
	if s.gateway, err = address("gateway", cfg.Require("gateway")); err != nil {
		return s, err
	}
	var dns, controllers, workers []string
	cfg.RequireObject("dnsServers", &dns)
	cfg.RequireObject("controllerAddresses", &controllers)
	cfg.RequireObject("workerAddresses", &workers)
	if len(dns) == 0 {
		return s, fmt.Errorf("dnsServers: give at least one DNS server, e.g. [192.168.1.1]")
	}
	for i, d := range dns {
		a, err := address(fmt.Sprintf("dnsServers[%d]", i), d)
		if err != nil {
			return s, err
		}
		s.dnsServers = append(s.dnsServers, a)
	}
	if s.controllerAddresses, err = prefixes("controllerAddresses", controllers, 3); err != nil {
		return s, err
	}
	if s.workerAddresses, err = prefixes("workerAddresses", workers, 4); err != nil {
		return s, err
	}
	return s, nil
}

func address(key, value string) (netip.Addr, error) {
	a, err := netip.ParseAddr(value)
	if err != nil || !a.Is4() {
		return a, fmt.Errorf("%s: %q is not an IPv4 address (e.g. 192.168.1.1)", key, value)
	}
	return a, nil
}

func prefixes(key string, values []string, count int) ([]netip.Prefix, error) {
	if len(values) != count {
		return nil, fmt.Errorf("%s: give %d addresses, one per node, got %d", key, count, len(values))
	}
	var out []netip.Prefix
	for i, v := range values {
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("%s[%d]: %q is not an IPv4 address with its prefix length (e.g. 192.168.1.211/24)",
				key, i, v)
		}
		out = append(out, p)
	}
	return out, nil
}

// contract is the Talos version contract of talosVersion: v1.12 for v1.12.4.
func (s settings) contract() string {
	m := talosVersionPattern.FindStringSubmatch(s.talosVersion)
	return fmt.Sprintf("v%s.%s", m[1], m[2])
}

// nodes are the seed's machines: three control planes and four workers, the last with the GPU.
func (s settings) nodes() []nodeSpec {
	var out []nodeSpec
	for i, a := range s.controllerAddresses {
		out = append(out, nodeSpec{name: fmt.Sprintf("k8s-controller%d", i+1), vmID: 1101 + i, controlPlane: true,
			cores: 2, memoryMB: 4096, disk: 30, address: a})
	}
	for i, a := range s.workerAddresses {
		out = append(out, nodeSpec{name: fmt.Sprintf("k8s-worker%d", i+1), vmID: 1201 + i, gpu: i == 3,
			cores: 4, memoryMB: 8192, disk: 125, address: a})
	}
	return out
}

// The system extensions of the base image, and what the GPU image adds.
var (
	baseExtensions = []string{"siderolabs/iscsi-tools", "siderolabs/util-linux-tools", "siderolabs/qemu-guest-agent"}
	gpuExtensions  = []string{
		"siderolabs/nvidia-container-toolkit-production",
		"siderolabs/nvidia-open-gpu-kernel-modules-production",
	}
)

func schematic(extensions []string) string {
	var b strings.Builder
	b.WriteString("customization:\n  systemExtensions:\n    officialExtensions:\n")
	for _, e := range extensions {
		fmt.Fprintf(&b, "      - %s\n", e)
	}
	return b.String()
}

// clusterPatch: no CNI (installed later, e.g. Cilium) and no kube-proxy.
const clusterPatch = `cluster:
  network:
    cni:
      name: none
  proxy:
    disabled: true
`

// controlPlanePatch puts the VIP on the physical interface, which also takes a DHCP lease.
func controlPlanePatch(vip netip.Addr) string {
	return fmt.Sprintf(`machine:
  network:
    interfaces:
      - deviceSelector:
          physical: true
        dhcp: true
        vip:
          ip: %s
`, vip)
}

// workerPatch: Longhorn's default-disk label and the kernel modules iSCSI and NBD volumes need,
// plus the NVIDIA modules on the GPU worker.
func workerPatch(gpu bool) string {
	modules := []string{"nbd", "iscsi_tcp", "iscsi_generic", "configfs"}
	if gpu {
		modules = append(modules, "nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset")
	}
	var b strings.Builder
	b.WriteString("machine:\n  nodeLabels:\n    node.longhorn.io/create-default-disk: config\n  kernel:\n    modules:\n")
	for _, m := range modules {
		fmt.Fprintf(&b, "      - name: %s\n", m)
	}
	return b.String()
}

// nodePatch gives one node its hostname, static address, default route and DNS servers (on the
// physical interface the control-plane patch selects too, so the two merge into one entry).
func nodePatch(s settings, n nodeSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, `machine:
  network:
    interfaces:
      - deviceSelector:
          physical: true
        addresses:
          - %s
        routes:
          - network: 0.0.0.0/0
            gateway: %s
    nameservers:
`, n.address, s.gateway)
	for _, d := range s.dnsServers {
		fmt.Fprintf(&b, "      - %s\n", d)
	}
	fmt.Fprintf(&b, "---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: \"off\"\nhostname: %s\n", n.name)
	return b.String()
}
