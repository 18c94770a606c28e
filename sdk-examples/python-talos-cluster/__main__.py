"""talos-cluster in Python: the seed homelab with Talos Linux on Proxmox VE.

Image Factory schematics for a base and a GPU image, both downloaded into Proxmox storage by the
URL getUrls gives, seven VMs importing them, machine secrets, one machine configuration per role
and each node's own patch applied through the address its guest agent reports in maintenance
mode, etcd bootstrapped, the cluster's health waited for, the kubeconfig and the talosconfig.
Settings are stack config (see Pulumi.yaml); the program is go-talos-cluster's, line for line.
"""

import ipaddress
import re

import pulumi
from pulumi_proxmox_talos import client, cluster, download, imagefactory, machine, vm

config = pulumi.Config()
node = config.get("node") or "pve"
datastore = config.get("datastore") or "local-zfs"
image_datastore = config.get("imageDatastore") or "local"
bridge = config.get("bridge") or "vmbr0"
gpu_pci_id = config.get("gpuPciId") or "0000:28:00.0"
cluster_name = config.get("clusterName") or "talos-cluster"
talos_version = config.get("talosVersion") or "v1.12.4"

version = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", talos_version)
if not version:
    raise ValueError(f"talosVersion: {talos_version!r} is not a Talos release such as v1.12.4")
contract = f"v{version[1]}.{version[2]}"


def address(key: str, value: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not an IPv4 address (e.g. 192.168.1.1)") from None


def interfaces(key: str, count: int) -> list[ipaddress.IPv4Interface]:
    values = config.require_object(key)
    if len(values) != count:
        raise ValueError(f"{key}: give {count} addresses, one per node, got {len(values)}")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(ipaddress.IPv4Interface(v))
        except ValueError:
            raise ValueError(
                f"{key}[{i}]: {v!r} is not an IPv4 address with its prefix length (e.g. 192.168.1.211/24)"
            ) from None
    return out


vip = address("vip", config.require("vip"))
gateway = address("gateway", config.require("gateway"))
dns_servers = [address(f"dnsServers[{i}]", d) for i, d in enumerate(config.require_object("dnsServers"))]
if not dns_servers:
    raise ValueError("dnsServers: give at least one DNS server, e.g. [192.168.1.1]")

# The seed's machines: (name, VMID, control plane, GPU, cores, memory MB, disk GB, address).
NODES = [
    (f"k8s-controller{i + 1}", 1101 + i, True, False, 2, 4096, 30, a)
    for i, a in enumerate(interfaces("controllerAddresses", 3))
] + [
    (f"k8s-worker{i + 1}", 1201 + i, False, i == 3, 4, 8192, 125, a)
    for i, a in enumerate(interfaces("workerAddresses", 4))
]

BASE_EXTENSIONS = ["siderolabs/iscsi-tools", "siderolabs/util-linux-tools", "siderolabs/qemu-guest-agent"]
GPU_EXTENSIONS = [
    "siderolabs/nvidia-container-toolkit-production",
    "siderolabs/nvidia-open-gpu-kernel-modules-production",
]

# No CNI (installed later, e.g. Cilium) and no kube-proxy.
CLUSTER_PATCH = """cluster:
  network:
    cni:
      name: none
  proxy:
    disabled: true
"""

# The VIP on the physical interface, which also takes a DHCP lease.
CONTROL_PLANE_PATCH = f"""machine:
  network:
    interfaces:
      - deviceSelector:
          physical: true
        dhcp: true
        vip:
          ip: {vip}
"""


def worker_patch(gpu: bool) -> str:
    """Longhorn's default-disk label and the modules iSCSI and NBD need (+ NVIDIA's on the GPU worker)."""
    modules = ["nbd", "iscsi_tcp", "iscsi_generic", "configfs"]
    if gpu:
        modules += ["nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset"]
    lines = "".join(f"      - name: {m}\n" for m in modules)
    return (
        "machine:\n  nodeLabels:\n    node.longhorn.io/create-default-disk: config\n"
        f"  kernel:\n    modules:\n{lines}"
    )


def node_patch(name: str, addr: ipaddress.IPv4Interface) -> str:
    """The node's hostname, static address, default route and DNS servers."""
    servers = "".join(f"      - {d}\n" for d in dns_servers)
    return (
        "machine:\n  network:\n    interfaces:\n      - deviceSelector:\n          physical: true\n"
        f"        addresses:\n          - {addr}\n        routes:\n          - network: 0.0.0.0/0\n"
        f"            gateway: {gateway}\n    nameservers:\n{servers}"
        f'---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: "off"\nhostname: {name}\n'
    )


def talos_image(name: str, extensions: list[str]):
    """A schematic and its nocloud disk image, downloaded by PVE from the URL getUrls gives."""
    lines = "".join(f"      - {e}\n" for e in extensions)
    schematic = imagefactory.Schematic(
        name, schematic=f"customization:\n  systemExtensions:\n    officialExtensions:\n{lines}"
    )
    urls = imagefactory.get_urls_output(
        schematic_id=schematic.schematic_id, talos_version=talos_version, platform="nocloud"
    ).urls
    image = download.File(
        f"{name}-image",
        node_name=node,
        datastore_id=image_datastore,
        content_type="import",
        # Uncompressed: Proxmox does not decompress `import` content (nor xz at all).
        url=urls.disk_image_raw,
        # Named after the schematic, so a new schematic downloads next to the old image.
        file_name=schematic.schematic_id.apply(lambda i: f"talos-{talos_version}-{i[:12]}-nocloud-amd64.raw"),
    )
    return schematic.schematic_id, image.volume_id, urls.installer


def maintenance_address(name: str, machine_vm: vm.VirtualMachine) -> pulumi.Output[str]:
    """The VM's first IPv4 address on an interface other than lo, as its guest agent reported it."""

    def first(args):
        names, addresses = args
        for i, found in enumerate(addresses):
            if i < len(names) and names[i] == "lo":
                continue
            if found:
                return found[0]
        raise ValueError(f"{name}: the guest agent reports no IPv4 address besides lo (interfaces {names})")

    return pulumi.Output.all(machine_vm.network_interface_names, machine_vm.ipv4_addresses).apply(first)


base_id, base_volume, base_installer = talos_image("base", BASE_EXTENSIONS)
gpu_id, gpu_volume, gpu_installer = talos_image("gpu", BASE_EXTENSIONS + GPU_EXTENSIONS)

secrets = machine.Secrets("secrets", talos_version=contract)


def role_config(machine_type: str, installer, *patches: str) -> pulumi.Output[str]:
    """One machine configuration per role, from the secrets resource's output as it is."""
    return machine.get_configuration_output(
        cluster_name=cluster_name,
        cluster_endpoint=f"https://{vip}:6443",
        machine_type=machine_type,
        machine_secrets=secrets.machine_secrets,
        talos_version=contract,
        install_image=installer,
        config_patches=[CLUSTER_PATCH, *patches],
    ).machine_configuration


control_plane_config = role_config("controlplane", base_installer, CONTROL_PLANE_PATCH)
worker_config = role_config("worker", base_installer, worker_patch(False))
gpu_worker_config = role_config("worker", gpu_installer, worker_patch(True))

applies = []
control_plane_ips, worker_ips, node_ips = [], [], {}
for name, vm_id, control_plane, gpu, cores, memory, disk, addr in NODES:
    role = "controlplane" if control_plane else "worker"
    machine_vm = vm.VirtualMachine(
        name,
        node_name=node,
        vm_id=vm_id,
        name=name,
        on_boot=True,
        tags=["k8s", "talos", role] + (["gpu"] if gpu else []),
        operating_system=vm.VirtualMachineOperatingSystemArgs(type="l26"),
        agent=vm.VirtualMachineAgentArgs(enabled=True, timeout="5m"),
        cpu=vm.VirtualMachineCpuArgs(cores=cores, type="host"),
        memory=vm.VirtualMachineMemoryArgs(dedicated=memory),
        scsi_hardware="virtio-scsi-single",
        disks=[
            vm.VirtualMachineDiskArgs(
                interface="scsi0",
                datastore_id=datastore,
                import_from=gpu_volume if gpu else base_volume,
                size=disk,
                iothread=True,
                discard="on",
                ssd=True,
            )
        ],
        network_devices=[vm.VirtualMachineNetworkDeviceArgs(bridge=bridge, model="virtio")],
        # Raw PCI passthrough: the provider must log in as root@pam with a password.
        machine="q35" if gpu else None,
        hostpcis=[vm.VirtualMachineHostpciArgs(device="hostpci0", id=gpu_pci_id, pcie=True)] if gpu else None,
        # The boot image only matters for the first install: a new Talos version or schematic
        # upgrades the running node in place (its ConfigurationApply), never replaces the VM.
        opts=pulumi.ResourceOptions(ignore_changes=["disks[0].importFrom"]),
    )
    config_input = control_plane_config if control_plane else gpu_worker_config if gpu else worker_config
    applies.append(
        machine.ConfigurationApply(
            name,
            client_configuration=secrets.client_configuration,
            machine_configuration_input=config_input,
            # Where the node answers in maintenance mode: the address its guest agent reports.
            node=maintenance_address(name, machine_vm),
            config_patches=[node_patch(name, addr)],
        )
    )
    ip = str(addr.ip)
    node_ips[name] = ip
    (control_plane_ips if control_plane else worker_ips).append(ip)

bootstrap = machine.Bootstrap(
    "bootstrap",
    client_configuration=secrets.client_configuration,
    node=control_plane_ips[0],
    opts=pulumi.ResourceOptions(depends_on=[applies[0]]),
)
health = cluster.get_health_output(
    client_configuration=secrets.client_configuration,
    control_plane_nodes=control_plane_ips,
    worker_nodes=worker_ips,
    endpoints=control_plane_ips,
    opts=pulumi.InvokeOutputOptions(depends_on=[*applies, bootstrap]),
)
# Fetched from the first control plane once the cluster is healthy.
kubeconfig = cluster.Kubeconfig(
    "kubeconfig",
    client_configuration=secrets.client_configuration,
    node=health.control_plane_nodes[0],
    opts=pulumi.ResourceOptions(depends_on=[bootstrap]),
)
talosconfig = client.get_configuration_output(
    cluster_name=cluster_name,
    client_configuration=secrets.client_configuration,
    endpoints=control_plane_ips,
    nodes=control_plane_ips + worker_ips,
)

pulumi.export("talosconfig", pulumi.Output.secret(talosconfig.talos_config))
pulumi.export("kubeconfig", pulumi.Output.secret(kubeconfig.kubeconfig_raw))
pulumi.export("nodeIps", node_ips)
pulumi.export("kubernetesEndpoint", health.kubernetes_endpoint)
pulumi.export("healthChecks", health.checks)
pulumi.export("schematicIds", {"base": base_id, "gpu": gpu_id})
