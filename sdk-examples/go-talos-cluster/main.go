// Command go-talos-cluster is the seed homelab with Talos Linux on Proxmox VE (issue 7's
// program 1): see Pulumi.yaml and Program (cluster.go).
//
// `pulumi up` runs it through the go language host; where that host is not available,
// tools/run-program-go runs Program through the Automation API instead
// (docs/adr/0007-sdk-programs-via-automation.md).
package main

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

func main() { pulumi.Run(Program) }
