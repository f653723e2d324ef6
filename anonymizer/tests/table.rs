//! The generated action table matches the shipped JSON, and every row's action is applied.

mod common;

use alpes_anonymizer::dataset::{DataSet, Element, Value, Vr};
use alpes_anonymizer::iod::Iod;
use alpes_anonymizer::profile::{keep_valid, resolve_basic, resolve_typed};
use alpes_anonymizer::table::{self, OptionAction, OptionColumn};
use alpes_anonymizer::{anonymize, syntax, Action, Options};
use serde_json::Value as Json;

fn rows() -> Vec<Json> {
    serde_json::from_str(include_str!("../standard/ps3.15-table-e1-1.json")).expect("table JSON")
}

#[test]
fn the_generated_table_matches_the_json_row_for_row() {
    let rows = rows();
    assert_eq!(rows.len(), 621);
    let total = table::exact_entries().len() + table::masked_entries().len() + 1;
    assert_eq!(total, 621, "every row is generated exactly once");
    for row in &rows {
        let tag = row["tag"].as_str().expect("tag");
        let entry = if tag.contains("GGGG") {
            table::private_entry()
        } else {
            let hex: String = tag.chars().filter(|c| c.is_ascii_hexdigit() || *c == 'X' || *c == 'x').collect();
            let value = u32::from_str_radix(&hex.replace(['X', 'x'], "0"), 16).expect("hex");
            let exact = !hex.contains(['X', 'x']);
            let found = if exact {
                table::exact_entries().iter().find(|e| e.tag == value)
            } else {
                table::masked_entries().iter().find(|e| e.tag == value)
            };
            found.unwrap_or_else(|| panic!("row {tag} not generated"))
        };
        assert_eq!(entry.name, row["name"].as_str().expect("name"), "{tag}");
        assert_eq!(entry.basic.code(), row["basicProfile"].as_str().expect("basic"), "{tag}");
        assert_eq!(entry.std_comp_iod, row["stdCompIOD"] == "Y", "{tag}");
        for column in OptionColumn::ALL {
            let expected = match row.get(column.json_key()).and_then(Json::as_str) {
                None => None,
                Some("K") => Some(OptionAction::Keep),
                Some("C") => Some(OptionAction::Clean),
                Some(other) => panic!("unexpected code {other}"),
            };
            assert_eq!(entry.option(column), expected, "{tag} {}", column.json_key());
        }
    }
}

fn sample_value(vr: Vr) -> Value<'static> {
    let text = |s: &str| Element::text(0, vr, s).value;
    match vr {
        Vr::SQ => {
            let mut item = DataSet::default();
            item.put(Element::text(0x0008_0100, Vr::SH, "T-12345"));
            Value::Sequence(vec![item])
        }
        Vr::DA => text("20200101"),
        Vr::TM => text("101010"),
        Vr::DT => text("20200101101010"),
        Vr::UI => text("1.2.826.0.1.3680043.2.1125.1"),
        Vr::AS => text("045Y"),
        Vr::DS => text("1.5"),
        Vr::IS => text("7"),
        Vr::UR => text("http://example.org/phi"),
        v if v.is_text() => text("PHIVALUE"),
        v => Value::Bytes(vec![1u8; v.swap_width().max(2) * 2].into()),
    }
}

/// A SOP class the PS3.3 tables do not have (a private one).
const UNKNOWN_SOP_CLASS: &str = "1.2.826.0.1.3680043.2.1125.99.1";
/// Secondary Capture Image Storage, in the tables.
const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";

#[test]
fn without_the_iod_every_row_gets_the_rule_for_any_iod() {
    let out = every_row_gets(UNKNOWN_SOP_CLASS, |e| resolve_basic(e.basic, e.std_comp_iod));
    assert_eq!(out.report.iod, None);
    assert!(
        out.report.notes.iter().any(|n| n.starts_with("SOP class not in the PS3.3 tables")),
        "{:?}",
        out.report.notes
    );
}

#[test]
fn with_the_iod_every_row_gets_the_action_its_type_there_calls_for() {
    let iod = Iod::for_sop_class(SECONDARY_CAPTURE).expect("in the tables");
    let out = every_row_gets(SECONDARY_CAPTURE, |e| {
        let required = iod.requirement(&[], e.tag);
        keep_valid(resolve_typed(e.basic, required), required)
    });
    assert_eq!(out.report.iod.as_deref(), Some("secondary-capture-image"));
    assert!(out.report.kept_for_iod > 0, "some X rows are required by Secondary Capture");
    // A few decisions written out, so that the table above is not only checked against itself.
    common::with_output(&out.bytes, |res| {
        assert!(res.get(0x0008_0080).is_none(), "Institution Name, X/Z/D, Type 3 in SC: removed");
        assert_eq!(res.text(0x0008_0020), Some(""), "Study Date, Z, Type 2: empty");
        assert_eq!(res.text(0x0008_0090), Some(""), "Referring Physician's Name, Z, Type 2: empty");
        assert!(res.get(0x0008_0021).is_none(), "Series Date, X/D, Type 3 in SC: removed");
    });
}

/// Plants every exact row of the table in one object of `sop_class`, de-identifies it
/// with the Basic Profile and checks each attribute got `expected(row)`.
fn every_row_gets(sop_class: &str, expected_action: impl Fn(&table::Entry) -> Action) -> alpes_anonymizer::Anonymized {
    let mut ds = DataSet::default();
    let mut expected = Vec::new();
    for e in table::exact_entries() {
        if e.tag >> 16 == 0x0002 || e.tag >> 16 == 0x7FE0 {
            continue;
        }
        let vr = syntax::dictionary_vr(e.tag);
        if vr == Vr::UN {
            continue; // not in the data dictionary: cannot be encoded with a known VR
        }
        ds.put(Element {
            tag: e.tag,
            vr,
            value: sample_value(vr),
        });
        let action = if e.tag == 0x0010_0010 || e.tag == 0x0010_0020 {
            Action::Pseudonym
        } else {
            expected_action(e)
        };
        expected.push((e.tag, vr, action));
    }
    assert!(expected.len() > 550, "only {} rows could be planted", expected.len());
    ds.put(Element::text(0x0008_0016, Vr::UI, sop_class));
    let input = common::part10(&ds, sop_class);
    let mut cfg = common::config();
    cfg.options = Options::basic();
    let out = anonymize(&input, &cfg).expect("anonymize");
    let mut wrong = Vec::new();
    common::with_output(&out.bytes, |res| {
        for (tag, vr, action) in &expected {
            let got = res.get(*tag);
            let original = ds.get(*tag).map(|e| &e.value);
            let ok = match (action, got.map(|e| &e.value)) {
                (Action::Remove, None) => true,
                (Action::Empty, Some(Value::Bytes(b))) => b.is_empty(),
                (Action::Empty, Some(Value::Sequence(items))) => items.is_empty(),
                (Action::Dummy | Action::Pseudonym, Some(Value::Bytes(b))) => !b.is_empty() && Some(&Value::Bytes(b.clone())) != original,
                (Action::Dummy | Action::UidsInSequence, Some(Value::Sequence(_))) => true,
                (Action::Uid, Some(Value::Bytes(b))) => b.starts_with(b"2.25."),
                _ => false,
            };
            if !ok {
                wrong.push(format!(
                    "({:04X},{:04X}) {vr:?} expected {action:?}, got {:?}",
                    tag >> 16,
                    tag & 0xFFFF,
                    got.map(|e| &e.value)
                ));
            }
        }
    });
    assert!(wrong.is_empty(), "{} rows wrong:\n{}", wrong.len(), wrong.join("\n"));
    out
}

#[test]
fn overlay_and_curve_groups_follow_their_wildcard_rows() {
    let mut ds = DataSet::default();
    ds.put(Element::bytes(0x5000_3000, Vr::OW, vec![1u8; 4]));
    ds.put(Element::bytes(0x6002_3000, Vr::OW, vec![1u8; 4]));
    ds.put(Element::text(0x6002_4000, Vr::LT, "PHI OVERLAY COMMENT"));
    ds.put(Element::bytes(0x6002_0010, Vr::US, 2u16.to_le_bytes().to_vec()));
    let input = common::part10(&ds, "1.2.840.10008.5.1.4.1.1.7");
    let mut cfg = common::config();
    cfg.options = Options::basic();
    let out = anonymize(&input, &cfg).expect("anonymize");
    common::with_output(&out.bytes, |res| {
        for tag in [0x5000_3000u32, 0x6002_3000, 0x6002_4000] {
            assert!(res.get(tag).is_none(), "{tag:08X} kept under the Basic Profile");
        }
        assert!(res.get(0x6002_0010).is_none(), "an overlay without its data goes whole");
    });
    cfg.options = Options::default();
    let out = anonymize(&input, &cfg).expect("anonymize");
    common::with_output(&out.bytes, |res| {
        assert!(res.get(0x5000_3000).is_none(), "curves cannot be cleaned, so they go");
        assert!(
            res.get(0x6002_3000).is_none(),
            "Clean Graphics with no region to burn cannot clean overlays, so they go"
        );
        for tag in [0x6002_4000, 0x6002_0010] {
            assert!(
                res.get(tag).is_none(),
                "{tag:08X}: the overlay's data went, so its whole group goes"
            );
        }
    });
}
