#!/usr/bin/env python3
"""Wire-contract check for the hand-written protocol files under proto/.

Compares the encoded FileDescriptorSet that build.rs produces (our
declarations) with the descriptors shipped in the PyPI `pulumi` package, which
is the reference for the Pulumi wire protocol.

Usage:
    proto_contract.py <descriptor-set.bin>              compare; exit 1 on any difference
    proto_contract.py --self-test <descriptor-set.bin>  mutate copies of our descriptors
                                                        and check each mutation is reported

Everything we declare must match upstream exactly: messages (and their nested
types), every field's name, number, type, type_name, label, proto3 `optional`
and oneof membership, map-entry flags, reserved ranges/names, enum values, and
service methods (name, input, output, streaming). A declared message must also
carry every upstream field. Declaring a subset of messages, enums, services or
methods is allowed. Which .proto file a type lives in is reported as a note only
(it does not affect the wire format).

Exit codes: 0 ok, 1 differences found (or self-test failure), 2 usage error,
3 reference package missing or at the wrong version.
"""

import copy
import sys

PULUMI_VERSION = "3.259.0"
INSTALL_HINT = (
    "install the reference descriptors with:\n"
    "    python3 -m venv $HOME/.cache/proxmox-talos/venv\n"
    f"    $HOME/.cache/proxmox-talos/venv/bin/pip install pulumi=={PULUMI_VERSION}\n"
    "(or point PROXMOX_TALOS_PYTHON at an interpreter that has it)"
)

# Declarations the provider relies on; an empty or truncated descriptor set must
# not pass just because there is nothing to compare.
REQUIRED_MESSAGES = [
    "pulumirpc.ProviderHandshakeRequest",
    "pulumirpc.ConfigureRequest",
    "pulumirpc.ConfigureErrorMissingKeys",
    "pulumirpc.CheckRequest",
    "pulumirpc.DiffResponse",
    "pulumirpc.CreateRequest",
    "pulumirpc.ReadRequest",
    "pulumirpc.UpdateRequest",
    "pulumirpc.DeleteRequest",
    "pulumirpc.PluginInfo",
    "pulumirpc.PluginAttach",
    "pulumirpc.LogRequest",
    "pulumirpc.ErrorResourceInitFailed",
    "google.rpc.Status",
]
REQUIRED_METHODS = {
    "pulumirpc.ResourceProvider": [
        "Handshake", "GetSchema", "CheckConfig", "DiffConfig", "Configure", "Invoke",
        "Check", "Diff", "Create", "Read", "Update", "Delete", "Cancel",
        "GetPluginInfo", "Attach",
    ],
    "pulumirpc.Engine": ["Log"],
}


def fail_setup(msg):
    print(f"proto_contract: {msg}\n{INSTALL_HINT}", file=sys.stderr)
    sys.exit(3)


def load_reference():
    """Return the upstream FileDescriptorProtos, or exit 3 with an install hint."""
    try:
        from importlib import metadata
        version = metadata.version("pulumi")
    except Exception as exc:  # PackageNotFoundError and friends
        fail_setup(f"the Python package `pulumi` is not installed ({exc!r})")
    if version != PULUMI_VERSION:
        fail_setup(f"found pulumi {version}, but the contract is pinned to {PULUMI_VERSION}")
    try:
        from google.protobuf import any_pb2, descriptor_pb2, empty_pb2, struct_pb2
        from pulumi.runtime.proto import (
            alias_pb2, engine_pb2, errors_pb2, plugin_pb2, provider_pb2,
        )
    except ImportError as exc:
        fail_setup(f"cannot import the pulumi protocol descriptors: {exc}")
    modules = [provider_pb2, plugin_pb2, engine_pb2, alias_pb2, errors_pb2,
               any_pb2, empty_pb2, struct_pb2]
    # google.rpc.Status is vendored by pulumi; its module name has moved between releases.
    status = None
    for name in ("pulumi.runtime.proto.status_pb2", "google.rpc.status_pb2"):
        try:
            status = __import__(name, fromlist=["DESCRIPTOR"])
            break
        except ImportError:
            continue
    if status is None:
        fail_setup("cannot find a google.rpc.Status descriptor (status_pb2)")
    modules.append(status)
    files = []
    for mod in modules:
        fdp = descriptor_pb2.FileDescriptorProto()
        mod.DESCRIPTOR.CopyToProto(fdp)
        files.append(fdp)
    return files


def load_ours(path):
    from google.protobuf import descriptor_pb2
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as fh:
        fds.ParseFromString(fh.read())
    return list(fds.file)


def index(files):
    """Map full names to (kind, descriptor proto, file name, is top-level)."""
    out = {}

    def walk_msg(prefix, msg, fname, top):
        full = f"{prefix}.{msg.name}" if prefix else msg.name
        out[full] = ("message", msg, fname, top)
        for nested in msg.nested_type:
            walk_msg(full, nested, fname, False)
        for enum in msg.enum_type:
            out[f"{full}.{enum.name}"] = ("enum", enum, fname, False)

    for f in files:
        pkg = f"{f.package}." if f.package else ""
        for msg in f.message_type:
            walk_msg(f.package, msg, f.name, True)
        for enum in f.enum_type:
            out[pkg + enum.name] = ("enum", enum, f.name, True)
        for svc in f.service:
            out[pkg + svc.name] = ("service", svc, f.name, True)
    return out


def label_name(v):
    from google.protobuf import descriptor_pb2
    return descriptor_pb2.FieldDescriptorProto.Label.Name(v)


def type_name(v):
    from google.protobuf import descriptor_pb2
    return descriptor_pb2.FieldDescriptorProto.Type.Name(v)


def describe_field(msg, f):
    oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
    return {
        "name": f.name,
        "type": type_name(f.type),
        "type_name": f.type_name,
        "label": label_name(f.label),
        "proto3_optional": f.proto3_optional,
        "oneof": oneof,
    }


def compare_message(full, ours, ref, diffs):
    if ours.options.map_entry != ref.options.map_entry:
        diffs.append(f"{full}: map_entry is {ours.options.map_entry}, upstream {ref.options.map_entry}")

    our_fields = {f.number: describe_field(ours, f) for f in ours.field}
    ref_fields = {f.number: describe_field(ref, f) for f in ref.field}
    for num in sorted(set(our_fields) | set(ref_fields)):
        o, r = our_fields.get(num), ref_fields.get(num)
        if r is None:
            diffs.append(f"{full}: field {o['name']} = {num} does not exist upstream")
        elif o is None:
            shape = " ".join(x for x in (r["label"], r["type"], r["type_name"]) if x)
            diffs.append(f"{full}: missing upstream field {r['name']} = {num} ({shape})")
        else:
            for key in ("name", "type", "type_name", "label", "proto3_optional", "oneof"):
                if o[key] != r[key]:
                    diffs.append(f"{full}: field {num} ({r['name']}): {key} is "
                                 f"{o[key]!r}, upstream {r[key]!r}")

    our_oneofs = [d.name for d in ours.oneof_decl]
    ref_oneofs = [d.name for d in ref.oneof_decl]
    if sorted(our_oneofs) != sorted(ref_oneofs):
        diffs.append(f"{full}: oneofs are {sorted(our_oneofs)}, upstream {sorted(ref_oneofs)}")

    our_res = sorted((r.start, r.end) for r in ours.reserved_range)
    ref_res = sorted((r.start, r.end) for r in ref.reserved_range)
    # protoc may split contiguous ranges differently; compare the reserved numbers.
    expand = lambda rs: sorted({n for s, e in rs for n in range(s, e)})
    if expand(our_res) != expand(ref_res):
        diffs.append(f"{full}: reserved numbers are {expand(our_res)}, upstream {expand(ref_res)}")
    if sorted(ours.reserved_name) != sorted(ref.reserved_name):
        diffs.append(f"{full}: reserved names are {sorted(ours.reserved_name)}, "
                     f"upstream {sorted(ref.reserved_name)}")

    our_nested = {m.name for m in ours.nested_type} | {e.name for e in ours.enum_type}
    for m in list(ref.nested_type) + list(ref.enum_type):
        if m.name not in our_nested:
            diffs.append(f"{full}: missing upstream nested type {m.name}")


def compare_enum(full, ours, ref, diffs):
    ov = {v.name: v.number for v in ours.value}
    rv = {v.name: v.number for v in ref.value}
    for name in sorted(set(ov) | set(rv), key=lambda n: (rv.get(n, ov.get(n)), n)):
        if name not in rv:
            diffs.append(f"{full}: value {name} = {ov[name]} does not exist upstream")
        elif name not in ov:
            diffs.append(f"{full}: missing upstream value {name} = {rv[name]}")
        elif ov[name] != rv[name]:
            diffs.append(f"{full}: value {name} is {ov[name]}, upstream {rv[name]}")


def compare_service(full, ours, ref, diffs):
    ref_methods = {m.name: m for m in ref.method}
    for m in ours.method:
        r = ref_methods.get(m.name)
        if r is None:
            diffs.append(f"{full}: method {m.name} does not exist upstream")
            continue
        for key in ("input_type", "output_type", "client_streaming", "server_streaming"):
            if getattr(m, key) != getattr(r, key):
                diffs.append(f"{full}.{m.name}: {key} is {getattr(m, key)!r}, "
                             f"upstream {getattr(r, key)!r}")


def compare(our_files, ref_files):
    """Return (differences, notes)."""
    diffs, notes = [], []
    ours, ref = index(our_files), index(ref_files)
    for f in our_files:
        if f.syntax not in ("proto3",):
            diffs.append(f"{f.name}: syntax is {f.syntax!r}, expected 'proto3'")
    for full in sorted(ours):
        kind, odesc, ofile, top = ours[full]
        if full not in ref:
            diffs.append(f"{full}: {kind} does not exist upstream")
            continue
        rkind, rdesc, rfile, _ = ref[full]
        if kind != rkind:
            diffs.append(f"{full}: declared as {kind}, upstream it is a {rkind}")
            continue
        if top and ofile != rfile:
            notes.append(f"{full}: declared in {ofile}, upstream in {rfile}")
        {"message": compare_message, "enum": compare_enum,
         "service": compare_service}[kind](full, odesc, rdesc, diffs)

    for full in REQUIRED_MESSAGES:
        if ours.get(full, (None,))[0] != "message":
            diffs.append(f"{full}: required message is not declared")
    for svc, methods in REQUIRED_METHODS.items():
        entry = ours.get(svc)
        declared = {m.name for m in entry[1].method} if entry and entry[0] == "service" else set()
        for m in methods:
            if m not in declared:
                diffs.append(f"{svc}.{m}: required method is not declared")
    return diffs, notes


def run_compare(path):
    ref_files = load_reference()
    our_files = load_ours(path)
    diffs, notes = compare(our_files, ref_files)
    ours = index(our_files)
    counts = {k: sum(1 for v in ours.values() if v[0] == k) for k in ("message", "enum", "service")}
    print(f"compared {counts['message']} messages, {counts['enum']} enums, "
          f"{counts['service']} services against pulumi {PULUMI_VERSION}")
    for n in notes:
        print(f"note: {n}")
    if diffs:
        print(f"{len(diffs)} difference(s) from upstream:")
        for d in diffs:
            print(f"  - {d}")
        return 1
    print("OK: every declaration matches upstream")
    return 0


# ---- self-test: each mutation of a pristine copy must produce a new difference ----

def _find(files, full):
    return index(files)[full][1]


def _field(files, msg, name):
    return next(f for f in _find(files, msg).field if f.name == name)


def _mut_number(files):
    _field(files, "pulumirpc.CreateRequest", "timeout").number = 99


def _mut_name(files):
    _field(files, "pulumirpc.ReadResponse", "inputs").name = "input"


def _mut_type(files):
    _field(files, "pulumirpc.LogRequest", "streamId").type = 3  # TYPE_INT64


def _mut_label(files):
    f = _field(files, "pulumirpc.DiffResponse", "replaces")
    f.label = 1  # LABEL_OPTIONAL instead of repeated


def _mut_type_name(files):
    _field(files, "pulumirpc.CheckResponse", "inputs").type_name = ".google.protobuf.Value"


def _mut_drop_field(files):
    msg = _find(files, "pulumirpc.ErrorResourceInitFailed")
    keep = [f for f in msg.field if f.name != "refresh_before_update"]
    del msg.field[:]
    msg.field.extend(keep)


def _mut_oneof(files):
    msg = _find(files, "pulumirpc.ProviderHandshakeRequest")
    f = next(f for f in msg.field if f.name == "mapper_target")
    f.ClearField("oneof_index")
    f.proto3_optional = False


def _mut_enum(files):
    enum = _find(files, "pulumirpc.DiffResponse.DiffChanges")
    next(v for v in enum.value if v.name == "DIFF_SOME").number = 3


def _mut_method(files):
    svc = _find(files, "pulumirpc.ResourceProvider")
    next(m for m in svc.method if m.name == "Delete").output_type = ".pulumirpc.DeleteRequest"


def _mut_streaming(files):
    svc = _find(files, "pulumirpc.Engine")
    next(m for m in svc.method if m.name == "Log").server_streaming = True


MUTATIONS = [
    ("field number", "pulumirpc.CreateRequest", _mut_number),
    ("field name", "pulumirpc.ReadResponse", _mut_name),
    ("field type", "pulumirpc.LogRequest", _mut_type),
    ("field label", "pulumirpc.DiffResponse", _mut_label),
    ("field type_name", "pulumirpc.CheckResponse", _mut_type_name),
    ("missing field", "pulumirpc.ErrorResourceInitFailed", _mut_drop_field),
    ("oneof membership", "pulumirpc.ProviderHandshakeRequest", _mut_oneof),
    ("enum value", "pulumirpc.DiffResponse.DiffChanges", _mut_enum),
    ("method output", "pulumirpc.ResourceProvider.Delete", _mut_method),
    ("method streaming", "pulumirpc.Engine.Log", _mut_streaming),
]


def run_self_test(path):
    ref_files = load_reference()
    pristine = load_ours(path)
    baseline, _ = compare(pristine, ref_files)
    failures = 0
    for what, target, mutate in MUTATIONS:
        files = copy.deepcopy(pristine)
        try:
            mutate(files)
        except (KeyError, StopIteration):
            print(f"FAIL {what}: {target} is not declared, cannot mutate it")
            failures += 1
            continue
        diffs, _ = compare(files, ref_files)
        new = [d for d in diffs if d not in baseline and d.startswith(target)]
        if new:
            print(f"ok   {what}: reported as {new[0]!r}")
        else:
            print(f"FAIL {what}: mutating {target} was not reported")
            failures += 1
    if failures:
        print(f"self-test: {failures} of {len(MUTATIONS)} mutation(s) went undetected")
        return 1
    print(f"self-test: all {len(MUTATIONS)} mutations detected")
    return 0


def main(argv):
    if len(argv) == 2 and not argv[1].startswith("-"):
        return run_compare(argv[1])
    if len(argv) == 3 and argv[1] == "--self-test":
        return run_self_test(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
