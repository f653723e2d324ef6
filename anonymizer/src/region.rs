//! Rectangles of pixels to burn out, and where each one came from.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A rectangle in pixel coordinates: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Region {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in columns.
    pub w: u32,
    /// Height in rows.
    pub h: u32,
}

impl Region {
    /// Parses `x,y,w,h` (spaces allowed).
    pub fn parse(text: &str) -> Result<Region> {
        let bad = || Error::Region {
            text: text.chars().take(64).collect(),
        };
        let parts: Vec<u32> = text
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match parts[..] {
            [x, y, w, h] => Ok(Region { x, y, w, h }),
            _ => Err(bad()),
        }
    }

    /// The part of this region inside a `cols` × `rows` image, as (x0, y0, x1, y1) half-open, or None if empty.
    pub fn clip(&self, cols: u32, rows: u32) -> Option<(u32, u32, u32, u32)> {
        let x1 = self.x.saturating_add(self.w).min(cols);
        let y1 = self.y.saturating_add(self.h).min(rows);
        (self.x < x1 && self.y < y1).then_some((self.x, self.y, x1, y1))
    }
}

/// Where a region came from, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionSource {
    /// Given on the command line or in the profile.
    Profile,
    /// A signature of the rule library matched.
    Rule,
    /// Outside the union of the SequenceOfUltrasoundRegions.
    Ultrasound,
    /// Text the burned-in text safety net found ([`crate::ocr`]).
    Ocr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_from_four_integers() {
        assert_eq!(Region::parse("1, 2,3,4").ok(), Some(Region { x: 1, y: 2, w: 3, h: 4 }));
        assert!(Region::parse("1,2,3").is_err());
        assert!(Region::parse("-1,2,3,4").is_err());
    }

    #[test]
    fn clipping_keeps_regions_inside_the_image() {
        let r = Region { x: 5, y: 5, w: 100, h: 2 };
        assert_eq!(r.clip(10, 10), Some((5, 5, 10, 7)));
        assert_eq!(Region { x: 20, y: 0, w: 1, h: 1 }.clip(10, 10), None);
    }
}
