//! The compose topology as processes: two ingest, two anonymizer, one
//! billing and one query-api process (`alpes up --services ...`), each with
//! its own data dir, sharing the Kafka cluster, the CQL keyspace, the S3
//! bucket, the registry and the keys, as `docker-compose.yml` runs them.

use crate::harness::{engines, eventually, serial, start_ready, Keys};
use crate::traffic::{anonymized, fixture, get, upload};
use alpes_platform::auth::Role;
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compose_topology_serves_uploads_downloads_balances_and_the_audit_trail() {
    let _engines_held = serial().await;
    let Some(e) = engines("the_compose_topology_serves_uploads_downloads_balances_and_the_audit_trail") else {
        return;
    };
    let keys = Keys::new(&e);
    let topology = [
        ("ingest-a", "ingest"),
        ("ingest-b", "ingest"),
        ("anonymizer-a", "anonymizer"),
        ("anonymizer-b", "anonymizer"),
        ("billing", "billing"),
        ("query-api", "query-api"),
    ];
    let mut procs = start_ready(&e, &keys, &topology, &[]).await;
    let (ingest_a, ingest_b, query) = (procs[0].url.clone(), procs[1].url.clone(), procs[5].url.clone());
    let client = reqwest::Client::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let bytes = fixture("CT_small.dcm");

    // Uploads through both ingests, one provider each.
    let mut images = Vec::new();
    for i in 0..6 {
        let provider = format!("prov-topo-{run}-{i}");
        let base = if i % 2 == 0 { &ingest_a } else { &ingest_b };
        let up = upload(&client, base, &keys.token(&provider, Role::Proveedor).await, &bytes, None).await;
        assert_eq!(up.status, 202, "upload {i}");
        assert!(!up.duplicate);
        images.push((provider, up.id.expect("id")));
    }

    // The ingest store is shared: the same provider's bytes, or its key, through the other
    // ingest is the same image.
    let (provider, first) = &images[0];
    let token = keys.token(provider, Role::Proveedor).await;
    let again = upload(&client, &ingest_b, &token, &bytes, None).await;
    assert_eq!(
        (again.status, again.id.as_deref(), again.duplicate),
        (202, Some(first.as_str()), true)
    );
    let keyed = format!("prov-topo-{run}-keyed");
    let keyed_token = keys.token(&keyed, Role::Proveedor).await;
    let key = format!("key-{run}");
    // A client that retries on the other replica before the first answer came: one image.
    let (x, y) = tokio::join!(
        upload(&client, &ingest_a, &keyed_token, &bytes, Some(&key)),
        upload(&client, &ingest_b, &keyed_token, &bytes, Some(&key)),
    );
    assert_eq!((x.status, y.status), (202, 202));
    assert_eq!(x.id, y.id, "one upload with one key through two ingests at once is one image");
    assert!(x.duplicate != y.duplicate, "exactly one of them created it");
    // The key, later, with other bytes: still that image.
    let z = upload(&client, &ingest_b, &keyed_token, &fixture("MR_small.dcm"), Some(&key)).await;
    assert_eq!((z.status, z.id.as_deref(), z.duplicate), (202, x.id.as_deref(), true));

    // Every image is anonymized by one of the anonymizers and served by the query API.
    let consumer = keys.token(&format!("cons-topo-{run}"), Role::Consumidor).await;
    for (_, id) in &images {
        assert_eq!(
            anonymized(&client, &query, &consumer, id, Duration::from_secs(180)).await,
            "anonimizada"
        );
        let (status, _, body) = get(&client, &format!("{query}/imagenes/{id}/anonimizada"), &consumer).await;
        assert_eq!(status, 200, "download of {id}");
        assert!(body.len() > 1000);
        // The anonymized bytes carry none of the fixture's patient name.
        assert!(!String::from_utf8_lossy(&body).contains("CompressedSamples"));
    }

    // Billing credits each provider once for its download, on the shared ledger.
    for (provider, _) in &images {
        let token = keys.token(provider, Role::Proveedor).await;
        let saldo: Value = eventually(&format!("{provider} credited"), Duration::from_secs(90), || async {
            let (status, _, body) = get(&client, &format!("{query}/monetizacion/saldo/{provider}"), &token).await;
            let v: Value = serde_json::from_slice(&body).ok()?;
            (status == 200 && v["uses"] == 1).then_some(v)
        })
        .await;
        assert!(saldo["accrued"].as_i64().expect("accrued") > 0, "{saldo}");
    }

    // The audit trail has every upload (from both ingests) and every download.
    let admin = keys.token("auditor-topo", Role::Admin).await;
    let entries: Vec<Value> = eventually("the audit trail", Duration::from_secs(60), || async {
        let (status, _, body) = get(&client, &format!("{query}/auditoria?limit=1000"), &admin).await;
        let v: Value = serde_json::from_slice(&body).ok()?;
        let entries = v["registros"].as_array()?.clone();
        let has = |action: &str, target: &str| {
            entries
                .iter()
                .any(|e| e["action"] == action && e["target"].as_str() == Some(target) && e["outcome"] == "ok")
        };
        (status == 200 && images.iter().all(|(_, id)| has("upload", id) && has("download", id))).then_some(entries)
    })
    .await;
    let services: std::collections::HashSet<&str> = entries.iter().filter_map(|e| e["service"].as_str()).collect();
    assert!(services.contains("ingest") && services.contains("query-api"), "{services:?}");

    for p in &mut procs {
        p.stop();
    }
}
