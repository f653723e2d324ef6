//! Alpes de-identification engine.
//!
//! A pure library with no I/O runtime: [`anonymize`] takes the bytes of a
//! DICOM file (any transfer syntax), a raw dataset, a PNG or a JPEG, and
//! returns de-identified bytes plus a [`Report`] that carries no PHI.
//!
//! - The attribute actions come from DICOM PS3.15 Table E.1-1, generated at
//!   build time from `standard/ps3.15-table-e1-1.json` ([`table`], [`profile`]).
//! - UIDs, PatientID and PatientName get keyed, stateless pseudonyms
//!   ([`pseudonym`]); Modified Dates shift each patient by one keyed offset.
//! - Clean Pixel Data burns regions from the profile, a CTP-syntax rule
//!   library ([`rules`]) and ultrasound regions ([`pixels`]), and the text the
//!   burned-in text safety net finds ([`ocr`]).

mod boxes;
pub mod clean;
pub mod dataset;
pub mod dates;
pub mod deid;
mod engine;
pub mod error;
pub mod iod;
pub mod j2k;
pub mod jxl;
pub mod ocr;
pub mod parse;
pub mod pixels;
pub mod probe;
pub mod profile;
pub mod pseudonym;
pub mod raster;
pub mod region;
pub mod report;
pub mod requested;
pub mod rle;
pub mod rules;
pub mod syntax;
pub mod table;
pub mod write;

pub use engine::{
    anonymize, anonymize_into, burn_plan, Anonymized, Config, DEFAULT_ENGINE_MEMORY, DEFAULT_MAX_DECODED, PEAK_PER_DECODED_BYTE,
};
pub use error::{Error, Result};
pub use profile::{Action, DateMode, Options};
pub use pseudonym::Secret;
pub use region::Region;
pub use report::Report;
pub use requested::{requested, ProfileError, Requested};
pub use rules::RuleLibrary;
