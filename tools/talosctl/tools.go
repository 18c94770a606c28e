//go:build tools

// Package tools pins talosctl's main package in this module's graph.
package tools

import _ "github.com/siderolabs/talos/cmd/talosctl"
