// ubuntu-nodes: the seed homelab's seven Kubernetes machines on Ubuntu 24.04 with cloud-init.
//
// The cloud image is downloaded by Proxmox VE itself into a file storage (content type
// `import`) and imported into each VM's disk; each node gets its own cloud-init user-data
// snippet (hostname, user, SSH keys), written to the storage over SSH; k8s-worker4 gets the
// GPU. Everything that differs between the lab and a real homelab is stack config (see
// Pulumi.yaml); the Proxmox endpoint and credentials are the provider's config.

import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@proxmox-talos/pulumi";

const config = new pulumi.Config();
const node = config.get("node") ?? "pve";
const datastore = config.get("datastore") ?? "local-zfs";
const fileDatastore = config.get("fileDatastore") ?? "local";
const bridge = config.get("bridge") ?? "vmbr0";
const imageUrl = config.get("imageUrl") ?? "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img";
const imageChecksum = config.get("imageChecksum") || undefined;
const username = config.get("username") ?? "ubuntu";
const sshPublicKeys = config.requireObject<string[]>("sshPublicKeys");
const gpuPciId = config.get("gpuPciId") ?? "0000:28:00.0";

interface Machine {
    name: string;
    vmId: number;
    role: "controlplane" | "worker";
    cores: number;
    memory: number;
    diskGb: number;
    gpu: boolean;
}

const machines: Machine[] = [
    ...[1, 2, 3].map((i) => ({
        name: `k8s-controller${i}`,
        vmId: 1100 + i,
        role: "controlplane" as const,
        cores: 2,
        memory: 4096,
        diskGb: 30,
        gpu: false,
    })),
    ...[1, 2, 3, 4].map((i) => ({
        name: `k8s-worker${i}`,
        vmId: 1200 + i,
        role: "worker" as const,
        cores: 4,
        memory: 8192,
        diskGb: 125,
        gpu: i === 4,
    })),
];

// The Ubuntu 24.04 cloud image (a qcow2 file despite its .img name): PVE fetches it itself.
const image = new proxmox.download.File("ubuntu-noble", {
    nodeName: node,
    datastoreId: fileDatastore,
    contentType: "import",
    url: imageUrl,
    fileName: "noble-server-cloudimg-amd64.qcow2",
    checksum: imageChecksum,
    checksumAlgorithm: imageChecksum ? "sha256" : undefined,
});

/** The node's cloud-config: its hostname and the user with the operators' keys. */
function userData(hostname: string): string {
    const keys = sshPublicKeys.map((k) => `      - ${JSON.stringify(k)}`).join("\n");
    return [
        "#cloud-config",
        `hostname: ${hostname}`,
        "manage_etc_hosts: true",
        "users:",
        `  - name: ${username}`,
        "    groups: [sudo]",
        "    shell: /bin/bash",
        "    sudo: ALL=(ALL) NOPASSWD:ALL",
        "    ssh_authorized_keys:",
        keys,
        "package_update: true",
        "packages: [qemu-guest-agent]",
        "runcmd:",
        "  - systemctl enable --now qemu-guest-agent",
        "",
    ].join("\n");
}

/** The first usable IPv4 address of net0's guest interface, as the guest agent reports it. */
function guestAddress(vm: proxmox.vm.VirtualMachine): pulumi.Output<string> {
    return vm.ipv4Address.apply((address) => address ?? "");
}

const vms = machines.map((m) => {
    const snippet = new proxmox.storage.File(`${m.name}-user-data`, {
        nodeName: node,
        datastoreId: fileDatastore,
        contentType: "snippets",
        sourceRaw: {
            fileName: `${m.name}-user-data.yaml`,
            // User data often carries credentials: kept secret in the state.
            data: pulumi.secret(userData(m.name)),
        },
    });
    const vm = new proxmox.vm.VirtualMachine(m.name, {
        nodeName: node,
        vmId: m.vmId,
        name: m.name,
        tags: ["k8s", "ubuntu", m.role, ...(m.gpu ? ["gpu"] : [])],
        onBoot: true,
        operatingSystem: { type: "l26" },
        agent: { enabled: true, timeout: "5m" },
        cpu: { cores: m.cores, type: "host" },
        memory: { dedicated: m.memory },
        scsiHardware: "virtio-scsi-single",
        // PCIe passthrough needs the q35 machine type.
        machine: m.gpu ? "q35" : undefined,
        hostpcis: m.gpu ? [{ device: "hostpci0", id: gpuPciId, pcie: true }] : undefined,
        disks: [
            {
                interface: "scsi0",
                datastoreId: datastore,
                importFrom: image.volumeId,
                size: m.diskGb,
                iothread: true,
                discard: "on",
                ssd: true,
            },
        ],
        networkDevices: [{ bridge, model: "virtio" }],
        initialization: {
            datastoreId: datastore,
            ipConfigs: [{ ipv4: { address: "dhcp" } }],
            userDataFileId: snippet.volumeId,
            // A changed snippet regenerates the cloud-init drive (and reboots) instead of replacing.
            revision: snippet.contentSha256,
        },
    });
    return { machine: m, vm };
});

export const imageVolume = image.volumeId;
export const controllerIps = Object.fromEntries(
    vms.filter((v) => v.machine.role === "controlplane").map((v) => [v.machine.name, guestAddress(v.vm)]),
);
export const workerIps = Object.fromEntries(
    vms.filter((v) => v.machine.role === "worker").map((v) => [v.machine.name, guestAddress(v.vm)]),
);
