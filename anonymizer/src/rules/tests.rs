use super::*;
use std::collections::HashMap;

const MODALITY: u32 = 0x0008_0060;
const MANUFACTURER: u32 = 0x0008_0070;
const SERIES_DESCRIPTION: u32 = 0x0008_103E;
const IMAGE_TYPE: u32 = 0x0008_0008;
const ROWS: u32 = 0x0028_0010;
const COLUMNS: u32 = 0x0028_0011;
const BURNED_IN: u32 = 0x0028_0301;
const SOP_CLASS: u32 = 0x0008_0016;

fn object(pairs: &[(u32, &str)]) -> HashMap<u32, String> {
    pairs.iter().map(|(t, v)| (*t, (*v).to_owned())).collect()
}

fn first_line(lib: &RuleLibrary, obj: &HashMap<u32, String>) -> Option<usize> {
    lib.first_match(&|t| obj.get(&t).cloned()).map(|s| s.line)
}

/// Whether a one-signature script matches an object.
fn holds(condition: &str, obj: &[(u32, &str)]) -> bool {
    let lib = RuleLibrary::parse(&format!("{{ {condition} }}\n(0,0,1,1)")).expect("test");
    let obj = object(obj);
    lib.first_match(&|t| obj.get(&t).cloned()).is_some()
}

fn parse_error(text: &str) -> (usize, String) {
    match RuleLibrary::parse(text) {
        Err(Error::Rules { line, reason }) => (line, reason),
        other => panic!("expected a rules error, got {other:?}"),
    }
}

#[test]
fn equals_is_exact() {
    assert!(holds(r#"Modality.equals("CT")"#, &[(MODALITY, "CT")]));
    assert!(!holds(r#"Modality.equals("CT")"#, &[(MODALITY, "ct")]));
    assert!(!holds(r#"Modality.equals("C")"#, &[(MODALITY, "CT")]));
}

#[test]
fn equals_ignore_case_folds_ascii_case() {
    assert!(holds(r#"Modality.equalsIgnoreCase("cT")"#, &[(MODALITY, "Ct")]));
    assert!(!holds(r#"Modality.equalsIgnoreCase("CTX")"#, &[(MODALITY, "ct")]));
}

#[test]
fn contains_and_contains_ignore_case_search_substrings() {
    let obj = [(MANUFACTURER, "GE MEDICAL SYSTEMS")];
    assert!(holds(r#"Manufacturer.contains("MEDICAL")"#, &obj));
    assert!(!holds(r#"Manufacturer.contains("medical")"#, &obj));
    assert!(holds(r#"Manufacturer.containsIgnoreCase("medical sys")"#, &obj));
    assert!(!holds(r#"Manufacturer.containsIgnoreCase("Philips")"#, &obj));
}

#[test]
fn starts_with_predicates_compare_prefixes() {
    let obj = [(MANUFACTURER, "Philips Medical")];
    assert!(holds(r#"Manufacturer.startsWith("Philips")"#, &obj));
    assert!(!holds(r#"Manufacturer.startsWith("PHILIPS")"#, &obj));
    assert!(holds(r#"Manufacturer.startsWithIgnoreCase("PHILIPS")"#, &obj));
    assert!(!holds(r#"Manufacturer.startsWithIgnoreCase("Medical")"#, &obj));
    assert!(!holds(r#"Manufacturer.startsWithIgnoreCase("Philips Medical Systems")"#, &obj));
}

#[test]
fn ends_with_predicates_compare_suffixes() {
    let obj = [(SERIES_DESCRIPTION, "CT Dose Report")];
    assert!(holds(r#"SeriesDescription.endsWith("Report")"#, &obj));
    assert!(!holds(r#"SeriesDescription.endsWith("report")"#, &obj));
    assert!(holds(r#"SeriesDescription.endsWithIgnoreCase("DOSE REPORT")"#, &obj));
    assert!(!holds(r#"SeriesDescription.endsWithIgnoreCase("CT")"#, &obj));
}

#[test]
fn is_blank_holds_for_empty_padded_and_missing_values() {
    assert!(holds("SeriesDescription.isBlank()", &[(SERIES_DESCRIPTION, "")]));
    assert!(holds("SeriesDescription.isBlank( )", &[(SERIES_DESCRIPTION, "  \0")]));
    assert!(holds("SeriesDescription.isBlank()", &[]));
    assert!(!holds("SeriesDescription.isBlank()", &[(SERIES_DESCRIPTION, "x")]));
}

#[test]
fn missing_elements_are_the_empty_string() {
    assert!(holds(r#"Modality.equals("")"#, &[]));
    assert!(!holds(r#"Modality.equals("CT")"#, &[]));
    assert!(holds(r#"Modality.startsWith("")"#, &[]));
    assert!(holds(r#"!Modality.contains("CT")"#, &[]));
}

#[test]
fn values_are_trimmed_of_spaces_and_nuls_but_keep_backslashes() {
    assert!(holds(r#"Modality.equals("CT")"#, &[(MODALITY, " CT \0")]));
    assert!(holds(
        r#"ImageType.equals("ORIGINAL\PRIMARY\AXIAL")"#,
        &[(IMAGE_TYPE, "ORIGINAL\\PRIMARY\\AXIAL ")]
    ));
    assert!(holds(
        r#"ImageType.contains("PRIMARY\\AXIAL")"#,
        &[(IMAGE_TYPE, "ORIGINAL\\PRIMARY\\AXIAL")]
    ));
}

#[test]
fn quoted_strings_support_escaped_quotes_and_braces() {
    assert!(holds(
        r#"SeriesDescription.equals("say \"hi\"")"#,
        &[(SERIES_DESCRIPTION, "say \"hi\"")]
    ));
    assert!(holds(
        r#"SeriesDescription.equals("a } b { (c")"#,
        &[(SERIES_DESCRIPTION, "a } b { (c")]
    ));
    let lib = RuleLibrary::parse("{ SeriesDescription.contains(\"}\") }\n(1,2,3,4)\n{ Modality.contains(\"{\") }").expect("test");
    assert_eq!(lib.len(), 2);
    assert_eq!(lib.signatures()[0].regions, vec![Region { x: 1, y: 2, w: 3, h: 4 }]);
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    let ct = [(MODALITY, "CT")];
    // a + b * c  ==  a + (b * c)
    assert!(holds(
        r#"Modality.equals("CT") + Modality.equals("MR") * Modality.equals("US")"#,
        &ct
    ));
    // (a + b) * c is false when c is false
    assert!(!holds(
        r#"(Modality.equals("CT") + Modality.equals("MR")) * Modality.equals("US")"#,
        &ct
    ));
    // !a * b  ==  (!a) * b
    assert!(!holds(r#"!Modality.equals("CT") * Modality.equals("CT")"#, &ct));
    // !(a * b)
    assert!(holds(r#"!(Modality.equals("CT") * Modality.equals("MR"))"#, &ct));
    // !a + b  ==  (!a) + b
    assert!(holds(r#"!Modality.equals("CT") + Modality.equals("CT")"#, &ct));
    assert!(holds(r#"!!Modality.equals("CT")"#, &ct));
    assert!(holds("true * !false", &ct));
    assert!(!holds("false + false", &ct));
}

#[test]
fn bracket_tags_name_elements_in_hex() {
    let obj = [(SERIES_DESCRIPTION, "Dose Report"), (MANUFACTURER, "GE")];
    assert!(holds(
        r#"[0008,103e].containsIgnoreCase("dose") * [0008,103E].contains("Report")"#,
        &obj
    ));
    assert!(holds(r#"[ 0008 , 0070 ].equals("GE")"#, &obj));
    assert!(holds(r#"[0009,1001].isBlank()"#, &obj));
    let (line, reason) = parse_error("{ [0008,10G3].equals(\"x\") }");
    assert_eq!(line, 1);
    assert!(reason.contains("invalid tag"), "{reason}");
}

#[test]
fn multi_line_conditions_and_comments_inside_them_parse() {
    let text =
        "title\n{ Modality.equals(\"CT\") * // the modality\n  Rows.equals(\"512\") *\n\n  Columns.equals(\"512\") }\n(0,0,512,110)\n";
    let lib = RuleLibrary::parse(text).expect("test");
    assert_eq!(lib.len(), 1);
    assert_eq!(lib.signatures()[0].line, 2);
    // A `}` inside a `//` comment still closes the signature, as in CTP; a `{` or quote there does not count.
    let commented = RuleLibrary::parse("{ true // a \"note {\n * true // closes here }\n(1,1,1,1)").expect("test");
    assert_eq!(commented.signatures()[0].regions.len(), 1);
    let obj = object(&[(MODALITY, "CT"), (ROWS, "512"), (COLUMNS, "512")]);
    assert_eq!(first_line(&lib, &obj), Some(2));
    let obj = object(&[(MODALITY, "CT"), (ROWS, "512"), (COLUMNS, "1024")]);
    assert_eq!(first_line(&lib, &obj), None);
}

#[test]
fn comment_lines_are_ignored() {
    let text = "\
*****************
   CT (vendor notes)
*****************
Title line with words, commas, and a (parenthesis) too.
(see the wiki) for the format
{ Modality.equals(\"CT\") }
(0,0,10,10)
Next vendor: a title between signatures
{ Modality.equals(\"MR\") }
";
    let lib = RuleLibrary::parse(text).expect("test");
    assert_eq!(lib.len(), 2);
    assert_eq!(lib.signatures()[0].regions.len(), 1);
    assert!(lib.signatures()[1].regions.is_empty());
}

#[test]
fn multiple_rectangles_attach_to_their_signature() {
    let text = "{ Modality.equals(\"US\") } (0,0,640,40)\n(0,440,640,40) , ( 1 , 2 , 3 , 4 ) // bottom\n\nnote\n(5,6,7,8)\n{ Modality.equals(\"CT\") }";
    let lib = RuleLibrary::parse(text).expect("test");
    let s = &lib.signatures()[0];
    assert_eq!(
        s.regions,
        vec![
            Region { x: 0, y: 0, w: 640, h: 40 },
            Region {
                x: 0,
                y: 440,
                w: 640,
                h: 40
            },
            Region { x: 1, y: 2, w: 3, h: 4 },
            Region { x: 5, y: 6, w: 7, h: 8 },
        ]
    );
    assert!(lib.signatures()[1].regions.is_empty());
}

#[test]
fn a_signature_without_rectangles_still_stops_the_search() {
    let lib = RuleLibrary::parse("{ Modality.equals(\"CT\") }\n{ true }\n(0,0,5,5)").expect("test");
    let obj = object(&[(MODALITY, "CT")]);
    let hit = lib.first_match(&|t| obj.get(&t).cloned()).expect("test");
    assert_eq!(hit.line, 1);
    assert!(hit.regions.is_empty());
}

#[test]
fn the_first_matching_signature_wins() {
    let text = "{ Modality.equals(\"MR\") }\n(1,1,1,1)\n{ Modality.equals(\"CT\") }\n(2,2,2,2)\n{ Modality.startsWith(\"C\") }\n(3,3,3,3)";
    let lib = RuleLibrary::parse(text).expect("test");
    assert_eq!(first_line(&lib, &object(&[(MODALITY, "CT")])), Some(3));
    assert_eq!(first_line(&lib, &object(&[(MODALITY, "CR")])), Some(5));
    assert_eq!(first_line(&lib, &object(&[(MODALITY, "US")])), None);
    assert!(lib.signatures()[0].matches(&|t| (t == MODALITY).then(|| "MR".to_owned())));
}

#[test]
fn unknown_keywords_are_errors_with_their_line_number() {
    let (line, reason) = parse_error("comment\n\n{ Modality.equals(\"CT\") *\n  NoSuchKeyword.equals(\"x\") }\n(0,0,1,1)");
    assert_eq!(line, 4);
    assert!(reason.contains("NoSuchKeyword"), "{reason}");
}

#[test]
fn malformed_scripts_are_errors_with_their_line_number() {
    assert_eq!(parse_error("x\n{ Modality.equals(\"CT\")\n(0,0,1,1)").0, 2);
    assert!(parse_error("{ Modality.equals(\"CT\") }\n(0,0,1)").1.contains("invalid rectangle"));
    assert!(parse_error("{ Modality.equals(\"CT\") }\n(0,0,-1,1)")
        .1
        .contains("invalid rectangle"));
    assert!(parse_error("{ Modality.equals(\"CT\") }\n(0,0,1,1) trailing")
        .1
        .contains("unexpected text"));
    assert_eq!(parse_error("(0,0,1,1)\n{ Modality.equals(\"CT\") }").0, 1);
    assert!(parse_error("{ }").1.contains("empty"));
    assert!(parse_error("{ Modality.equals(CT) }").1.contains("quoted string"));
    assert!(parse_error("{ Modality.equals(\"CT) }").1.contains("closing"));
    assert!(parse_error("{ Modality.equals(\"CT\n\") }").1.contains("unterminated"));
    assert!(parse_error("{ Modality.matches(\"C.*\") }").1.contains("not supported"));
    assert!(parse_error("{ Modality.isCT(\"x\") }").1.contains("unknown predicate"));
    assert!(parse_error("{ Modality.isBlank(\"x\") }").1.contains("no argument"));
    assert!(parse_error("{ Modality }").1.contains("predicate"));
    assert!(parse_error("{ (Modality.isBlank() }").1.contains("unbalanced"));
    assert!(parse_error("{ Modality.isBlank()) }").1.contains("unbalanced"));
    assert!(parse_error("{ Modality.isBlank() Rows.isBlank() }").1.contains("expected"));
    assert!(parse_error("{ Modality.isBlank() * }").1.contains("ends"));
    assert!(parse_error("{ Modality.isBlank() & Rows.isBlank() }")
        .1
        .contains("unexpected character"));
    assert_eq!(parse_error("{ true }\n\n{ true *\n\n * true }").0, 5);
}

#[test]
fn nesting_is_bounded() {
    let ok = format!("{{ {}true{} }}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
    assert!(RuleLibrary::parse(&ok).is_ok());
    let deep = format!("{{ {}true{} }}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
    assert!(parse_error(&deep).1.contains("nested"));
    let nots = format!("{{ {}true }}", "!".repeat(MAX_NESTING + 1));
    assert!(parse_error(&nots).1.contains("nested"));
    let mixed = format!("{{ {}true{} }}", "!(".repeat(MAX_NESTING / 2 + 1), ")".repeat(MAX_NESTING / 2 + 1));
    assert!(parse_error(&mixed).1.contains("nested"));
    // Far deeper input is rejected at the bound, without recursing into it.
    let huge = format!("{{ {}true }}", "(".repeat(1_000_000));
    assert!(parse_error(&huge).1.contains("nested"));
}

#[test]
fn size_and_signature_count_are_bounded() {
    let big = " ".repeat(MAX_SCRIPT_BYTES + 1);
    assert_eq!(parse_error(&big).0, 0);
    let at_limit = "{true}\n".repeat(MAX_SIGNATURES);
    assert_eq!(RuleLibrary::parse(&at_limit).map(|l| l.len()).ok(), Some(MAX_SIGNATURES));
    // All on one line: the scan stays linear.
    let one_line = format!("{}(1,2,3,4)", "{true} (0,0,1,1) ".repeat(MAX_SIGNATURES));
    let lib = RuleLibrary::parse(&one_line).expect("test");
    assert_eq!(lib.len(), MAX_SIGNATURES);
    assert_eq!(lib.signatures()[MAX_SIGNATURES - 1].regions.len(), 2);
    let over = "{true}\n".repeat(MAX_SIGNATURES + 1);
    let (line, reason) = parse_error(&over);
    assert_eq!(line, MAX_SIGNATURES + 1);
    assert!(reason.contains("signatures"));
}

#[test]
fn garbage_input_never_panics() {
    // A small deterministic generator (xorshift) over an alphabet rich in the script's own syntax.
    let alphabet: Vec<char> = "{}()[]\"\\.,*+!/ \n\t0123456789abcdefEQ_xyzModalityRowsequalsIgnoreCaseisBlank()ü€\0\r"
        .chars()
        .collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces = [
        "{ Modality.equals(\"CT\") }",
        "(0,0,512,110)",
        "[0008,0070].startsWithIgnoreCase(\"x\")",
        " * ",
        " + ",
        "!",
        "(",
        ")",
        "\"",
        "\\\"",
        "//",
        "\n",
        "{",
        "}",
        "isBlank()",
    ];
    let obj = object(&[(MODALITY, "CT"), (MANUFACTURER, "x")]);
    for round in 0..4000 {
        let len = (next() % 200) as usize;
        let mut s = String::new();
        for _ in 0..len {
            let r = next();
            if round % 2 == 0 {
                s.push(alphabet[(r % alphabet.len() as u64) as usize]);
            } else {
                s.push_str(pieces[(r % pieces.len() as u64) as usize]);
            }
        }
        if let Ok(lib) = RuleLibrary::parse(&s) {
            let _ = lib.first_match(&|t| obj.get(&t).cloned());
            let _ = lib.referenced_tags();
        }
        // Every prefix of the input as well (truncation points inside strings and groups).
        let cut = s.char_indices().map(|(i, _)| i).nth((next() % 200) as usize).unwrap_or(s.len());
        let _ = RuleLibrary::parse(&s[..cut]);
    }
}

#[test]
fn a_ctp_style_script_excerpt_loads_and_matches() {
    let text = r#"
*****************************************************************************
CT
*****************************************************************************
CT Dose Series from GE
{ Modality.equals("CT") * Manufacturer.containsIgnoreCase("GE") * SeriesDescription.containsIgnoreCase("Dose Report") }
(0,0,512,110)

Philips US
{ [0008,0070].startsWithIgnoreCase("Philips") * Modality.equals("US") * !ImageType.contains("DERIVED") }
(0,0,640,40) (0,440,640,40)

 Stent planning - indented, multi-line, with a parenthesised or-group
  { [0008,0070].containsIgnoreCase("VITAL Images") *
    ( [0008,103e].containsIgnoreCase("AAA") + [0008,103e].containsIgnoreCase("Report") ) *
    [0028,0010].containsIgnoreCase("1041") }
  (0,0,795,150)

 1024 x 1024 screen captures
  { [0028,0301].containsIgnoreCase("YES") *
    [0008,0070].containsIgnoreCase("GE MEDICAL") *
    Rows.equals("1024") }
  (0,0,300,150)   (724,0,300,150)
"#;
    let lib = RuleLibrary::parse(text).expect("test");
    assert_eq!(lib.len(), 4);
    assert_eq!(lib.signatures().iter().map(|s| s.line).collect::<Vec<_>>(), vec![6, 10, 14, 20]);
    assert_eq!(lib.signatures()[3].regions.len(), 2);

    let ge_dose = object(&[
        (MODALITY, "CT"),
        (MANUFACTURER, "GE MEDICAL SYSTEMS"),
        (SERIES_DESCRIPTION, "Dose Report"),
    ]);
    let hit = lib.first_match(&|t| ge_dose.get(&t).cloned()).expect("test");
    assert_eq!(
        hit.regions,
        vec![Region {
            x: 0,
            y: 0,
            w: 512,
            h: 110
        }]
    );

    let philips = object(&[(MODALITY, "US"), (MANUFACTURER, "PHILIPS"), (IMAGE_TYPE, "ORIGINAL\\PRIMARY")]);
    let hit = lib.first_match(&|t| philips.get(&t).cloned()).expect("test");
    assert_eq!(
        hit.regions,
        vec![
            Region { x: 0, y: 0, w: 640, h: 40 },
            Region {
                x: 0,
                y: 440,
                w: 640,
                h: 40
            }
        ]
    );
    let derived = object(&[(MODALITY, "US"), (MANUFACTURER, "PHILIPS"), (IMAGE_TYPE, "DERIVED\\PRIMARY")]);
    assert_eq!(first_line(&lib, &derived), None);

    let vital = object(&[(MANUFACTURER, "Vital Images"), (SERIES_DESCRIPTION, "AAA stent"), (ROWS, "1041")]);
    assert_eq!(first_line(&lib, &vital), Some(14));
    let ge_sc = object(&[(BURNED_IN, "YES"), (MANUFACTURER, "GE MEDICAL SYSTEMS"), (ROWS, "1024")]);
    assert_eq!(first_line(&lib, &ge_sc), Some(20));

    assert_eq!(
        lib.referenced_tags(),
        vec![IMAGE_TYPE, MODALITY, MANUFACTURER, SERIES_DESCRIPTION, ROWS, BURNED_IN]
    );
}

#[test]
fn element_values_are_fetched_once_per_match() {
    let lib = RuleLibrary::parse("{ Modality.equals(\"MR\") }\n{ Modality.equals(\"US\") }\n{ Modality.containsIgnoreCase(\"c\") }")
        .expect("test");
    let calls = std::cell::Cell::new(0);
    let hit = lib.first_match(&|t| {
        calls.set(calls.get() + 1);
        (t == MODALITY).then(|| "CT".to_owned())
    });
    assert_eq!(hit.map(|s| s.line), Some(3));
    assert_eq!(calls.get(), 1);
}

#[test]
fn the_default_library_parses_and_blanks_known_screen_captures() {
    let lib = RuleLibrary::parse(include_str!("../../rules/default.script")).expect("test");
    assert!(!lib.is_empty());
    assert_eq!(RuleLibrary::default_library().len(), lib.len());
    assert!(lib.signatures().iter().all(|s| !s.regions.is_empty()));

    let dose = object(&[
        (MODALITY, "CT"),
        (SERIES_DESCRIPTION, "Dose Report"),
        (COLUMNS, "512"),
        (ROWS, "512"),
    ]);
    let hit = lib.first_match(&|t| dose.get(&t).cloned()).expect("test");
    assert!(hit.regions.iter().any(|r| r.x == 0 && r.y == 0 && r.w >= 512));

    let sc = object(&[
        (BURNED_IN, "YES"),
        (SOP_CLASS, "1.2.840.10008.5.1.4.1.1.7\0"),
        (ROWS, "512"),
        (COLUMNS, "512"),
    ]);
    assert!(lib.first_match(&|t| sc.get(&t).cloned()).is_some());
    // VL endoscopic (1.2.840.10008.5.1.4.1.1.77.1.1) is not a secondary capture.
    let vl = object(&[
        (BURNED_IN, "YES"),
        (SOP_CLASS, "1.2.840.10008.5.1.4.1.1.77.1.1"),
        (ROWS, "512"),
        (COLUMNS, "512"),
    ]);
    assert!(lib.first_match(&|t| vl.get(&t).cloned()).is_none());
    // An ordinary CT slice matches nothing.
    let ct = object(&[(MODALITY, "CT"), (SERIES_DESCRIPTION, "Axial 5mm"), (ROWS, "512"), (COLUMNS, "512")]);
    assert!(lib.first_match(&|t| ct.get(&t).cloned()).is_none());
}
