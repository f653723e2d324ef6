//! Alpes event contracts: the Avro schemas of every event (`avro/*.avsc`, namespace
//! `io.alpes.events`), their superseded versions (`avro/history/`), the Rust types that mirror
//! them, the topic names, and the [`Codec`] that frames them on Kafka, either as Avro
//! single-object encoding (embedded mode) or with Confluent Schema Registry framing.
//!
//! ```no_run
//! # async fn demo(event: alpes_schemas::ImagenRegistrada) -> alpes_schemas::Result<()> {
//! use alpes_schemas::{Codec, Event, ImagenRegistrada};
//! let codec = Codec::from_env();
//! let bytes = codec.encode(&event).await?; // produce to ImagenRegistrada::TOPIC
//! let back: ImagenRegistrada = codec.decode(&bytes).await?;
//! # Ok(()) }
//! ```
//!
//! Events carry no PHI and no floats; every schema change must stay BACKWARD compatible (see
//! `avro/README.md`).

pub mod canonical;
pub mod catalog;
#[cfg(feature = "codec")]
mod codec;
pub mod cql;
mod error;
mod events;
#[cfg(feature = "codec")]
mod framing;
mod ids;
#[cfg(feature = "codec")]
mod registry;
pub mod renamed;

pub use apache_avro;
#[cfg(feature = "codec")]
pub use codec::{Codec, SCHEMA_REGISTRY_URL};
pub use error::{Error, Result, SchemaKey};
pub use events::{
    AnalisisCompletado, ConsentimientoCambiado, EstudioCompleto, Event, EventoUsoDatos, ImagenAnonimizada, ImagenRechazada,
    ImagenRegistrada, ImportacionSolicitada, InstitucionActualizada, IntentoLogin, ModeloAnalisis, NotificacionFallida, PagoProcesado,
    PagoRechazado, Profile, RegistroAuditoria, UsuarioRegistrado,
};
pub use ids::{deterministic_event_id, new_event_id, now_millis, EVENT_ID_NAMESPACE};

/// The Avro namespace of every event record.
pub const NAMESPACE: &str = "io.alpes.events";

/// Kafka topic names, one per event.
pub mod topics {
    /// `UsuarioRegistrado`.
    pub const USERS: &str = "alpes.users";
    /// `EventoUsoDatos`.
    pub const USAGE: &str = "alpes.usage";
    /// `PagoProcesado`.
    pub const PAYMENTS: &str = "alpes.payments";
    /// `PagoRechazado`.
    pub const PAYMENTS_REJECTED: &str = "alpes.payments.rejected";
    /// `IntentoLogin` and `RegistroAuditoria`: the audit trail.
    pub const AUDIT: &str = "alpes.audit";
    /// `ImagenRegistrada`.
    pub const IMAGES_REGISTERED: &str = "alpes.images.registered";
    /// `ImagenAnonimizada`.
    pub const IMAGES_ANONYMIZED: &str = "alpes.images.anonymized";
    /// `ImagenRechazada`.
    pub const IMAGES_REJECTED: &str = "alpes.images.rejected";
    /// `AnalisisCompletado`.
    pub const IMAGES_ANALYZED: &str = "alpes.images.analyzed";
    /// `EstudioCompleto`.
    pub const STUDIES_COMPLETE: &str = "alpes.studies.complete";
    /// `ImportacionSolicitada`.
    pub const IMPORTS_REQUESTED: &str = "alpes.imports.requested";
    /// `ConsentimientoCambiado`.
    pub const CONSENT: &str = "alpes.consent";
    /// `InstitucionActualizada`.
    pub const INSTITUTIONS: &str = "alpes.institutions";
    /// `NotificacionFallida`: the notifier's dead letters.
    pub const NOTIFICATIONS_DEAD: &str = "alpes.notifications.dead";
    /// Every topic, e.g. to create them at start-up.
    pub const ALL: [&str; 14] = [
        USERS,
        USAGE,
        PAYMENTS,
        PAYMENTS_REJECTED,
        AUDIT,
        IMAGES_REGISTERED,
        IMAGES_ANONYMIZED,
        IMAGES_REJECTED,
        IMAGES_ANALYZED,
        STUDIES_COMPLETE,
        IMPORTS_REQUESTED,
        CONSENT,
        INSTITUTIONS,
        NOTIFICATIONS_DEAD,
    ];
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One fully populated example of every event.
    pub(crate) struct Samples {
        pub registrada: ImagenRegistrada,
        pub anonimizada: ImagenAnonimizada,
        pub rechazada: ImagenRechazada,
        pub usuario: UsuarioRegistrado,
        pub login: IntentoLogin,
        pub uso: EventoUsoDatos,
        pub pago: PagoProcesado,
        pub pago_rechazado: PagoRechazado,
        pub auditoria: RegistroAuditoria,
        pub analisis: AnalisisCompletado,
        pub estudio: EstudioCompleto,
        pub importacion: ImportacionSolicitada,
        pub consentimiento: ConsentimientoCambiado,
        pub institucion: InstitucionActualizada,
        pub notificacion: NotificacionFallida,
    }

    pub(crate) fn samples() -> Samples {
        let profile = Profile {
            retain: vec!["uids".into(), "device-identity".into()],
            regions: vec!["0,0,512,40".into()],
            no_clean: vec!["graphics".into()],
            rules: Some("us-default".into()),
            ocr: Some("phi".into()),
        };
        let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        Samples {
            registrada: ImagenRegistrada {
                event_id: new_event_id(),
                occurred_at: 1_760_000_000_123,
                actor: "prov-1".into(),
                image_id: "img-1".into(),
                provider_id: "prov-1".into(),
                blob_key: format!("raw/{sha}"),
                sha256: sha.into(),
                size_bytes: 524_288,
                media_type: "application/dicom".into(),
                profile: profile.clone(),
                source: "rest".into(),
                request_id: "req-1".into(),
                tipo_imagen: Some("rx".into()),
                region_anatomica: Some("torax".into()),
                http_request_id: Some("7f1c0d1e-5b7a-4c55-9a0e-1d2b3c4d5e6f".into()),
                institucion_id: Some("inst-1".into()),
            },
            anonimizada: ImagenAnonimizada {
                event_id: deterministic_event_id("anonymized", &["img-1", "req-1"]),
                occurred_at: 1_760_000_001_000,
                actor: "anonymizer".into(),
                image_id: "img-1".into(),
                provider_id: "prov-1".into(),
                request_id: "req-1".into(),
                blob_key: format!("anonymized/{sha}"),
                sha256: sha.into(),
                size_bytes: 520_000,
                media_type: "application/dicom".into(),
                study_uid: Some("2.25.1".into()),
                series_uid: Some("2.25.2".into()),
                sop_instance_uid: Some("2.25.3".into()),
                modality: Some("CR".into()),
                rows: 512,
                columns: 512,
                frames: 1,
                action_counts: [("remove".to_owned(), 31), ("uid".to_owned(), 4)].into(),
                uids_remapped: 4,
                transfer_syntax_in: Some("1.2.840.10008.1.2.1".into()),
                transfer_syntax_out: Some("1.2.840.10008.1.2.1".into()),
                profile,
                engine_version: "0.1.0".into(),
                duration_micros: 1_250,
                body_part: Some("CHEST".into()),
                regions_burned: 2,
                tipo_imagen: None,
                region_anatomica: Some("torax".into()),
                patient_id: Some("2.25.77".into()),
                study_date: Some("20000101".into()),
                sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.1".into()),
                series_number: Some(1),
                instance_number: Some(3),
                http_request_id: Some("req-http-1".into()),
                sha256_entrada: Some("9".repeat(64)),
                regiones_por_origen: Some([("rule".to_owned(), 1), ("ocr".to_owned(), 2)].into()),
                iod: Some("ct-image".into()),
                conservados_por_iod: Some(2),
                institucion_id: Some("inst-1".into()),
            },
            rechazada: ImagenRechazada {
                event_id: new_event_id(),
                occurred_at: 1_760_000_002_000,
                actor: "anonymizer".into(),
                image_id: None,
                provider_id: None,
                request_id: None,
                reason: "not_avro".into(),
                message: "no single-object or schema-registry header".into(),
                source_topic: Some(topics::IMAGES_REGISTERED.into()),
                source_partition: Some(3),
                source_offset: Some(1_234_567),
                http_request_id: None,
            },
            usuario: UsuarioRegistrado {
                event_id: new_event_id(),
                occurred_at: 1,
                actor: "admin-1".into(),
                user_id: "user-7".into(),
                role: "consumidor".into(),
                organization: Some("Hospital Norte".into()),
                http_request_id: Some("req-http-1".into()),
            },
            login: IntentoLogin {
                event_id: new_event_id(),
                occurred_at: 2,
                actor: "user-7".into(),
                user_id: "user-7".into(),
                success: false,
                reason: Some("bad_credentials".into()),
                http_request_id: Some("req-http-1".into()),
            },
            uso: EventoUsoDatos {
                event_id: new_event_id(),
                occurred_at: 3,
                actor: "user-7".into(),
                consumer_id: "user-7".into(),
                provider_id: "prov-1".into(),
                image_id: "img-1".into(),
                bytes: 520_000,
                amount_minor: 125,
                currency: "EUR".into(),
                dedupe_key: Some("key-1".into()),
                http_request_id: Some("req-http-1".into()),
            },
            pago: PagoProcesado {
                event_id: new_event_id(),
                occurred_at: 4,
                actor: "user-7".into(),
                user_id: "user-7".into(),
                amount_minor: 10_000,
                currency: "COP".into(),
                reference: "pay-42".into(),
                http_request_id: Some("req-http-1".into()),
            },
            pago_rechazado: PagoRechazado {
                event_id: new_event_id(),
                occurred_at: 5,
                actor: "billing".into(),
                payment_event_id: Some(new_event_id()),
                user_id: "prov-1".into(),
                amount_minor: 99_999,
                currency: "EUR".into(),
                reference: "pay-43".into(),
                reason: "insufficient_balance".into(),
                pending_minor: Some(125),
                http_request_id: Some("req-http-1".into()),
            },
            auditoria: RegistroAuditoria {
                event_id: new_event_id(),
                occurred_at: 6,
                actor: "user-7".into(),
                actor_role: Some("consumidor".into()),
                action: "download".into(),
                target: Some("img-1".into()),
                route: Some("GET /imagenes/{id}/anonimizada".into()),
                outcome: "ok".into(),
                status: Some(200),
                reason: None,
                request_id: Some("req-http-1".into()),
                service: "query-api".into(),
            },
            analisis: AnalisisCompletado {
                evento_id: new_event_id(),
                ocurrido_at: 1_760_000_003_000,
                actor: "anonymizer".into(),
                imagen_id: "img-1".into(),
                proveedor_id: "prov-1".into(),
                solicitud_id: "req-1".into(),
                etiqueta: "texto_incrustado".into(),
                confianza: 91,
                modo: "all-text".into(),
                candidatos: 6,
                regiones_encontradas: 4,
                regiones_blanqueadas: 4,
                area_blanqueada: 5_120,
                lineas_residuales: 0,
                liberada: true,
                motivo: None,
                modelo: ModeloAnalisis {
                    nombre: "tesseract".into(),
                    version: "5.3.0".into(),
                    idioma: "eng".into(),
                    datos_sha256: Some("a".repeat(64)),
                },
                version_motor: "0.1.0".into(),
                duracion_micros: 12_345,
                solicitud_http_id: Some("req-http-1".into()),
            },
            estudio: EstudioCompleto {
                evento_id: new_event_id(),
                ocurrido_at: 1_760_000_070_000,
                actor: "dimse".into(),
                proveedor_id: "prov-1".into(),
                titulo_ae: "CT_SCANNER_1".into(),
                instancias: 2,
                imagenes: vec!["img-1".into(), "img-2".into()],
                imagenes_completas: true,
                primera_at: 1_760_000_000_000,
                ultima_at: 1_760_000_010_000,
                estable_ms: 60_000,
            },
            importacion: ImportacionSolicitada {
                evento_id: new_event_id(),
                ocurrido_at: 1_760_000_080_000,
                actor: "prov-1".into(),
                importacion_id: "0193a0b1-0000-7000-8000-000000000001".into(),
                proveedor_id: "prov-1".into(),
                tipo: "urls".into(),
                urls: Some(3),
                solicitud_http_id: Some("7f1c0d1e-5b7a-4c55-9a0e-1d2b3c4d5e6f".into()),
            },
            consentimiento: ConsentimientoCambiado {
                evento_id: new_event_id(),
                ocurrido_at: 1_760_000_090_000,
                actor: "med-1".into(),
                paciente_id: "pac-1".into(),
                institucion_id: "inst-1".into(),
                medico_id: "med-1".into(),
                sujeto: "ALPES-0123456789ABCDEF".into(),
                estado_anterior: Some("pending".into()),
                estado: "validated_by_doctor".into(),
                paso: "doctor_validates".into(),
                eliminado: false,
                solicitud_http_id: Some("7f1c0d1e-5b7a-4c55-9a0e-1d2b3c4d5e6f".into()),
            },
            institucion: InstitucionActualizada {
                evento_id: new_event_id(),
                ocurrido_at: 1_760_000_095_000,
                actor: "admin-1".into(),
                institucion_id: "inst-1".into(),
                tipo: "hospital".into(),
                politica: "retener".into(),
                verificacion: "pendiente".into(),
                eliminada: false,
                solicitud_http_id: None,
            },
            notificacion: NotificacionFallida {
                evento_id: new_event_id(),
                ocurrido_at: 1_760_000_099_000,
                actor: "notifier".into(),
                notificacion_id: "not-1".into(),
                evento_origen_id: "ev-1".into(),
                tipo_evento: "ConsentimientoCambiado".into(),
                canal: "webhook".into(),
                plantilla: "webhook".into(),
                motivo: "http 500".into(),
                intentos: 5,
            },
        }
    }

    #[test]
    fn every_topic_is_listed_once() {
        let mut all = topics::ALL.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 14);
    }

    #[test]
    fn every_schema_file_documents_every_record_and_field() {
        fn check(where_: &str, value: &serde_json::Value) {
            match value {
                serde_json::Value::Object(map) => {
                    if map.get("type").and_then(|t| t.as_str()) == Some("record") {
                        let name = map["name"].as_str().unwrap_or("?");
                        assert!(
                            map.get("doc").and_then(|d| d.as_str()).is_some_and(|d| !d.trim().is_empty()),
                            "{where_}: record {name} has no doc"
                        );
                        for field in map["fields"].as_array().expect("fields") {
                            let field_name = field["name"].as_str().unwrap_or("?");
                            let doc = field.get("doc").and_then(|d| d.as_str());
                            assert!(
                                doc.is_some_and(|d| !d.trim().is_empty()),
                                "{where_}: {name}.{field_name} has no doc"
                            );
                            check(where_, &field["type"]);
                        }
                    } else {
                        map.values().for_each(|v| check(where_, v));
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| check(where_, v)),
                _ => {}
            }
        }
        for entry in catalog::entries() {
            let json: serde_json::Value = serde_json::from_str(entry.source).unwrap();
            check(&format!("{} {:?}", entry.name, entry.version), &json);
        }
    }
}
