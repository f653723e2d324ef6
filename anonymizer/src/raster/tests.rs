use super::area::union_area;
use super::*;

pub(super) const MARKER: &[u8] = b"PHI-MARKER-JOHN-DOE";

pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Deterministic pseudo-random bytes.
pub(super) fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

pub(super) fn region(x: u32, y: u32, w: u32, h: u32) -> Region {
    Region { x, y, w, h }
}

pub(super) fn inside(rects: &[Region], x: u32, y: u32) -> bool {
    rects
        .iter()
        .any(|r| x >= r.x && x < r.x.saturating_add(r.w) && y >= r.y && y < r.y.saturating_add(r.h))
}

#[test]
fn formats_are_sniffed_by_magic_bytes() {
    assert_eq!(sniff(&PNG_SIGNATURE), Some(RasterFormat::Png));
    assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(RasterFormat::Jpeg));
    assert_eq!(sniff(b"DICM"), None);
    assert_eq!(sniff(&[0xFF, 0xD8]), None);
    assert_eq!(
        anonymize(b"not an image", &[], 0, crate::engine::DEFAULT_MAX_DECODED),
        Err(Error::UnknownFormat)
    );
}

#[test]
fn union_area_counts_overlaps_once() {
    assert_eq!(union_area(&[]), 0);
    assert_eq!(union_area(&[(0, 0, 4, 4), (2, 2, 6, 6)]), 28);
    assert_eq!(union_area(&[(0, 0, 4, 4), (0, 0, 4, 4), (1, 1, 2, 2)]), 16);
    assert_eq!(union_area(&[(0, 0, 2, 10), (5, 0, 7, 10), (1, 3, 6, 4)]), 20 + 20 + 3);
}

#[test]
fn outcome_serializes_with_a_lowercase_format() {
    let outcome = RasterOutcome {
        format: RasterFormat::Jpeg,
        width: 1,
        height: 2,
        metadata_segments_removed: 3,
        burned_area: 4,
        reencoded: false,
    };
    let json = serde_json::to_string(&outcome).expect("serializes");
    assert!(json.contains("\"format\":\"jpeg\""), "{json}");
    assert!(json.contains("\"metadata_segments_removed\":3"), "{json}");
}
