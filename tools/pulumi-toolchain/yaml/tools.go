//go:build tools

// Package tools pins the pulumi-language-yaml main package in this module's graph.
package tools

import _ "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml"
