//! Applies the profile to a dataset tree, at every depth of nested sequences.
//!
//! Order of decisions for each element: group lengths and file meta are
//! dropped; private elements are removed unless on the safe list under Retain
//! Safe Private; PatientID / PatientName get keyed pseudonyms; rows of Table
//! E.1-1 resolve through [`Options::resolve`]; anything else with VR PN or an
//! unknown tag is removed. Sequences that are kept are always processed inside.
//!
//! # Coded entries
//! The coded-entry attributes (0008,0100)–(0008,0120) of an item are decided by
//! the item's Coding Scheme Designator (0008,0102):
//! - a standard coding scheme ([`STANDARD_CODING_SCHEMES`], from PS3.16 Table
//!   8-1) is vocabulary, and every coded-entry attribute is kept as is;
//! - any other designator, or none (private `99…` schemes, HL7 `L`, site-made
//!   ones, URN-only codes), may be free text typed at a site. Code Value,
//!   Extended Code Value, Long Code Value, URN Code Value and the designator
//!   itself get keyed pseudonyms ([`Secret::code_value`],
//!   [`Secret::coding_scheme`]), so one local code still maps to one value.
//!   Code Meaning and the other text (scheme version, name, registry,
//!   responsible organisation, extended meaning) go through the Clean
//!   Descriptors allow-list cleaner; without that option Code Meaning, which
//!   is Type 1, becomes `ANONYMIZED` and the other text is removed. A Coding
//!   Scheme URL is removed. CS, DT and UI attributes are kept.
//!
//! An item with no Code Value, Meaning or designator of its own (a Coding
//! Scheme Resources item, for example) follows the item it is nested in.
//!
//! # The object stays as valid as it came
//! Every decision is made knowing what the object's IOD requires of the
//! attribute at its nesting path ([`crate::iod`]): compound codes resolve by
//! type ([`crate::profile::resolve_typed`]), and an attribute the IOD requires
//! is emptied rather than removed (Type 2), or given a dummy rather than
//! emptied or removed (Type 1), whatever rule removed it
//! ([`crate::profile::keep_valid`]); free text that cleaning leaves empty gets
//! the dummy when it is Type 1. Removing an overlay's data removes its whole
//! group (60xx): an overlay plane without its bits is not a valid one.

use crate::clean::clean_text;
use crate::dataset::{DataSet, Element, Value, Vr};
use crate::dates::shift_values;
use crate::iod::{Iod, Requirement};
use crate::profile::{keep_valid, Action, DateMode, Options};
use crate::pseudonym::Secret;
use crate::syntax;
use crate::table;
use std::collections::{BTreeMap, HashMap, HashSet};

const PATIENT_NAME: u32 = 0x0010_0010;
const PATIENT_ID: u32 = 0x0010_0020;
const SOP_CLASS_UID: u32 = 0x0008_0016;
const DUMMY_TEXT: &str = "ANONYMIZED";

/// Private attributes kept under Retain Safe Private: (creator, group, element low byte, what it is).
/// They carry acquisition physics only (b-values, gradient directions, mosaic layout), never identity.
pub const SAFE_PRIVATE: &[(&str, u16, u8, &str)] = &[
    ("SIEMENS MR HEADER", 0x0019, 0x0A, "NumberOfImagesInMosaic"),
    ("SIEMENS MR HEADER", 0x0019, 0x0B, "SliceMeasurementDuration"),
    ("SIEMENS MR HEADER", 0x0019, 0x0C, "B_value"),
    ("SIEMENS MR HEADER", 0x0019, 0x0D, "DiffusionDirectionality"),
    ("SIEMENS MR HEADER", 0x0019, 0x0E, "DiffusionGradientDirection"),
    ("SIEMENS MR HEADER", 0x0019, 0x27, "B_matrix"),
    ("GEMS_PARM_01", 0x0043, 0x39, "SlopInteger6to9 (b-value)"),
    ("GEMS_ACQU_01", 0x0019, 0xBB, "UserData (diffusion direction X)"),
    ("GEMS_ACQU_01", 0x0019, 0xBC, "UserData (diffusion direction Y)"),
    ("GEMS_ACQU_01", 0x0019, 0xBD, "UserData (diffusion direction Z)"),
    ("Philips Imaging DD 001", 0x2001, 0x03, "DiffusionBFactor"),
    ("Philips MR Imaging DD 001", 0x2005, 0xB0, "DiffusionDirectionRL"),
    ("Philips MR Imaging DD 001", 0x2005, 0xB1, "DiffusionDirectionAP"),
    ("Philips MR Imaging DD 001", 0x2005, 0xB2, "DiffusionDirectionFH"),
];

/// Coding Scheme Designators of standard coding schemes (PS3.16 Table 8-1), whose coded entries
/// are vocabulary and are kept verbatim. The designators are case-sensitive. A few spellings used
/// outside DICOM for the same schemes (`ICD10`, `ICD9CM`, `CPT4`, `LOINC`, ...) are listed too,
/// as are HL7 table designators (`HL7` followed by digits, see [`is_standard_scheme`]).
pub const STANDARD_CODING_SCHEMES: &[&str] = &[
    "99SDM", // SDM, listed by PS3.16 despite its private-looking prefix
    "ACR",
    "ASTM-sigpurpose",
    "BARI",
    "BI",
    "C4",
    "C5",
    "CD2",
    "CTV3",
    "DC",
    "DCM",
    "DCMUID",
    "FMA",
    "HL7",
    "HPC",
    "I10",
    "I10C",
    "I10P",
    "I11",
    "I9",
    "I9C",
    "IBSI",
    "ICDO3",
    "ISO3166_1",
    "ISO639_1",
    "ISO639_2",
    "ITIS_TSN",
    "LN",
    "MA",
    "MAYOASRG",
    "MDC",
    "MDNS",
    "MGI",
    "MSH",
    "NCDR",
    "NCIt",
    "NDC",
    "NEU",
    "NICIP",
    "NYUMCCG",
    "PATHLEX",
    "POS",
    "PUBCHEM_CID",
    "RADELEMENT",
    "RADLEX",
    "RFC3066",
    "RFC5646",
    "RO",
    "RRID",
    "RXNORM",
    "SCT",
    "SNM3",
    "SRT",
    "UBERON",
    "UCUM",
    "UMLS",
    "UNS",
    "UPC",
    "caDSR",
    // The same schemes as other standards spell them.
    "CPT4",
    "ICD10",
    "ICD10CM",
    "ICD10PCS",
    "ICD9",
    "ICD9CM",
    "LOINC",
];

/// Whether a Coding Scheme Designator names a standard coding scheme (see
/// [`STANDARD_CODING_SCHEMES`]); HL7 table designators (`HL7` and digits) count as standard.
pub fn is_standard_scheme(designator: &[u8]) -> bool {
    let Ok(d) = std::str::from_utf8(designator) else {
        return false;
    };
    STANDARD_CODING_SCHEMES.contains(&d)
        || d.strip_prefix("HL7")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

const CODE_VALUE: u32 = 0x0008_0100;
const EXTENDED_CODE_VALUE: u32 = 0x0008_0101;
const CODING_SCHEME_DESIGNATOR: u32 = 0x0008_0102;
const CODE_MEANING: u32 = 0x0008_0104;
const LONG_CODE_VALUE: u32 = 0x0008_0119;
const URN_CODE_VALUE: u32 = 0x0008_0120;

/// The coding scheme that the coded-entry attributes of the current item belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    /// No coded entry, or one from a standard coding scheme: kept as is.
    Standard,
    /// A private or local scheme, or none named: the designator's raw bytes (maybe empty).
    Local(Vec<u8>),
}

/// The scheme an item's own coded entry names, or `None` if the item has no code value, meaning
/// or designator of its own.
fn item_scheme(ds: &DataSet<'_>) -> Option<Scheme> {
    let own = [
        CODE_VALUE,
        EXTENDED_CODE_VALUE,
        CODING_SCHEME_DESIGNATOR,
        CODE_MEANING,
        LONG_CODE_VALUE,
        URN_CODE_VALUE,
    ]
    .iter()
    .any(|t| ds.get(*t).is_some());
    if !own {
        return None;
    }
    let designator = ds.get(CODING_SCHEME_DESIGNATOR).map(raw_trimmed).unwrap_or_default();
    Some(if is_standard_scheme(designator) {
        Scheme::Standard
    } else {
        Scheme::Local(designator.to_vec())
    })
}

/// How free text inside a sequence is treated, inherited from the sequence's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextMode {
    /// Free text follows its own row (or is kept if it has none).
    Plain,
    /// Inside a cleaned (`C`) sequence: free text is cleaned.
    Clean,
    /// Inside a dummied (`D`) sequence: free text is replaced.
    Dummy,
}

/// State for de-identifying one dataset tree.
#[derive(Debug)]
pub struct Deidentifier<'c> {
    options: &'c Options,
    secret: &'c Secret,
    shift_days: i64,
    /// The coding scheme of the item being processed.
    scheme: Scheme,
    /// Whether the pixel stage will burn regions into overlays; if not, Clean Graphics removes them.
    pub overlays_burned: bool,
    /// Attributes handled, by action.
    pub counts: BTreeMap<Action, u64>,
    /// UID values replaced.
    pub uids_remapped: u64,
    /// The object's IOD, when the PS3.3 tables have its SOP class.
    pub iod: Option<Iod>,
    /// Attributes the IOD requires that were emptied instead of removed, or given
    /// a dummy instead of being removed or emptied (see [`keep_valid`]).
    pub kept_for_iod: u64,
    /// The tags of the sequences enclosing the dataset being processed.
    path: Vec<u32>,
}

impl<'c> Deidentifier<'c> {
    /// Prepares for one top-level dataset; the date shift comes from its patient.
    pub fn new(options: &'c Options, secret: &'c Secret, top: &DataSet<'_>) -> Self {
        let key = patient_key(top);
        Deidentifier {
            options,
            secret,
            shift_days: secret.date_shift_days(&key),
            scheme: Scheme::Standard,
            overlays_burned: false,
            counts: BTreeMap::new(),
            uids_remapped: 0,
            iod: top.text(SOP_CLASS_UID).and_then(Iod::for_sop_class),
            kept_for_iod: 0,
            path: Vec::new(),
        }
    }

    /// What the object's IOD requires of `tag` in the dataset being processed.
    fn required(&self, tag: u32) -> Requirement {
        self.iod
            .as_ref()
            .map_or(Requirement::Unknown, |iod| iod.requirement(&self.path, tag))
    }

    fn count(&mut self, action: Action) {
        *self.counts.entry(action).or_insert(0) += 1;
    }

    /// De-identifies the dataset in place.
    pub fn run(&mut self, ds: &mut DataSet<'_>) {
        self.dataset(ds, TextMode::Plain);
    }

    fn dataset(&mut self, ds: &mut DataSet<'_>, mode: TextMode) {
        // An item naming its own coding scheme decides for itself; others follow their parent.
        let parent_scheme = match item_scheme(ds) {
            Some(own) => Some(std::mem::replace(&mut self.scheme, own)),
            None => None,
        };
        self.elements(ds, mode);
        if let Some(parent) = parent_scheme {
            self.scheme = parent;
        }
    }

    fn elements(&mut self, ds: &mut DataSet<'_>, mode: TextMode) {
        let has_private = ds.elements.iter().any(|e| e.group() % 2 == 1);
        let creators: HashMap<(u16, u8), String> = if !has_private || !self.options.retain_safe_private {
            HashMap::new()
        } else {
            ds.elements
                .iter()
                .filter(|e| e.group() % 2 == 1 && (0x10..=0xFF).contains(&(e.tag & 0xFFFF)))
                .filter_map(|e| {
                    let name = String::from_utf8_lossy(e.raw()?).trim_end_matches(['\0', ' ']).trim().to_owned();
                    Some(((e.group(), (e.tag & 0xFF) as u8), name))
                })
                .collect()
        };
        let same_patient_id = ds.get(PATIENT_ID).map(raw_trimmed).filter(|s| !s.is_empty()).map(<[u8]>::to_vec);
        let mut kept_blocks: HashSet<(u16, u8)> = HashSet::new();
        let mut overlays_removed: HashSet<u16> = HashSet::new();
        let elements = std::mem::take(&mut ds.elements);
        let mut out = Vec::with_capacity(elements.len());
        let mut private_creators = Vec::new();
        for mut el in elements {
            let elem = el.tag & 0xFFFF;
            if elem == 0 || el.group() == 0x0002 {
                continue;
            }
            if el.group() % 2 == 1 {
                if (0x10..=0xFF).contains(&elem) {
                    private_creators.push(el);
                    continue;
                }
                let block = ((elem >> 8) & 0xFF) as u8;
                let creator = creators.get(&(el.group(), block)).map(String::as_str);
                let safe = self.options.retain_safe_private
                    && elem > 0xFF
                    && creator.is_some_and(|c| {
                        SAFE_PRIVATE
                            .iter()
                            .any(|s| s.0 == c && s.1 == el.group() && s.2 == (elem & 0xFF) as u8)
                    });
                if safe {
                    kept_blocks.insert((el.group(), block));
                    self.count(Action::KeepSafePrivate);
                    out.push(el);
                } else {
                    self.count(Action::RemovePrivate);
                }
                continue;
            }
            // Decide on the dictionary VR when the file declares another (UN, OB, a wrong text VR):
            // a mis-declared VR must not let a name or a description slip past its rule.
            if let Value::Bytes(_) = &el.value {
                let dict = syntax::dictionary_vr(el.tag);
                if dict != el.vr && dict != Vr::UN && dict.is_text() {
                    el.vr = dict;
                }
            }
            let mut action = self.action_for(&el, mode);
            // What the IOD requires matters only to an action that removes, empties or cleans.
            let judged = matches!(action, Action::Remove | Action::RemovePersonName | Action::Empty | Action::Clean);
            let required = if judged { self.required(el.tag) } else { Requirement::Unknown };
            let overlay_data = el.tag & 0xFF01_FFFF == 0x6000_3000;
            if !overlay_data && keep_valid(action, required) != action {
                action = keep_valid(action, required);
                self.kept_for_iod += 1;
            }
            self.count(action);
            self.path.push(el.tag);
            let kept = self.apply(&mut el, action, mode, same_patient_id.as_deref(), required);
            self.path.pop();
            if kept {
                out.push(el);
            } else if overlay_data {
                overlays_removed.insert(el.group());
            }
        }
        // An overlay plane without its data is not a valid one: the whole group goes.
        out.retain(|e| !overlays_removed.contains(&e.group()));
        for c in private_creators {
            if kept_blocks.contains(&(c.group(), (c.tag & 0xFF) as u8)) {
                out.push(c);
            } else {
                self.count(Action::RemovePrivate);
            }
        }
        out.sort_by_key(|e| e.tag);
        ds.elements = out;
    }

    fn action_for(&self, el: &Element<'_>, mode: TextMode) -> Action {
        if el.tag == PATIENT_ID || el.tag == PATIENT_NAME {
            return Action::Pseudonym;
        }
        // A standard sequence left as opaque UN bytes (it could not be decoded) cannot be inspected.
        if el.vr == Vr::UN && matches!(el.value, Value::Bytes(_)) && syntax::dictionary_vr(el.tag) == Vr::SQ {
            return Action::RemoveUnknown;
        }
        if let Some(entry) = table::lookup(el.tag) {
            let required = if entry.basic.is_compound() {
                self.required(el.tag)
            } else {
                Requirement::Unknown
            };
            return self.options.resolve(entry, required);
        }
        if el.vr == Vr::PN {
            return Action::RemovePersonName;
        }
        if !syntax::is_known(el.tag) {
            return Action::RemoveUnknown;
        }
        let coded = (0x0008_0100..=0x0008_0120).contains(&el.tag) || el.tag == 0x0008_0005;
        if coded {
            return match self.scheme {
                Scheme::Local(_) if el.tag != 0x0008_0005 => self.local_code_action(el),
                _ => Action::Keep,
            };
        }
        if el.vr == Vr::UI && !self.options.retain_uids && is_instance_uid(el) {
            return Action::Uid;
        }
        // Dates and URLs the table does not list still identify: they follow the date options or go.
        match (el.vr, self.options.dates) {
            (Vr::DA | Vr::DT | Vr::TM, DateMode::Full) => return Action::Keep,
            (Vr::DA | Vr::DT | Vr::TM, DateMode::Modified) => return Action::Clean,
            (Vr::DA | Vr::DT | Vr::TM, DateMode::Remove) => return Action::Remove,
            (Vr::UR, _) => return Action::Remove,
            _ => {}
        }
        // Short free text outside the table: kept only for a reviewed list of technical
        // attributes, cleaned under Clean Descriptors, removed otherwise.
        if mode == TextMode::Plain && matches!(el.vr, Vr::LO | Vr::SH | Vr::UC) && !TECHNICAL_TEXT.contains(&el.tag) {
            return if self.options.clean_descriptors {
                Action::Clean
            } else {
                Action::Remove
            };
        }
        // Narrative text the table does not list (e.g. a Text Value outside SR content) can
        // still carry PHI: Clean Descriptors cleans it with the allow-list; without it, it goes.
        if mode == TextMode::Plain && matches!(el.vr, Vr::LT | Vr::ST | Vr::UT) {
            return if self.options.clean_descriptors {
                Action::Clean
            } else {
                Action::Remove
            };
        }
        match mode {
            TextMode::Clean if el.vr.is_free_text() && !coded => Action::Clean,
            TextMode::Dummy if el.vr.is_free_text() && !coded => Action::Dummy,
            _ => Action::Keep,
        }
    }

    /// The action on a coded-entry attribute of a private or local coding scheme (see the module
    /// documentation).
    fn local_code_action(&self, el: &Element<'_>) -> Action {
        match el.tag {
            CODE_VALUE | EXTENDED_CODE_VALUE | CODING_SCHEME_DESIGNATOR | LONG_CODE_VALUE | URN_CODE_VALUE => Action::Pseudonym,
            _ if el.vr.is_free_text() && self.options.clean_descriptors => Action::Clean,
            CODE_MEANING => Action::Dummy,
            _ if el.vr.is_free_text() || el.vr == Vr::UR => Action::Remove,
            _ => Action::Keep,
        }
    }

    /// The keyed pseudonym of a local coded entry's value or designator, within its VR's length.
    fn code_pseudonym(&self, tag: u32, value: &[u8]) -> String {
        let designator = match &self.scheme {
            Scheme::Local(d) => d.as_slice(),
            Scheme::Standard => &[],
        };
        match tag {
            CODING_SCHEME_DESIGNATOR => self.secret.coding_scheme(value),
            // SH: 16 characters.
            CODE_VALUE => format!("ALPES-{}", self.secret.code_value(designator, value, 10)),
            // UC, and longer than 16 characters, as a Long Code Value must be.
            LONG_CODE_VALUE => format!("ALPES-{}", self.secret.code_value(designator, value, 26)),
            URN_CODE_VALUE => format!("urn:alpes:{}", self.secret.code_value(designator, value, 32)),
            // Extended Code Value, LO: 64 characters.
            _ => format!("ALPES-{}", self.secret.code_value(designator, value, 16)),
        }
    }

    /// Applies an action; returns whether the element stays.
    fn apply(
        &mut self,
        el: &mut Element<'_>,
        action: Action,
        mode: TextMode,
        same_patient_id: Option<&[u8]>,
        required: Requirement,
    ) -> bool {
        match action {
            Action::Remove | Action::RemovePrivate | Action::RemovePersonName | Action::RemoveUnknown => return false,
            Action::Empty => {
                el.value = match el.value {
                    Value::Sequence(_) => Value::Sequence(Vec::new()),
                    _ => Value::Bytes(Vec::new().into()),
                }
            }
            Action::Pseudonym => {
                // Keys are the raw bytes: values in any character set stay distinct.
                let own = raw_trimmed(el).to_vec();
                let value = if own.is_empty() {
                    String::new()
                } else if el.tag != PATIENT_ID && el.tag != PATIENT_NAME {
                    self.code_pseudonym(el.tag, &own)
                } else if el.tag == PATIENT_ID {
                    self.secret.patient_id(&own)
                } else {
                    self.secret.patient_name(same_patient_id.unwrap_or(&own))
                };
                *el = Element::text(el.tag, el.vr, &value);
            }
            Action::Uid => self.remap_uids(el),
            Action::Dummy => self.dummy(el),
            Action::Clean => {
                let kept = self.clean(el);
                let emptied = kept && matches!(&el.value, Value::Bytes(b) if b.is_empty());
                // What cleaning left empty, or could not clean, is what it would be if removed.
                let valid = match (kept, emptied) {
                    (false, _) => keep_valid(Action::Remove, required),
                    (true, true) => keep_valid(Action::Empty, required),
                    (true, false) => return true,
                };
                let as_it_is = matches!((kept, valid), (false, Action::Remove) | (true, Action::Empty));
                if as_it_is || el.tag & 0xFF01_FFFF == 0x6000_3000 {
                    return kept;
                }
                self.kept_for_iod += 1;
                return self.apply(el, valid, mode, same_patient_id, required);
            }
            Action::Keep | Action::UidsInSequence | Action::KeepSafePrivate => {
                if let Value::Sequence(items) = &mut el.value {
                    for item in items {
                        self.dataset(item, mode);
                    }
                }
            }
        }
        true
    }

    fn remap_uids(&mut self, el: &mut Element<'_>) {
        match &mut el.value {
            Value::Sequence(items) => {
                for item in items {
                    self.dataset(item, TextMode::Plain);
                }
            }
            _ => {
                let text = text_of(el);
                let mapped: Vec<String> = text
                    .split('\\')
                    .map(|u| u.trim_matches(['\0', ' ']))
                    .map(|u| {
                        if u.is_empty() {
                            String::new()
                        } else {
                            self.uids_remapped += 1;
                            self.secret.uid(u)
                        }
                    })
                    .collect();
                *el = Element::text(el.tag, Vr::UI, &mapped.join("\\"));
            }
        }
    }

    fn dummy(&mut self, el: &mut Element<'_>) {
        let vr = el.vr;
        let text = match vr {
            Vr::SQ => {
                if let Value::Sequence(items) = &mut el.value {
                    for item in items {
                        self.dataset(item, TextMode::Dummy);
                    }
                }
                return;
            }
            Vr::UI => return self.remap_uids(el),
            Vr::DA => "19000101",
            Vr::DT => "19000101000000",
            Vr::TM => "000000",
            Vr::DS | Vr::IS => "0",
            Vr::AS => "000Y",
            Vr::AE | Vr::CS => "ANONYMIZED",
            Vr::UR => "urn:alpes:anonymized",
            v if v.is_text() => DUMMY_TEXT,
            v => {
                el.value = Value::Bytes(vec![0u8; v.swap_width().max(2)].into());
                if v == Vr::AT {
                    el.value = Value::Bytes(vec![0u8; 4].into());
                }
                return;
            }
        };
        *el = Element::text(el.tag, vr, text);
    }

    fn clean(&mut self, el: &mut Element<'_>) -> bool {
        let vr = el.vr;
        match vr {
            Vr::SQ => {
                if let Value::Sequence(items) = &mut el.value {
                    for item in items {
                        self.dataset(item, TextMode::Clean);
                    }
                }
            }
            Vr::DA | Vr::DT => {
                let shifted = if self.options.dates == DateMode::Full {
                    text_of(el)
                } else {
                    shift_values(&text_of(el), self.shift_days, vr == Vr::DT)
                };
                *el = Element::text(el.tag, vr, &shifted);
            }
            // A whole-day shift leaves the time of day unchanged.
            Vr::TM => {}
            Vr::UI => self.remap_uids(el),
            Vr::PN => *el = Element::text(el.tag, vr, ""),
            v if v.is_free_text() => *el = Element::text(el.tag, vr, &clean_text(&text_of(el))),
            // Overlay data is burned by the pixel stage when there are regions; without any, it goes.
            _ if el.tag & 0xFF01_FFFF == 0x6000_3000 => return self.overlays_burned,
            // Anything else that cannot be cleaned (curves, binary values) goes.
            _ => return false,
        }
        true
    }
}

/// Every UID outside the table is an instance reference unless it names a class, a transfer
/// syntax or a coding scheme, or is a UID defined by the standard itself.
fn is_instance_uid(el: &Element<'_>) -> bool {
    let standard = el.raw().is_some_and(|v| v.starts_with(b"1.2.840.10008."));
    !standard
        && !syntax::keyword(el.tag)
            .is_some_and(|k| k.ends_with("ClassUID") || k.ends_with("ClassUIDs") || k.contains("TransferSyntax") || k.contains("Scheme"))
}

/// Standard LO/SH attributes outside Table E.1-1 that carry device physics, not identity.
const TECHNICAL_TEXT: &[u32] = &[
    0x0008_0070, // Manufacturer
    0x0018_0024, // SequenceName
    0x0018_1210, // ConvolutionKernel
    0x0018_1250, // ReceiveCoilName
    0x0018_1251, // TransmitCoilName
    0x0018_1160, // FilterType
    0x0018_9005, // PulseSequenceName
    0x0028_1054, // RescaleType
    0x0028_1055, // WindowCenterWidthExplanation
    0x0028_2114, // LossyImageCompressionMethod
];

fn text_of(el: &Element<'_>) -> String {
    el.raw()
        .map(|b| String::from_utf8_lossy(b).trim_end_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

/// A value's bytes without leading spaces and trailing space or NUL padding.
fn raw_trimmed<'e>(el: &'e Element<'_>) -> &'e [u8] {
    let b = el.raw().unwrap_or_default();
    let end = b.iter().rposition(|c| *c != b' ' && *c != 0).map_or(0, |i| i + 1);
    let start = b[..end].iter().position(|c| *c != b' ').unwrap_or(end);
    &b[start..end]
}

/// The key a patient's pseudonyms and date shift derive from: the raw bytes of PatientID,
/// else of PatientName (any character set).
pub fn patient_key(ds: &DataSet<'_>) -> Vec<u8> {
    [PATIENT_ID, PATIENT_NAME]
        .iter()
        .filter_map(|t| ds.get(*t).map(raw_trimmed))
        .find(|k| !k.is_empty())
        .unwrap_or_default()
        .to_vec()
}

/// Adds the attributes PS3.15 asks for to record what was done.
pub fn record_method(ds: &mut DataSet<'_>, options: &Options) {
    let codes = options.cid7050();
    ds.put(Element::text(0x0012_0062, Vr::CS, "YES"));
    let method: Vec<&str> = codes.iter().map(|c| c.1).collect();
    ds.put(Element::text(0x0012_0063, Vr::LO, &method.join("\\")));
    let items = codes
        .iter()
        .map(|(value, meaning)| {
            let mut item = DataSet {
                elements: Vec::new(),
                big_endian: ds.big_endian,
            };
            item.put(Element::text(0x0008_0100, Vr::SH, value));
            item.put(Element::text(0x0008_0102, Vr::SH, "DCM"));
            item.put(Element::text(0x0008_0104, Vr::LO, meaning));
            item
        })
        .collect();
    ds.put(Element {
        tag: 0x0012_0064,
        vr: Vr::SQ,
        value: Value::Sequence(items),
    });
    let ltim = match options.dates {
        DateMode::Remove => "REMOVED",
        DateMode::Full => "UNMODIFIED",
        DateMode::Modified => "MODIFIED",
    };
    ds.put(Element::text(0x0028_0303, Vr::CS, ltim));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(fields: &[(u32, Vr, &str)]) -> DataSet<'static> {
        let mut ds = DataSet::default();
        for (tag, vr, v) in fields {
            ds.put(Element::text(*tag, *vr, v));
        }
        ds
    }

    fn sequence(tag: u32, items: Vec<DataSet<'static>>) -> Element<'static> {
        Element {
            tag,
            vr: Vr::SQ,
            value: Value::Sequence(items),
        }
    }

    #[test]
    fn standard_designators_are_recognised_exactly() {
        for d in ["DCM", "SCT", "SRT", "LN", "UCUM", "RADLEX", "NCIt", "HL70136", "99SDM"] {
            assert!(is_standard_scheme(d.as_bytes()), "{d}");
        }
        for d in ["", "L", "99LOCAL", "ALPES_CT", "sct", "HL7X", "DCM "] {
            assert!(!is_standard_scheme(d.as_bytes()), "{d:?}");
        }
    }

    #[test]
    fn a_nested_item_without_its_own_code_follows_its_parent_scheme() {
        // A local scheme's identification item, with a resources item (URL and URL type) inside.
        let resources = item(&[(0x0008_010A, Vr::CS, "DOC"), (0x0008_010E, Vr::UR, "http://st-mary.example/codes")]);
        let mut local = item(&[
            (CODING_SCHEME_DESIGNATOR, Vr::SH, "99STMARY"),
            (0x0008_0115, Vr::ST, "St Mary Hospital codes"),
        ]);
        local.put(sequence(0x0008_0109, vec![resources.clone()]));
        let mut standard = item(&[
            (CODING_SCHEME_DESIGNATOR, Vr::SH, "DCM"),
            (0x0008_0115, Vr::ST, "DICOM Controlled Terminology"),
        ]);
        standard.put(sequence(0x0008_0109, vec![resources]));
        let mut ds = DataSet::default();
        ds.put(sequence(0x0008_0110, vec![local, standard]));
        let options = Options::default();
        let secret = Secret::new("k");
        Deidentifier::new(&options, &secret, &ds).run(&mut ds);
        let Some(Value::Sequence(items)) = ds.get(0x0008_0110).map(|e| &e.value) else {
            panic!("sequence removed")
        };
        assert_eq!(
            items[0].text(CODING_SCHEME_DESIGNATOR),
            Some(secret.coding_scheme("99STMARY").as_str())
        );
        assert_eq!(items[0].text(0x0008_0115), Some(""), "the local scheme's name is cleaned");
        let Some(Value::Sequence(inner)) = items[0].get(0x0008_0109).map(|e| &e.value) else {
            panic!("resources removed")
        };
        assert!(inner[0].get(0x0008_010E).is_none(), "a local scheme's URL is removed");
        assert_eq!(inner[0].text(0x0008_010A), Some("DOC"));
        assert_eq!(items[1].text(CODING_SCHEME_DESIGNATOR), Some("DCM"));
        assert_eq!(items[1].text(0x0008_0115), Some("DICOM Controlled Terminology"));
        let Some(Value::Sequence(inner)) = items[1].get(0x0008_0109).map(|e| &e.value) else {
            panic!("resources removed")
        };
        assert_eq!(inner[0].text(0x0008_010E), Some("http://st-mary.example/codes"));
    }
}
