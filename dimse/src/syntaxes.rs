//! What the listener negotiates: the abstract syntaxes (Verification, and
//! every storage SOP class of PS3.3's composite IODs, from the engine's
//! generated tables) and the transfer syntaxes the engine reads, in the
//! order the calling AE proposes them (its preference wins; a compressed
//! instance is taken as sent, never transcoded).

use alpes_anonymizer::syntax::TransferSyntax;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// The Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Media Storage Directory Storage (a DICOMDIR): a file-set index, not an object to store.
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// Every abstract syntax accepted: Verification, then the storage SOP classes.
pub fn abstract_syntaxes() -> Vec<&'static str> {
    std::iter::once(VERIFICATION)
        .chain(alpes_anonymizer::iod::sop_classes().filter(|uid| *uid != MEDIA_STORAGE_DIRECTORY))
        .collect()
}

/// Whether `uid` is a storage SOP class the listener takes.
pub fn is_storage(uid: &str) -> bool {
    uid != MEDIA_STORAGE_DIRECTORY && alpes_anonymizer::iod::sop_classes().any(|s| s == uid)
}

/// Every transfer syntax accepted: those dicom-rs parses a data set of and the engine reads.
pub fn transfer_syntaxes() -> Vec<&'static str> {
    let mut uids: Vec<&'static str> = TransferSyntaxRegistry
        .iter()
        .filter(|ts| !ts.is_unsupported() && TransferSyntax::from_uid(ts.uid()).is_some())
        .map(|ts| ts.uid())
        .collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_classes_come_from_the_tables_and_leave_out_a_dicomdir() {
        let all = abstract_syntaxes();
        assert_eq!(all[0], VERIFICATION);
        assert!(all.len() > 150, "{}", all.len());
        for class in [
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.840.10008.5.1.4.1.1.4",
            "1.2.840.10008.5.1.4.1.1.7",
            "1.2.840.10008.5.1.4.1.1.66.4",
        ] {
            assert!(all.contains(&class) && is_storage(class), "{class}");
        }
        assert!(!all.contains(&MEDIA_STORAGE_DIRECTORY));
        assert!(!is_storage(VERIFICATION));
        assert!(!is_storage("1.2.840.10008.5.1.4.1.2.2.1"), "Study Root C-FIND is no storage class");
    }

    #[test]
    fn compressed_syntaxes_are_taken_beside_the_uncompressed_ones() {
        let all = transfer_syntaxes();
        for ts in [
            "1.2.840.10008.1.2",
            "1.2.840.10008.1.2.1",
            "1.2.840.10008.1.2.5",
            "1.2.840.10008.1.2.4.50",
            "1.2.840.10008.1.2.4.70",
            "1.2.840.10008.1.2.4.80",
            "1.2.840.10008.1.2.4.90",
            "1.2.840.10008.1.2.4.91",
        ] {
            assert!(all.contains(&ts), "{ts} missing from {all:?}");
        }
        // And the rest the engine reads: deflated, HTJ2K, MPEG-2/4 and HEVC, JPEG XL.
        for ts in [
            "1.2.840.10008.1.2.1.99",
            "1.2.840.10008.1.2.4.201",
            "1.2.840.10008.1.2.4.203",
            "1.2.840.10008.1.2.4.100",
            "1.2.840.10008.1.2.4.107",
            "1.2.840.10008.1.2.4.110",
            "1.2.840.10008.1.2.4.112",
        ] {
            assert!(all.contains(&ts), "{ts} missing from {all:?}");
        }
        assert!(!all.contains(&"1.2.3.4"));
    }
}
