#!/usr/bin/env python3
"""automation: a whole stack lifecycle driven by the Pulumi Automation API, with progress.

    PY="$(tools/python-env.sh | tail -1)"; eval "$(tools/sdk-programs-env.sh)"
    "$PY" sdk-examples/python-automation/drive.py --lab-env ~/.cache/proxmox-talos/lab/lab.env \\
        --set gateway=127.42.0.1 --set 'dnsServers[0]=127.0.0.53' ... sdk-examples/python-rke2-clone

Creates (or selects) a stack for a program directory — a Python program, run inline, or a
project the CLI runs with its own language host, such as the YAML talos-cluster
(sdk-examples/yaml-talos-cluster) — sets its config, then runs
`up`, `preview` (which must report no changes), `refresh` (no drift) and `destroy`, streaming
the engine's events as a progress display: each resource step as it starts and ends, the
provider's status lines (e.g. "vm 1001: waiting for guest agent, 12s") when they change, warnings
and errors, and each operation's summary. Exit status 0 when all four succeed.

- `--lab-env FILE`: the provider's settings from a lab.env (what `proxmox-talos-lab up` writes,
  or your own with the same variables): endpoint, CA certificate, API token (or, with `--root`,
  root@pam and its password, which raw PCI passthrough needs), SSH user, key and port, Image
  Factory URL. Credentials become secret stack config.
- `--set KEY=VALUE` / `--secret KEY=VALUE`: more stack config; keys with `[n]` or `.` are
  paths (`masterAddresses[0]=...`, `proxmox-talos:ssh.port=2222`).
- `--keep`: stop after refresh (leave the stack up).

The program runs inline (the Automation API serves it from this process), so no language host
is needed: see docs/adr/0007-sdk-programs-via-automation.md. The backend and passphrase come
from the environment (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, ...).
"""

import argparse
import os
import re
import runpy
import shlex
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# lab.env variable -> (stack config key, secret)
LAB_ENV = {
    "PROXMOX_VE_ENDPOINT": ("proxmox-talos:endpoint", False),
    "PROXMOX_VE_CA_CERT": ("proxmox-talos:caCertificate", False),
    "PROXMOX_VE_SSH_USERNAME": ("proxmox-talos:ssh.username", False),
    "PROXMOX_VE_SSH_PRIVATE_KEY": ("proxmox-talos:ssh.privateKey", True),
    "PROXMOX_VE_SSH_PORT": ("proxmox-talos:ssh.port", False),
    "TALOS_IMAGE_FACTORY_URL": ("proxmox-talos:imageFactoryUrl", False),
}
TOKEN = {"PROXMOX_VE_API_TOKEN": ("proxmox-talos:apiToken", True)}
ROOT_LOGIN = {
    "PROXMOX_VE_USERNAME": ("proxmox-talos:username", False),
    "PROXMOX_VE_PASSWORD": ("proxmox-talos:password", True),
}


def read_env_file(path: str) -> dict:
    """`export KEY='value'` lines (shell quoting) of an env file."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for token in shlex.split(f.read(), comments=True):
            if "=" in token:
                key, value = token.split("=", 1)
                values[key] = value
    return values


class Progress:
    """Engine events as progress lines on a stream, stamped with seconds since the start."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.start = time.monotonic()
        self.started = {}  # urn -> monotonic start of its step
        self.last_status = {}  # urn -> status with numbers masked
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        with self.lock:
            print(f"{time.monotonic() - self.start:7.1f}s  {text}", file=self.out, flush=True)

    @staticmethod
    def name(urn: str) -> str:
        return urn.rsplit("::", 1)[-1] if urn else ""

    @staticmethod
    def short_type(kind: str) -> str:
        return kind.split(":", 1)[1] if kind.startswith("proxmox-talos:") else kind

    def __call__(self, event) -> None:
        if event.resource_pre_event:
            m = event.resource_pre_event.metadata
            if m.op.value != "same" and not m.type.startswith("pulumi:"):
                self.started[m.urn] = time.monotonic()
                self.line(f"{m.op.value:<8} {self.short_type(m.type)} {self.name(m.urn)}")
        elif event.res_outputs_event:
            m = event.res_outputs_event.metadata
            if m.urn in self.started:
                took = time.monotonic() - self.started.pop(m.urn)
                self.line(f"{'done':<8} {self.short_type(m.type)} {self.name(m.urn)} ({m.op.value}, {took:.1f}s)")
        elif event.res_op_failed_event:
            m = event.res_op_failed_event.metadata
            self.line(f"{'FAILED':<8} {self.short_type(m.type)} {self.name(m.urn)} ({m.op.value})")
        elif event.diagnostic_event:
            d = event.diagnostic_event
            message = d.message.strip()
            if d.ephemeral:
                # Status lines repeat with growing counters: show one when its words change.
                masked = re.sub(r"\d+", "#", message)
                if message and self.last_status.get(d.urn) != masked:
                    self.last_status[d.urn] = masked
                    self.line(f"{'status':<8} {self.name(d.urn)}: {message}")
            elif d.severity in ("warning", "error") and message:
                self.line(f"{d.severity:<8} {self.name(d.urn or '')}: {message}")
        elif event.summary_event:
            s = event.summary_event
            changes = ", ".join(f"{op} {n}" for op, n in sorted(s.resource_changes.items())) or "none"
            self.line(f"summary  {changes} in {s.duration_seconds}s")


def config_items(args) -> list:
    """(key, value, secret) for every config value the arguments give."""
    items = []
    if args.lab_env:
        env = read_env_file(args.lab_env)
        mapping = {**LAB_ENV, **(ROOT_LOGIN if args.root else TOKEN)}
        for var, (key, secret) in mapping.items():
            if env.get(var):
                items.append((key, env[var], secret))
    for values, secret in ((args.set, False), (args.secret, True)):
        for item in values:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"drive: {item!r}: use KEY=VALUE")
            items.append((key, value, secret))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("program_dir", help="a Pulumi project: Python (run inline) or YAML (run by the CLI)")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--lab-env", help="provider settings from a lab.env file")
    parser.add_argument("--root", action="store_true", help="log in as root@pam with a password, not the API token")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--secret", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", action="store_true", help="do not destroy at the end")
    args = parser.parse_args()

    from pulumi import automation as auto
    import yaml

    program_dir = os.path.abspath(args.program_dir)
    with open(os.path.join(program_dir, "Pulumi.yaml"), encoding="utf-8") as f:
        project = yaml.safe_load(f)
    main_py = os.path.join(program_dir, project.get("main") or "__main__.py")
    for entry in (program_dir, os.path.join(ROOT, "target", "sdk", "python")):
        if os.path.isdir(entry) and entry not in sys.path:
            sys.path.insert(0, entry)
    os.chdir(program_dir)

    runtime = project.get("runtime")
    runtime = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime == "python":
        stack = auto.create_or_select_stack(
            args.stack,
            project_name=project["name"],
            program=lambda: runpy.run_path(main_py, run_name="__main__"),
            opts=auto.LocalWorkspaceOptions(work_dir=program_dir),
        )
    else:
        # A project the CLI runs itself with its language host (YAML: yaml-talos-cluster).
        stack = auto.create_or_select_stack(args.stack, work_dir=program_dir)
    # One `pulumi config set-all --path`: a key without `.` or `[n]` is the same as a path.
    stack.set_all_config(
        {key: auto.ConfigValue(value=value, secret=secret) for key, value, secret in config_items(args)}, path=True
    )
    print(f"stack {stack.name} of {project['name']} in {program_dir}", flush=True)

    progress = Progress()
    steps = [
        ("up", lambda: stack.up(on_event=progress)),
        ("preview", lambda: stack.preview(on_event=progress, expect_no_changes=True)),
        ("refresh", lambda: stack.refresh(on_event=progress, expect_no_changes=True)),
    ]
    if not args.keep:
        steps.append(("destroy", lambda: stack.destroy(on_event=progress)))
    for name, step in steps:
        progress.line(f"== {name}")
        try:
            result = step()
        except auto.CommandError as e:
            progress.line(f"== {name} failed")
            print(str(e), file=sys.stderr)
            return 1
        if name == "up":
            for key, output in sorted(result.outputs.items()):
                shown = "[secret]" if output.secret else output.value
                progress.line(f"output   {key} = {shown}")
        progress.line(f"== {name} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
