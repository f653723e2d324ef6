//! The de-identification profile: which PS3.15 options are on, and how a
//! Table E.1-1 row resolves to one concrete [`Action`] under them.
//!
//! # Compound codes
//! PS3.15 lets an implementation choose within `X/Z`, `X/D`, `X/Z/D`, `Z/D`
//! and `X/Z/U*` according to the attribute's Type in the IOD. Where the PS3.3
//! tables ([`crate::iod`]) describe the attribute's place in the object, the
//! choice is the standard's ([`resolve_typed`]): Type 3 → remove, Type 2 →
//! empty, Type 1 → dummy (`X/Z/U*`: the sequence kept with its UIDs replaced,
//! for Type 2 too, so that the object's references stay whole).
//! Where they do not (a SOP class not in the tables, a sequence whose items they
//! do not list), Alpes takes **the most removal that keeps the object valid
//! whatever the IOD** ([`resolve_basic`]):
//! - if the row's `stdCompIOD` column is `N` (the attribute is in no standard
//!   composite IOD), removal cannot break conformance: `X/…` → remove, `Z/D` → empty;
//! - otherwise the attribute may be Type 1 or 2 somewhere, so the strongest
//!   option still valid for Type 1 is taken: `X/Z` → empty (it is at most Type 2),
//!   `X/D`, `X/Z/D` and `Z/D` → dummy, `X/Z/U*` → keep the sequence and replace
//!   every UID inside it consistently.
//!
//! # Options
//! An enabled option column overrides the Basic Profile code. When two enabled
//! options disagree (`K` from a Retain option, `C` from another), the more
//! protective `C` wins.

use crate::iod::Requirement;
use crate::table::{Basic, Entry, OptionAction, OptionColumn};
use serde::{Deserialize, Serialize};

/// What happens to temporal attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateMode {
    /// No Retain Longitudinal option: dates are handled by the Basic Profile.
    #[default]
    Remove,
    /// Retain Longitudinal Temporal Information with Full Dates.
    Full,
    /// Retain Longitudinal Temporal Information with Modified Dates (a keyed per-patient shift).
    Modified,
}

/// The PS3.15 options in force. `Default` is the strictest profile: Basic plus
/// every Clean option and no Retain option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Retain Safe Private Option (keeps the documented safe list).
    pub retain_safe_private: bool,
    /// Retain UIDs Option.
    pub retain_uids: bool,
    /// Retain Device Identity Option.
    pub retain_device_identity: bool,
    /// Retain Institution Identity Option.
    pub retain_institution_identity: bool,
    /// Retain Patient Characteristics Option.
    pub retain_patient_characteristics: bool,
    /// Retain Longitudinal Temporal Information (Full or Modified Dates).
    pub dates: DateMode,
    /// Clean Descriptors Option. It also covers coded entries of private or local coding schemes
    /// (see [`crate::deid`]): with it, their Code Meaning and other text are cleaned with the
    /// allow-list; without it, Code Meaning becomes a dummy and the other text is removed. Their
    /// code values get keyed pseudonyms either way, and codes of standard schemes are kept.
    pub clean_descriptors: bool,
    /// Clean Structured Content Option.
    pub clean_structured_content: bool,
    /// Clean Graphics Option.
    pub clean_graphics: bool,
    /// Clean Pixel Data Option.
    pub clean_pixel_data: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retain_safe_private: false,
            retain_uids: false,
            retain_device_identity: false,
            retain_institution_identity: false,
            retain_patient_characteristics: false,
            dates: DateMode::Remove,
            clean_descriptors: true,
            clean_structured_content: true,
            clean_graphics: true,
            clean_pixel_data: true,
        }
    }
}

/// The Retain options of PS3.15 Table E.1-1, by the names [`Options::retain`] takes.
pub const RETAIN_OPTIONS: [&str; 7] = [
    "safe-private",
    "uids",
    "device-identity",
    "institution-identity",
    "patient-characteristics",
    "full-dates",
    "modified-dates",
];

/// The Clean options, by the names [`Options::skip_clean`] takes.
pub const CLEAN_OPTIONS: [&str; 4] = ["descriptors", "structured-content", "graphics", "pixel-data"];

impl Options {
    /// The Basic Profile with no option at all.
    pub fn basic() -> Self {
        Options {
            clean_descriptors: false,
            clean_structured_content: false,
            clean_graphics: false,
            clean_pixel_data: false,
            ..Options::default()
        }
    }

    /// Turns on a Retain option by name (see [`RETAIN_OPTIONS`]); false if unknown.
    pub fn retain(&mut self, name: &str) -> bool {
        match name {
            "safe-private" => self.retain_safe_private = true,
            "uids" => self.retain_uids = true,
            "device-identity" => self.retain_device_identity = true,
            "institution-identity" => self.retain_institution_identity = true,
            "patient-characteristics" => self.retain_patient_characteristics = true,
            "full-dates" => self.dates = DateMode::Full,
            "modified-dates" => self.dates = DateMode::Modified,
            _ => return false,
        }
        true
    }

    /// Turns a Clean option off by name (see [`CLEAN_OPTIONS`]); false if unknown.
    pub fn skip_clean(&mut self, name: &str) -> bool {
        match name {
            "descriptors" => self.clean_descriptors = false,
            "structured-content" => self.clean_structured_content = false,
            "graphics" => self.clean_graphics = false,
            "pixel-data" => self.clean_pixel_data = false,
            _ => return false,
        }
        true
    }

    /// Whether a Table E.1-1 option column is in force.
    pub fn enabled(&self, column: OptionColumn) -> bool {
        match column {
            OptionColumn::RetainSafePrivate => self.retain_safe_private,
            OptionColumn::RetainUids => self.retain_uids,
            OptionColumn::RetainDeviceIdentity => self.retain_device_identity,
            OptionColumn::RetainInstitutionIdentity => self.retain_institution_identity,
            OptionColumn::RetainPatientCharacteristics => self.retain_patient_characteristics,
            OptionColumn::RetainLongitudinalFullDates => self.dates == DateMode::Full,
            OptionColumn::RetainLongitudinalModifiedDates => self.dates == DateMode::Modified,
            OptionColumn::CleanDescriptors => self.clean_descriptors,
            OptionColumn::CleanStructuredContent => self.clean_structured_content,
            OptionColumn::CleanGraphics => self.clean_graphics,
        }
    }

    /// The CID 7050 codes (value, meaning) for exactly the options applied, Basic first.
    pub fn cid7050(&self) -> Vec<(&'static str, &'static str)> {
        let mut codes = vec![("113100", "Basic Application Confidentiality Profile")];
        let flags = [
            (self.clean_pixel_data, "113101", "Clean Pixel Data Option"),
            (self.clean_graphics, "113103", "Clean Graphics Option"),
            (self.clean_structured_content, "113104", "Clean Structured Content Option"),
            (self.clean_descriptors, "113105", "Clean Descriptors Option"),
            (
                self.dates == DateMode::Full,
                "113106",
                "Retain Longitudinal Temporal Information Full Dates Option",
            ),
            (
                self.dates == DateMode::Modified,
                "113107",
                "Retain Longitudinal Temporal Information Modified Dates Option",
            ),
            (
                self.retain_patient_characteristics,
                "113108",
                "Retain Patient Characteristics Option",
            ),
            (self.retain_device_identity, "113109", "Retain Device Identity Option"),
            (self.retain_uids, "113110", "Retain UIDs Option"),
            (self.retain_safe_private, "113111", "Retain Safe Private Option"),
            (self.retain_institution_identity, "113112", "Retain Institution Identity Option"),
        ];
        codes.extend(flags.iter().filter(|f| f.0).map(|f| (f.1, f.2)));
        codes
    }

    /// Resolves one table row to the action taken under these options, for an
    /// attribute the object's IOD requires as `required`.
    pub fn resolve(&self, entry: &Entry, required: Requirement) -> Action {
        let mut keep = false;
        for column in OptionColumn::ALL {
            if !self.enabled(column) {
                continue;
            }
            match entry.option(column) {
                Some(OptionAction::Clean) => return Action::Clean,
                Some(OptionAction::Keep) => keep = true,
                None => {}
            }
        }
        if keep {
            return Action::Keep;
        }
        match required {
            Requirement::Unknown => resolve_basic(entry.basic, entry.std_comp_iod),
            known => resolve_typed(entry.basic, known),
        }
    }
}

/// PS3.15's compound codes decided by the attribute's type in the object's IOD
/// (`Unknown` is taken as Type 3: see [`resolve_basic`] for the rule without tables).
pub fn resolve_typed(basic: Basic, required: Requirement) -> Action {
    use Requirement::{Optional, Type1, Type2, Unknown};
    match (basic, required) {
        (Basic::X, _) => Action::Remove,
        (Basic::Z, _) => Action::Empty,
        (Basic::D, _) => Action::Dummy,
        (Basic::U, _) => Action::Uid,
        (Basic::XZ | Basic::XD | Basic::XZD | Basic::XZUStar, Optional | Unknown) => Action::Remove,
        (Basic::ZD, Optional | Unknown | Type2) | (Basic::XZ | Basic::XZD, Type2) => Action::Empty,
        (Basic::XD, Type2) | (Basic::XZ | Basic::XD | Basic::XZD | Basic::ZD, Type1) => Action::Dummy,
        // A Type 2 reference sequence could be emptied, but then the object still names the
        // referenced series (Common Instance Reference) and no longer the instances in them:
        // its references are kept, every UID in them replaced, as for Type 1.
        (Basic::XZUStar, Type1 | Type2) => Action::UidsInSequence,
    }
}

/// The least change to `action` that leaves an attribute the IOD requires valid:
/// a Type 2 attribute is emptied rather than removed, a Type 1 one gets a dummy
/// rather than going or being emptied. Nothing of the original value is kept.
pub fn keep_valid(action: Action, required: Requirement) -> Action {
    match (action, required) {
        (Action::Remove | Action::RemovePersonName, Requirement::Type2) => Action::Empty,
        (Action::Remove | Action::RemovePersonName | Action::Empty, Requirement::Type1) => Action::Dummy,
        _ => action,
    }
}

/// The compound-code rule documented at the top of this module.
pub fn resolve_basic(basic: Basic, in_standard_iod: bool) -> Action {
    match (basic, in_standard_iod) {
        (Basic::X, _) => Action::Remove,
        (Basic::Z, _) => Action::Empty,
        (Basic::D, _) => Action::Dummy,
        (Basic::U, _) => Action::Uid,
        (Basic::XZ | Basic::XD | Basic::XZD | Basic::XZUStar, false) => Action::Remove,
        (Basic::ZD, false) => Action::Empty,
        (Basic::XZ, true) => Action::Empty,
        (Basic::XD | Basic::XZD | Basic::ZD, true) => Action::Dummy,
        (Basic::XZUStar, true) => Action::UidsInSequence,
    }
}

/// One concrete action on one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `X`: the attribute is removed.
    Remove,
    /// `Z`: the value is emptied.
    Empty,
    /// `D`: the value is replaced by a dummy of its VR.
    Dummy,
    /// `U`: the UID is replaced by its keyed `2.25` pseudonym.
    Uid,
    /// `U*`: the sequence is kept and every UID in it is replaced.
    UidsInSequence,
    /// `K`: the attribute is kept (sequences are still processed inside).
    Keep,
    /// `C`: the value is cleaned (dates shifted, text cleaned, sequences cleaned).
    Clean,
    /// PatientID / PatientName, and the code values and designator of a coded entry from a
    /// private or local coding scheme: replaced by a keyed pseudonym.
    Pseudonym,
    /// A private attribute removed (not on the safe list, or the option is off).
    RemovePrivate,
    /// An attribute outside the table removed because its VR is PN.
    RemovePersonName,
    /// An attribute outside the table removed because the dictionary does not know it.
    RemoveUnknown,
    /// A private attribute kept under Retain Safe Private.
    KeepSafePrivate,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table;

    #[test]
    fn every_named_option_is_one_the_options_take_and_nothing_else_is() {
        for name in RETAIN_OPTIONS {
            assert!(Options::default().retain(name), "{name}");
            assert!(!Options::default().skip_clean(name), "{name} is not a Clean option");
        }
        for name in CLEAN_OPTIONS {
            assert!(Options::default().skip_clean(name), "{name}");
            assert!(!Options::default().retain(name), "{name} is not a Retain option");
        }
        assert!(!Options::default().retain("everything"));
    }

    #[test]
    fn the_default_profile_is_basic_plus_every_clean_option_and_no_retain_option() {
        let o = Options::default();
        let codes: Vec<&str> = o.cid7050().iter().map(|c| c.0).collect();
        assert_eq!(codes, vec!["113100", "113101", "113103", "113104", "113105"]);
    }

    #[test]
    fn compound_codes_take_the_most_removal_that_stays_valid() {
        assert_eq!(resolve_basic(Basic::XZ, true), Action::Empty);
        assert_eq!(resolve_basic(Basic::XZ, false), Action::Remove);
        assert_eq!(resolve_basic(Basic::XZD, true), Action::Dummy);
        assert_eq!(resolve_basic(Basic::ZD, false), Action::Empty);
        assert_eq!(resolve_basic(Basic::XZUStar, true), Action::UidsInSequence);
    }

    #[test]
    fn compound_codes_follow_the_attributes_type_where_the_iod_is_known() {
        use Requirement::{Optional, Type1, Type2};
        for (basic, optional, type2, type1) in [
            (Basic::XZ, Action::Remove, Action::Empty, Action::Dummy),
            (Basic::XD, Action::Remove, Action::Dummy, Action::Dummy),
            (Basic::XZD, Action::Remove, Action::Empty, Action::Dummy),
            (Basic::ZD, Action::Empty, Action::Empty, Action::Dummy),
            (Basic::XZUStar, Action::Remove, Action::UidsInSequence, Action::UidsInSequence),
        ] {
            assert_eq!(resolve_typed(basic, Optional), optional, "{basic:?} Type 3");
            assert_eq!(resolve_typed(basic, Type2), type2, "{basic:?} Type 2");
            assert_eq!(resolve_typed(basic, Type1), type1, "{basic:?} Type 1");
        }
        assert_eq!(keep_valid(Action::Remove, Type2), Action::Empty);
        assert_eq!(keep_valid(Action::Empty, Type1), Action::Dummy);
        assert_eq!(keep_valid(Action::Remove, Optional), Action::Remove);
        assert_eq!(keep_valid(Action::RemovePrivate, Type1), Action::RemovePrivate);
    }

    #[test]
    fn a_clean_option_wins_over_a_retain_option() {
        // Beam Hold Transition DateTime: rtnDevIdOpt K, rtnLongModifDatesOpt C.
        let e = table::lookup(0x300C_0127).expect("row");
        let mut o = Options::basic();
        o.retain("device-identity");
        assert_eq!(o.resolve(e, Requirement::Unknown), Action::Keep);
        o.retain("modified-dates");
        assert_eq!(o.resolve(e, Requirement::Unknown), Action::Clean);
    }

    #[test]
    fn retain_uids_keeps_study_instance_uid() {
        let e = table::lookup(0x0020_000D).expect("row");
        let mut o = Options::default();
        assert_eq!(o.resolve(e, Requirement::Type1), Action::Uid);
        o.retain("uids");
        assert_eq!(o.resolve(e, Requirement::Type1), Action::Keep);
    }
}
