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

impl UploadMeta {
    /// Takes one form or query field; false if the name is not a profile field.
    pub fn set(&mut self, name: &str, value: &str) -> bool {
        let value = value.trim();
        match name {
            "tipo_imagen" => self.tipo_imagen = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "region_anatomica" => self.region_anatomica = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "retain" => self.profile.retain.extend(split(value)),
            "no_clean" | "no-clean" => self.profile.no_clean.extend(split(value)),
            "region" => self.profile.regions.push(value.to_owned()),
            "rules" => self.profile.rules = Some(value.to_owned()).filter(|v| !v.is_empty()),
            _ => return false,
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
    requested(&p.retain, &p.no_clean, &p.regions, p.rules.as_deref())
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("bad_profile", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_fields_build_the_profile() {
        let m = UploadMeta::from_query(Some("retain=uids,modified-dates&no_clean=graphics&region=0,0,10,10&tipo_imagen=CT")).expect("ok");
        assert_eq!(m.profile.retain, vec!["uids", "modified-dates"]);
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
    }
}
