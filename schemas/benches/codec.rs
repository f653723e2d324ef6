//! Criterion benches for the event codec: encode and decode of every event
//! type with Avro single-object framing ([`Codec::single_object`]), as the
//! embedded mode runs it. Ids are `codec/encode/<Event>` and
//! `codec/decode/<Event>`, throughput in bytes of the framed record. The
//! values are realistic in shape (UUIDs, sha256 hex, UIDs, epoch
//! milliseconds, integer cents) and hold no PHI.
//!
//! Registry framing (Confluent magic byte and schema id) is not benched: its
//! encode registers the schema, and its decode fetches the writer schema by
//! id, over HTTP from a Schema Registry on first use, so it needs a live (or
//! fake) registry server; after that first call it costs the same datum
//! encoding plus a cache lookup.
//!
//! In single-object mode the codec's futures never wait on anything, so each
//! call is polled once with a no-op waker ([`ready`]) instead of going through
//! an async runtime, which would add its own overhead to the figures; a future
//! that is not ready at once fails the bench.
//!
//! `cargo bench --workspace --bench codec` (`-- --quick` for a short run);
//! `cargo test --workspace --all-targets` runs each bench once as a smoke check.

use alpes_schemas::{
    Codec, Event, EventoUsoDatos, ImagenAnonimizada, ImagenRechazada, ImagenRegistrada, IntentoLogin, PagoProcesado, PagoRechazado,
    Profile, RegistroAuditoria, UsuarioRegistrado,
};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The output of a future that completes on its first poll.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a single-object codec call waited on I/O"),
    }
}

const SHA: &str = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b";
const PROVIDER: &str = "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b";
const CONSUMER: &str = "0190a5b3-11aa-7bcd-9e0f-1a2b3c4d5e6f";
const IMAGE: &str = "0190a5b4-2f60-7e21-8c3d-4b5a69788796";
const REQUEST: &str = "0190a5b4-2f61-7a00-b1c2-d3e4f5a6b7c8";
const HTTP_REQUEST: &str = "5f0e8c1d-9a2b-4c3d-8e7f-6a5b4c3d2e1f";
const AT: i64 = 1_795_996_800_000;

fn profile() -> Profile {
    Profile {
        retain: vec!["device-identity".into(), "longitudinal-modified-dates".into()],
        regions: vec!["0,0,640,48".into()],
        rules: None,
        no_clean: Vec::new(),
        ocr: None,
    }
}

fn registrada() -> ImagenRegistrada {
    ImagenRegistrada {
        event_id: "0190a5b4-2f62-7c11-9d22-e3f4a5b6c7d8".into(),
        occurred_at: AT,
        actor: PROVIDER.into(),
        image_id: IMAGE.into(),
        provider_id: PROVIDER.into(),
        blob_key: format!("raw/{SHA}"),
        sha256: SHA.into(),
        size_bytes: 526_778,
        media_type: "application/dicom".into(),
        profile: profile(),
        source: "stow".into(),
        request_id: REQUEST.into(),
        tipo_imagen: Some("ct".into()),
        region_anatomica: Some("torax".into()),
        http_request_id: Some(HTTP_REQUEST.into()),
        institucion_id: None,
    }
}

fn anonimizada() -> ImagenAnonimizada {
    ImagenAnonimizada {
        event_id: "6b1f3c0e-5d0a-5e8b-9c47-2a1d0f3e4b5c".into(),
        occurred_at: AT + 1_250,
        actor: "anonymizer".into(),
        image_id: IMAGE.into(),
        provider_id: PROVIDER.into(),
        request_id: REQUEST.into(),
        blob_key: "anonymized/9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab".into(),
        sha256: "9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab".into(),
        size_bytes: 524_910,
        media_type: "application/dicom".into(),
        study_uid: Some("2.25.191815734651339474306217387310262939518".into()),
        series_uid: Some("2.25.262101582387946498390574322213845069330".into()),
        sop_instance_uid: Some("2.25.318223846312094117239848577135424408747".into()),
        modality: Some("CT".into()),
        rows: 512,
        columns: 512,
        frames: 1,
        action_counts: [("clean", 2), ("dummy", 6), ("keep", 74), ("remove", 31), ("uid", 5), ("zero", 9)]
            .map(|(action, n)| (action.to_owned(), n))
            .into(),
        uids_remapped: 5,
        transfer_syntax_in: Some("1.2.840.10008.1.2.1".into()),
        transfer_syntax_out: Some("1.2.840.10008.1.2.1".into()),
        profile: profile(),
        engine_version: "0.1.0".into(),
        duration_micros: 212,
        body_part: Some("CHEST".into()),
        regions_burned: 1,
        tipo_imagen: Some("ct".into()),
        region_anatomica: Some("torax".into()),
        patient_id: Some("2.25.104620912405530582271358441452342516427".into()),
        study_date: Some("20190312".into()),
        sop_class_uid: Some("1.2.840.10008.5.1.4.1.1.2".into()),
        series_number: Some(3),
        instance_number: Some(41),
        http_request_id: Some(HTTP_REQUEST.into()),
        sha256_entrada: Some("9".repeat(64)),
        regiones_por_origen: Some([("rule".to_owned(), 1)].into()),
        iod: Some("ct-image".into()),
        conservados_por_iod: Some(0),
        institucion_id: None,
    }
}

fn rechazada() -> ImagenRechazada {
    ImagenRechazada {
        event_id: "0190a5b4-3001-7e55-8f66-a7b8c9d0e1f2".into(),
        occurred_at: AT + 900,
        actor: "anonymizer".into(),
        image_id: Some(IMAGE.into()),
        provider_id: Some(PROVIDER.into()),
        request_id: Some(REQUEST.into()),
        reason: "unreadable_dicom".into(),
        message: "the dataset ends inside an element".into(),
        source_topic: Some(alpes_schemas::topics::IMAGES_REGISTERED.into()),
        source_partition: Some(5),
        source_offset: Some(1_048_576),
        http_request_id: Some(HTTP_REQUEST.into()),
    }
}

fn usuario() -> UsuarioRegistrado {
    UsuarioRegistrado {
        event_id: "0190a5a0-0001-7abc-8def-0123456789ab".into(),
        occurred_at: AT - 86_400_000,
        actor: "0190a59f-ffff-7000-8000-000000000001".into(),
        user_id: CONSUMER.into(),
        role: "consumidor".into(),
        organization: Some("Instituto de Investigación Biomédica".into()),
        http_request_id: Some(HTTP_REQUEST.into()),
    }
}

fn login() -> IntentoLogin {
    IntentoLogin {
        event_id: "0190a5b5-0000-7111-8222-333344445555".into(),
        occurred_at: AT + 60_000,
        actor: CONSUMER.into(),
        user_id: CONSUMER.into(),
        success: false,
        reason: Some("bad_credentials".into()),
        http_request_id: Some(HTTP_REQUEST.into()),
    }
}

fn uso() -> EventoUsoDatos {
    EventoUsoDatos {
        event_id: "0190a5b6-0000-7aaa-8bbb-cccc0000dddd".into(),
        occurred_at: AT + 120_000,
        actor: CONSUMER.into(),
        consumer_id: CONSUMER.into(),
        provider_id: PROVIDER.into(),
        image_id: IMAGE.into(),
        bytes: 524_910,
        amount_minor: 125,
        currency: "EUR".into(),
        dedupe_key: Some(format!("{CONSUMER}/{IMAGE}")),
        http_request_id: Some(HTTP_REQUEST.into()),
    }
}

fn pago() -> PagoProcesado {
    PagoProcesado {
        event_id: "0190a5b7-0000-7123-8456-789abcdef012".into(),
        occurred_at: AT + 3_600_000,
        actor: "0190a59f-ffff-7000-8000-000000000001".into(),
        user_id: PROVIDER.into(),
        amount_minor: 250_000,
        currency: "EUR".into(),
        reference: "SEPA-2026-11-000417".into(),
        http_request_id: Some(HTTP_REQUEST.into()),
    }
}

fn pago_rechazado() -> PagoRechazado {
    PagoRechazado {
        event_id: "0190a5b7-0001-7123-8456-789abcdef013".into(),
        occurred_at: AT + 3_600_050,
        actor: "billing".into(),
        payment_event_id: Some("0190a5b7-0000-7123-8456-789abcdef012".into()),
        user_id: PROVIDER.into(),
        amount_minor: 250_000,
        currency: "EUR".into(),
        reference: "SEPA-2026-11-000417".into(),
        reason: "insufficient_balance".into(),
        pending_minor: Some(187_375),
        http_request_id: Some(HTTP_REQUEST.into()),
    }
}

fn auditoria() -> RegistroAuditoria {
    RegistroAuditoria {
        event_id: "0190a5b6-0001-7aaa-8bbb-cccc0000eeee".into(),
        occurred_at: AT + 120_000,
        actor: CONSUMER.into(),
        actor_role: Some("consumidor".into()),
        action: "download".into(),
        target: Some(IMAGE.into()),
        route: Some("GET /imagenes/{id}/anonimizada".into()),
        outcome: "ok".into(),
        status: Some(200),
        reason: None,
        request_id: Some(HTTP_REQUEST.into()),
        service: "query-api".into(),
    }
}

/// `codec/encode/<E>` and `codec/decode/<E>` for `event`, after checking that it round-trips.
fn round_trip<E: Event + PartialEq + std::fmt::Debug>(group: &mut BenchmarkGroup<'_, WallTime>, codec: &Codec, event: &E) {
    let bytes = ready(codec.encode(event)).unwrap_or_else(|e| panic!("{} encodes: {e}", E::NAME));
    let back: E = ready(codec.decode(&bytes)).unwrap_or_else(|e| panic!("{} decodes: {e}", E::NAME));
    assert_eq!(&back, event, "{} round-trips", E::NAME);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(format!("encode/{}", E::NAME), |b| b.iter(|| ready(codec.encode(black_box(event)))));
    group.bench_function(format!("decode/{}", E::NAME), |b| {
        b.iter(|| ready(codec.decode::<E>(black_box(&bytes))))
    });
}

fn single_object(c: &mut Criterion) {
    let codec = Codec::single_object();
    let mut group = c.benchmark_group("codec");
    round_trip(&mut group, &codec, &registrada());
    round_trip(&mut group, &codec, &anonimizada());
    round_trip(&mut group, &codec, &rechazada());
    round_trip(&mut group, &codec, &usuario());
    round_trip(&mut group, &codec, &login());
    round_trip(&mut group, &codec, &uso());
    round_trip(&mut group, &codec, &pago());
    round_trip(&mut group, &codec, &pago_rechazado());
    round_trip(&mut group, &codec, &auditoria());
    group.finish();
}

criterion_group!(benches, single_object);
criterion_main!(benches);
