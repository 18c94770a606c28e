// Command go-functions calls every function of the package with resource outputs as arguments
// (see Pulumi.yaml): no `.Elem()`, the outputs a created resource always has are not pointers.
package main

import (
	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/client"
	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/imagefactory"
	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/machine"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() { pulumi.Run(Program) }

// Program is the function table.
func Program(ctx *pulumi.Context) error {
	secrets, err := machine.NewSecrets(ctx, "secrets", &machine.SecretsArgs{TalosVersion: pulumi.String("v1.12")})
	if err != nil {
		return err
	}
	schematic, err := imagefactory.NewSchematic(ctx, "schematic", &imagefactory.SchematicArgs{
		Schematic: pulumi.String("customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n"),
	})
	if err != nil {
		return err
	}
	config := machine.GetConfigurationOutput(ctx, machine.GetConfigurationOutputArgs{
		ClusterName:     pulumi.String("fn-table"),
		ClusterEndpoint: pulumi.String("https://127.0.0.1:6443"),
		MachineType:     pulumi.String("controlplane"),
		MachineSecrets:  secrets.MachineSecrets,
		TalosVersion:    pulumi.String("v1.12"),
	})
	talosconfig := client.GetConfigurationOutput(ctx, client.GetConfigurationOutputArgs{
		ClusterName:         pulumi.String("fn-table"),
		ClientConfiguration: secrets.ClientConfiguration,
		Endpoints:           pulumi.ToStringArray([]string{"127.0.0.1"}),
	})
	urls := imagefactory.GetUrlsOutput(ctx, imagefactory.GetUrlsOutputArgs{
		SchematicId:  schematic.SchematicId,
		TalosVersion: pulumi.String("v1.12.4"),
		Platform:     pulumi.String("nocloud"),
	})
	versions := imagefactory.GetVersionsOutput(ctx, imagefactory.GetVersionsOutputArgs{})
	extensions := imagefactory.GetExtensionsVersionsOutput(ctx, imagefactory.GetExtensionsVersionsOutputArgs{
		TalosVersion: pulumi.String("v1.12.4"),
	})

	ctx.Export("machineConfiguration", pulumi.ToSecret(config.MachineConfiguration()))
	ctx.Export("talosconfig", pulumi.ToSecret(talosconfig.TalosConfig()))
	ctx.Export("schematicId", schematic.SchematicId)
	ctx.Export("diskImageRaw", urls.Urls().DiskImageRaw())
	ctx.Export("talosVersions", versions.TalosVersions())
	ctx.Export("extensions", extensions.ExtensionsInfos().ApplyT(func(infos []imagefactory.ExtensionInfo) []string {
		var names []string
		for _, i := range infos {
			names = append(names, i.Name)
		}
		return names
	}).(pulumi.StringArrayOutput))
	return nil
}
