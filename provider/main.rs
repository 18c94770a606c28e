//! `pulumi-resource-proxmox-talos`: the plugin the Pulumi engine launches.
//!
//! `pulumi-resource-proxmox-talos [--logtostderr] [-v=N] [--tracing X] [ENGINE_ADDRESS]`
//! serves the provider (without an address it waits for `Attach`);
//! `pulumi-resource-proxmox-talos schema` prints the package schema;
//! `pulumi-resource-proxmox-talos bench` measures start-up, GetSchema and memory.
//! With `PROXMOX_TALOS_RUSAGE_FILE` set, the serving plugin writes its CPU time
//! and peak RSS there when it stops (see [`proxmox_talos::rusage`]).

use proxmox_talos::{bench, resources, rpc::launch, rusage, schema::package};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("schema") => print!("{}", package::to_json_text(&resources::registry())),
        Some("bench") => {
            if let Err(e) = bench::run(&args[1..]) {
                eprintln!("bench failed: {e}");
                std::process::exit(1);
            }
        }
        Some("--version") => println!("{}", package::VERSION),
        _ => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            let engine = launch::engine_address(&args);
            let started = std::time::Instant::now();
            let served = runtime.block_on(launch::serve(resources::registry(), engine));
            rusage::write_if_requested(started);
            if let Err(e) = served {
                eprintln!("pulumi-resource-proxmox-talos: {e}");
                std::process::exit(1);
            }
        }
    }
}
