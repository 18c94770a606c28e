#!/usr/bin/env python3
"""Run a Python Pulumi program through the real `pulumi` CLI without the python language host.

    PY="$(tools/python-env.sh | tail -1)"
    "$PY" tools/run-program.py [--stack dev] [--expect-no-changes] PROGRAM_DIR up|preview|refresh|destroy

The program directory is an ordinary Pulumi Python project (Pulumi.yaml with `runtime: python`,
`__main__.py` or the file `main:` names, stack config in Pulumi.<stack>.yaml). This runner uses the
Automation API's inline mode: it imports the program file as the inline program function, serves it
from this process as a language runtime, and runs `pulumi <action> --client <addr>` in the program
directory, so the CLI, the engine, the Pulumi SDK and the provider are the real ones and no
pulumi-language-python binary is needed (docs/adr/0007-sdk-programs-via-automation.md).

- The stack is selected, or created when missing. The backend, passphrase and plugin settings come
  from the environment (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, PULUMI_HOME, ...), the
  provider from the project's `plugins.providers` path.
- The SDK generated from this repository's schema (target/sdk/python, see tools/check-sdks.sh)
  comes first on sys.path when it exists, so the program uses this tree's SDK.
- The CLI's output streams to stdout; the exit status is the CLI's (1 with its error on stderr).
"""

import argparse
import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTIONS = ("up", "preview", "refresh", "destroy")


def project(program_dir: str) -> tuple[str, str]:
    """The project's name and entry file: `main:` of Pulumi.yaml (a file or a directory), else
    __main__.py."""
    import yaml  # a dependency of the pulumi package

    with open(os.path.join(program_dir, "Pulumi.yaml"), encoding="utf-8") as f:
        settings = yaml.safe_load(f) or {}
    main = os.path.join(program_dir, settings.get("main") or "")
    return settings.get("name", ""), os.path.join(main, "__main__.py") if os.path.isdir(main) else main


def inline_program(path: str):
    """The program file as an inline program function: run as `__main__`, as the host would."""

    def program() -> None:
        runpy.run_path(path, run_name="__main__")

    return program


def run(program_dir: str, action: str, stack_name: str, expect_no_changes: bool) -> int:
    from pulumi import automation as auto

    program_dir = os.path.abspath(program_dir)
    name, path = project(program_dir)
    if not os.path.isfile(path):
        print(f"run-program: no program file {path}", file=sys.stderr)
        return 2
    sdk = os.path.join(ROOT, "target", "sdk", "python")
    for entry in (program_dir, sdk):
        if os.path.isdir(entry) and entry not in sys.path:
            sys.path.insert(0, entry)
    # The language host runs programs in their directory; so do we.
    os.chdir(program_dir)

    stack = auto.create_or_select_stack(
        stack_name,
        project_name=name,
        program=inline_program(path),
        opts=auto.LocalWorkspaceOptions(work_dir=program_dir),
    )

    def out(line: str) -> None:
        print(line, end="" if line.endswith("\n") else "\n", flush=True)

    options = {"on_output": out}
    if expect_no_changes and action in ("up", "preview", "refresh"):
        options["expect_no_changes"] = True
    try:
        if action == "up":
            result = stack.up(**options)
        elif action == "preview":
            result = stack.preview(**options)
        elif action == "refresh":
            result = stack.refresh(**options)
        else:
            result = stack.destroy(**options)
    except auto.CommandError as e:
        print(f"run-program: pulumi {action} failed:\n{e}", file=sys.stderr)
        return 1
    # up, refresh and destroy report the update's summary; preview its change summary.
    summary = getattr(result, "summary", None)
    changes = summary.resource_changes if summary is not None else getattr(result, "change_summary", None)
    print(f"run-program: {action} succeeded: {changes}", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="stack name (default: dev)")
    parser.add_argument(
        "--expect-no-changes", action="store_true", help="fail if up, preview or refresh would change anything"
    )
    parser.add_argument("program_dir", help="the Pulumi project directory")
    parser.add_argument("action", choices=ACTIONS)
    args = parser.parse_args()
    return run(args.program_dir, args.action, args.stack, args.expect_no_changes)


if __name__ == "__main__":
    sys.exit(main())
