//! What the DICOM listener answers to bad input and to a broker that is
//! down, driven by dicom-rs's own client (`dicom-ul`), which sends what a
//! well-behaved SCU never would: a data set that is not DICOM (C000), one
//! that is not the instance its command names (A900), a SOP class that is
//! not the presentation context's (0122), a C-FIND on a storage context
//! (0211) and, with the broker down, a good instance (A700). Each failure
//! keeps nothing: no raw blob, no image. The association survives them all.
//! Bytes that are not DICOM, and a command set that cannot be read, end
//! their connection or association (A-ABORT), an instance cut short by an
//! A-ABORT keeps nothing, and the listener serves on.

mod common;

use alpes_dimse::command::Command;
use alpes_platform::auth::Role;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{ClientAssociationOptions, Pdu};
use std::time::Duration;

const PROVIDER: &str = "hospital-failures";
const CALLING: &str = "FAULTY_SCU";
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

fn element(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    out.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
    out.extend_from_slice(&(tag as u16).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

fn uid(v: &str) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    if b.len() % 2 == 1 {
        b.push(0);
    }
    b
}

/// A request command set (Implicit VR Little Endian) with a data set following.
fn request(field: u16, id: u16, class: &str, instance: &str) -> Vec<u8> {
    let mut body = Vec::new();
    element(&mut body, 0x0000_0002, &uid(class));
    element(&mut body, 0x0000_0100, &field.to_le_bytes());
    element(&mut body, 0x0000_0110, &id.to_le_bytes());
    element(&mut body, 0x0000_0700, &0u16.to_le_bytes());
    element(&mut body, 0x0000_0800, &0u16.to_le_bytes());
    if !instance.is_empty() {
        element(&mut body, 0x0000_1000, &uid(instance));
    }
    let mut out = Vec::new();
    element(&mut out, 0x0000_0000, &(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// CT_small's data set (after its file meta group, Explicit VR Little Endian) and its SOP Instance UID.
fn ct_data_set() -> (Vec<u8>, String) {
    let file = std::fs::read(common::fixtures_dir().join("CT_small.dcm")).expect("fixture");
    let group_len = u32::from_le_bytes(file[140..144].try_into().expect("4 bytes")) as usize;
    let probed = alpes_anonymizer::probe::dicom(&file).expect("probe");
    assert_eq!(probed.transfer_syntax.as_deref(), Some(EXPLICIT_LE));
    (file[144 + group_len..].to_vec(), probed.sop_instance_uid.expect("an instance UID"))
}

/// Sends each `(command, data set)` on the CT context as [`CALLING`] and returns each response's status.
fn statuses(addr: std::net::SocketAddr, sends: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u16> {
    statuses_from(CALLING, addr, sends)
}

/// [`statuses`] from the calling AE title `calling`.
fn statuses_from(calling: &str, addr: std::net::SocketAddr, sends: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u16> {
    let mut assoc = ClientAssociationOptions::new()
        .calling_ae_title(calling)
        .called_ae_title("ALPES")
        .with_presentation_context(CT, vec![EXPLICIT_LE])
        .with_presentation_context(MR, vec![EXPLICIT_LE])
        .establish(addr)
        .expect("associates");
    let pc = assoc.presentation_contexts()[0].id;
    let mut out = Vec::new();
    for (command, data) in sends {
        let pdv = |value_type, data| PDataValue {
            presentation_context_id: pc,
            value_type,
            is_last: true,
            data,
        };
        assoc
            .send(&Pdu::PData {
                data: vec![pdv(PDataValueType::Command, command)],
            })
            .expect("command");
        // The data set in two fragments, as a large one comes.
        let half = data.len() / 2;
        let mut first = pdv(PDataValueType::Data, data[..half].to_vec());
        first.is_last = false;
        assoc.send(&Pdu::PData { data: vec![first] }).expect("data");
        assoc
            .send(&Pdu::PData {
                data: vec![pdv(PDataValueType::Data, data[half..].to_vec())],
            })
            .expect("data");
        match assoc.receive().expect("a response") {
            Pdu::PData { data } => out.push(Command::parse(&data[0].data).expect("a command").status.expect("a status")),
            other => panic!("not a response: {other:?}"),
        }
    }
    assoc.release().expect("release");
    out
}

fn raw_blobs(app: &common::TestApp) -> Vec<std::path::PathBuf> {
    let dir = app.data.path().join("blobs").join("raw");
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_data_sets_and_a_broker_outage_answer_failure_statuses_and_keep_nothing() {
    let app =
        common::spawn_app_with(|s| s.dimse.calling_aes = vec![(CALLING.into(), PROVIDER.into()), ("SECOND_SCU".into(), PROVIDER.into())])
            .await;
    let provider = app.token(PROVIDER, Role::Proveedor).await;
    let addr = app.dimse.expect("listener");
    let (ct, instance) = ct_data_set();
    let sends = vec![
        (request(0x0001, 1, CT, "1.2.3.4.5"), b"this is not a DICOM data set at all".to_vec()),
        (request(0x0001, 2, CT, "1.2.3.4.5"), ct.clone()),
        (request(0x0001, 3, MR, &instance), ct.clone()),
        (request(0x0020, 4, CT, ""), ct.clone()),
    ];
    let got = tokio::task::spawn_blocking(move || statuses(addr, sends)).await.expect("ran");
    assert_eq!(got, vec![0xC000, 0xA900, 0x0122, 0x0211]);
    app.kafka.mock().expect("mock").all_down().expect("down");
    let good = vec![(request(0x0001, 5, CT, &instance), ct.clone())];
    let got = tokio::task::spawn_blocking(move || statuses(addr, good)).await.expect("ran");
    assert_eq!(got, vec![0xA700], "the broker did not acknowledge: out of resources, try again");
    assert_eq!(
        raw_blobs(&app),
        Vec::<std::path::PathBuf>::new(),
        "a failed C-STORE left a raw blob"
    );
    app.kafka.mock().expect("mock").all_up().expect("up");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let page = app.get_json("/imagenes", &provider).await;
    assert_eq!(page["imagenes"].as_array().map(Vec::len), Some(0), "{page}");
    // The same instance once the broker is back: stored.
    let good = vec![(request(0x0001, 6, CT, &instance), ct.clone())];
    let got = tokio::task::spawn_blocking(move || statuses(addr, good)).await.expect("ran");
    assert_eq!(got, vec![0x0000]);
    assert_eq!(raw_blobs(&app).len(), 1);
    // The same instance from another AE title of the provider: a duplicate, one image.
    let again = vec![(request(0x0001, 7, CT, &instance), ct)];
    let got = tokio::task::spawn_blocking(move || statuses_from("SECOND_SCU", addr, again))
        .await
        .expect("ran");
    assert_eq!(got, vec![0x0000]);
    assert_eq!(raw_blobs(&app).len(), 1);
    assert!(app
        .metrics()
        .await
        .contains("alpes_dimse_operations_total{command=\"c_store\",outcome=\"duplicate\"} 1"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_on_the_wire_and_a_malformed_command_end_their_association_and_the_listener_serves_on() {
    use std::io::{Read, Write};
    let app = common::spawn_app_with(|s| s.dimse.calling_aes = vec![(CALLING.into(), PROVIDER.into())]).await;
    app.token(PROVIDER, Role::Proveedor).await;
    let addr = app.dimse.expect("listener");
    let outcome = tokio::task::spawn_blocking(move || {
        // Not DICOM at all (an HTTP request): the connection is closed, nothing is answered.
        let mut raw = std::net::TcpStream::connect(addr).expect("connect");
        raw.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer);
        assert!(answer.is_empty() || answer[0] == 0x07, "an HTTP request got {answer:?}");
        // A well-formed association whose command set is garbage: aborted (A-ABORT, PDU type 7).
        let mut assoc = ClientAssociationOptions::new()
            .calling_ae_title(CALLING)
            .called_ae_title("ALPES")
            .with_presentation_context(CT, vec![EXPLICIT_LE])
            .establish(addr)
            .expect("associates");
        let pc = assoc.presentation_contexts()[0].id;
        let garbage = PDataValue {
            presentation_context_id: pc,
            value_type: PDataValueType::Command,
            is_last: true,
            data: vec![0xFF; 37],
        };
        assoc.send(&Pdu::PData { data: vec![garbage] }).expect("send");
        let answered = assoc.receive();
        // An instance cut short: its command and half its data set, then an A-ABORT.
        let (ct, instance) = ct_data_set();
        let mut cut = ClientAssociationOptions::new()
            .calling_ae_title(CALLING)
            .called_ae_title("ALPES")
            .with_presentation_context(CT, vec![EXPLICIT_LE])
            .establish(addr)
            .expect("associates");
        let pc = cut.presentation_contexts()[0].id;
        let pdv = |value_type, is_last, data| PDataValue {
            presentation_context_id: pc,
            value_type,
            is_last,
            data,
        };
        cut.send(&Pdu::PData {
            data: vec![pdv(PDataValueType::Command, true, request(0x0001, 8, CT, &instance))],
        })
        .expect("command");
        cut.send(&Pdu::PData {
            data: vec![pdv(PDataValueType::Data, false, ct[..ct.len() / 2].to_vec())],
        })
        .expect("half");
        cut.abort().expect("abort");
        // The listener is still there for the next association.
        let next = statuses(addr, vec![(request(0x0001, 9, CT, "1.2.3.4.5"), b"not DICOM".to_vec())]);
        (format!("{answered:?}"), next)
    })
    .await
    .expect("ran");
    assert!(outcome.0.contains("AbortRQ") || outcome.0.contains("Err"), "{}", outcome.0);
    assert_eq!(outcome.1, vec![0xC000]);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("alpes_dimse_associations_total{outcome=\"failed\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}
