"""rke2-clone: the machines of an RKE2 cluster, cloned from a cloud-init template.

Three masters and three workers, each a full clone of the template with its own static
address, the cluster's gateway and DNS, and the operators' SSH keys. Everything that
differs between the lab and a real homelab is stack config; see Pulumi.yaml.
"""

import ipaddress

import pulumi
import pulumi_proxmox_talos as proxmox

config = pulumi.Config()
node = config.get("node") or "pve"
template_vm_id = config.get_int("templateVmId") or 90001
datastore = config.get("datastore") or "local-zfs"
bridge = config.get("bridge") or "vmbr0"
gateway = config.require("gateway")
dns_servers = config.require_object("dnsServers")
dns_domain = config.get("dnsDomain") or None
username = config.get("username") or "rke2"
ssh_keys = config.require_object("sshPublicKeys")

ROLES = {
    # role: (first VMID, cores, memory MB, disk GB, addresses config key)
    "master": (1001, 2, 4096, 50, "masterAddresses"),
    "worker": (1011, 3, 12288, 100, "workerAddresses"),
}


def addresses(key: str) -> list[str]:
    """Three CIDR addresses from config, checked before anything is created."""
    values = config.require_object(key)
    if not isinstance(values, list) or len(values) != 3:
        raise ValueError(f"{key}: give three CIDR addresses, e.g. [10.0.0.11/24, 10.0.0.12/24, 10.0.0.13/24]")
    for value in values:
        ipaddress.ip_interface(value)  # ValueError names the bad address
    return values


def machine(role: str, index: int, address: str) -> proxmox.vm.VirtualMachine:
    first_id, cores, memory, disk_gb, _ = ROLES[role]
    name = f"rke2-{role}-{index + 1}"
    return proxmox.vm.VirtualMachine(
        name,
        node_name=node,
        vm_id=first_id + index,
        name=name,
        tags=["rke2", role],
        on_boot=True,
        clone=proxmox.vm.VirtualMachineCloneArgs(vm_id=template_vm_id, full=True, datastore_id=datastore),
        operating_system=proxmox.vm.VirtualMachineOperatingSystemArgs(type="l26"),
        agent=proxmox.vm.VirtualMachineAgentArgs(enabled=True, timeout="5m"),
        cpu=proxmox.vm.VirtualMachineCpuArgs(cores=cores, type="host"),
        memory=proxmox.vm.VirtualMachineMemoryArgs(dedicated=memory),
        scsi_hardware="virtio-scsi-pci",
        disks=[
            proxmox.vm.VirtualMachineDiskArgs(
                interface="scsi0", datastore_id=datastore, size=disk_gb, iothread=True, discard="on"
            )
        ],
        network_devices=[proxmox.vm.VirtualMachineNetworkDeviceArgs(bridge=bridge, model="virtio")],
        initialization=proxmox.vm.VirtualMachineInitializationArgs(
            datastore_id=datastore,
            ip_configs=[
                proxmox.vm.VirtualMachineInitializationIpConfigArgs(
                    ipv4=proxmox.vm.VirtualMachineInitializationIpAddressArgs(address=address, gateway=gateway)
                )
            ],
            dns=proxmox.vm.VirtualMachineInitializationDnsArgs(servers=dns_servers, domain=dns_domain),
            user_account=proxmox.vm.VirtualMachineInitializationUserAccountArgs(username=username, keys=ssh_keys),
        ),
    )


for role, (_, _, _, _, key) in ROLES.items():
    vms = {f"rke2-{role}-{i + 1}": machine(role, i, address) for i, address in enumerate(addresses(key))}
    pulumi.export(
        f"{role}Ips",
        {
            name: vm.ipv4_address.apply(lambda a: a or "")
            for name, vm in vms.items()
        },
    )
    pulumi.export(f"{role}VmIds", [vm.vm_id for vm in vms.values()])
