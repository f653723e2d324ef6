//! The Confluent Schema Registry client behind [`crate::Codec::registry`], through
//! schema_registry_converter: registers each event's schema under TopicNameStrategy
//! (subject `"<topic>-value"`) and fetches writer schemas by id. Both answers are cached for the
//! life of the process, so the registry is called once per subject and once per id.

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

use crate::{catalog, Error, Event, Result, SchemaKey};

/// How long one registry call may take before it fails as [`Error::Registry`].
const TIMEOUT: Duration = Duration::from_secs(10);
/// Confluent's error code for "schema not found".
const SCHEMA_NOT_FOUND: u32 = 40403;

/// A registry client; cheap to clone (the caches are shared).
#[derive(Clone, Debug)]
pub(crate) struct Registry {
    encoder: EasyAvroEncoder,
    decoder: Arc<AvroDecoder>,
    /// Registered ids by topic, so the hot path skips building the registration request.
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

    /// The id of `E`'s current schema under `"<E::TOPIC>-value"`, registering it on first use.
    pub(crate) async fn id_of<E: Event>(&self) -> Result<u32> {
        if let Some(&id) = self.ids.read().unwrap_or_else(PoisonError::into_inner).get(E::TOPIC) {
            return Ok(id);
        }
        let source = catalog::current(E::NAME)
            .filter(|entry| std::ptr::eq(&entry.schema, E::schema()))
            .map_or_else(|| E::schema().canonical_form(), |entry| entry.source.trim().to_owned());
        let full_name = E::schema().name().map(|n| n.fullname(None));
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            E::TOPIC.to_owned(),
            false,
            SuppliedSchema::new(full_name, SchemaType::Avro, source),
        );
        let subject = format!("{}-value", E::TOPIC);
        let id = self
            .encoder
            .get_schema_and_id(&subject, strategy)
            .await
            .map_err(|e| Error::Registry(e.to_string()))?
            .id;
        self.ids.write().unwrap_or_else(PoisonError::into_inner).insert(E::TOPIC, id);
        Ok(id)
    }

    /// The writer schema registered under `id`.
    pub(crate) async fn writer_schema(&self, id: u32) -> Result<Arc<AvroSchema>> {
        self.decoder.get_schema(id).await.map_err(|e| classify(id, &e))
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
