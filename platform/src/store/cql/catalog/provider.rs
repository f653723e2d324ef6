//! `catalog_provider_studies`: the studies each provider has anonymized instances in, and which
//! of its images they are, so that a provider's DICOMweb search ([`DicomQuery::provider_id`])
//! reads its own studies only and counts its own instances only. A row is written with each
//! output, from the provider the output event names, and never removed: the image's
//! `catalog_instances` rows decide whether it is still in that study.

use super::*;

pub(super) const WRITE: &str = "INSERT INTO {ks}.catalog_provider_studies (provider_id, shard, study_uid, image_id) VALUES (?, ?, ?, ?)";
pub(super) const SCAN: &str = "SELECT study_uid, image_id FROM {ks}.catalog_provider_studies WHERE provider_id = ? AND shard = ?";
pub(super) const OF_STUDY: &str =
    "SELECT study_uid, image_id FROM {ks}.catalog_provider_studies WHERE provider_id = ? AND shard = ? AND study_uid = ?";

/// A `catalog_provider_studies` row.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct ProviderRow {
    pub(super) study_uid: String,
    pub(super) image_id: String,
}

impl StudyRow for ProviderRow {
    fn study_uid(&self) -> &str {
        &self.study_uid
    }

    /// A provider's row says nothing of the instance but where it is: the instance rows decide.
    fn may_match(&self, _: &DicomQuery) -> bool {
        true
    }
}

impl ScyllaCatalog {
    /// Records that `provider`'s image `image_id` is in `study_uid` (nothing without a provider).
    pub(super) async fn write_provider_study(&self, provider: &str, study_uid: &str, image_id: &str) -> Result<()> {
        if provider.is_empty() {
            return Ok(());
        }
        let values = (provider, study_shard(study_uid), study_uid, image_id);
        self.cql.write(&self.st.provider_write, values, "write a provider's study").await
    }

    /// The images `provider` has in `study_uid`.
    pub(super) async fn provider_images(&self, provider: &str, study_uid: &str) -> Result<HashSet<String>> {
        let step = "read a provider's study";
        let values = (provider, study_shard(study_uid), study_uid);
        let rows = self.cql.scan::<ProviderRow>(&self.st.provider_of_study, values, step).await?;
        rows.map_ok(|r| r.image_id).try_collect().await.map_err(db(step))
    }

    /// `provider`'s partitions, to merge into its studies in StudyInstanceUID order.
    pub(super) async fn provider_shards(&self, provider: &str) -> Result<Vec<Shard<ProviderRow>>> {
        let shards =
            (0..STUDY_SHARDS).map(|shard| Shard::open(&self.cql, &self.st.provider_scan, (provider, shard), "read a provider's studies"));
        futures::future::try_join_all(shards).await
    }
}
