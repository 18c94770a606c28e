//! A minimal, correct QCOW2 (version 3) writer and reader, so the factory's
//! `.qcow2` images are real qcow2 files that `qemu-img info`/`check` accept
//! and the lab reads back.
//!
//! Owns: [`write`] (header, L1 table, refcount table and blocks, L2 tables,
//! then one data cluster per guest cluster that holds a non-zero byte; all
//! refcounts 1, every table entry flagged `COPIED`; no backing file,
//! extensions, snapshots, compression or encryption) and [`read`] (the
//! guest content of such a file, or of any qcow2 using standard clusters:
//! unallocated and zero-flagged clusters read as zeros).
//! Must not: do IO (callers hand in and take bytes).

/// The qcow2 magic, `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// The size of a version 3 header (no extensions).
const HEADER_LENGTH: u32 = 104;
/// 16-bit refcounts (QEMU's default `refcount_bits=16`).
const REFCOUNT_ORDER: u32 = 4;
/// `COPIED`: the cluster's refcount is exactly one (L1 and L2 entries).
const COPIED: u64 = 1 << 63;
/// `COMPRESSED` (L2 entries).
const COMPRESSED: u64 = 1 << 62;
/// Bits 9-55 of an L1/L2 entry: the host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;

/// The qcow2 container of `content` (the guest disk; its length, rounded up
/// to 512 bytes, is the virtual size) with clusters of `1 << cluster_bits`
/// bytes (9..=21; QEMU's default is 16).
pub fn write(content: &[u8], cluster_bits: u32) -> Vec<u8> {
    assert!((9..=21).contains(&cluster_bits), "cluster_bits {cluster_bits} outside 9..=21");
    let cluster = 1usize << cluster_bits;
    let virtual_size = content.len().div_ceil(512) * 512;
    let l2_entries = cluster / 8;
    let guest_clusters = virtual_size.div_ceil(cluster);
    let l1_size = guest_clusters.div_ceil(l2_entries);
    let l1_clusters = (l1_size * 8).div_ceil(cluster).max(1);
    // Guest clusters holding data, and the L2 tables (by L1 index) they need.
    let data: Vec<usize> = (0..guest_clusters)
        .filter(|&g| {
            content[(g * cluster).min(content.len())..((g + 1) * cluster).min(content.len())].iter().any(|&b| b != 0)
        })
        .collect();
    let mut l2_tables: Vec<usize> = data.iter().map(|g| g / l2_entries).collect();
    l2_tables.dedup();
    // Refcount table and blocks must also count themselves: grow to a fixed point.
    let fixed = 1 + l1_clusters + l2_tables.len() + data.len();
    let per_block = (cluster * 8) >> REFCOUNT_ORDER;
    let (mut table_clusters, mut blocks) = (1, 1);
    loop {
        let total = fixed + table_clusters + blocks;
        let need_blocks = total.div_ceil(per_block);
        let need_table = (need_blocks * 8).div_ceil(cluster).max(1);
        if (need_blocks, need_table) == (blocks, table_clusters) {
            break;
        }
        (blocks, table_clusters) = (need_blocks, need_table);
    }
    let total_clusters = fixed + table_clusters + blocks;
    let l1_at = 1;
    let table_at = l1_at + l1_clusters;
    let blocks_at = table_at + table_clusters;
    let l2_at = blocks_at + blocks;
    let data_at = l2_at + l2_tables.len();
    let mut out = vec![0u8; total_clusters * cluster];
    let put64 = |out: &mut [u8], at: usize, v: u64| out[at..at + 8].copy_from_slice(&v.to_be_bytes());
    let put32 = |out: &mut [u8], at: usize, v: u32| out[at..at + 4].copy_from_slice(&v.to_be_bytes());

    // Header (version 3), then the end-of-extensions marker (8 zero bytes, already zero).
    out[0..4].copy_from_slice(&MAGIC);
    put32(&mut out, 4, 3);
    put32(&mut out, 20, cluster_bits);
    put64(&mut out, 24, virtual_size as u64);
    put32(&mut out, 36, l1_size as u32);
    put64(&mut out, 40, (l1_at * cluster) as u64);
    put64(&mut out, 48, (table_at * cluster) as u64);
    put32(&mut out, 56, table_clusters as u32);
    put32(&mut out, 96, REFCOUNT_ORDER);
    put32(&mut out, 100, HEADER_LENGTH);

    for (i, l1_index) in l2_tables.iter().enumerate() {
        put64(&mut out, l1_at * cluster + l1_index * 8, ((l2_at + i) * cluster) as u64 | COPIED);
    }
    for (i, &g) in data.iter().enumerate() {
        let table = l2_tables.iter().position(|&t| t == g / l2_entries).expect("an L2 table per data cluster");
        let host = (data_at + i) * cluster;
        put64(&mut out, (l2_at + table) * cluster + (g % l2_entries) * 8, host as u64 | COPIED);
        let from = g * cluster;
        let to = ((g + 1) * cluster).min(content.len());
        out[host..host + (to - from)].copy_from_slice(&content[from..to]);
    }
    for b in 0..blocks {
        put64(&mut out, table_at * cluster + b * 8, ((blocks_at + b) * cluster) as u64);
    }
    for c in 0..total_clusters {
        let at = blocks_at * cluster + c * 2;
        out[at..at + 2].copy_from_slice(&1u16.to_be_bytes());
    }
    out
}

/// What a qcow2 header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub cluster_bits: u32,
    pub virtual_size: u64,
    pub backing_file: bool,
    /// Incompatible feature bit 2: an external data file.
    pub external_data_file: bool,
    pub l1_size: u32,
    pub l1_table_offset: u64,
}

/// Reads the header of a qcow2 file from its first bytes (at least 72, 80
/// for version 3); `None` if it is not qcow2.
pub fn header(bytes: &[u8]) -> Option<Header> {
    if bytes.len() < 72 || bytes[..4] != MAGIC {
        return None;
    }
    let be32 = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap_or_default());
    let be64 = |o: usize| u64::from_be_bytes(bytes[o..o + 8].try_into().unwrap_or_default());
    let version = be32(4);
    if !(2..=3).contains(&version) {
        return None;
    }
    let incompatible = if version >= 3 && bytes.len() >= 80 { be64(72) } else { 0 };
    Some(Header {
        version,
        cluster_bits: be32(20),
        virtual_size: be64(24),
        backing_file: be64(8) != 0,
        external_data_file: incompatible & 0x4 != 0,
        l1_size: be32(36),
        l1_table_offset: be64(40),
    })
}

/// The first `limit` bytes (at most the virtual size) of the guest disk in
/// qcow2 file `bytes`; `Err` says what is wrong (not qcow2, a backing file,
/// compressed clusters, a table or cluster past the end of the file).
pub fn read(bytes: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let h = header(bytes).ok_or("not a qcow2 image")?;
    if h.backing_file || h.external_data_file {
        return Err("qcow2 image needs a backing or data file".into());
    }
    if !(9..=21).contains(&h.cluster_bits) {
        return Err(format!("qcow2 cluster_bits {} outside 9..=21", h.cluster_bits));
    }
    let cluster = 1u64 << h.cluster_bits;
    let len = h.virtual_size.min(limit);
    let mut out = vec![0u8; len as usize];
    let at = |offset: u64, n: u64| -> Result<&[u8], String> {
        let end = offset.checked_add(n).filter(|&e| e <= bytes.len() as u64).ok_or("qcow2 offset past the end")?;
        Ok(&bytes[offset as usize..end as usize])
    };
    let entry =
        |offset: u64| -> Result<u64, String> { Ok(u64::from_be_bytes(at(offset, 8)?.try_into().unwrap_or_default())) };
    let l2_entries = cluster / 8;
    let mut guest = 0u64;
    while guest < len {
        let g = guest / cluster;
        let (l1_index, l2_index) = (g / l2_entries, g % l2_entries);
        if l1_index >= u64::from(h.l1_size) {
            return Err("qcow2 L1 table too small for the virtual size".into());
        }
        let l2 = entry(h.l1_table_offset + l1_index * 8)? & OFFSET_MASK;
        let n = (cluster).min(len - guest);
        if l2 != 0 {
            let e = entry(l2 + l2_index * 8)?;
            if e & COMPRESSED != 0 {
                return Err("compressed qcow2 clusters are not supported by the lab".into());
            }
            let host = e & OFFSET_MASK;
            let zero = e & 1 != 0;
            if host != 0 && !zero {
                out[guest as usize..(guest + n) as usize].copy_from_slice(at(host, n)?);
            }
        }
        guest += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trips_and_only_non_zero_clusters_are_stored() {
        let mut content = vec![0u8; 3 * 4096 + 100];
        content[..5].copy_from_slice(b"hello");
        content[2 * 4096 + 7] = 9;
        let image = write(&content, 12);
        let h = header(&image).unwrap();
        assert_eq!((h.version, h.cluster_bits, h.virtual_size), (3, 12, 3 * 4096 + 512));
        // header, L1, refcount table, refcount block, one L2 table, two data clusters
        assert_eq!(image.len(), 7 * 4096);
        let back = read(&image, u64::MAX).unwrap();
        assert_eq!(&back[..content.len()], &content[..]);
        assert!(back[content.len()..].iter().all(|&b| b == 0));
        assert_eq!(read(&image, 5).unwrap(), b"hello");
    }

    #[test]
    fn large_sparse_disks_need_several_l2_tables_and_stay_small() {
        // 512-byte clusters: 64 entries per L2 table, so 40 KiB spans several tables.
        let mut content = vec![0u8; 40 * 1024];
        content[0] = 1;
        content[39 * 1024] = 2;
        let image = write(&content, 9);
        assert_eq!(read(&image, u64::MAX).unwrap(), content);
        assert!(image.len() < content.len() / 4, "{} bytes", image.len());
        assert!(read(b"not qcow2 at all, not at all, really not qcow2 at all, not a qcow2 file, no", 10).is_err());
    }
}
