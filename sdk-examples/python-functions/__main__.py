"""Every function called with resource outputs as arguments (see Pulumi.yaml)."""

import pulumi
from pulumi_proxmox_talos import client, imagefactory, machine

secrets = machine.Secrets("secrets", talos_version="v1.12")
schematic = imagefactory.Schematic(
    "schematic",
    schematic="customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n",
)

config = machine.get_configuration_output(
    cluster_name="fn-table",
    cluster_endpoint="https://127.0.0.1:6443",
    machine_type="controlplane",
    machine_secrets=secrets.machine_secrets,
    talos_version="v1.12",
)
talosconfig = client.get_configuration_output(
    cluster_name="fn-table",
    client_configuration=secrets.client_configuration,
    endpoints=["127.0.0.1"],
)
urls = imagefactory.get_urls_output(schematic_id=schematic.schematic_id, talos_version="v1.12.4", platform="nocloud")
versions = imagefactory.get_versions_output()
extensions = imagefactory.get_extensions_versions_output(talos_version="v1.12.4")

pulumi.export("machineConfiguration", pulumi.Output.secret(config.machine_configuration))
pulumi.export("talosconfig", pulumi.Output.secret(talosconfig.talos_config))
pulumi.export("schematicId", schematic.schematic_id)
pulumi.export("diskImageRaw", urls.urls.disk_image_raw)
pulumi.export("talosVersions", versions.talos_versions)
pulumi.export("extensions", extensions.extensions_infos.apply(lambda infos: [i.name for i in infos]))
