//! DICOM PS3.15 Table E.1-1, generated at build time from the shipped JSON.
//!
//! This module owns the raw table: the Basic Profile code and the per-option
//! codes of every attribute. How codes become actions is `profile`'s job.

/// A Basic Profile code as printed in Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basic {
    /// Replace with a non-zero length dummy value.
    D,
    /// Replace with a zero length value.
    Z,
    /// Remove.
    X,
    /// Replace with a consistent non-zero length UID.
    U,
    /// `X/Z`
    XZ,
    /// `X/D`
    XD,
    /// `X/Z/D`
    XZD,
    /// `Z/D`
    ZD,
    /// `X/Z/U*`
    XZUStar,
}

impl Basic {
    /// Whether the code leaves the choice to the attribute's type in the IOD (`X/Z`, `X/D`,
    /// `X/Z/D`, `Z/D`, `X/Z/U*`).
    pub fn is_compound(self) -> bool {
        !matches!(self, Basic::D | Basic::Z | Basic::X | Basic::U)
    }

    /// The code as the standard prints it.
    pub fn code(self) -> &'static str {
        match self {
            Basic::D => "D",
            Basic::Z => "Z",
            Basic::X => "X",
            Basic::U => "U",
            Basic::XZ => "X/Z",
            Basic::XD => "X/D",
            Basic::XZD => "X/Z/D",
            Basic::ZD => "Z/D",
            Basic::XZUStar => "X/Z/U*",
        }
    }
}

/// An option column code: keep (`K`) or clean (`C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionAction {
    /// `K`: retain.
    Keep,
    /// `C`: clean.
    Clean,
}

/// The option columns of Table E.1-1, in the order of [`Entry::options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionColumn {
    /// Retain Safe Private Option.
    RetainSafePrivate = 0,
    /// Retain UIDs Option.
    RetainUids = 1,
    /// Retain Device Identity Option.
    RetainDeviceIdentity = 2,
    /// Retain Institution Identity Option.
    RetainInstitutionIdentity = 3,
    /// Retain Patient Characteristics Option.
    RetainPatientCharacteristics = 4,
    /// Retain Longitudinal Temporal Information with Full Dates Option.
    RetainLongitudinalFullDates = 5,
    /// Retain Longitudinal Temporal Information with Modified Dates Option.
    RetainLongitudinalModifiedDates = 6,
    /// Clean Descriptors Option.
    CleanDescriptors = 7,
    /// Clean Structured Content Option.
    CleanStructuredContent = 8,
    /// Clean Graphics Option.
    CleanGraphics = 9,
}

impl OptionColumn {
    /// Every column, in table order.
    pub const ALL: [OptionColumn; 10] = [
        OptionColumn::RetainSafePrivate,
        OptionColumn::RetainUids,
        OptionColumn::RetainDeviceIdentity,
        OptionColumn::RetainInstitutionIdentity,
        OptionColumn::RetainPatientCharacteristics,
        OptionColumn::RetainLongitudinalFullDates,
        OptionColumn::RetainLongitudinalModifiedDates,
        OptionColumn::CleanDescriptors,
        OptionColumn::CleanStructuredContent,
        OptionColumn::CleanGraphics,
    ];

    /// The key of this column in the JSON form of the table.
    pub fn json_key(self) -> &'static str {
        match self {
            OptionColumn::RetainSafePrivate => "rtnSafePrivOpt",
            OptionColumn::RetainUids => "rtnUIDsOpt",
            OptionColumn::RetainDeviceIdentity => "rtnDevIdOpt",
            OptionColumn::RetainInstitutionIdentity => "rtnInstIdOpt",
            OptionColumn::RetainPatientCharacteristics => "rtnPatCharsOpt",
            OptionColumn::RetainLongitudinalFullDates => "rtnLongFullDatesOpt",
            OptionColumn::RetainLongitudinalModifiedDates => "rtnLongModifDatesOpt",
            OptionColumn::CleanDescriptors => "cleanDescOpt",
            OptionColumn::CleanStructuredContent => "cleanStructContOpt",
            OptionColumn::CleanGraphics => "cleanGraphOpt",
        }
    }
}

/// One row of Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The tag as `(group << 16) | element`; wildcard digits are zero.
    pub tag: u32,
    /// Which bits of `tag` are fixed (`0xFFFFFFFF` for an exact tag).
    pub mask: u32,
    /// The attribute name as printed in the standard.
    pub name: &'static str,
    /// Whether the attribute is used in a standard composite IOD.
    pub std_comp_iod: bool,
    /// The Basic Profile code.
    pub basic: Basic,
    /// The option codes, indexed by [`OptionColumn`].
    pub options: [Option<OptionAction>; 10],
}

impl Entry {
    /// The code in one option column.
    pub fn option(&self, column: OptionColumn) -> Option<OptionAction> {
        self.options[column as usize]
    }
}

include!(concat!(env!("OUT_DIR"), "/table_e1_1.rs"));

/// Every row with an exact tag, sorted by tag.
pub fn exact_entries() -> &'static [Entry] {
    EXACT
}

/// Every row with a wildcard tag (`50xx`, `60xx`).
pub fn masked_entries() -> &'static [Entry] {
    MASKED
}

/// The private attributes row.
pub fn private_entry() -> &'static Entry {
    &PRIVATE
}

/// Looks up the row for a public (even group) tag.
pub fn lookup(tag: u32) -> Option<&'static Entry> {
    if let Ok(i) = EXACT.binary_search_by_key(&tag, |e| e.tag) {
        return Some(&EXACT[i]);
    }
    // Only the repeating groups 50xx (curves) and 60xx (overlays) have wildcard rows.
    if !matches!(tag >> 24, 0x50 | 0x60) {
        return None;
    }
    MASKED.iter().find(|e| tag & e.mask == e.tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_rows_are_sorted_and_unique() {
        assert!(EXACT.windows(2).all(|w| w[0].tag < w[1].tag));
    }

    #[test]
    fn overlay_data_in_any_repeating_group_is_found() {
        let e = lookup(0x6002_3000).expect("overlay data row");
        assert_eq!(e.basic, Basic::X);
        assert_eq!(e.option(OptionColumn::CleanGraphics), Some(OptionAction::Clean));
    }

    #[test]
    fn patient_name_is_zeroed_by_the_basic_profile() {
        assert_eq!(lookup(0x0010_0010).map(|e| e.basic), Some(Basic::Z));
    }
}
