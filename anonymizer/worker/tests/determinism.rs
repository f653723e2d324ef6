//! The worker's idempotence rests on the engine being deterministic: the same input, secret and
//! profile give the same bytes (so the same blob key and event id), across separately built
//! configurations and a second apart (nothing time-varying is embedded).

mod common;

use alpes_anonymizer::{anonymize, Config};
use common::*;

fn run_all(inputs: &[(String, Vec<u8>)]) -> Vec<Result<String, &'static str>> {
    let cfg = Config::new(secret());
    inputs
        .iter()
        .map(|(_, b)| anonymize(b, &cfg).map(|a| sha256_hex(&a.bytes)).map_err(|e| e.code()))
        .collect()
}

#[test]
fn the_engine_gives_the_same_bytes_for_the_same_input_every_time() {
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    inputs.sort();
    inputs.push(("png".into(), png(30, 20, "text")));
    inputs.push(("jpeg".into(), jpeg(30, 20, "text")));
    let first = run_all(&inputs);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = run_all(&inputs);
    for ((name, _), (a, b)) in inputs.iter().zip(first.iter().zip(&second)) {
        assert_eq!(a, b, "{name}");
    }
    assert!(first.iter().filter(|r| r.is_ok()).count() > 50, "most of the corpus anonymizes");
}
