package main

import (
	"fmt"

	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/client"
	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/cluster"
	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/download"
	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/imagefactory"
	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/machine"
	"github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos/vm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Program is the talos-cluster program: images, VMs, Talos configuration, bootstrap, health.
func Program(ctx *pulumi.Context) error {
	s, err := loadSettings(ctx)
	if err != nil {
		return err
	}
	base, err := talosImage(ctx, s, "base", baseExtensions)
	if err != nil {
		return err
	}
	gpu, err := talosImage(ctx, s, "gpu", append(append([]string{}, baseExtensions...), gpuExtensions...))
	if err != nil {
		return err
	}

	secrets, err := machine.NewSecrets(ctx, "secrets", &machine.SecretsArgs{TalosVersion: pulumi.String(s.contract())})
	if err != nil {
		return err
	}
	clientConfig := secrets.ClientConfiguration
	// One machine configuration per role; each node's own settings are patched in when applied.
	roleConfig := func(machineType string, image talosImageOutputs, patches ...string) pulumi.StringOutput {
		return machine.GetConfigurationOutput(ctx, machine.GetConfigurationOutputArgs{
			ClusterName:     pulumi.String(s.clusterName),
			ClusterEndpoint: pulumi.String(fmt.Sprintf("https://%s:6443", s.vip)),
			MachineType:     pulumi.String(machineType),
			MachineSecrets:  secrets.MachineSecrets,
			TalosVersion:    pulumi.String(s.contract()),
			KubernetesVersion: func() pulumi.StringPtrInput {
				if s.kubernetesVersion == "" {
					return nil
				}
				return pulumi.String(s.kubernetesVersion)
			}(),
			InstallImage:  image.installer,
			ConfigPatches: pulumi.ToStringArray(append([]string{clusterPatch}, patches...)),
		}).MachineConfiguration()
	}
	controlPlaneConfig := roleConfig("controlplane", base, controlPlanePatch(s.vip))
	workerConfig := roleConfig("worker", base, workerPatch(false))
	gpuWorkerConfig := roleConfig("worker", gpu, workerPatch(true))

	var applies []pulumi.Resource
	var controller1 *machine.ConfigurationApply
	var controlPlaneIPs, workerIPs, allIPs pulumi.StringArray
	nodeIPs := pulumi.StringMap{}
	for _, n := range s.nodes() {
		image, config := base, workerConfig
		switch {
		case n.controlPlane:
			config = controlPlaneConfig
		case n.gpu:
			image, config = gpu, gpuWorkerConfig
		}
		machineVM, err := virtualMachine(ctx, s, n, image.volumeID)
		if err != nil {
			return err
		}
		apply, err := machine.NewConfigurationApply(ctx, n.name, &machine.ConfigurationApplyArgs{
			ClientConfiguration:       clientConfig,
			MachineConfigurationInput: config,
			// Where the node answers in maintenance mode: the address its guest agent reports.
			// Once configured, the node answers at its static address and its agent reports
			// that one; the provider knows it for the same machine, so that is no change.
			Node:          maintenanceAddress(n.name, machineVM),
			ConfigPatches: pulumi.ToStringArray([]string{nodePatch(s, n)}),
		})
		if err != nil {
			return err
		}
		applies = append(applies, apply)
		ip := pulumi.String(n.address.Addr().String())
		nodeIPs[n.name] = ip
		allIPs = append(allIPs, ip)
		if n.controlPlane {
			controlPlaneIPs = append(controlPlaneIPs, ip)
		} else {
			workerIPs = append(workerIPs, ip)
		}
		if controller1 == nil {
			controller1 = apply
		}
	}

	bootstrap, err := machine.NewBootstrap(ctx, "bootstrap", &machine.BootstrapArgs{
		ClientConfiguration: clientConfig,
		Node:                controlPlaneIPs[0],
	}, pulumi.DependsOn([]pulumi.Resource{controller1}))
	if err != nil {
		return err
	}
	health := cluster.GetHealthOutput(ctx, cluster.GetHealthOutputArgs{
		ClientConfiguration: clientConfig,
		ControlPlaneNodes:   controlPlaneIPs,
		WorkerNodes:         workerIPs,
		Endpoints:           controlPlaneIPs,
	}, pulumi.DependsOn(append(applies, bootstrap)))
	// Fetched from the first control plane once the cluster is healthy.
	kubeconfig, err := cluster.NewKubeconfig(ctx, "kubeconfig", &cluster.KubeconfigArgs{
		ClientConfiguration: clientConfig,
		Node:                health.ControlPlaneNodes().Index(pulumi.Int(0)),
	}, pulumi.DependsOn([]pulumi.Resource{bootstrap}))
	if err != nil {
		return err
	}
	talosconfig := client.GetConfigurationOutput(ctx, client.GetConfigurationOutputArgs{
		ClusterName:         pulumi.String(s.clusterName),
		ClientConfiguration: clientConfig,
		Endpoints:           controlPlaneIPs,
		Nodes:               allIPs,
	})

	ctx.Export("talosconfig", pulumi.ToSecret(talosconfig.TalosConfig()))
	ctx.Export("kubeconfig", pulumi.ToSecret(kubeconfig.KubeconfigRaw))
	ctx.Export("nodeIps", nodeIPs)
	ctx.Export("kubernetesEndpoint", health.KubernetesEndpoint())
	ctx.Export("healthChecks", health.Checks())
	ctx.Export("schematicIds", pulumi.StringMap{"base": base.schematicID, "gpu": gpu.schematicID})
	return nil
}

// talosImageOutputs is what a Talos image gives the rest of the program.
type talosImageOutputs struct {
	schematicID, volumeID, installer pulumi.StringOutput
}

// talosImage registers a schematic with the Image Factory and downloads its nocloud disk image
// into the image datastore.
func talosImage(ctx *pulumi.Context, s settings, name string, extensions []string) (talosImageOutputs, error) {
	sch, err := imagefactory.NewSchematic(ctx, name, &imagefactory.SchematicArgs{
		Schematic: pulumi.String(schematic(extensions)),
	})
	if err != nil {
		return talosImageOutputs{}, err
	}
	id := sch.SchematicId
	urls := imagefactory.GetUrlsOutput(ctx, imagefactory.GetUrlsOutputArgs{
		SchematicId:  id,
		TalosVersion: pulumi.String(s.talosVersion),
		Platform:     pulumi.String("nocloud"),
	}).Urls()
	file, err := download.NewFile(ctx, name+"-image", &download.FileArgs{
		NodeName:    pulumi.String(s.node),
		DatastoreId: pulumi.String(s.imageDatastore),
		ContentType: pulumi.String("import"),
		// The uncompressed raw image: Proxmox does not decompress `import` content (nor xz at all).
		Url: urls.DiskImageRaw(),
		// Named after the schematic, so a new schematic downloads next to the old image.
		FileName: id.ApplyT(func(id string) string {
			return fmt.Sprintf("talos-%s-%s-nocloud-amd64.raw", s.talosVersion, id[:min(len(id), 12)])
		}).(pulumi.StringOutput),
	})
	if err != nil {
		return talosImageOutputs{}, err
	}
	return talosImageOutputs{schematicID: id, volumeID: file.VolumeId, installer: urls.Installer()}, nil
}

// virtualMachine is one node's VM, booting its Talos image from an imported disk.
func virtualMachine(ctx *pulumi.Context, s settings, n nodeSpec, image pulumi.StringOutput) (*vm.VirtualMachine, error) {
	role := "worker"
	if n.controlPlane {
		role = "controlplane"
	}
	tags := []string{"k8s", "talos", role}
	args := &vm.VirtualMachineArgs{
		NodeName:        pulumi.String(s.node),
		VmId:            pulumi.Int(n.vmID),
		Name:            pulumi.String(n.name),
		OnBoot:          pulumi.Bool(true),
		OperatingSystem: &vm.VirtualMachineOperatingSystemArgs{Type: pulumi.String("l26")},
		Agent:           &vm.VirtualMachineAgentArgs{Enabled: pulumi.Bool(true), Timeout: pulumi.String("5m")},
		Cpu:             &vm.VirtualMachineCpuArgs{Cores: pulumi.Int(n.cores), Type: pulumi.String("host")},
		Memory:          &vm.VirtualMachineMemoryArgs{Dedicated: pulumi.Int(n.memoryMB)},
		ScsiHardware:    pulumi.String("virtio-scsi-single"),
		Disks: vm.VirtualMachineDiskArray{&vm.VirtualMachineDiskArgs{
			Interface:   pulumi.String("scsi0"),
			DatastoreId: pulumi.String(s.datastore),
			ImportFrom:  image,
			Size:        pulumi.Int(n.disk),
			Iothread:    pulumi.Bool(true),
			Discard:     pulumi.String("on"),
			Ssd:         pulumi.Bool(true),
		}},
		NetworkDevices: vm.VirtualMachineNetworkDeviceArray{&vm.VirtualMachineNetworkDeviceArgs{
			Bridge: pulumi.String(s.bridge),
			Model:  pulumi.String("virtio"),
		}},
	}
	if n.gpu {
		// Raw PCI passthrough: the provider must log in as root@pam with a password.
		args.Tags = pulumi.ToStringArray(append(tags, "gpu"))
		args.Machine = pulumi.String("q35")
		args.Hostpcis = vm.VirtualMachineHostpciArray{&vm.VirtualMachineHostpciArgs{
			Device: pulumi.String("hostpci0"),
			Id:     pulumi.String(s.gpuPciID),
			Pcie:   pulumi.Bool(true),
		}}
	} else {
		args.Tags = pulumi.ToStringArray(tags)
	}
	// The boot image only matters for the first install: a new Talos version or schematic
	// upgrades the running node in place (its ConfigurationApply), never replaces the VM.
	return vm.NewVirtualMachine(ctx, n.name, args, pulumi.IgnoreChanges([]string{"disks[0].importFrom"}))
}

// maintenanceAddress is the first usable IPv4 address of the VM's net0 interface, as its guest
// agent reported it when the VM was made.
func maintenanceAddress(name string, v *vm.VirtualMachine) pulumi.StringOutput {
	return v.Ipv4Address.ApplyT(func(address *string) (string, error) {
		if address == nil || *address == "" {
			return "", fmt.Errorf("%s: the guest agent reports no IPv4 address on net0's interface", name)
		}
		return *address, nil
	}).(pulumi.StringOutput)
}
