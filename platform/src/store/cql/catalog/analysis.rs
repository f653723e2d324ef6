//! `catalog_analyses`: the latest burned-in text analysis of each image. Each write carries the
//! analysis time as its timestamp ([`write_timestamp`]), so the newest analysis stands whatever
//! order the events arrive in.

use super::keys::{now_micros, write_timestamp};
use super::ScyllaCatalog;
use crate::store::catalog::{analysis_json, ImageAnalysis, ReportJson};
use crate::Result;
use alpes_schemas::AnalisisCompletado;

pub(super) const WRITE: &str =
    "INSERT INTO {ks}.catalog_analyses (image_id, provider_id, analyzed_at, body) VALUES (?, ?, ?, ?) USING TIMESTAMP ?";
pub(super) const READ: &str = "SELECT provider_id, analyzed_at, body FROM {ks}.catalog_analyses WHERE image_id = ?";

impl ScyllaCatalog {
    pub(super) async fn write_analysis(&self, a: &AnalisisCompletado) -> Result<()> {
        let body = analysis_json(a).to_string();
        let at = write_timestamp(a.ocurrido_at, &a.evento_id, now_micros());
        let values = (a.imagen_id.as_str(), a.proveedor_id.as_str(), a.ocurrido_at, body, at);
        self.cql.write(&self.st.analysis_write, values, "write an analysis").await
    }

    pub(super) async fn read_analysis(&self, image_id: &str) -> Result<Option<ImageAnalysis>> {
        let rows: Vec<(Option<String>, Option<i64>, Option<String>)> =
            self.cql.read_rows(&self.st.analysis_read, (image_id,), "read an analysis").await?;
        Ok(rows.into_iter().next().map(|(provider_id, analyzed_at, body)| ImageAnalysis {
            image_id: image_id.to_owned(),
            provider_id: provider_id.unwrap_or_default(),
            analyzed_at: analyzed_at.unwrap_or_default(),
            body: body.map_or_else(ReportJson::null, ReportJson::from_stored),
        }))
    }
}
