//! The QIDO-RS query keys Alpes takes: one table, read by the parser and by the
//! OpenAPI document, so a key cannot be taken undocumented or documented and
//! ignored.

use crate::routes::MAX_LIMIT;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::query;
use alpes_platform::store::catalog::DicomQuery;
use serde_json::{json, Value};

/// What a key sets in the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sets {
    PatientId,
    StudyUid,
    SeriesUid,
    SopInstanceUid,
    Modality,
    StudyDate,
    Limit,
    Offset,
    /// `fuzzymatching`: Alpes matches exactly; `true` is answered with a `Warning`.
    Fuzzy,
    /// Accepted, and changes nothing.
    Nothing,
    SeriesNumber,
    InstanceNumber,
    SopClassUid,
}

/// The level a search answers at. A key of a lower level (PS3.18 table 10.6.1-5: SeriesNumber of
/// the series, InstanceNumber and SOPClassUID of the instance) is not taken above it: a study's
/// or a series' summary counts all its instances, not those a lower-level key would pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Study,
    Series,
    Instance,
}

/// One key: its keyword (documented), its tag if it is an attribute (taken
/// too), what it sets, the highest level it is taken at, and its description.
#[derive(Debug)]
struct Key {
    keyword: &'static str,
    tag: Option<&'static str>,
    sets: Sets,
    from: Level,
    doc: &'static str,
}

const fn key(keyword: &'static str, tag: Option<&'static str>, sets: Sets, doc: &'static str) -> Key {
    key_from(Level::Study, keyword, tag, sets, doc)
}

const fn key_from(from: Level, keyword: &'static str, tag: Option<&'static str>, sets: Sets, doc: &'static str) -> Key {
    Key {
        keyword,
        tag,
        sets,
        from,
        doc,
    }
}

/// Every key taken. Any other is refused when it would narrow the search (ignoring it would
/// answer more than was asked), and ignored with a `Warning` when its value matches anything.
const KEYS: [Key; 14] = [
    key(
        "PatientID",
        Some("00100020"),
        Sets::PatientId,
        "The pseudonymous PatientID (`*` and `?` wildcards).",
    ),
    key(
        "StudyInstanceUID",
        Some("0020000D"),
        Sets::StudyUid,
        "The study, or a list (`a,b` or `a\\b`): any of them.",
    ),
    key("SeriesInstanceUID", Some("0020000E"), Sets::SeriesUid, "The series, or a list."),
    key("SOPInstanceUID", Some("00080018"), Sets::SopInstanceUid, "The instance, or a list."),
    key(
        "ModalitiesInStudy",
        Some("00080061"),
        Sets::Modality,
        "A modality, e.g. `CT`, or a list (`CT,MR`): any of them.",
    ),
    key("Modality", Some("00080060"), Sets::Modality, "Same as ModalitiesInStudy."),
    key(
        "StudyDate",
        Some("00080020"),
        Sets::StudyDate,
        "`YYYYMMDD`, or a range `YYYYMMDD-YYYYMMDD` open at either end.",
    ),
    key_from(
        Level::Series,
        "SeriesNumber",
        Some("00200011"),
        Sets::SeriesNumber,
        "The series number, a whole number (series and instance searches).",
    ),
    key_from(
        Level::Instance,
        "InstanceNumber",
        Some("00200013"),
        Sets::InstanceNumber,
        "The instance number, a whole number (instance searches).",
    ),
    key_from(
        Level::Instance,
        "SOPClassUID",
        Some("00080016"),
        Sets::SopClassUid,
        "The SOP class, or a list (instance searches).",
    ),
    key("limit", None, Sets::Limit, "At most this many results, 1 to 1000."),
    key("offset", None, Sets::Offset, "Skip this many results."),
    key(
        "includefield",
        None,
        Sets::Nothing,
        "Accepted; every attribute Alpes has is always included.",
    ),
    key(
        "fuzzymatching",
        None,
        Sets::Fuzzy,
        "Alpes matches exactly: `true` is answered with a `Warning` (the result can only be narrower).",
    ),
];

/// The query of `pairs`, and the warnings to answer with it. A key Alpes does not match on is
/// refused (400 `unsupported_match`) unless its value matches anything (empty, or only `*`): a
/// search that ignored it would answer more than was asked. A UID or a modality may list several
/// values (`a,b` or `a\\b`, PS3.18 §8.3.4.1): each combination of the listed values is one query
/// of the search (at most [`MAX_QUERIES`]). A key of a level below `level` is not taken.
pub fn parse(pairs: Vec<(String, String)>, level: Level) -> Result<(Search, Vec<String>), ApiError> {
    let mut q = DicomQuery {
        limit: 100,
        ..DicomQuery::default()
    };
    let mut lists: Vec<(Sets, Vec<String>)> = Vec::new();
    let (mut ignored, mut refused, mut warnings) = (Vec::new(), Vec::new(), Vec::new());
    for (name, value) in pairs {
        let named = |k: &&Key| k.keyword == name || k.tag == Some(name.as_str());
        match KEYS.iter().filter(|k| k.from <= level).find(named) {
            Some(k) if k.sets == Sets::Fuzzy => {
                if value.eq_ignore_ascii_case("true") {
                    warnings.push("fuzzy matching is not supported: names were matched exactly".to_owned());
                }
            }
            Some(k) => {
                let values: Vec<String> = if k.sets.takes_a_list() {
                    value
                        .split([',', '\\'])
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                        .collect()
                } else {
                    vec![value]
                };
                if let Some(max) = longest(k.sets).filter(|max| values.iter().any(|v| v.chars().count() > *max)) {
                    return Err(ApiError::bad_request(
                        "bad_match",
                        format!("{} matches values of at most {max} characters", k.keyword),
                    ));
                }
                // The last value given for a key stands (a path's UID is given last).
                lists.retain(|(sets, _)| *sets != k.sets);
                match <[String; 1]>::try_from(values) {
                    Ok([one]) => set(&mut q, k.sets, one)?,
                    // A list, or a list of nothing (`,`): each value a query of its own.
                    Err(many) => lists.push((k.sets, many)),
                }
            }
            None if value.chars().all(|c| c == '*') => ignored.push(name),
            None => refused.push(name),
        }
    }
    if !refused.is_empty() {
        return Err(ApiError::bad_request(
            "unsupported_match",
            format!(
                "matching on {} is not supported; without it the search would answer more than asked",
                refused.join(", ")
            ),
        ));
    }
    if !ignored.is_empty() {
        warnings.push(format!("matching keys not supported and ignored: {}", ignored.join(", ")));
    }
    Ok((Search::of(q, lists)?, warnings))
}

/// The most catalog queries one search may make (the product of its lists' lengths).
pub const MAX_QUERIES: usize = 100;
/// The furthest result (offset + limit) a search with lists may ask for.
pub const MAX_LISTED_END: usize = 10_000;

/// A QIDO-RS search: one catalog query per combination of the values its keys list (one query
/// when none lists several), all with the search's other keys, offset and limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The queries; their results together are the search's.
    pub queries: Vec<DicomQuery>,
    /// The results to skip.
    pub offset: usize,
    /// The most results to answer.
    pub limit: usize,
}

impl Search {
    fn of(q: DicomQuery, lists: Vec<(Sets, Vec<String>)>) -> Result<Search, ApiError> {
        let (offset, limit) = (q.offset, q.limit);
        // Each query of a list is read from its start to the page's end: the page must end early.
        if !lists.is_empty() && offset.saturating_add(limit) > MAX_LISTED_END {
            return Err(ApiError::bad_request(
                "bad_offset",
                format!("with a list of values, offset + limit must be at most {MAX_LISTED_END}"),
            ));
        }
        let mut queries = vec![q];
        for (sets, values) in lists {
            if queries.len() * values.len().max(1) > MAX_QUERIES {
                return Err(ApiError::bad_request(
                    "too_many_values",
                    format!("the listed values make more than {MAX_QUERIES} combinations"),
                ));
            }
            // A key listing no value at all (`,`) matches nothing.
            queries = queries
                .iter()
                .flat_map(|q| {
                    values.iter().map(move |v| {
                        let mut q = q.clone();
                        set(&mut q, sets, v.clone()).map(|()| q)
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        Ok(Search { queries, offset, limit })
    }
}

impl Sets {
    /// Whether the key may list several values: UID list matching and several modalities (PS3.18
    /// 8.3.4.1).
    fn takes_a_list(self) -> bool {
        matches!(
            self,
            Sets::StudyUid | Sets::SeriesUid | Sets::SopInstanceUid | Sets::SopClassUid | Sets::Modality
        )
    }
}

/// The longest value an attribute `sets` matches can hold (PS3.5 table 6.2-1:
/// PatientID is LO and the UIDs UI, 64 characters; Modality is CS, 16). A
/// longer filter could match nothing; it is refused before any store reads
/// it (SQLite's pattern limit would answer it as an outage).
fn longest(sets: Sets) -> Option<usize> {
    match sets {
        Sets::PatientId | Sets::StudyUid | Sets::SeriesUid | Sets::SopInstanceUid | Sets::SopClassUid => Some(64),
        Sets::Modality => Some(16),
        // IS: 12 characters.
        Sets::SeriesNumber | Sets::InstanceNumber => Some(12),
        Sets::StudyDate | Sets::Limit | Sets::Offset | Sets::Fuzzy | Sets::Nothing => None,
    }
}

fn set(q: &mut DicomQuery, sets: Sets, value: String) -> Result<(), ApiError> {
    match sets {
        Sets::PatientId => q.patient_id = Some(value),
        Sets::StudyUid => q.study_uid = Some(value),
        Sets::SeriesUid => q.series_uid = Some(value),
        Sets::SopInstanceUid => q.sop_instance_uid = Some(value),
        Sets::Modality => q.modality = Some(value),
        Sets::StudyDate => (q.study_date_from, q.study_date_to) = date_range(&value)?,
        Sets::Limit => {
            q.limit = value
                .parse()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::bad_request("bad_limit", format!("limit must be 1 to {MAX_LIMIT}")))?;
        }
        Sets::Offset => {
            q.offset = value
                .parse()
                .map_err(|_| ApiError::bad_request("bad_offset", "offset must be a whole number"))?
        }
        Sets::SeriesNumber => q.series_number = Some(whole_number("SeriesNumber", &value)?),
        Sets::InstanceNumber => q.instance_number = Some(whole_number("InstanceNumber", &value)?),
        Sets::SopClassUid => q.sop_class_uid = Some(value),
        Sets::Fuzzy | Sets::Nothing => {}
    }
    Ok(())
}

/// An IS value: a whole number that fits 32 bits.
fn whole_number(keyword: &str, v: &str) -> Result<i32, ApiError> {
    v.trim()
        .parse()
        .map_err(|_| ApiError::bad_request("bad_match", format!("{keyword} matches a whole number")))
}

/// `YYYYMMDD`, `YYYYMMDD-`, `-YYYYMMDD` or `YYYYMMDD-YYYYMMDD`.
fn date_range(v: &str) -> Result<(Option<String>, Option<String>), ApiError> {
    let date = |d: &str| -> Result<Option<String>, ApiError> {
        match d {
            "" => Ok(None),
            d if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(d.to_owned())),
            _ => Err(ApiError::bad_request(
                "bad_study_date",
                "StudyDate must be YYYYMMDD or a YYYYMMDD-YYYYMMDD range",
            )),
        }
    };
    match v.split_once('-') {
        Some((from, to)) => Ok((date(from)?, date(to)?)),
        None => {
            let d = date(v)?;
            Ok((d.clone(), d))
        }
    }
}

/// The schema of what `sets` takes.
fn schema(sets: Sets) -> Value {
    match sets {
        Sets::StudyDate => json!({ "type": "string", "pattern": "^([0-9]{8})?(-([0-9]{8})?)?$" }),
        Sets::Limit => json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100 }),
        Sets::Offset => json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 0 }),
        Sets::PatientId | Sets::StudyUid | Sets::SeriesUid | Sets::SopInstanceUid | Sets::SopClassUid | Sets::Modality => {
            json!({ "type": "string", "maxLength": longest(sets) })
        }
        Sets::SeriesNumber | Sets::InstanceNumber => json!({ "type": "integer", "minimum": i32::MIN, "maximum": i32::MAX }),
        Sets::Fuzzy => json!({ "type": "string", "enum": ["true", "false"] }),
        Sets::Nothing => json!({ "type": "string" }),
    }
}

/// The OpenAPI query parameters of a search at `level`: every key it takes, by its keyword.
pub fn params(level: Level) -> Vec<Value> {
    KEYS.iter()
        .filter(|k| k.from <= level)
        .map(|k| {
            let doc = match k.tag {
                Some(tag) => format!("{} The tag `{tag}` is taken too.", k.doc),
                None => k.doc.to_owned(),
            };
            query(k.keyword, schema(k.sets), &doc)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params_names(level: Level) -> Vec<String> {
        params(level)
            .iter()
            .map(|p| p["name"].as_str().expect("a name").to_owned())
            .collect()
    }

    /// Parsed as an instance search takes them (every key).
    fn parse_all(pairs: Vec<(String, String)>) -> Result<(Search, Vec<String>), ApiError> {
        parse(pairs, Level::Instance)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn study_dates_match_a_day_or_a_range_open_at_either_end() {
        let d = |s: &str| date_range(s).map_err(|e| e.code);
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(d("20200101"), Ok((s("20200101"), s("20200101"))));
        assert_eq!(d("20200101-20201231"), Ok((s("20200101"), s("20201231"))));
        assert_eq!(d("20200101-"), Ok((s("20200101"), None)));
        assert_eq!(d("-20201231"), Ok((None, s("20201231"))));
        assert_eq!(d("2020"), Err("bad_study_date"));
        assert_eq!(d("2020-01-01"), Err("bad_study_date"));
    }

    #[test]
    fn keys_are_read_by_keyword_or_tag_and_unknown_ones_matching_anything_are_named() {
        let (q, warnings) = parse_all(pairs(&[
            ("00100020", "P*"),
            ("ModalitiesInStudy", "CT"),
            ("limit", "5"),
            ("offset", "10"),
            ("includefield", "all"),
            ("PatientName", "*"),
            ("00081030", ""),
            ("fuzzymatching", "false"),
        ]))
        .expect("parses");
        let [q] = &q.queries[..] else { panic!("one query: {q:?}") };
        assert_eq!(
            (q.patient_id.as_deref(), q.modality.as_deref(), q.limit, q.offset),
            (Some("P*"), Some("CT"), 5, 10)
        );
        assert_eq!(warnings, ["matching keys not supported and ignored: PatientName, 00081030"]);
        let (_, fuzzy) = parse_all(pairs(&[("fuzzymatching", "true")])).expect("parses");
        assert!(fuzzy[0].starts_with("fuzzy matching is not supported"), "{fuzzy:?}");
    }

    #[test]
    fn a_key_or_a_list_that_would_widen_the_search_if_ignored_is_refused() {
        for (k, v) in [
            ("PatientName", "X*"),
            ("AccessionNumber", "A1"),
            // An instance-level key in a study search.
            ("00080016", "1.2.840.10008.5.1.4.1.1.2"),
        ] {
            let e = parse(pairs(&[(k, v)]), Level::Study).expect_err("400");
            assert_eq!((e.status.as_u16(), e.code), (400, "unsupported_match"), "{k}={v}");
            assert!(!e.message.contains(v), "{k}: the value is echoed: {}", e.message);
        }
    }

    #[test]
    fn lists_of_uids_and_modalities_are_one_query_per_combination() {
        let (search, _) = parse_all(pairs(&[
            ("StudyInstanceUID", "1.2,1.3"),
            ("ModalitiesInStudy", "CT\\MR"),
            ("limit", "7"),
        ]))
        .expect("parses");
        let combos: Vec<(Option<&str>, Option<&str>, usize)> = search
            .queries
            .iter()
            .map(|q| (q.study_uid.as_deref(), q.modality.as_deref(), q.limit))
            .collect();
        assert_eq!(
            combos,
            [
                (Some("1.2"), Some("CT"), 7),
                (Some("1.2"), Some("MR"), 7),
                (Some("1.3"), Some("CT"), 7),
                (Some("1.3"), Some("MR"), 7)
            ]
        );
        let many = (0..11).map(|i| format!("1.{i}")).collect::<Vec<_>>().join(",");
        let e = parse_all(pairs(&[("StudyInstanceUID", &many), ("SeriesInstanceUID", &many)])).expect_err("400");
        assert_eq!(e.code, "too_many_values");
        let far = parse_all(pairs(&[("StudyInstanceUID", "1.2,1.3"), ("offset", "9950"), ("limit", "100")]));
        assert_eq!(
            far.expect_err("400").code,
            "bad_offset",
            "each listed query would read to the page's end"
        );
        // The last value of a key stands: a path's UID, given last, over a list.
        let last = parse_all(pairs(&[("StudyInstanceUID", "1.2,1.3"), ("StudyInstanceUID", "9.9")]))
            .expect("ok")
            .0;
        assert_eq!(last.queries.len(), 1);
        assert_eq!(last.queries[0].study_uid.as_deref(), Some("9.9"));
        let two = parse_all(pairs(&[("StudyInstanceUID", "1.2,1.3")])).expect("ok").0;
        assert_eq!((two.queries.len(), two.offset, two.limit), (2, 0, 100));
        assert!(
            parse_all(pairs(&[("StudyInstanceUID", ",")])).expect("ok").0.queries.is_empty(),
            "no value: no match"
        );
        let e = parse_all(pairs(&[("SOPInstanceUID", &format!("1.2,{}", "9".repeat(65)))])).expect_err("400");
        assert_eq!(e.code, "bad_match", "every listed value is checked");
    }

    #[test]
    fn bad_values_are_400s_with_their_codes() {
        for (k, v, code) in [
            ("limit", "0", "bad_limit"),
            ("limit", "1001", "bad_limit"),
            ("offset", "-1", "bad_offset"),
            ("00080020", "2020", "bad_study_date"),
            ("PatientID", &"1".repeat(65), "bad_match"),
            ("00100020", &"*".repeat(50_001), "bad_match"),
            ("Modality", &"C".repeat(17), "bad_match"),
        ] {
            assert_eq!(parse_all(pairs(&[(k, v)])).expect_err("400").code, code, "{k}={v}");
        }
    }

    #[test]
    fn lower_level_keys_are_taken_at_their_level_and_below_it_only() {
        let (search, _) = parse_all(pairs(&[
            ("SeriesNumber", "3"),
            ("00200013", "12"),
            ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"),
        ]))
        .expect("an instance search takes them");
        let q = &search.queries[0];
        assert_eq!((q.series_number, q.instance_number), (Some(3), Some(12)));
        assert_eq!(q.sop_class_uid.as_deref(), Some("1.2.840.10008.5.1.4.1.1.2"));
        let classes = parse_all(pairs(&[("SOPClassUID", "1.2.1,1.2.2")])).expect("a list").0;
        assert_eq!(classes.queries.len(), 2);
        assert_eq!(
            parse(pairs(&[("SeriesNumber", "3")]), Level::Series).expect("series").0.queries[0].series_number,
            Some(3)
        );
        // Above their level they would cut a summary's counts: refused, or ignored when they match anything.
        for (k, level) in [
            ("SeriesNumber", Level::Study),
            ("InstanceNumber", Level::Series),
            ("SOPClassUID", Level::Series),
        ] {
            assert_eq!(parse(pairs(&[(k, "1")]), level).expect_err("400").code, "unsupported_match", "{k}");
            assert_eq!(parse(pairs(&[(k, "*")]), level).expect("ignored").1.len(), 1, "{k}");
        }
        assert_eq!(parse_all(pairs(&[("SeriesNumber", "three")])).expect_err("400").code, "bad_match");
    }

    #[test]
    fn every_key_is_documented_once_by_its_keyword_with_its_tag_named() {
        let params = params(Level::Instance);
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().expect("a name")).collect();
        assert_eq!(names, KEYS.map(|k| k.keyword));
        let studies: Vec<String> = params_names(Level::Study);
        assert!(!studies
            .iter()
            .any(|n| ["SeriesNumber", "InstanceNumber", "SOPClassUID"].contains(&n.as_str())));
        assert!(params_names(Level::Series).contains(&"SeriesNumber".to_owned()));
        let patient = &params[0];
        assert!(patient["description"].as_str().expect("text").contains("`00100020`"));
    }
}
