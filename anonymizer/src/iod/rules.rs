//! The two rules the IOD records are built and looked up with. This file is
//! also compiled into `build.rs`, so it uses nothing but `core`.

/// The FNV-1a hash of a sequence path (the tags of the enclosing sequences,
/// outermost first, each normalised); the empty path is the top level.
pub fn path_hash(path: &[u32]) -> u64 {
    path.iter().fold(0xcbf2_9ce4_8422_2325, |h, tag| step(h, *tag))
}

/// The hash of a path one sequence deeper than the path hashed to `hash`.
pub fn step(hash: u64, tag: u32) -> u64 {
    normalise(tag)
        .to_be_bytes()
        .iter()
        .fold(hash, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A tag as the tables name it: the repeating groups 50xx (curves) and 60xx
/// (overlays) as their first group, 5000 and 6000.
pub fn normalise(tag: u32) -> u32 {
    let group = tag >> 16;
    let repeating = (0x5000..=0x501E).contains(&group) || (0x6000..=0x601E).contains(&group);
    if repeating && group.is_multiple_of(2) {
        tag & 0xFF00_FFFF
    } else {
        tag
    }
}
