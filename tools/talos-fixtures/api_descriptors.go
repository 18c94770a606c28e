package main

// dump-api-descriptors: the Talos API's protobuf descriptors as compiled into
// machinery's generated Go code (pkg/machinery/api/...), written as an encoded
// google.protobuf.FileDescriptorSet. The provider's contract test
// (tests/talos_proto_contract.rs) compares its hand-written proto/talos files
// with this set.

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/siderolabs/talos/pkg/machinery/api/cluster"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/api/storage"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// apiFiles are the Talos API files the provider and the lab speak; their
// imports (google/protobuf/*, google/rpc/status.proto) are added.
var apiFiles = []protoreflect.FileDescriptor{
	common.File_common_common_proto,
	machine.File_machine_machine_proto,
	storage.File_storage_storage_proto,
	cluster.File_cluster_cluster_proto,
}

func dumpAPIDescriptors(args []string) error {
	fs := flag.NewFlagSet("dump-api-descriptors", flag.ContinueOnError)
	out := fs.String("out", "", `output file, or "-" for stdout (required)`)

	if err := fs.Parse(args); err != nil {
		return err
	}

	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	if *out == "" {
		return errors.New("--out is required")
	}

	// Dependencies first, each file once (the order protoc writes with
	// --include_imports).
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}

	var add func(fd protoreflect.FileDescriptor)

	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}

		seen[fd.Path()] = true

		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}

		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}

	for _, fd := range apiFiles {
		add(fd)
	}

	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		return err
	}

	if *out == "-" {
		_, err = os.Stdout.Write(data)

		return err
	}

	return os.WriteFile(*out, data, 0o644)
}
