#!/usr/bin/env node
// Run a TypeScript Pulumi program through the real `pulumi` CLI without the nodejs language host.
//
//   eval "$(tools/sdk-programs-env.sh)"
//   node tools/run-program.js [--stack dev] [--expect-no-changes] PROGRAM_DIR up|preview|refresh|destroy
//
// The program directory is an ordinary Pulumi TypeScript project (Pulumi.yaml with
// `runtime: nodejs`, package.json whose `main` is the entry file, tsconfig.json, stack config in
// Pulumi.<stack>.yaml). This runner compiles it with its own tsc (into tsconfig's outDir, when a
// source or the installed packages are newer than the output), then uses
// the Automation API's inline mode: the compiled entry module, required afresh, is the inline
// program (its exports are the stack outputs, as with the host); this process serves it as a
// language runtime and runs `pulumi <action> --client <addr>` in the program directory. The CLI,
// engine, @pulumi/pulumi and the provider are the real ones; no pulumi-language-nodejs binary is
// needed (docs/adr/0007-sdk-programs-via-automation.md).
//
// - node_modules: the program's own if it has one; otherwise a link to the environment that
//   tools/sdk-programs-env.sh installed for it (PROXMOX_TALOS_NODE_PROGRAMS, default
//   ~/.cache/proxmox-talos/node-programs, entry `<package name>-<checkout>`).
// - @pulumi/pulumi is loaded from the program's node_modules, so the runner and the program
//   share one runtime.
// - The stack is selected, or created when missing. Backend, passphrase and plugin settings come
//   from the environment; the provider from the project's `plugins.providers` path.
// - The CLI's output streams to stdout; exit status 0, or 1 with the error on stderr.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { createRequire } = require("module");
const { execFileSync } = require("child_process");

const ROOT = path.resolve(__dirname, "..");
const ACTIONS = ["up", "preview", "refresh", "destroy"];
const USAGE = "usage: node tools/run-program.js [--stack NAME] [--expect-no-changes] PROGRAM_DIR up|preview|refresh|destroy";

function parseArgs(argv) {
    const args = { stack: "dev", expectNoChanges: false, positional: [] };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--stack") {
            args.stack = argv[++i];
        } else if (a === "--expect-no-changes") {
            args.expectNoChanges = true;
        } else if (a.startsWith("-")) {
            throw new Error(`unknown option ${a}\n${USAGE}`);
        } else {
            args.positional.push(a);
        }
    }
    if (args.positional.length !== 2 || !ACTIONS.includes(args.positional[1]) || !args.stack) {
        throw new Error(USAGE);
    }
    return args;
}

/** Makes sure `dir/node_modules` exists, linking the prepared environment when it does not. */
function ensureNodeModules(dir, packageName) {
    const own = path.join(dir, "node_modules");
    if (fs.existsSync(own)) {
        return;
    }
    const base =
        process.env.PROXMOX_TALOS_NODE_PROGRAMS ||
        path.join(process.env.PROXMOX_TALOS_CACHE || path.join(os.homedir(), ".cache", "proxmox-talos"), "node-programs");
    const checkout = crypto.createHash("sha256").update(ROOT).digest("hex").slice(0, 8);
    const prepared = path.join(base, `${packageName}-${checkout}`, "node_modules");
    if (!fs.existsSync(prepared)) {
        throw new Error(`${dir} has no node_modules and ${prepared} does not exist: run tools/sdk-programs-env.sh`);
    }
    fs.symlinkSync(prepared, own, "dir");
}

/** Newest modification time (ms) of the TypeScript sources and settings under `dir`. */
function newestSource(dir, outDir) {
    let newest = 0;
    const walk = (d) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) {
                if (e.name !== "node_modules" && p !== outDir) {
                    walk(p);
                }
            } else if (/\.(ts|json)$/.test(e.name)) {
                newest = Math.max(newest, fs.statSync(p).mtimeMs);
            }
        }
    };
    walk(dir);
    // A reinstalled environment (e.g. a regenerated SDK) has new types.
    const lock = path.join(dir, "node_modules", ".package-lock.json");
    return fs.existsSync(lock) ? Math.max(newest, fs.statSync(lock).mtimeMs) : newest;
}

/** Compiles the project with its tsconfig unless its output is newer than every source;
 *  returns the compiled entry file. */
function compile(dir, main) {
    if (!main.endsWith(".ts")) {
        return path.join(dir, main);
    }
    const tsconfig = JSON.parse(fs.readFileSync(path.join(dir, "tsconfig.json"), "utf8"));
    const outDir = path.resolve(dir, tsconfig.compilerOptions?.outDir || ".");
    const entry = path.join(outDir, main.replace(/\.ts$/, ".js"));
    if (fs.existsSync(entry) && fs.statSync(entry).mtimeMs >= newestSource(dir, outDir)) {
        return entry;
    }
    const tsc = createRequire(path.join(dir, "package.json")).resolve("typescript/bin/tsc");
    try {
        execFileSync(process.execPath, [tsc, "-p", dir], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
        throw new Error(`tsc -p ${dir} failed:\n${e.stdout}${e.stderr}`);
    }
    return entry;
}

async function run(args) {
    const dir = path.resolve(args.positional[0]);
    const action = args.positional[1];
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    ensureNodeModules(dir, pkg.name);
    const entry = compile(dir, pkg.main || "index.ts");
    const programRequire = createRequire(path.join(dir, "package.json"));
    const auto = programRequire("@pulumi/pulumi/automation");
    const yaml = programRequire("js-yaml"); // a dependency of @pulumi/pulumi
    const project = yaml.load(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8"));
    // The language host runs programs in their directory; so do we.
    process.chdir(dir);

    const compiled = path.dirname(entry) + path.sep;
    const program = async () => {
        // Each run builds its resources anew: forget the program's modules from an earlier run.
        for (const key of Object.keys(require.cache)) {
            if (key.startsWith(compiled)) {
                delete require.cache[key];
            }
        }
        return programRequire(entry);
    };
    const stack = await auto.LocalWorkspace.createOrSelectStack(
        { stackName: args.stack, projectName: project.name, program },
        { workDir: dir },
    );
    const opts = { onOutput: (text) => process.stdout.write(text) };
    if (args.expectNoChanges && action !== "destroy") {
        opts.expectNoChanges = true;
    }
    let result;
    switch (action) {
        case "up":
            result = await stack.up(opts);
            break;
        case "preview":
            result = await stack.preview(opts);
            break;
        case "refresh":
            result = await stack.refresh(opts);
            break;
        default:
            result = await stack.destroy(opts);
    }
    const changes = result.summary?.resourceChanges ?? result.changeSummary;
    process.stderr.write(`run-program: ${action} ${result.summary?.result ?? "succeeded"}: ${JSON.stringify(changes)}\n`);
}

let args;
try {
    args = parseArgs(process.argv.slice(2));
} catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
}
run(args).then(
    () => process.exit(0),
    (e) => {
        process.stderr.write(`run-program: ${args.positional[1]} failed:\n${e && e.message ? e.message : e}\n`);
        process.exit(1);
    },
);
