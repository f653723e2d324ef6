//! What an upload asks of the engine, by name: Retain options to switch on,
//! Clean options to switch off, extra regions to burn, a rule library and the
//! burned-in text safety net's mode.
//! Ingest checks a request with [`requested`] before it accepts the upload;
//! the worker calls it again to build the image's [`Config`](crate::Config).
//! One mapping, so a profile ingest accepts is one the worker can apply.

use crate::ocr::{OcrMode, OCR_MODES};
use crate::profile::{CLEAN_OPTIONS, RETAIN_OPTIONS};
use crate::{Options, Region};

/// The one rule library this build ships.
pub const DEFAULT_RULES: &str = "default";

/// The engine settings a profile asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Requested {
    /// The strictest options with the named Retain ones on and the named Clean ones off.
    pub options: Options,
    /// The regions to burn besides the rule library's.
    pub regions: Vec<Region>,
    /// The burned-in text safety net's mode.
    pub ocr: OcrMode,
}

/// Why a profile cannot be applied. The message names the client's own
/// value; [`ProfileError::fixed`] is the same without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A Retain option this engine does not know.
    #[error("unknown retain option {0:?}; expected one of {names}", names = RETAIN_OPTIONS.join(", "))]
    UnknownRetain(String),
    /// A Clean option this engine does not know.
    #[error("unknown clean option {0:?}; expected one of {names}", names = CLEAN_OPTIONS.join(", "))]
    UnknownClean(String),
    /// A region that is not `x,y,w,h`.
    #[error("region {0:?} is not x,y,w,h")]
    BadRegion(String),
    /// A rule library that is not installed.
    #[error("unknown rule library {0:?}; only \"default\" is installed")]
    UnknownRules(String),
    /// A safety net mode this engine does not know.
    #[error("unknown ocr mode {0:?}; expected one of {names}", names = OCR_MODES.join(", "))]
    UnknownOcr(String),
}

impl ProfileError {
    /// The message without the client's value.
    pub fn fixed(&self) -> &'static str {
        match self {
            ProfileError::UnknownRetain(_) => "the profile names an unknown retain option",
            ProfileError::UnknownClean(_) => "the profile names an unknown clean option",
            ProfileError::BadRegion(_) => "the profile has a region that is not x,y,w,h",
            ProfileError::UnknownRules(_) => "the profile names an unknown rule library",
            ProfileError::UnknownOcr(_) => "the profile names an unknown ocr mode",
        }
    }
}

/// The options named by `retain` and `no_clean`; the error names the first unknown one.
pub fn options<R: AsRef<str>, C: AsRef<str>>(retain: &[R], no_clean: &[C]) -> Result<Options, ProfileError> {
    let mut o = Options::default();
    if let Some(r) = retain.iter().find(|r| !o.retain(r.as_ref())) {
        return Err(ProfileError::UnknownRetain(r.as_ref().to_owned()));
    }
    if let Some(c) = no_clean.iter().find(|c| !o.skip_clean(c.as_ref())) {
        return Err(ProfileError::UnknownClean(c.as_ref().to_owned()));
    }
    Ok(o)
}

/// The safety net mode named by `ocr`, the default when none is.
pub fn ocr_mode(ocr: Option<&str>) -> Result<OcrMode, ProfileError> {
    match ocr {
        None => Ok(OcrMode::default()),
        Some(name) => OcrMode::parse(name).ok_or_else(|| ProfileError::UnknownOcr(name.chars().take(64).collect())),
    }
}

/// The engine settings a profile asks for, or why it cannot be applied.
pub fn requested(
    retain: &[String],
    no_clean: &[String],
    regions: &[String],
    rules: Option<&str>,
    ocr: Option<&str>,
) -> Result<Requested, ProfileError> {
    let options = options(retain, no_clean)?;
    let regions = regions
        .iter()
        .map(|r| Region::parse(r).map_err(|_| ProfileError::BadRegion(r.chars().take(64).collect())))
        .collect::<Result<Vec<_>, _>>()?;
    let ocr = ocr_mode(ocr)?;
    match rules {
        None | Some(DEFAULT_RULES) => Ok(Requested { options, regions, ocr }),
        Some(other) => Err(ProfileError::UnknownRules(other.chars().take(64).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_profile_maps_to_options_and_regions() {
        let r = requested(
            &names(&["uids"]),
            &names(&["graphics"]),
            &names(&["0,0,10,10"]),
            Some("default"),
            Some("phi"),
        )
        .expect("valid");
        assert_eq!(r.ocr, OcrMode::Phi);
        let mut want = Options::default();
        assert!(want.retain("uids") && want.skip_clean("graphics"));
        assert_eq!(r.options, want);
        assert_eq!(r.regions, vec![Region::parse("0,0,10,10").expect("region")]);
        let empty = requested(&[], &[], &[], None, None).expect("empty");
        assert_eq!((empty.options, empty.ocr), (Options::default(), OcrMode::AllText));
    }

    #[test]
    fn every_unknown_name_is_its_own_error() {
        let err = |retain: &[&str], clean: &[&str], regions: &[&str], rules| {
            requested(&names(retain), &names(clean), &names(regions), rules, None).expect_err("invalid")
        };
        assert_eq!(
            err(&["everything"], &[], &[], None),
            ProfileError::UnknownRetain("everything".into())
        );
        assert_eq!(err(&[], &["nothing"], &[], None), ProfileError::UnknownClean("nothing".into()));
        assert_eq!(err(&[], &[], &["1,2"], None), ProfileError::BadRegion("1,2".into()));
        assert_eq!(err(&[], &[], &[], Some("other")), ProfileError::UnknownRules("other".into()));
        assert_eq!(
            requested(&[], &[], &[], None, Some("some")).expect_err("invalid"),
            ProfileError::UnknownOcr("some".into())
        );
        assert!(err(&["x"], &[], &[], None)
            .to_string()
            .starts_with("unknown retain option \"x\"; expected one of"));
        assert_eq!(
            err(&[], &[], &[], Some("secret")).fixed(),
            "the profile names an unknown rule library"
        );
    }
}
