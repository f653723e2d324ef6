//! The anonymization profile a client asks for: Retain options, Clean options
//! switched off, extra regions and the rule library, checked before anything
//! is stored so a bad profile is a 400, not a rejected image later.

use alpes_anonymizer::requested;
use alpes_platform::http::ApiError;
use alpes_schemas::Profile;

/// The profile fields and labels of one upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadMeta {
    /// The profile to apply.
    pub profile: Profile,
    /// The provider's image type label.
    pub tipo_imagen: Option<String>,
    /// The provider's body region label.
    pub region_anatomica: Option<String>,
}

/// What a profile field sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sets {
    Retain,
    NoClean,
    Region,
    Rules,
    Ocr,
    TipoImagen,
    RegionAnatomica,
}

impl Sets {
    /// Whether the field may be given more than once (and, for options, with commas).
    pub fn repeatable(self) -> bool {
        matches!(self, Sets::Retain | Sets::NoClean | Sets::Region)
    }
}

/// One profile field of an upload's query string or form: its names (the
/// first is the one documented), what it sets, and its description.
#[derive(Debug)]
pub struct ProfileField {
    pub names: &'static [&'static str],
    pub sets: Sets,
    pub doc: &'static str,
}

/// Every profile field an upload (REST, multipart or STOW-RS) takes: one
/// table, read by [`UploadMeta::set`] and by the OpenAPI document.
pub const PROFILE_FIELDS: [ProfileField; 7] = [
    ProfileField {
        names: &["retain"],
        sets: Sets::Retain,
        doc: "Retain options of PS3.15 Table E.1-1 to apply (repeat the key, or separate them with commas).",
    },
    ProfileField {
        names: &["no_clean", "no-clean"],
        sets: Sets::NoClean,
        doc: "Clean options to switch off (repeat the key, or separate them with commas).",
    },
    ProfileField {
        names: &["region"],
        sets: Sets::Region,
        doc: "An extra rectangle `x,y,w,h` to burn in every frame (repeatable).",
    },
    ProfileField {
        names: &["rules"],
        sets: Sets::Rules,
        doc: "The rule library (only `default` is installed).",
    },
    ProfileField {
        names: &["ocr"],
        sets: Sets::Ocr,
        doc: "The burned-in text safety net: `all-text` (the default) blanks every line of text found in the pixels, `phi` only the lines that are or may be PHI, `off` runs nothing.",
    },
    ProfileField {
        names: &["tipo_imagen"],
        sets: Sets::TipoImagen,
        doc: "The provider's image type label, e.g. `CT`.",
    },
    ProfileField {
        names: &["region_anatomica"],
        sets: Sets::RegionAnatomica,
        doc: "The provider's body region label, e.g. `CHEST`.",
    },
];

impl UploadMeta {
    /// Takes one form or query field; false if the name is not a profile field.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        let Some(field) = PROFILE_FIELDS.iter().find(|f| f.names.contains(&name)) else {
            return false;
        };
        let value = value.trim();
        let text = || Some(value.to_owned()).filter(|v| !v.is_empty());
        match field.sets {
            Sets::TipoImagen => self.tipo_imagen = text(),
            Sets::RegionAnatomica => self.region_anatomica = text(),
            Sets::Retain => self.profile.retain.extend(split(value)),
            Sets::NoClean => self.profile.no_clean.extend(split(value)),
            Sets::Region => self.profile.regions.push(value.to_owned()),
            Sets::Rules => self.profile.rules = text(),
            Sets::Ocr => self.profile.ocr = text(),
        }
        true
    }

    /// Reads the fields from a query string (`?retain=uids&region=0,0,10,10`).
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut meta = UploadMeta::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            meta.set(&k, &v);
        }
        meta.validate()?;
        Ok(meta)
    }

    /// 400 unless every option, region and rule library is one Alpes knows.
    pub fn validate(&self) -> Result<(), ApiError> {
        validate(&self.profile)
    }
}

fn split(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// 400 unless the profile is one the engine can apply.
pub fn validate(p: &Profile) -> Result<(), ApiError> {
    requested(&p.retain, &p.no_clean, &p.regions, p.rules.as_deref(), p.ocr.as_deref())
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("bad_profile", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_of_the_table_is_taken_and_no_other() {
        for field in &PROFILE_FIELDS {
            for name in field.names {
                assert!(UploadMeta::default().set(name, "x"), "{name}");
            }
        }
        assert!(!UploadMeta::default().set("file", "x"));
        let m = UploadMeta::from_query(Some("no-clean=graphics&no_clean=descriptors")).expect("ok");
        assert_eq!(m.profile.no_clean, vec!["graphics", "descriptors"]);
    }

    #[test]
    fn query_fields_build_the_profile() {
        let m = UploadMeta::from_query(Some(
            "retain=uids,modified-dates&no_clean=graphics&region=0,0,10,10&tipo_imagen=CT&ocr=phi",
        ))
        .expect("ok");
        assert_eq!(m.profile.retain, vec!["uids", "modified-dates"]);
        assert_eq!(m.profile.ocr.as_deref(), Some("phi"));
        assert_eq!(m.profile.no_clean, vec!["graphics"]);
        assert_eq!(m.profile.regions, vec!["0,0,10,10"]);
        assert_eq!(m.tipo_imagen.as_deref(), Some("CT"));
    }

    #[test]
    fn an_unknown_option_or_bad_region_is_a_400() {
        assert_eq!(
            UploadMeta::from_query(Some("retain=everything")).expect_err("400").code,
            "bad_profile"
        );
        assert_eq!(UploadMeta::from_query(Some("region=1,2")).expect_err("400").code, "bad_profile");
        assert_eq!(UploadMeta::from_query(Some("rules=other")).expect_err("400").code, "bad_profile");
        assert_eq!(UploadMeta::from_query(Some("ocr=some")).expect_err("400").code, "bad_profile");
    }
}
