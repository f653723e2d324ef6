//! The single-object fingerprints and canonical forms of every embedded
//! schema against the reference implementation, Apache Avro's Java
//! `SchemaNormalization`:
//!
//! - always, against `fingerprints.tsv`, which that implementation wrote
//!   (`schemas/tests/java/fingerprints.sh > schemas/tests/fingerprints.tsv`);
//! - and, when `ALPES_AVRO_JAVA_CLASSPATH` names the Avro jars (CI sets it,
//!   from `fingerprints.sh --classpath`), against the Java program run now, so
//!   a new schema file cannot slip in with a stale table.

use alpes_schemas::{canonical, catalog};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// `file name → (canonical form, fingerprint hex)`, from the reference's output.
fn parse(tsv: &str) -> BTreeMap<String, (String, String)> {
    tsv.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "a reference line has three columns: {l}");
            (cols[0].to_owned(), (cols[1].to_owned(), cols[2].to_owned()))
        })
        .collect()
}

/// Every embedded schema and every schema of `avro-extra/` (the canonical form's rules that
/// Alpes' own schemas do not use): `file name → (canonical form, fingerprint hex)`, as this crate
/// computes them.
fn ours() -> BTreeMap<String, (String, String)> {
    let mut ours: BTreeMap<String, (String, String)> = catalog::entries()
        .iter()
        .map(|e| {
            let file = match e.version {
                None => format!("{}.avsc", e.name),
                Some(v) => format!("{}.v{v}.avsc", e.name),
            };
            let canonical = canonical::canonical_form(e.source).expect("canonical form");
            assert_eq!(canonical::fingerprint_of_canonical(&canonical), e.fingerprint);
            (file, (canonical, hex::encode(e.fingerprint)))
        })
        .collect();
    for path in files("tests/avro-extra") {
        let source = std::fs::read_to_string(&path).expect("schema");
        let canonical = canonical::canonical_form(&source).expect("canonical form");
        let fp = hex::encode(canonical::fingerprint_of_canonical(&canonical));
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        ours.insert(name, (canonical, fp));
    }
    ours
}

/// The `.avsc` files of a folder of this crate.
fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .expect("schema dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "avsc"))
        .collect();
    files.sort();
    files
}

fn assert_same(reference: &BTreeMap<String, (String, String)>, what: &str) {
    let ours = ours();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>(),
        "{what} covers another set of schema files"
    );
    for (file, (canonical, fp)) in &ours {
        let (ref_canonical, ref_fp) = &reference[file];
        assert_eq!(canonical, ref_canonical, "{file}: canonical form differs from {what}");
        assert_eq!(fp, ref_fp, "{file}: fingerprint differs from {what}");
    }
}

#[test]
fn every_fingerprint_matches_the_one_java_schema_normalization_wrote() {
    assert_same(&parse(include_str!("fingerprints.tsv")), "fingerprints.tsv");
}

#[test]
fn the_usage_event_has_the_fingerprint_fastavro_computes() {
    // The value the issue reported from fastavro for EventoUsoDatos, then current and now its v3 (the
    // build before printed 2dab0d21c22c7bb4).
    let e = catalog::entries()
        .iter()
        .find(|e| e.name == "EventoUsoDatos" && e.version == Some(3))
        .expect("EventoUsoDatos.v3");
    assert_eq!(hex::encode(e.fingerprint), "b2f5dc64e8cdfc27");
    assert_eq!(hex::encode(e.legacy_fingerprint), "2dab0d21c22c7bb4");
}

#[test]
fn every_fingerprint_matches_java_schema_normalization_run_now() {
    let Some(classpath) = std::env::var_os("ALPES_AVRO_JAVA_CLASSPATH") else {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: fingerprints against Java's SchemaNormalization run now: ALPES_AVRO_JAVA_CLASSPATH is not set \
              (schemas/tests/java/fingerprints.sh --classpath prints it); checked against fingerprints.tsv instead\n",
        );
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<std::path::PathBuf> = ["avro", "avro/history", "tests/avro-extra"].iter().flat_map(|d| files(d)).collect();
    let out = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg(root.join("tests/java/Fingerprints.java"))
        .args(&files)
        .output()
        .expect("run java");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same(&parse(&String::from_utf8(out.stdout).expect("utf-8")), "Java run now");
}

#[tokio::test]
async fn an_event_written_with_the_legacy_fingerprint_is_still_read() {
    use alpes_schemas::{Codec, EventoUsoDatos};
    let event = EventoUsoDatos {
        event_id: "e1".into(),
        occurred_at: 1_700_000_000_000,
        actor: "query-api".into(),
        consumer_id: "c1".into(),
        provider_id: "p1".into(),
        image_id: "i1".into(),
        bytes: 10,
        amount_minor: 100,
        currency: "EUR".into(),
        dedupe_key: None,
        http_request_id: None,
    };
    let codec = Codec::single_object();
    let mut bytes = codec.encode(&event).await.expect("encode");
    let entry = catalog::current("EventoUsoDatos").expect("schema");
    assert_eq!(&bytes[2..10], &entry.fingerprint, "written with the reference fingerprint");
    bytes[2..10].copy_from_slice(&entry.legacy_fingerprint);
    assert_eq!(codec.decode::<EventoUsoDatos>(&bytes).await.expect("decode a legacy frame"), event);
}
