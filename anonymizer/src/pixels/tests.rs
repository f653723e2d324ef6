use super::encapsulated::check_jpeg_header;
use super::native::fill_bits;
use super::*;

fn gray(rows: u32, cols: u32, bits: u32) -> Geometry {
    Geometry {
        rows,
        cols,
        samples: 1,
        bits,
        planar: false,
        frames: 1,
        subsampled_422: false,
        ybr: false,
    }
}

#[test]
fn a_region_is_filled_and_nothing_else_changes() {
    let g = gray(4, 4, 16);
    let mut data: Vec<u8> = (0..32).map(|i| i as u8 + 1).collect();
    let before = data.clone();
    let plan = BurnPlan {
        rects: vec![(Region { x: 1, y: 1, w: 2, h: 2 }, RegionSource::Profile)],
        keep_only: None,
        fill: 0,
    };
    assert_eq!(burn_native(&mut data, &g, &plan).ok(), Some(4));
    for y in 0..4 {
        for x in 0..4 {
            let i = (y * 4 + x) * 2;
            let inside = (1..3).contains(&x) && (1..3).contains(&y);
            if inside {
                assert_eq!(&data[i..i + 2], &[0, 0]);
            } else {
                assert_eq!(&data[i..i + 2], &before[i..i + 2]);
            }
        }
    }
}

#[test]
fn ultrasound_keep_only_fills_outside_the_union() {
    let g = gray(2, 4, 8);
    let mut data = vec![9u8; 8];
    let plan = BurnPlan {
        rects: vec![],
        keep_only: Some(vec![Region { x: 1, y: 0, w: 2, h: 1 }]),
        fill: 0,
    };
    assert_eq!(burn_native(&mut data, &g, &plan).ok(), Some(6));
    assert_eq!(data, vec![0, 9, 9, 0, 0, 0, 0, 0]);
}

#[test]
fn short_pixel_data_is_a_typed_error() {
    let g = gray(10, 10, 16);
    let plan = BurnPlan {
        rects: vec![(Region { x: 0, y: 0, w: 1, h: 1 }, RegionSource::Profile)],
        keep_only: None,
        fill: 0,
    };
    assert!(matches!(burn_native(&mut [0u8; 10], &g, &plan), Err(Error::PixelData { .. })));
}

#[test]
fn planar_rgb_fills_every_plane() {
    let g = Geometry {
        samples: 3,
        planar: true,
        ..gray(1, 2, 8)
    };
    let mut data = vec![7u8; 6];
    let plan = BurnPlan {
        rects: vec![(Region { x: 1, y: 0, w: 1, h: 1 }, RegionSource::Profile)],
        keep_only: None,
        fill: 0,
    };
    burn_native(&mut data, &g, &plan).ok();
    assert_eq!(data, vec![7, 0, 7, 0, 7, 0]);
}

#[test]
fn a_jpeg_whose_size_differs_from_the_attributes_is_refused_before_decoding() {
    let g = gray(4, 4, 8);
    let sof = |h: u8, w: u8| vec![0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, h, 0, w, 1, 1, 0x11, 0];
    assert!(check_jpeg_header(&sof(4, 4), &g).is_ok());
    assert!(check_jpeg_header(&sof(4, 5), &g).is_err());
    assert!(check_jpeg_header(&[0xFF, 0xD8, 0xFF], &g).is_err());
    assert!(check_jpeg_header(b"not a jpeg", &g).is_err());
}

#[test]
fn packed_bits_are_cleared_lsb_first() {
    let mut data = vec![0xFFu8; 2];
    fill_bits(&mut data, 0, 8, &vec![(0, 1, 3)], false);
    assert_eq!(data, vec![0b1111_1001, 0xFF]);
}
