//! PHI planted at the top level, in nested sequence items and in a private element never survives.

mod common;

use alpes_anonymizer::anonymize;

#[test]
fn planted_phi_never_survives_in_any_element_or_in_the_raw_bytes() {
    let cfg = common::config();
    let mut checked = 0;
    let mut leaks = Vec::new();
    for path in common::corpus() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let input = std::fs::read(&path).expect("read");
        let Some(planted) = common::plant_phi(&input) else { continue };
        // The planting itself must have worked.
        assert!(
            common::contains(&planted, b"ZYXWVPHINAME") || name.contains("dfl"),
            "{name}: planting failed"
        );
        let Ok(out) = anonymize(&planted, &cfg) else { continue };
        checked += 1;
        for phi in common::PHI {
            if common::contains(&out.bytes, phi.as_bytes()) {
                leaks.push(format!("{name}: {phi:?} in raw output bytes"));
            }
        }
        leaks.extend(common::phi_in_elements(&out.bytes).into_iter().map(|l| format!("{name}: {l}")));
    }
    assert!(checked >= 70, "only {checked} files were checked");
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

#[test]
fn nested_private_sequences_are_removed_at_every_depth() {
    let cfg = common::config();
    for name in ["priv_SQ.dcm", "nested_priv_SQ.dcm"] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let out = anonymize(&input, &cfg).expect(name);
        common::with_output(&out.bytes, |ds| {
            common::walk(ds, &mut |e| assert!(e.group() % 2 == 0, "{name}: private {:08X} survived", e.tag));
        });
    }
}

#[test]
fn the_basic_profile_alone_also_leaves_no_planted_phi() {
    let mut cfg = common::config();
    cfg.options = alpes_anonymizer::Options::basic();
    for name in [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",
        "test-SR.dcm",
        "JPEG2000.dcm",
    ] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let planted = common::plant_phi(&input).expect("plant");
        let out = anonymize(&planted, &cfg).expect(name);
        let leaks = common::phi_in_elements(&out.bytes);
        assert!(leaks.is_empty(), "{name} under the Basic Profile: {leaks:?}");
    }
}

#[test]
fn error_messages_never_echo_values_from_the_file() {
    let cfg = common::config();
    let input = std::fs::read(common::fixtures().join("CT_small.dcm")).expect("read");
    let planted = common::plant_phi(&input).expect("plant");
    let mut errors = 0;
    for cut in (200..planted.len()).step_by(97) {
        if let Err(e) = anonymize(&planted[..cut], &cfg) {
            errors += 1;
            let text = format!("{e} {e:?}");
            for phi in common::PHI {
                let token = phi.split(['^', ' ']).next().unwrap_or(phi);
                assert!(!text.contains(token), "error at cut {cut} echoes {phi:?}: {text}");
            }
        }
    }
    assert!(errors > 50, "only {errors} truncations failed");
}

/// Crafted by review: names and descriptions behind mis-declared VRs (CS, OB, UN), big endian
/// UN attributes, and standard sequences written as UN with explicit-VR items inside.
#[test]
fn phi_behind_misdeclared_or_unknown_vrs_never_survives() {
    let cfg = common::config();
    let dir = common::fixtures().join("../review");
    for entry in std::fs::read_dir(&dir).expect("review fixtures") {
        let path = entry.expect("entry").path();
        let input = std::fs::read(&path).expect("read");
        // A crafted file may be refused with a typed error (no output at all is PHI-safe).
        let out = match anonymize(&input, &cfg) {
            Ok(out) => out,
            Err(e) => {
                assert_eq!(e.code(), "pixel_decode", "{}: {e}", path.display());
                continue;
            }
        };
        for marker in [&b"PHI"[..], b"SMITH"] {
            assert!(
                !common::contains(&out.bytes, marker),
                "{}: {:?} survived",
                path.display(),
                String::from_utf8_lossy(marker)
            );
        }
    }
}

#[test]
fn metadata_segments_inside_encapsulated_jpeg_and_jpeg_ls_frames_are_stripped() {
    use alpes_anonymizer::dataset::{DataSet, Element, Value, Vr};
    use alpes_anonymizer::parse;
    use std::borrow::Cow;
    let first_fragment = |bytes: &[u8]| {
        common::with_output(bytes, |ds: &DataSet<'_>| match ds.get(0x7FE0_0010).map(|e| &e.value) {
            Some(Value::Encapsulated { fragments, .. }) => fragments[0].to_vec(),
            _ => panic!("not encapsulated"),
        })
    };
    // JPEG lossless, JPEG-LS lossless and near-lossless (8-bit grey, 16-bit grey, colour).
    for name in [
        "SC_rgb_jpeg_gdcm.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "JPEGLSNearLossless_08.dcm",
        "SC_rgb_jls_lossy_line.dcm",
    ] {
        let input = std::fs::read(common::fixtures().join(name)).expect("read");
        let layout = parse::layout(&input).expect("layout");
        let mut ds = parse::dataset(&input[layout.dataset_start..], layout.transfer_syntax.encoding, 32).expect("parse");
        let Some(Value::Encapsulated { offset_table, fragments }) = ds.get(0x7FE0_0010).map(|e| e.value.clone()) else {
            panic!("{name}: not encapsulated")
        };
        // Splice a COM segment carrying PHI right after SOI, and junk after EOI.
        let mut frame = fragments[0].to_vec();
        let com = b"PATIENT ZYXWVPHINAME MRN 12345678";
        let mut seg = vec![0xFF, 0xFE, 0, (com.len() + 2) as u8];
        seg.extend_from_slice(com);
        frame.splice(2..2, seg);
        frame.extend_from_slice(b"ZYXWVPHINAME");
        let frames: Vec<Cow<'static, [u8]>> = vec![Cow::Owned(frame)];
        ds.put(Element {
            tag: 0x7FE0_0010,
            vr: Vr::OB,
            value: Value::Encapsulated {
                offset_table: Cow::Owned(offset_table.to_vec()),
                fragments: frames,
            },
        });
        let planted = alpes_anonymizer::write::part10(
            &ds,
            &alpes_anonymizer::write::Meta {
                sop_class: "1.2.840.10008.5.1.4.1.1.7",
                sop_instance: "1.2.3",
                transfer_syntax: &layout.transfer_syntax.uid,
            },
            true,
            0,
        )
        .bytes;
        assert!(common::contains(&planted, b"ZYXWVPHINAME"));
        let out = anonymize(&planted, &common::config()).expect(name);
        assert!(!common::contains(&out.bytes, b"ZYXWVPHINAME"), "{name}");
        assert!(out.report.metadata_removed >= 1, "{name}");
        assert_eq!(out.report.transfer_syntax_out, layout.transfer_syntax.uid, "{name}");
        // The coded image is what the file without the planted text gives.
        let clean = anonymize(&input, &common::config()).expect(name);
        assert_eq!(
            first_fragment(&out.bytes),
            first_fragment(&clean.bytes),
            "{name}: the coded image changed"
        );
    }
}
