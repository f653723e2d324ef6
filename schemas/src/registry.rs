//! The Confluent Schema Registry client behind [`crate::Codec::registry`], through
//! schema_registry_converter: registers each event's schema under its [`subject`] and fetches
//! writer schemas by id. Both answers are cached for the life of the process, so the registry is
//! called once per subject and once per id.
//!
//! A subject is one schema's history, checked for BACKWARD compatibility at each registration.
//! An event alone on its topic uses TopicNameStrategy (`"<topic>-value"`, what Kafka tooling
//! looks up by default). A topic that carries several record types (`alpes.audit`: `IntentoLogin`
//! and `RegistroAuditoria`) cannot share one subject: the second record would be refused as
//! incompatible with the first (409). Its events use TopicRecordNameStrategy
//! (`"<topic>-<record full name>"`), one subject per record type. Consumers are not affected:
//! they find a writer schema by the id in the frame, whatever the subject.

use std::{
    collections::HashMap,
    error::Error as _,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use schema_registry_converter::{
    async_impl::{avro::AvroDecoder, easy_avro::EasyAvroEncoder, schema_registry::SrSettings},
    avro_common::AvroSchema,
    error::SRCError,
    schema_registry_common::{RawError, SchemaType, SubjectNameStrategy, SuppliedSchema},
};

use crate::{catalog, events::shared_topic, Error, Event, Result, SchemaKey};

/// How long one registry call may take before it fails as [`Error::Registry`].
const TIMEOUT: Duration = Duration::from_secs(10);
/// Confluent's error code for "schema not found".
const SCHEMA_NOT_FOUND: u32 = 40403;

/// A registry client; cheap to clone (the caches are shared).
#[derive(Clone, Debug)]
pub(crate) struct Registry {
    encoder: EasyAvroEncoder,
    decoder: Arc<AvroDecoder>,
    /// Registered ids by event name, so the hot path skips building the registration request.
    ids: Arc<RwLock<HashMap<&'static str, u32>>>,
}

impl Registry {
    /// A client for the registry at `url` (e.g. `http://schema-registry:8081`). The registry is
    /// an in-cluster service, so proxies from the environment are not used.
    pub(crate) fn new(url: &str) -> Registry {
        let url = url.trim().trim_end_matches('/').to_owned();
        let settings = SrSettings::new_builder(url.clone())
            .no_proxy()
            .set_timeout(TIMEOUT)
            .build()
            .unwrap_or_else(|_| SrSettings::new(url));
        Registry {
            encoder: EasyAvroEncoder::new(settings.clone()),
            decoder: Arc::new(AvroDecoder::new(settings)),
            ids: Arc::default(),
        }
    }

    /// The id of `E`'s current schema under its [`subject`], registering it on first use.
    pub(crate) async fn id_of<E: Event>(&self) -> Result<u32> {
        if let Some(&id) = self.ids.read().unwrap_or_else(PoisonError::into_inner).get(E::NAME) {
            return Ok(id);
        }
        let source = catalog::current(E::NAME)
            .filter(|entry| std::ptr::eq(&entry.schema, E::schema()))
            .map_or_else(|| E::schema().canonical_form(), |entry| entry.source.trim().to_owned());
        let supplied = SuppliedSchema::new(Some(full_name::<E>()), SchemaType::Avro, source);
        let strategy = if shared_topic(E::TOPIC) {
            SubjectNameStrategy::TopicRecordNameStrategyWithSchema(E::TOPIC.to_owned(), supplied)
        } else {
            SubjectNameStrategy::TopicNameStrategyWithSchema(E::TOPIC.to_owned(), false, supplied)
        };
        let subject = subject::<E>();
        debug_assert_eq!(strategy.get_subject().ok().as_deref(), Some(subject.as_str()));
        let id = self
            .encoder
            .get_schema_and_id(&subject, strategy)
            .await
            .map_err(|e| Error::Registry(e.to_string()))?
            .id;
        self.ids.write().unwrap_or_else(PoisonError::into_inner).insert(E::NAME, id);
        Ok(id)
    }

    /// The writer schema registered under `id`.
    pub(crate) async fn writer_schema(&self, id: u32) -> Result<Arc<AvroSchema>> {
        self.decoder.get_schema(id).await.map_err(|e| classify(id, &e))
    }
}

/// The full name of `E`'s record, e.g. `io.alpes.events.IntentoLogin`.
fn full_name<E: Event>() -> String {
    E::schema()
        .name()
        .map_or_else(|| format!("{}.{}", crate::NAMESPACE, E::NAME), |n| n.fullname(None))
}

/// The subject `E`'s schema is registered under: `"<topic>-value"` when `E` is the only event
/// type on its topic, else `"<topic>-<record full name>"` (see the module docs).
pub(crate) fn subject<E: Event>() -> String {
    if shared_topic(E::TOPIC) {
        format!("{}-{}", E::TOPIC, full_name::<E>())
    } else {
        format!("{}-value", E::TOPIC)
    }
}

/// A missing id is [`Error::UnknownSchema`] (the record is poison); anything else is
/// [`Error::Registry`] (the registry is unwell).
fn classify(id: u32, e: &SRCError) -> Error {
    let code = e.source().and_then(|s| s.downcast_ref::<RawError>()).map(|raw| raw.error_code);
    if code == Some(SCHEMA_NOT_FOUND) || e.error.contains("status 404") {
        Error::UnknownSchema {
            writer: SchemaKey::RegistryId(id),
        }
    } else {
        Error::Registry(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_type_of_a_shared_topic_has_a_subject_and_a_lone_one_keeps_the_topic_subject() {
        use crate::{ImagenRegistrada, IntentoLogin, PagoProcesado, RegistroAuditoria};
        assert_eq!(subject::<IntentoLogin>(), "alpes.audit-io.alpes.events.IntentoLogin");
        assert_eq!(subject::<RegistroAuditoria>(), "alpes.audit-io.alpes.events.RegistroAuditoria");
        assert_eq!(subject::<ImagenRegistrada>(), "alpes.images.registered-value");
        assert_eq!(subject::<PagoProcesado>(), "alpes.payments-value");
        let shared: Vec<&str> = crate::topics::ALL.into_iter().filter(|t| shared_topic(t)).collect();
        assert_eq!(shared, [crate::topics::AUDIT], "the topics that carry several record types");
    }

    #[test]
    fn a_missing_schema_id_is_unknown_and_other_failures_are_registry_errors() {
        let raw: RawError = serde_json::from_str(r#"{"error_code": 40403, "message": "Schema not found"}"#).unwrap();
        let missing = SRCError::non_retryable_with_cause(raw, "HTTP request to schema registry failed");
        assert!(matches!(
            classify(3, &missing),
            Error::UnknownSchema {
                writer: SchemaKey::RegistryId(3)
            }
        ));
        let down = SRCError::new("HTTP request to schema registry failed with status 503", None, true);
        assert!(matches!(classify(3, &down), Error::Registry(_)));
    }
}
