//! Tests of `format`: sizes, property strings, URL encoding, identifiers, durations.

use super::*;

#[test]
fn sizes_with_units_parse_to_bytes_and_round_up_to_gib() {
    assert_eq!(parse_size("32G"), Some(32 * GIB));
    assert_eq!(parse_size("3584M"), Some(3584 << 20));
    assert_eq!(gib_ceil(parse_size("3584M").unwrap()), 4);
    assert_eq!(parse_size("512K"), Some(512 << 10));
    assert_eq!(parse_size("1T"), Some(1 << 40));
    assert_eq!(parse_size("1.5G"), Some(GIB + GIB / 2));
    assert_eq!(parse_size("4194304"), Some(4 << 20));
    assert_eq!(parse_size("4m"), Some(4 << 20));
    assert_eq!(parse_size("G"), None);
    assert_eq!(parse_size("12X"), None);
    assert_eq!(gib_ceil(0), 0);
    assert_eq!(gib_ceil(GIB), 1);
    assert_eq!(gib_ceil(GIB + 1), 2);
}

#[test]
fn property_strings_parse_and_print_canonically() {
    let p = PropString::parse("local-zfs:vm-100-disk-0,size=32G,iothread=1,discard=on", "file");
    assert_eq!(p.get("file"), Some("local-zfs:vm-100-disk-0"));
    assert_eq!(p.canonical("file"), "local-zfs:vm-100-disk-0,discard=on,iothread=1,size=32G");
    let a = PropString::parse("enabled=1,type=virtio", "enabled");
    let b = PropString::parse("1", "enabled");
    assert_eq!(a.normalised(&[("type", "virtio")]), b.normalised(&[("type", "virtio")]));
}

#[test]
fn url_encoding_matches_pve_and_round_trips() {
    let key = "ssh-ed25519 AAAAC3Nza+/= me@host\nssh-rsa AAAB";
    let enc = url_encode(key);
    assert_eq!(enc, "ssh-ed25519%20AAAAC3Nza%2B%2F%3D%20me%40host%0Assh-rsa%20AAAB");
    assert_eq!(url_decode(&enc), key);
    assert_eq!(url_decode("100%"), "100%");
    assert_eq!(url_decode("%zz"), "%zz");
}

#[test]
fn identifiers_and_addresses() {
    assert!(is_pci_id("0000:28:00.0") && is_pci_id("28:00.0") && is_pci_id("28:00"));
    assert!(!is_pci_id("28:0.0") && !is_pci_id("0000:28:00.10") && !is_pci_id("gpu"));
    assert!(check_mac("BC:24:11:00:00:01").is_ok());
    assert!(check_mac("01:00:5E:00:00:01").unwrap_err().contains("multicast"));
    assert!(check_mac("BC:24:11:00:00").is_err());
    for ok in ["pc", "q35", "pc-q35-8.1", "pc-q35-9.2+pve1", "pc-i440fx-9.0.pxe", "virt", "virt-9.0"] {
        assert!(is_machine_type(ok), "{ok}");
    }
    for bad in ["q36", "pc-q35", "pc-q35-8", "i440fx"] {
        assert!(!is_machine_type(bad), "{bad}");
    }
    assert!(is_q35("q35,viommu=virtio") && is_q35("pc-q35-8.1") && !is_q35("pc"));
    assert_eq!(disk_slot("scsi30"), Some((Bus::Scsi, 30)));
    assert!(!is_disk_key("scsi31") && !is_disk_key("scsi01") && is_disk_key("virtio15"));
    assert_eq!(volid_content("local:iso/talos.img"), Some("iso"));
    assert_eq!(volid_content("local-zfs:vm-100-disk-0"), None);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert!(parse_duration("15").is_err() && parse_duration("m").is_err() && parse_duration("15 minutes").is_err());
}
