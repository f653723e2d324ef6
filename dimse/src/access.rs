//! Who may associate: the calling AE titles mapped to a provider (in the
//! ingest store, set by `--dimse-calling-ae` and `PUT /dimse/aes/{ae}`),
//! read when an association arrives, and the listener's own AE title as the
//! called one. An unknown calling AE, or one whose provider is not an
//! existing provider account, is rejected at association (A-ASSOCIATE-RJ,
//! permanent, "calling AE title not recognized").

use alpes_domain::caller::Role;
use alpes_domain::dimse::ae_title;
use alpes_domain::identity::IdentityStore;
use alpes_domain::ingest::IngestStore;
use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The calling AE titles an association may come from, each with its provider.
#[derive(Debug, Clone, Default)]
pub struct Admitted {
    providers: Arc<HashMap<String, String>>,
}

impl Admitted {
    /// The mappings of `store` whose provider is a provider account of `identity`.
    pub async fn load(store: &dyn IngestStore, identity: &dyn IdentityStore) -> alpes_domain::Result<Admitted> {
        let mut providers = HashMap::new();
        for ae in store.calling_aes().await? {
            match identity.account(&ae.provider_id).await? {
                Some(account) if account.role == Role::Proveedor => {
                    providers.insert(ae.ae_title, ae.provider_id);
                }
                _ => {
                    tracing::warn!(ae_title = %ae.ae_title, "a calling AE title maps to no provider account; its associations are rejected")
                }
            }
        }
        Ok(Admitted {
            providers: Arc::new(providers),
        })
    }

    /// The provider of a calling AE title, if it is admitted.
    pub fn provider(&self, calling: &str) -> Option<&str> {
        self.providers.get(ae_title(calling).ok()?.as_str()).map(String::as_str)
    }
}

/// The access rule of one association: the called AE title must be the
/// listener's, and the calling one admitted. It remembers the calling AE
/// title it rejected, for the audit entry.
#[derive(Debug, Clone)]
pub struct Rule {
    admitted: Admitted,
    rejected: Arc<Mutex<Option<String>>>,
}

impl Rule {
    /// The rule over `admitted`.
    pub fn new(admitted: Admitted) -> Rule {
        Rule {
            admitted,
            rejected: Arc::default(),
        }
    }

    /// The calling AE title this rule rejected, if it did.
    pub fn rejected(&self) -> Option<String> {
        self.rejected.lock().ok()?.clone()
    }

    fn reject(&self, calling: &str, reason: AssociationRJServiceUserReason) -> Result<(), AssociationRJServiceUserReason> {
        if let Ok(mut r) = self.rejected.lock() {
            // Only printable ASCII reaches the audit trail, as an AE title has.
            *r = Some(
                calling
                    .chars()
                    .filter(|c| (' '..='~').contains(c))
                    .take(16)
                    .collect::<String>()
                    .trim()
                    .to_owned(),
            );
        }
        Err(reason)
    }
}

impl AccessControl for Rule {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if ae_title(called_ae_title).ok().as_deref() != Some(this_ae_title) {
            return self.reject(calling_ae_title, AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if self.admitted.provider(calling_ae_title).is_none() {
            return self.reject(calling_ae_title, AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pairs: &[(&str, &str)]) -> Rule {
        Rule::new(Admitted {
            providers: Arc::new(pairs.iter().map(|(a, p)| ((*a).to_owned(), (*p).to_owned())).collect()),
        })
    }

    #[test]
    fn a_mapped_calling_ae_calling_this_ae_is_admitted_with_its_provider() {
        let r = rule(&[("CT1", "prov-1")]);
        assert_eq!(r.check_access("ALPES", "CT1 ", "ALPES", None), Ok(()));
        assert_eq!(r.admitted.provider("CT1\0"), Some("prov-1"));
    }

    #[test]
    fn an_unknown_calling_ae_or_another_called_ae_is_rejected() {
        let r = rule(&[("CT1", "prov-1")]);
        assert_eq!(
            r.check_access("ALPES", "MR9", "ALPES", None),
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
        );
        assert_eq!(
            r.check_access("ALPES", "ct1", "ALPES", None),
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized),
            "AE titles are case-sensitive"
        );
        assert_eq!(
            r.rejected().as_deref(),
            Some("ct1"),
            "the last rejected calling AE is kept for the audit"
        );
        assert_eq!(
            r.check_access("ALPES", "CT1", "ORTHANC", None),
            Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized)
        );
    }
}
