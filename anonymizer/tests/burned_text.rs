//! The burned-in text safety net on real images with text the test draws: a CT, an MR, an
//! ultrasound, secondary captures and a multi-frame image, words in several fonts, sizes,
//! colours and corners. The checker is the `tesseract` command (Debian's tesseract-ocr), run on
//! the image before (it must read every planted word, or the test proves nothing) and after
//! default processing (it must read none). Pixels outside the text boxes stay exact, and only a
//! few percent of any image change. CT and MR files without text get nothing blanked.

mod common;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use alpes_anonymizer::dataset::{Element, Value, Vr, PIXEL_DATA};
use alpes_anonymizer::ocr::{self, Luma, OcrMode, Terms};
use alpes_anonymizer::pixels::BurnPlan;
use alpes_anonymizer::region::RegionSource;
use alpes_anonymizer::{anonymize, parse, write};
use dicom_pixeldata::PixelDecoder;
use std::process::Command;

const FONTS: &str = "/usr/share/fonts/truetype/dejavu";

/// A decoded image: native little-endian samples, interleaved.
#[derive(Clone)]
struct Image {
    rows: usize,
    cols: usize,
    frames: usize,
    samples: usize,
    /// Bytes per sample (1 or 2).
    depth: usize,
    data: Vec<u8>,
}

impl Image {
    fn decode(bytes: &[u8]) -> Image {
        let tmp = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(tmp.path(), bytes).expect("write");
        let obj = dicom_object::open_file(tmp.path()).expect("open");
        let d = obj.decode_pixel_data().expect("decode");
        let (rows, cols, frames, samples) = (
            d.rows() as usize,
            d.columns() as usize,
            d.number_of_frames() as usize,
            d.samples_per_pixel() as usize,
        );
        let data = d.data().to_vec();
        let depth = data.len() / (rows * cols * frames * samples);
        Image {
            rows,
            cols,
            frames,
            samples,
            depth,
            data,
        }
    }

    /// The image enlarged `k` times (real anatomy at a display size text fits on).
    fn enlarged(&self, k: usize) -> Image {
        let px = self.samples * self.depth;
        let (rows, cols) = (self.rows * k, self.cols * k);
        let mut data = Vec::with_capacity(self.data.len() * k * k);
        for f in 0..self.frames {
            for y in 0..rows {
                for x in 0..cols {
                    let i = ((f * self.rows + y / k) * self.cols + x / k) * px;
                    data.extend_from_slice(&self.data[i..i + px]);
                }
            }
        }
        Image { rows, cols, data, ..*self }
    }

    fn value(&self, f: usize, x: usize, y: usize, s: usize) -> u32 {
        let i = (((f * self.rows + y) * self.cols + x) * self.samples + s) * self.depth;
        if self.depth == 2 {
            u32::from(u16::from_le_bytes([self.data[i], self.data[i + 1]]))
        } else {
            u32::from(self.data[i])
        }
    }

    fn set(&mut self, f: usize, x: usize, y: usize, s: usize, v: u32) {
        let i = (((f * self.rows + y) * self.cols + x) * self.samples + s) * self.depth;
        if self.depth == 2 {
            self.data[i..i + 2].copy_from_slice(&(v as u16).to_le_bytes());
        } else {
            self.data[i] = v as u8;
        }
    }

    /// One frame as 8-bit grey for the checker, stretched between its extremes.
    fn grey(&self, f: usize) -> Vec<u8> {
        let luma = |x, y| -> u32 {
            if self.samples == 3 {
                (77 * self.value(f, x, y, 0) + 150 * self.value(f, x, y, 1) + 29 * self.value(f, x, y, 2)) >> 8
            } else {
                self.value(f, x, y, 0)
            }
        };
        let all: Vec<u32> = (0..self.rows)
            .flat_map(|y| (0..self.cols).map(move |x| (x, y)))
            .map(|(x, y)| luma(x, y))
            .collect();
        let (lo, hi) = (all.iter().min().copied().unwrap_or(0), all.iter().max().copied().unwrap_or(1));
        all.iter().map(|v| ((v - lo) * 255 / (hi - lo).max(1)) as u8).collect()
    }
}

/// A word to draw: text, font file, pixel size, colour (a fraction of the brightest value per
/// sample), and corner (0 top left, 1 top right, 2 bottom left, 3 bottom right).
struct Word {
    text: &'static str,
    font: &'static str,
    size: f32,
    colour: [f32; 3],
    corner: u8,
}

/// Draws the words (antialiased) on every frame; returns each word's box (x0, y0, x1, y1).
fn draw(img: &mut Image, words: &[Word]) -> Vec<(usize, usize, usize, usize)> {
    let every = 0..img.frames;
    draw_on(img, words, every)
}

/// [`draw`] on the frames `on` only.
fn draw_on(img: &mut Image, words: &[Word], on: std::ops::Range<usize>) -> Vec<(usize, usize, usize, usize)> {
    let top = if img.depth == 2 {
        img.data
            .chunks_exact(2)
            .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
            .max()
            .unwrap_or(255)
    } else {
        255
    };
    let mut boxes = Vec::new();
    for w in words {
        let bytes = std::fs::read(format!("{FONTS}/{}", w.font)).expect("a DejaVu font (fonts-dejavu-core)");
        let font = FontRef::try_from_slice(&bytes).expect("font");
        let scaled = font.as_scaled(PxScale::from(w.size));
        let width: f32 = w.text.chars().map(|c| scaled.h_advance(font.glyph_id(c))).sum();
        let height = scaled.ascent() - scaled.descent();
        let margin = 6.0;
        let x0 = if w.corner % 2 == 0 {
            margin
        } else {
            img.cols as f32 - width - margin
        };
        let y0 = if w.corner < 2 { margin } else { img.rows as f32 - height - margin };
        let (mut bx0, mut by0, mut bx1, mut by1) = (usize::MAX, usize::MAX, 0, 0);
        let mut caret = x0;
        for c in w.text.chars() {
            let glyph = font
                .glyph_id(c)
                .with_scale_and_position(w.size, ab_glyph::point(caret, y0 + scaled.ascent()));
            caret += scaled.h_advance(font.glyph_id(c));
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (x, y) = (b.min.x as i64 + i64::from(gx), b.min.y as i64 + i64::from(gy));
                if x < 0 || y < 0 || x as usize >= img.cols || y as usize >= img.rows || coverage <= 0.0 {
                    return;
                }
                let (x, y) = (x as usize, y as usize);
                (bx0, by0, bx1, by1) = (bx0.min(x), by0.min(y), bx1.max(x + 1), by1.max(y + 1));
                for f in on.clone() {
                    for s in 0..img.samples {
                        let old = img.value(f, x, y, s) as f32;
                        let ink = w.colour[s.min(2)] * top as f32;
                        img.set(f, x, y, s, (old * (1.0 - coverage) + ink * coverage).round() as u32);
                    }
                }
            });
        }
        boxes.push((bx0, by0, bx1, by1));
    }
    boxes
}

/// The file `name` with `img` as its pixel data and `header`'s CS values, written native
/// Explicit VR Little Endian.
fn with_pixels(name: &str, img: &Image, header: &[(u32, &str)]) -> Vec<u8> {
    let input = std::fs::read(common::fixtures().join(name)).expect("read");
    let layout = parse::layout(&input).expect("layout");
    let mut ds = parse::dataset(&input[layout.dataset_start..], layout.transfer_syntax.encoding, 32).expect("parse");
    let us = |v: usize| (v as u16).to_le_bytes().to_vec();
    ds.put(Element::bytes(0x0028_0010, Vr::US, us(img.rows)));
    ds.put(Element::bytes(0x0028_0011, Vr::US, us(img.cols)));
    if img.samples == 3 {
        ds.put(Element::text(0x0028_0004, Vr::CS, "RGB"));
        ds.put(Element::bytes(0x0028_0006, Vr::US, us(0)));
    }
    for &(tag, value) in header {
        ds.put(Element::text(tag, Vr::CS, value));
    }
    let vr = if img.depth == 2 { Vr::OW } else { Vr::OB };
    ds.put(Element::bytes(PIXEL_DATA, vr, img.data.clone()));
    let class = ds.text(0x0008_0016).unwrap_or("1.2.840.10008.5.1.4.1.1.7").to_owned();
    let instance = ds.text(0x0008_0018).unwrap_or("1.2.3.4").to_owned();
    let meta = write::Meta {
        sop_class: &class,
        sop_instance: &instance,
        transfer_syntax: "1.2.840.10008.1.2.1",
    };
    assert!(matches!(ds.get(PIXEL_DATA).map(|e| &e.value), Some(Value::Bytes(_))));
    write::part10(&ds, &meta, true, img.data.len() + 4096).bytes
}

/// What the `tesseract` command reads in one frame, upper-case letters and digits only: the whole
/// frame (sparse text, the mode that finds words scattered in corners) and the neighbourhood of
/// each planted word (one line), each as it is and inverted.
fn tesseract_reads(img: &Image, f: usize, boxes: &[(usize, usize, usize, usize)]) -> String {
    let grey = img.grey(f);
    let whole = (0, 0, img.cols, img.rows);
    let around = boxes.iter().map(|&(x0, y0, x1, y1)| {
        let m = y1 - y0;
        (
            x0.saturating_sub(m),
            y0.saturating_sub(m),
            (x1 + m).min(img.cols),
            (y1 + m).min(img.rows),
        )
    });
    let mut read = String::new();
    for (k, (x0, y0, x1, y1)) in std::iter::once(whole).chain(around).enumerate() {
        let psm = if k == 0 { "11" } else { "7" };
        let crop: Vec<u8> = (y0..y1)
            .flat_map(|y| grey[y * img.cols + x0..y * img.cols + x1].iter().copied())
            .collect();
        for inverted in [false, true] {
            let pixels: Vec<u8> = if inverted {
                crop.iter().map(|v| 255 - v).collect()
            } else {
                crop.clone()
            };
            read.push_str(&tesseract(&pixels, x1 - x0, y1 - y0, psm));
        }
    }
    read
}

fn tesseract(pixels: &[u8], w: usize, h: usize, psm: &str) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("frame.pgm");
    let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
    pgm.extend_from_slice(pixels);
    std::fs::write(&path, pgm).expect("write pgm");
    let out = Command::new("tesseract")
        .arg(&path)
        .args(["stdout", "--psm", psm])
        .env("OMP_THREAD_LIMIT", "1")
        .output()
        .expect("the tesseract command (Debian's tesseract-ocr) runs");
    normal(&String::from_utf8_lossy(&out.stdout))
}

/// Whether `read` holds `word`, or `word` with one character misread.
fn holds(read: &str, word: &str) -> bool {
    let (r, w) = (read.as_bytes(), normal(word).into_bytes());
    r.windows(w.len())
        .any(|win| win.iter().zip(&w).filter(|(a, b)| a != b).count() <= 1)
}

fn normal(word: &str) -> String {
    word.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Plants `words` on `name` (enlarged `k` times), anonymizes with the default profile and checks
/// everything the issue asks. An image with text of its own (`own_text`) may change around that
/// text too, but only inside the reported boxes.
fn check(name: &str, k: usize, words: &[Word], own_text: bool) {
    let original = Image::decode(&std::fs::read(common::fixtures().join(name)).expect("read"));
    let mut img = original.enlarged(k);
    let boxes = draw(&mut img, words);
    // A device may say it burned nothing in (BurnedInAnnotation NO) while a screen capture or a
    // PACS added text: the safety net is what catches it, so the test images say NO.
    let input = with_pixels(name, &img, &[(0x0028_0301, "NO")]);
    let planted = Image::decode(&input);
    // The checker reads the first, middle and last frames (the words are on every frame).
    let sample = |n: usize| -> Vec<usize> {
        let mut f = vec![0, n / 2, n - 1];
        f.dedup();
        f
    };
    for f in sample(planted.frames) {
        let read = tesseract_reads(&planted, f, &boxes);
        for w in words {
            assert!(
                holds(&read, w.text),
                "{name} frame {f}: the checker cannot read {:?} before (reads {read:?})",
                w.text
            );
        }
    }
    let cfg = common::config();
    assert_eq!(cfg.ocr, OcrMode::AllText, "all-text is the default");
    let out = anonymize(&input, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
    let ocr = out
        .report
        .ocr
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: the safety net did not run: {:?}", out.report.notes));
    assert!(ocr.text_lines as usize >= words.len(), "{name}: {ocr:?}");
    assert_eq!(ocr.label(), "texto_incrustado", "{name}");
    assert!(ocr.confidence >= 50.0 && ocr.confidence <= 100.0, "{name}: {ocr:?}");
    assert_eq!(ocr.residual_lines, 0, "{name}: the output still reads as PHI: {ocr:?}");
    // The residual check does see PHI where it is: on the input, before blanking.
    let input_frame = Luma {
        width: planted.cols as u32,
        height: planted.rows as u32,
        pixels: planted.grey(0),
    };
    let unblanked = ocr::residual([input_frame], &Terms::default(), &mut ocr::Readings::default()).expect("read");
    assert!(unblanked >= 1, "{name}: the residual check reads no PHI before blanking");
    // The report holds counts and boxes, never what was read.
    let report = normal(&serde_json::to_string(&out.report).expect("report json"));
    for w in words {
        assert!(!report.contains(&normal(w.text)), "{name}: the report names {:?}", w.text);
    }
    let after = Image::decode(&out.bytes);
    for f in sample(after.frames) {
        let read = tesseract_reads(&after, f, &boxes);
        for w in words {
            assert!(!holds(&read, w.text), "{name} frame {f}: {:?} is still readable ({read:?})", w.text);
        }
    }
    // Only pixels near a planted word change, and every one of them is inside a reported box.
    let regions: Vec<_> = out
        .report
        .regions
        .iter()
        .filter(|r| r.source == RegionSource::Ocr)
        .map(|r| r.region)
        .collect();
    let near = |x: usize, y: usize| {
        boxes.iter().any(|&(x0, y0, x1, y1)| {
            let m = (y1 - y0) / 2 + 4;
            x + m >= x0 && x < x1 + m && y + m >= y0 && y < y1 + m
        })
    };
    let reported = |x: usize, y: usize| {
        regions
            .iter()
            .any(|r| (r.x as usize..(r.x + r.w) as usize).contains(&x) && (r.y as usize..(r.y + r.h) as usize).contains(&y))
    };
    let mut changed = 0usize;
    for f in 0..after.frames {
        for y in 0..after.rows {
            for x in 0..after.cols {
                if (0..after.samples).any(|s| after.value(f, x, y, s) != planted.value(f, x, y, s)) {
                    changed += 1;
                    assert!(
                        (own_text || near(x, y)) && reported(x, y),
                        "{name}: pixel ({x},{y}) of frame {f} changed outside the text"
                    );
                }
            }
        }
    }
    let total = after.rows * after.cols * after.frames;
    assert!(changed * 100 <= total * 5, "{name}: {changed} of {total} pixels changed");
    let ds_out = parse::layout(&out.bytes).expect("output layout");
    let ds = parse::dataset(&out.bytes[ds_out.dataset_start..], ds_out.transfer_syntax.encoding, 32).expect("output");
    assert_eq!(ds.text(0x0028_0301), Some("NO"), "{name}: BurnedInAnnotation");
}

#[test]
fn ct_with_a_name_an_id_a_birth_date_and_a_hospital_in_its_corners() {
    check(
        "CT_small.dcm",
        4,
        &[
            Word {
                text: "GONZALEZ^MARIA",
                font: "DejaVuSans.ttf",
                size: 18.0,
                colour: [1.0; 3],
                corner: 0,
            },
            Word {
                text: "MRN 48213377",
                font: "DejaVuSansMono.ttf",
                size: 16.0,
                colour: [1.0; 3],
                corner: 1,
            },
            Word {
                text: "DOB 1961-04-23",
                font: "DejaVuSerif.ttf",
                size: 20.0,
                colour: [0.8; 3],
                corner: 2,
            },
            Word {
                text: "ST MARY HOSPITAL",
                font: "DejaVuSans-Bold.ttf",
                size: 14.0,
                colour: [1.0; 3],
                corner: 3,
            },
        ],
        false,
    );
}

#[test]
fn mr_with_text_in_two_fonts_and_grey_levels() {
    check(
        "MR_small.dcm",
        6,
        &[
            Word {
                text: "KOWALSKI JAN",
                font: "DejaVuSansCondensed.ttf",
                size: 22.0,
                colour: [1.0; 3],
                corner: 0,
            },
            Word {
                text: "ID 5551234",
                font: "DejaVuSerif-Bold.ttf",
                size: 18.0,
                colour: [0.75; 3],
                corner: 2,
            },
        ],
        false,
    );
}

#[test]
fn ultrasound_in_colour_with_yellow_and_green_text() {
    check(
        "examples_ybr_color.dcm",
        1,
        &[
            Word {
                text: "TANAKA HIROSHI",
                font: "DejaVuSans.ttf",
                size: 15.0,
                colour: [1.0, 1.0, 0.0],
                corner: 0,
            },
            Word {
                text: "1978-11-02",
                font: "DejaVuSansMono-Bold.ttf",
                size: 14.0,
                colour: [0.0, 1.0, 0.0],
                corner: 1,
            },
        ],
        true,
    );
}

#[test]
fn secondary_capture_multi_frame_with_text_on_every_frame() {
    check(
        "SC_rgb_rle_2frame.dcm",
        4,
        &[
            Word {
                text: "OKAFOR CHIDI",
                font: "DejaVuSerif.ttf",
                size: 24.0,
                colour: [0.9, 0.0, 0.0],
                corner: 2,
            },
            Word {
                text: "ACC 20231107",
                font: "DejaVuSans-Bold.ttf",
                size: 20.0,
                colour: [0.0, 0.0, 0.0],
                corner: 1,
            },
        ],
        false,
    );
}

#[test]
fn ct_and_mr_files_without_text_get_nothing_blanked() {
    for name in [
        "CT_small.dcm",
        "693_J2KI.dcm",
        "J2K_pixelrep_mismatch.dcm",
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "examples_overlay.dcm",
    ] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let out = anonymize(&input, &common::config()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ocr = out
            .report
            .ocr
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: the safety net did not run: {:?}", out.report.notes));
        assert!(ocr.regions.is_empty() && out.report.burned_area == 0, "{name}: {ocr:?}");
        assert_eq!((ocr.label(), ocr.residual_lines), ("sin_texto", 0), "{name}");
        assert!((0.0..=100.0).contains(&ocr.confidence), "{name}: {ocr:?}");
    }
}

/// `img`'s first frame as an 8-bit RGB or grey PNG, and back.
fn to_png(img: &Image) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, img.cols as u32, img.rows as u32);
    enc.set_color(if img.samples == 3 {
        png::ColorType::Rgb
    } else {
        png::ColorType::Grayscale
    });
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().expect("png header");
    w.write_image_data(&img.data[..img.rows * img.cols * img.samples])
        .expect("png data");
    w.finish().expect("png end");
    out
}

fn from_png(bytes: &[u8]) -> Image {
    let mut reader = png::Decoder::new(bytes).read_info().expect("png");
    let mut data = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut data).expect("frame");
    data.truncate(frame.buffer_size());
    Image {
        rows: frame.height as usize,
        cols: frame.width as usize,
        frames: 1,
        samples: frame.color_type.samples(),
        depth: 1,
        data,
    }
}

#[test]
fn a_png_screen_capture_with_text_loses_it_and_nothing_else() {
    let mut img = Image::decode(&std::fs::read(common::fixtures().join("SC_rgb_rle.dcm")).expect("read")).enlarged(4);
    img.frames = 1;
    img.data.truncate(img.rows * img.cols * img.samples);
    let words = [
        Word {
            text: "NAKAMURA YUKI",
            font: "DejaVuSans-Bold.ttf",
            size: 22.0,
            colour: [0.9, 0.0, 0.0],
            corner: 2,
        },
        Word {
            text: "MRN 77120934",
            font: "DejaVuSerif.ttf",
            size: 20.0,
            colour: [0.0, 0.0, 0.0],
            corner: 1,
        },
    ];
    let boxes = draw(&mut img, &words);
    let input = to_png(&img);
    let before = tesseract_reads(&img, 0, &boxes);
    assert!(words.iter().all(|w| holds(&before, w.text)), "the checker reads {before:?} before");
    let out = anonymize(&input, &common::config()).expect("anonymize");
    let ocr = out.report.ocr.as_ref().expect("the safety net ran on the PNG");
    assert!(ocr.text_lines as usize >= words.len(), "{ocr:?}");
    let after = from_png(&out.bytes);
    let read = tesseract_reads(&after, 0, &boxes);
    assert!(words.iter().all(|w| !holds(&read, w.text)), "still readable after: {read:?}");
    let regions: Vec<_> = out.report.regions.iter().map(|r| r.region).collect();
    for y in 0..after.rows {
        for x in 0..after.cols {
            if (0..3).any(|s| after.value(0, x, y, s) != img.value(0, x, y, s)) {
                assert!(
                    regions
                        .iter()
                        .any(|r| (r.x as usize..(r.x + r.w) as usize).contains(&x) && (r.y as usize..(r.y + r.h) as usize).contains(&y)),
                    "({x},{y}) changed outside the reported boxes"
                );
            }
        }
    }
}

#[test]
fn phi_mode_blanks_a_name_and_keeps_imaging_words() {
    let original = Image::decode(&std::fs::read(common::fixtures().join("CT_small.dcm")).expect("read"));
    let mut img = original.enlarged(4);
    let words = [
        Word {
            text: "KOWALSKA ANNA",
            font: "DejaVuSans.ttf",
            size: 18.0,
            colour: [1.0; 3],
            corner: 0,
        },
        Word {
            text: "AXIAL CHEST",
            font: "DejaVuSans.ttf",
            size: 18.0,
            colour: [1.0; 3],
            corner: 3,
        },
    ];
    let boxes = draw(&mut img, &words);
    let input = with_pixels("CT_small.dcm", &img, &[]);
    let mut cfg = common::config();
    cfg.ocr = OcrMode::Phi;
    let out = anonymize(&input, &cfg).expect("anonymize");
    let ocr = out.report.ocr.as_ref().expect("the safety net ran");
    assert_eq!((ocr.text_lines, ocr.kept_lines, ocr.regions.len()), (2, 1, 1), "{ocr:?}");
    let read = tesseract_reads(&Image::decode(&out.bytes), 0, &boxes);
    assert!(!holds(&read, "KOWALSKA ANNA"), "the name is still readable: {read:?}");
    assert!(holds(&read, "AXIAL CHEST"), "the imaging words are gone: {read:?}");
}

#[test]
fn a_name_where_an_earlier_frame_had_kept_words_is_read_and_blanked() {
    // Frame 0 shows imaging words (kept in phi mode), frame 1 a name in the same place: the net
    // must not take frame 1's box as already read.
    let mut img = Image::decode(&std::fs::read(common::fixtures().join("SC_rgb_rle_2frame.dcm")).expect("read")).enlarged(4);
    let word = |text| Word {
        text,
        font: "DejaVuSans.ttf",
        size: 22.0,
        colour: [1.0; 3],
        corner: 0,
    };
    draw_on(&mut img, &[word("AXIAL CHEST LEFT")], 0..1);
    let boxes = draw_on(&mut img, &[word("KOWALSKA")], 1..2);
    let input = with_pixels("SC_rgb_rle_2frame.dcm", &img, &[]);
    let before = tesseract_reads(&img, 1, &boxes);
    assert!(holds(&before, "KOWALSKA"), "the checker reads {before:?} before");
    let mut cfg = common::config();
    cfg.ocr = OcrMode::Phi;
    let out = anonymize(&input, &cfg).expect("anonymize");
    let ocr = out.report.ocr.as_ref().expect("the safety net ran");
    assert_eq!((ocr.text_lines, ocr.kept_lines, ocr.regions.len()), (2, 1, 1), "{ocr:?}");
    let read = tesseract_reads(&Image::decode(&out.bytes), 1, &boxes);
    assert!(!holds(&read, "KOWALSKA"), "the name on frame 1 is still readable: {read:?}");
}

#[test]
fn a_line_another_hid_from_the_reader_is_read_once_that_one_is_blanked() {
    // The corpus's GE ultrasound screen: "IM#2" sits under "44CG43", and read with it in the
    // margin it is noise. Once the first round blanks "44CG43", the second reads "IM#2", so the
    // output holds nothing the residual check reads as PHI.
    let input = std::fs::read(common::fixtures().join("examples_jpeg2k.dcm")).expect("read");
    let out = anonymize(&input, &common::config()).expect("anonymize");
    let ocr = out.report.ocr.as_ref().expect("the safety net ran");
    assert_eq!(ocr.residual_lines, 0, "{ocr:?}");
    let im2 = |r: &&alpes_anonymizer::pixels::BurnedRegion| {
        r.source == RegionSource::Ocr
            && r.region.x <= 11
            && r.region.y <= 89
            && r.region.x + r.region.w >= 59
            && r.region.y + r.region.h >= 105
    };
    assert!(
        out.report.regions.iter().any(|r| im2(&r)),
        "IM#2 is blanked: {:?}",
        out.report.regions
    );
}

#[test]
fn text_outside_ultrasound_regions_is_left_to_them_and_text_inside_is_read() {
    // examples_ybr_color's one region starts at (84, 31): a name at the top left lies outside it,
    // where the ultrasound rule blanks everything, so the net spends no reading on it; a date at
    // the bottom right lies inside, where only the net can find it.
    let mut img = Image::decode(&std::fs::read(common::fixtures().join("examples_ybr_color.dcm")).expect("read"));
    let word = |text, corner| Word {
        text,
        font: "DejaVuSans.ttf",
        size: 15.0,
        colour: [1.0, 1.0, 0.0],
        corner,
    };
    let boxes = draw(&mut img, &[word("TANAKA HIROSHI", 0), word("1978-11-02", 3)]);
    assert!(boxes[0].3 < 31 && boxes[1].0 >= 84 && boxes[1].1 >= 31, "{boxes:?}");
    let input = with_pixels("examples_ybr_color.dcm", &img, &[(0x0028_0301, "YES")]);
    for (f, w) in [(0, "TANAKA HIROSHI"), (0, "1978-11-02")] {
        assert!(holds(&tesseract_reads(&img, f, &boxes), w), "the checker cannot read {w:?} before");
    }
    let out = anonymize(&input, &common::config()).expect("anonymize");
    let ocr = out.report.ocr.as_ref().expect("the safety net ran");
    let from = |source| out.report.regions.iter().filter(move |r| r.source == source);
    assert_eq!(from(RegionSource::Ultrasound).count(), 1, "{:?}", out.report.regions);
    let (x0, y0, x1, y1) = boxes[1];
    let on_date = |r: &&alpes_anonymizer::pixels::BurnedRegion| {
        let r = r.region;
        r.x as usize <= x0 && r.y as usize <= y0 && (r.x + r.w) as usize >= x1 && (r.y + r.h) as usize >= y1
    };
    assert!(from(RegionSource::Ocr).all(|r| r.region.y >= 31), "the net read outside: {ocr:?}");
    assert!(
        from(RegionSource::Ocr).any(|r| on_date(&r)),
        "the date was not found: {:?}",
        out.report.regions
    );
    assert_eq!((ocr.label(), ocr.residual_lines), ("texto_incrustado", 0), "{ocr:?}");
    let after = Image::decode(&out.bytes);
    for f in [0, after.frames - 1] {
        let read = tesseract_reads(&after, f, &boxes);
        for w in ["TANAKA HIROSHI", "1978-11-02"] {
            assert!(!holds(&read, w), "frame {f}: {w:?} is still readable ({read:?})");
        }
    }
}

#[test]
fn what_an_image_showed_before_is_not_recognized_again_and_reads_the_same() {
    let mut img = Image::decode(&std::fs::read(common::fixtures().join("CT_small.dcm")).expect("read")).enlarged(4);
    draw(
        &mut img,
        &[Word {
            text: "KOWALSKA ANNA",
            font: "DejaVuSans.ttf",
            size: 18.0,
            colour: [1.0; 3],
            corner: 2,
        }],
    );
    let frame = || Luma {
        width: img.cols as u32,
        height: img.rows as u32,
        pixels: img.grey(0),
    };
    let find = |readings: &mut ocr::Readings| {
        let mut found = ocr::find([frame()], OcrMode::AllText, &Terms::default(), &BurnPlan::default(), readings).expect("read");
        found.duration_us = 0;
        found
    };
    let mut readings = ocr::Readings::default();
    let first = find(&mut readings);
    let recognized = readings.recognized();
    assert!(first.text_lines >= 1 && recognized >= 1, "{first:?}");
    let again = find(&mut readings);
    assert_eq!(readings.recognized(), recognized, "the same pixels were recognized twice");
    assert_eq!(again, first);
    assert_eq!(find(&mut ocr::Readings::default()), first, "a fresh reading differs");
}
