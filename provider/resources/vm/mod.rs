//! `vm:VirtualMachine`, the pure half: the typed inputs and outputs ([`args`],
//! their nested blocks in [`blocks`]), validation before any API call
//! ([`check`]), inputs to Proxmox VE parameters ([`encode`]) and a VM's
//! configuration back to inputs ([`decode`]). The PVE value formats the three
//! share (property strings, sizes, URL encoding, bus names) are in [`format`].
//!
//! Must not: call the API, sleep or read the clock. The resource itself (create,
//! read, update, delete) is in [`resource`], its robust API steps in [`steps`].

pub mod addresses;
pub mod args;
pub mod blocks;
pub mod check;
pub mod decode;
pub mod encode;
pub mod format;
pub mod journal;
pub mod resource;
pub mod steps;

#[cfg(test)]
mod roundtrip_tests;
