//! Pseudonym namespaces: the same original study from two providers becomes
//! two anonymized studies, so a retrieve of one provider's study returns (and
//! bills) that provider's instances alone; an operator may link them.

use super::common;
use alpes_anonymizer_worker::PseudonymScope;
use alpes_platform::auth::Role;

/// The anonymized Study Instance UIDs of the same file uploaded by two providers, and how many
/// instances a QIDO-RS search of the first one's study finds.
async fn two_providers_upload_one_study(scope: PseudonymScope) -> (String, String, usize) {
    let app = common::spawn_app_with(|s| s.pseudonym_scope = scope).await;
    let consumer = app.consumer_token("ns-consumer").await;
    let mut studies = Vec::new();
    for provider in ["ns-provider-a", "ns-provider-b"] {
        let token = app.token(provider, Role::Proveedor).await;
        let id = app.upload_fixture("CT_small.dcm", &token).await;
        app.download_when_ready(&id, &consumer).await;
        let image = app.get_json(&format!("/imagenes/{id}"), &consumer).await;
        studies.push(image["anonimizada"]["study_uid"].as_str().expect("a study uid").to_owned());
    }
    let found = app.get_json(&format!("/studies/{}/instances", studies[0]), &consumer).await;
    let found = found.as_array().map_or(0, Vec::len);
    app.stop().await;
    (studies[0].clone(), studies[1].clone(), found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_study_from_two_providers_is_two_studies_unless_the_operator_links_them() {
    let (a, b, instances) = two_providers_upload_one_study(PseudonymScope::Provider).await;
    assert_ne!(a, b, "each provider has its own pseudonyms");
    assert_eq!(instances, 1, "provider A's study holds A's instance alone");
    let (a, b, instances) = two_providers_upload_one_study(PseudonymScope::Instance).await;
    assert_eq!(a, b, "--pseudonym-scope instance links them");
    assert_eq!(instances, 2);
}
