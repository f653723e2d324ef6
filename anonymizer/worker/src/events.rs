//! The output events and their deterministic ids: one `ImagenAnonimizada` or `ImagenRechazada`
//! per consumed record, keyed by image id (a poison record, which has none, by its source
//! coordinates). Redelivered inputs give the same event ids, so consumers drop duplicates.

use std::collections::BTreeMap;

use alpes_anonymizer::profile::Action;
use alpes_schemas::{
    deterministic_event_id, now_millis, Codec, Event, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada, RegistroAuditoria,
};

use crate::pool::Engined;
use crate::record::Record;
use crate::rejection::Rejection;
use crate::Result;

/// The `actor` of every event the worker produces.
pub const ACTOR: &str = "anonymizer";

/// The engine version the events name (the workspace shares one version).
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The anonymized blob as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutput {
    /// `anonymized/<sha256>`.
    pub key: String,
    /// Lowercase hex sha256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// One record's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The image was anonymized and its blob written.
    Anonymized(Box<ImagenAnonimizada>),
    /// The record or its image was rejected.
    Rejected(Box<ImagenRechazada>),
}

/// An encoded event ready to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The event's topic.
    pub topic: &'static str,
    /// The partitioning key.
    pub key: String,
    /// The framed Avro bytes.
    pub payload: Vec<u8>,
}

impl Output {
    /// The audit entry of this result (`anonymization`, outcome `ok`, or
    /// `error` with the rejection's reason). Its id derives from the output
    /// event's, so a redelivered input gives the same entry.
    pub fn audit(&self) -> RegistroAuditoria {
        let (output_id, occurred_at, target, reason, request_id) = match self {
            Output::Anonymized(e) => (
                &e.event_id,
                e.occurred_at,
                Some(e.image_id.clone()),
                None,
                e.http_request_id.clone(),
            ),
            Output::Rejected(e) => (
                &e.event_id,
                e.occurred_at,
                e.image_id.clone(),
                Some(e.reason.clone()),
                e.http_request_id.clone(),
            ),
        };
        RegistroAuditoria {
            event_id: deterministic_event_id(RegistroAuditoria::NAME, &[output_id]),
            occurred_at,
            actor: ACTOR.to_owned(),
            actor_role: None,
            action: "anonymization".into(),
            target,
            route: None,
            outcome: if reason.is_none() { "ok" } else { "error" }.into(),
            status: None,
            reason,
            request_id,
            service: ACTOR.to_owned(),
        }
    }

    /// Encodes the audit entry of this result, keyed like the result.
    pub async fn encode_audit(&self, codec: &Codec, record: &Record) -> Result<Message> {
        let audit = self.audit();
        Ok(Message {
            topic: RegistroAuditoria::TOPIC,
            key: audit.target.clone().unwrap_or_else(|| record.coordinates()),
            payload: codec.encode(&audit).await?,
        })
    }

    /// Encodes the event for its topic, keyed by image id (or by source coordinates).
    pub async fn encode(&self, codec: &Codec, record: &Record) -> Result<Message> {
        Ok(match self {
            Output::Anonymized(e) => Message {
                topic: ImagenAnonimizada::TOPIC,
                key: e.image_id.clone(),
                payload: codec.encode(e.as_ref()).await?,
            },
            Output::Rejected(e) => Message {
                topic: ImagenRechazada::TOPIC,
                key: e.image_id.clone().unwrap_or_else(|| record.coordinates()),
                payload: codec.encode(e.as_ref()).await?,
            },
        })
    }
}

/// The engine action's name as the report serializes it (`"remove"`, `"uids_in_sequence"`, ...).
fn action_name(action: Action) -> String {
    match serde_json::to_value(action) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{action:?}").to_lowercase(),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// `ImagenAnonimizada` for an image the engine processed and whose blob is stored.
pub fn anonymized(input: &ImagenRegistrada, stored: &StoredOutput, engined: &Engined) -> ImagenAnonimizada {
    let report = &engined.report;
    let facts = &engined.facts;
    let action_counts: BTreeMap<String, i64> = report
        .actions
        .iter()
        .map(|(a, n)| (action_name(*a), i64::try_from(*n).unwrap_or(i64::MAX)))
        .collect();
    ImagenAnonimizada {
        event_id: deterministic_event_id(ImagenAnonimizada::NAME, &[&input.image_id, &input.request_id, &stored.sha256]),
        occurred_at: now_millis(),
        actor: ACTOR.to_owned(),
        image_id: input.image_id.clone(),
        provider_id: input.provider_id.clone(),
        request_id: input.request_id.clone(),
        blob_key: stored.key.clone(),
        sha256: stored.sha256.clone(),
        size_bytes: i64::try_from(stored.size).unwrap_or(i64::MAX),
        media_type: facts.media_type.to_owned(),
        study_uid: facts.study_uid.clone(),
        series_uid: facts.series_uid.clone(),
        sop_instance_uid: facts.sop_instance_uid.clone(),
        modality: facts.modality.clone(),
        rows: facts.rows,
        columns: facts.columns,
        frames: facts.frames,
        action_counts,
        uids_remapped: i64::try_from(report.uids_remapped).unwrap_or(i64::MAX),
        transfer_syntax_in: non_empty(&report.transfer_syntax_in),
        transfer_syntax_out: non_empty(&report.transfer_syntax_out),
        profile: input.profile.clone(),
        engine_version: ENGINE_VERSION.to_owned(),
        duration_micros: i64::try_from(report.duration_us).unwrap_or(i64::MAX),
        body_part: facts.body_part.clone(),
        regions_burned: i32::try_from(report.regions.len()).unwrap_or(i32::MAX),
        tipo_imagen: input.tipo_imagen.clone(),
        region_anatomica: input.region_anatomica.clone(),
        patient_id: facts.patient_id.clone(),
        study_date: facts.study_date.clone(),
        sop_class_uid: facts.sop_class_uid.clone(),
        series_number: facts.series_number,
        instance_number: facts.instance_number,
        http_request_id: input.http_request_id.clone(),
    }
}

/// `ImagenRechazada` for a decodable event whose image could not be anonymized.
pub fn rejected(input: &ImagenRegistrada, record: &Record, rejection: &Rejection) -> ImagenRechazada {
    ImagenRechazada {
        event_id: deterministic_event_id(ImagenRechazada::NAME, &[&input.image_id, &input.request_id, rejection.reason]),
        occurred_at: now_millis(),
        actor: ACTOR.to_owned(),
        image_id: Some(input.image_id.clone()),
        provider_id: Some(input.provider_id.clone()),
        request_id: Some(input.request_id.clone()),
        http_request_id: input.http_request_id.clone(),
        reason: rejection.reason.to_owned(),
        message: rejection.message.clone(),
        source_topic: Some(record.topic.clone()),
        source_partition: Some(record.partition),
        source_offset: Some(record.offset),
    }
}

/// `ImagenRechazada` for a record that is not a readable `ImagenRegistrada` (poison).
pub fn poison(record: &Record, rejection: &Rejection) -> ImagenRechazada {
    let (partition, offset) = (record.partition.to_string(), record.offset.to_string());
    ImagenRechazada {
        event_id: deterministic_event_id(ImagenRechazada::NAME, &[&record.topic, &partition, &offset]),
        occurred_at: now_millis(),
        actor: ACTOR.to_owned(),
        image_id: None,
        provider_id: None,
        request_id: None,
        http_request_id: None,
        reason: rejection.reason.to_owned(),
        message: rejection.message.clone(),
        source_topic: Some(record.topic.clone()),
        source_partition: Some(record.partition),
        source_offset: Some(record.offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            topic: "alpes.images.registered".into(),
            partition: 3,
            offset: 41,
            payload: Vec::new(),
            epoch: 0,
        }
    }

    #[test]
    fn action_names_are_the_serde_names_of_the_report() {
        assert_eq!(action_name(Action::Remove), "remove");
        assert_eq!(action_name(Action::UidsInSequence), "uids_in_sequence");
        assert_eq!(action_name(Action::RemovePrivate), "remove_private");
    }

    #[test]
    fn a_poison_event_id_depends_only_on_the_source_coordinates() {
        let a = poison(&record(), &Rejection::fixed("not_avro", "x"));
        let b = poison(&record(), &Rejection::fixed("not_avro", "y"));
        assert_eq!(a.event_id, b.event_id);
        assert_eq!(
            a.event_id,
            deterministic_event_id("ImagenRechazada", &["alpes.images.registered", "3", "41"])
        );
        assert_eq!((a.image_id, a.source_partition, a.source_offset), (None, Some(3), Some(41)));
    }

    #[tokio::test]
    async fn a_poison_event_is_keyed_by_its_coordinates() {
        let out = Output::Rejected(Box::new(poison(&record(), &Rejection::fixed("not_avro", "x"))));
        let msg = out.encode(&Codec::single_object(), &record()).await.unwrap();
        assert_eq!(msg.topic, "alpes.images.rejected");
        assert_eq!(msg.key, "alpes.images.registered/3/41");
    }

    #[tokio::test]
    async fn a_result_is_audited_with_an_id_derived_from_the_result() {
        let out = Output::Rejected(Box::new(poison(&record(), &Rejection::fixed("not_avro", "x"))));
        let audit = out.audit();
        assert_eq!(audit, out.audit(), "the same result gives the same entry");
        assert_eq!(audit.event_id, deterministic_event_id("RegistroAuditoria", &[&out_id(&out)]));
        assert_eq!(
            (audit.action.as_str(), audit.outcome.as_str(), audit.reason.as_deref()),
            ("anonymization", "error", Some("not_avro"))
        );
        assert_eq!((audit.target, audit.actor.as_str()), (None, ACTOR));
        let msg = out.encode_audit(&Codec::single_object(), &record()).await.unwrap();
        assert_eq!((msg.topic, msg.key.as_str()), ("alpes.audit", "alpes.images.registered/3/41"));
    }

    fn out_id(out: &Output) -> String {
        match out {
            Output::Anonymized(e) => e.event_id.clone(),
            Output::Rejected(e) => e.event_id.clone(),
        }
    }
}
