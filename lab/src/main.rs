//! `proxmox-talos-lab`: the simulated homelab. Its Proxmox VE API, Talos nodes and
//! Image Factory land with the lab issue; until then the binary only says so.

fn main() {
    eprintln!("proxmox-talos-lab: the simulated homelab is not built yet (see the lab issue)");
    std::process::exit(2);
}
