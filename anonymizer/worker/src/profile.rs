//! The requested [`Profile`] of an `ImagenRegistrada` turned into the engine's [`Config`]: the
//! strictest options with each named Retain option switched on and each named Clean option
//! switched off, the extra regions, and the rule library. Anything the engine cannot apply rejects
//! the image as `"bad_profile"`, with a fixed message (the profile came from a client, so its text
//! is not echoed).

use alpes_anonymizer::{requested, Config};
use alpes_schemas::Profile;

use crate::rejection::Rejection;

const BAD_PROFILE: &str = "bad_profile";

/// The engine settings for one image: `base` (secret, shipped rules, limits) with `profile`
/// applied, its pseudonyms made in `namespace` (the provider's) when there is one.
pub fn engine_config(base: &Config, namespace: Option<&str>, profile: &Profile) -> Result<Config, Rejection> {
    let asked = requested(
        &profile.retain,
        &profile.no_clean,
        &profile.regions,
        profile.rules.as_deref(),
        profile.ocr.as_deref(),
    )
    .map_err(|e| Rejection::fixed(BAD_PROFILE, e.fixed()))?;
    let mut cfg = base.clone();
    cfg.options = asked.options;
    cfg.regions = asked.regions;
    cfg.ocr = asked.ocr;
    if let Some(namespace) = namespace {
        cfg.secret = base.secret.scoped(namespace);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_anonymizer::{DateMode, Options, Region, Secret};

    fn base() -> Config {
        Config::new(Secret::new(b"test".to_vec()))
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn profile(retain: &[&str], regions: &[&str], rules: Option<&str>) -> Profile {
        Profile {
            retain: names(retain),
            regions: names(regions),
            rules: rules.map(str::to_owned),
            ..Profile::default()
        }
    }

    #[test]
    fn an_empty_profile_is_the_strictest_one() {
        let cfg = engine_config(&base(), None, &Profile::default()).unwrap();
        assert_eq!(cfg.options, Options::default());
        assert!(cfg.regions.is_empty());
    }

    #[test]
    fn retain_names_and_regions_are_applied() {
        let cfg = engine_config(
            &base(),
            None,
            &profile(&["uids", "modified-dates"], &["0,0,10,20"], Some("default")),
        )
        .unwrap();
        assert!(cfg.options.retain_uids);
        assert_eq!(cfg.options.dates, DateMode::Modified);
        assert_eq!(cfg.regions, vec![Region { x: 0, y: 0, w: 10, h: 20 }]);
    }

    #[test]
    fn named_clean_options_are_switched_off() {
        let p = Profile {
            no_clean: names(&["graphics", "pixel-data"]),
            ..Profile::default()
        };
        let cfg = engine_config(&base(), None, &p).unwrap();
        assert!(!cfg.options.clean_graphics && !cfg.options.clean_pixel_data);
        assert!(cfg.options.clean_descriptors && cfg.options.clean_structured_content);
    }

    #[test]
    fn the_safety_net_mode_is_the_profiles_or_the_default() {
        use alpes_anonymizer::ocr::OcrMode;
        assert_eq!(engine_config(&base(), None, &Profile::default()).unwrap().ocr, OcrMode::AllText);
        let phi = Profile {
            ocr: Some("phi".into()),
            ..Profile::default()
        };
        assert_eq!(engine_config(&base(), None, &phi).unwrap().ocr, OcrMode::Phi);
        let unknown = Profile {
            ocr: Some("all".into()),
            ..Profile::default()
        };
        assert_eq!(engine_config(&base(), None, &unknown).unwrap_err().reason, "bad_profile");
    }

    #[test]
    fn an_unknown_option_region_or_rule_library_is_a_bad_profile() {
        let unknown_clean = Profile {
            no_clean: names(&["uids"]),
            ..Profile::default()
        };
        for p in [
            unknown_clean,
            profile(&["everything"], &[], None),
            profile(&[], &["1,2"], None),
            profile(&[], &[], Some("us-default")),
        ] {
            let r = engine_config(&base(), None, &p).unwrap_err();
            assert_eq!(r.reason, "bad_profile");
            assert!(
                !r.message.contains("everything") && !r.message.contains("us-default"),
                "{}",
                r.message
            );
        }
    }

    #[test]
    fn each_providers_images_get_that_providers_pseudonyms() {
        let uid = |namespace: Option<&str>| engine_config(&base(), namespace, &Profile::default()).unwrap().secret.uid("1.2.3");
        assert_ne!(uid(Some("provider-a")), uid(Some("provider-b")));
        assert_eq!(uid(Some("provider-a")), uid(Some("provider-a")));
        assert_eq!(
            uid(None),
            base().secret.uid("1.2.3"),
            "the instance's namespace is the secret's own"
        );
    }
}
