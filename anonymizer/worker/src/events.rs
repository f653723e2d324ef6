//! The output events and their deterministic ids: one `ImagenAnonimizada` or `ImagenRechazada`
//! per consumed record, keyed by image id (a poison record, which has none, by its source
//! coordinates). Redelivered inputs give the same event ids, so consumers drop duplicates.

use std::collections::BTreeMap;

use alpes_anonymizer::ocr::{self, OcrMode};
use alpes_anonymizer::profile::Action;
use alpes_anonymizer::region::RegionSource;
use alpes_schemas::{
    deterministic_event_id, now_millis, AnalisisCompletado, Codec, Event, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada,
    ModeloAnalisis, RegistroAuditoria,
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

/// One record's result and the safety net's analysis of its image, when it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The result.
    pub output: Output,
    /// `AnalisisCompletado`, produced beside the result.
    pub analysis: Option<Box<AnalisisCompletado>>,
}

impl Processed {
    /// The result, its analysis (if any) and its audit entry, encoded in that order: in
    /// transactional mode they commit together.
    pub async fn encode(&self, codec: &Codec, record: &Record) -> Result<Vec<Message>> {
        let mut messages = vec![self.output.encode(codec, record).await?];
        if let Some(a) = &self.analysis {
            messages.push(Message {
                topic: AnalisisCompletado::TOPIC,
                key: a.imagen_id.clone(),
                payload: codec.encode(a.as_ref()).await?,
            });
        }
        messages.push(self.output.encode_audit(codec, record).await?);
        Ok(messages)
    }
}

impl From<Output> for Processed {
    fn from(output: Output) -> Self {
        Processed { output, analysis: None }
    }
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
    serde_name(action)
}

/// A unit enum variant's name as the engine's report serializes it.
fn serde_name<T: serde::Serialize + std::fmt::Debug>(value: T) -> String {
    match serde_json::to_value(&value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{value:?}").to_lowercase(),
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
        sha256_entrada: Some(input.sha256.clone()),
        regiones_por_origen: Some(regions_by_source(report)),
        iod: report.iod.clone(),
        conservados_por_iod: Some(i64::try_from(report.kept_for_iod).unwrap_or(i64::MAX)),
        institucion_id: input.institucion_id.clone(),
    }
}

/// How many regions were burned from each source, by the source's report name.
fn regions_by_source(report: &alpes_anonymizer::Report) -> BTreeMap<String, i32> {
    let mut by = BTreeMap::new();
    for r in &report.regions {
        *by.entry(serde_name(r.source)).or_insert(0) += 1;
    }
    by
}

/// The model the safety net runs, as the events name it.
pub fn model() -> ModeloAnalisis {
    let m = ocr::model();
    ModeloAnalisis {
        nombre: m.name,
        version: m.version,
        idioma: m.language,
        datos_sha256: m.data_sha256,
    }
}

/// The reason an image whose output still reads as PHI is held back.
pub use ocr::RESIDUAL_TEXT;

/// `AnalisisCompletado` for an image the safety net looked at, or was on for and could not read;
/// `None` when it was off or the image has no pixels. Released when no line read as PHI after
/// blanking.
pub fn analysis(input: &ImagenRegistrada, engined: &Engined, mode: OcrMode) -> Option<AnalisisCompletado> {
    let report = &engined.report;
    let found = report.ocr.as_ref();
    let unread = report.ocr_unread.as_ref();
    if found.is_none() && unread.is_none() {
        return None;
    }
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let ocr_regions = report.regions.iter().filter(|r| r.source == RegionSource::Ocr);
    let released = found.is_none_or(ocr::Found::released);
    Some(AnalisisCompletado {
        evento_id: deterministic_event_id(AnalisisCompletado::NAME, &[&input.image_id, &input.request_id, &engined.sha256]),
        ocurrido_at: now_millis(),
        actor: ACTOR.to_owned(),
        imagen_id: input.image_id.clone(),
        proveedor_id: input.provider_id.clone(),
        solicitud_id: input.request_id.clone(),
        etiqueta: found.map_or(ocr::NOT_ANALYSED, ocr::Found::label).to_owned(),
        confianza: found.map_or(0, |f| f.confidence.round().clamp(0.0, 100.0) as i32),
        modo: found.map_or(mode, |f| f.mode).name().to_owned(),
        candidatos: found.map_or(0, |f| count(f.candidates)),
        regiones_encontradas: found.map_or(0, |f| count(f.text_lines)),
        regiones_blanqueadas: i32::try_from(ocr_regions.clone().count()).unwrap_or(i32::MAX),
        area_blanqueada: ocr_regions.map(|r| i64::try_from(r.area_per_frame).unwrap_or(i64::MAX)).sum(),
        lineas_residuales: found.map_or(0, |f| count(f.residual_lines)),
        liberada: released,
        motivo: if released {
            unread.cloned()
        } else {
            Some(RESIDUAL_TEXT.to_owned())
        },
        modelo: model(),
        version_motor: ENGINE_VERSION.to_owned(),
        duracion_micros: found.map_or(0, |f| i64::try_from(f.duration_us).unwrap_or(i64::MAX)),
        solicitud_http_id: input.http_request_id.clone(),
    })
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

    fn engined(found: Option<alpes_anonymizer::ocr::Found>, unread: Option<&str>) -> Engined {
        let mut report = alpes_anonymizer::Report::new(alpes_anonymizer::report::Format::Dicom);
        report.ocr = found;
        report.not_read(unread.map(str::to_owned));
        Engined {
            bytes: Vec::new(),
            sha256: "ab".repeat(32),
            report,
            facts: Default::default(),
        }
    }

    fn input() -> ImagenRegistrada {
        ImagenRegistrada {
            event_id: "e".into(),
            occurred_at: 1,
            actor: "prov-1".into(),
            image_id: "img-1".into(),
            provider_id: "prov-1".into(),
            blob_key: "raw/x".into(),
            sha256: "x".into(),
            size_bytes: 1,
            media_type: "application/dicom".into(),
            profile: Default::default(),
            source: "rest".into(),
            request_id: "req-1".into(),
            tipo_imagen: None,
            region_anatomica: None,
            http_request_id: None,
            institucion_id: None,
        }
    }

    #[test]
    fn an_output_that_still_reads_as_phi_is_analysed_as_held_back() {
        let found = alpes_anonymizer::ocr::Found {
            text_lines: 2,
            residual_lines: 1,
            confidence: 88.4,
            ..Default::default()
        };
        let a = analysis(&input(), &engined(Some(found), None), OcrMode::AllText).expect("the net ran");
        assert_eq!(
            (
                a.etiqueta.as_str(),
                a.liberada,
                a.motivo.as_deref(),
                a.lineas_residuales,
                a.confianza
            ),
            ("texto_incrustado", false, Some(RESIDUAL_TEXT), 1, 88)
        );
        assert_eq!(Rejection::residual_text().reason, RESIDUAL_TEXT);
        assert_eq!(
            a.evento_id,
            deterministic_event_id("AnalisisCompletado", &["img-1", "req-1", &"ab".repeat(32)])
        );
    }

    #[test]
    fn pixels_the_net_could_not_read_are_analysed_as_not_analysed_and_released() {
        let a = analysis(&input(), &engined(None, Some("pixel_decode")), OcrMode::Phi).expect("the net was on");
        assert_eq!(
            (a.etiqueta.as_str(), a.liberada, a.motivo.as_deref(), a.modo.as_str(), a.confianza),
            (ocr::NOT_ANALYSED, true, Some("pixel_decode"), "phi", 0)
        );
        assert_eq!(
            analysis(&input(), &engined(None, None), OcrMode::AllText),
            None,
            "off, or no pixels"
        );
    }

    fn out_id(out: &Output) -> String {
        match out {
            Output::Anonymized(e) => e.event_id.clone(),
            Output::Rejected(e) => e.event_id.clone(),
        }
    }
}
