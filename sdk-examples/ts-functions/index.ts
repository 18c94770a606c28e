// Every function called with resource outputs as arguments (see Pulumi.yaml). Compiles with
// `strict: true`: the outputs a created resource always has are typed as present.
import * as pulumi from "@pulumi/pulumi";
import * as proxmox from "@proxmox-talos/pulumi";

const secrets = new proxmox.machine.Secrets("secrets", { talosVersion: "v1.12" });
const schematic = new proxmox.imagefactory.Schematic("schematic", {
    schematic: "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n",
});

const config = proxmox.machine.getConfigurationOutput({
    clusterName: "fn-table",
    clusterEndpoint: "https://127.0.0.1:6443",
    machineType: "controlplane",
    machineSecrets: secrets.machineSecrets,
    talosVersion: "v1.12",
});
const clientConfig = proxmox.client.getConfigurationOutput({
    clusterName: "fn-table",
    clientConfiguration: secrets.clientConfiguration,
    endpoints: ["127.0.0.1"],
});
const urls = proxmox.imagefactory.getUrlsOutput({
    schematicId: schematic.schematicId,
    talosVersion: "v1.12.4",
    platform: "nocloud",
});
const versions = proxmox.imagefactory.getVersionsOutput({});
const extensionsVersions = proxmox.imagefactory.getExtensionsVersionsOutput({ talosVersion: "v1.12.4" });

export const machineConfiguration = pulumi.secret(config.machineConfiguration);
export const talosconfig = pulumi.secret(clientConfig.talosConfig);
export const schematicId = schematic.schematicId;
export const diskImageRaw = urls.urls.diskImageRaw;
export const talosVersions = versions.talosVersions;
export const extensions = extensionsVersions.extensionsInfos.apply((infos) => infos.map((i) => i.name));
