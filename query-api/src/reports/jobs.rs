//! Each report's state and file, in the blob store: `reports/<id>/estado.json` (the
//! [`Reporte`], as served) and `reports/<id>/reporte.<pdf|csv>`. The blob store is the one every
//! replica shares, so any replica answers `GET /reportes/{id}`. A report is generated on a task
//! of the replica that accepted it; one still pending [`STALE_MS`] after its generation started
//! (the replica stopped) is started again by the next read of it.

use super::gather::{self, GatherError};
use super::{csv, pdf};
use alpes_domain::catalog::CatalogStore;
use alpes_domain::report::{Alcance, EstadoReporte, Formato, Reporte};
use alpes_platform::blobs::{sha256_hex, Blobs};
use alpes_schemas::{new_event_id, now_millis};
use bytes::Bytes;
use std::sync::Arc;

/// A pending report whose generation started this long ago (ms) was cut short.
pub const STALE_MS: i64 = 5 * 60 * 1000;

/// Why a report's state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The blob store failed.
    #[error("the report store failed")]
    Blobs(#[from] alpes_platform::Error),
    /// A state blob that is not a report (not written by this service).
    #[error("the report state does not parse")]
    Corrupt,
}

/// The reports of this deployment.
#[derive(Debug, Clone)]
pub struct Reports {
    blobs: Blobs,
    catalog: Arc<dyn CatalogStore>,
}

fn state_key(id: &str) -> String {
    format!("reports/{id}/estado.json")
}

fn file_key(r: &Reporte) -> String {
    format!("reports/{}/reporte.{}", r.id, r.formato.extension())
}

/// Whether `id` could be a report id (a UUID's characters): anything else names no blob.
fn well_formed(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl Reports {
    /// Reports kept in `blobs`, over `catalog`.
    pub fn new(blobs: Blobs, catalog: Arc<dyn CatalogStore>) -> Reports {
        Reports { blobs, catalog }
    }

    /// Records a new pending report of `alcance` in `formato` for `solicitante`, and starts it.
    pub async fn create(&self, solicitante: &str, formato: Formato, alcance: Alcance) -> Result<Reporte, ReportError> {
        let now = now_millis();
        let r = Reporte {
            id: new_event_id(),
            solicitante: solicitante.to_owned(),
            formato,
            alcance,
            estado: EstadoReporte::Pendiente,
            creado_at: now,
            iniciado_at: now,
            terminado_at: None,
            imagenes: None,
            bytes: None,
            sha256: None,
            motivo: None,
        };
        self.save(&r).await?;
        self.start(r.clone());
        Ok(r)
    }

    /// Report `id`, if there is one; a pending one cut short is started again.
    pub async fn get(&self, id: &str) -> Result<Option<Reporte>, ReportError> {
        if !well_formed(id) || !self.blobs.exists(&state_key(id)).await? {
            return Ok(None);
        }
        let bytes = self.blobs.get(&state_key(id)).await?;
        let mut r: Reporte = serde_json::from_slice(&bytes).map_err(|_| ReportError::Corrupt)?;
        if r.estado == EstadoReporte::Pendiente && now_millis() - r.iniciado_at > STALE_MS {
            r.iniciado_at = now_millis();
            self.save(&r).await?;
            self.start(r.clone());
        }
        Ok(Some(r))
    }

    /// The file of a ready report.
    pub async fn file(&self, r: &Reporte) -> Result<Bytes, ReportError> {
        Ok(self.blobs.get(&file_key(r)).await?)
    }

    async fn save(&self, r: &Reporte) -> Result<(), ReportError> {
        let json = serde_json::to_vec(r).map_err(|_| ReportError::Corrupt)?;
        Ok(self.blobs.put_at(&state_key(&r.id), json.into()).await?)
    }

    /// Generates `r` on a task of its own: the request that asked for it has been answered.
    fn start(&self, r: Reporte) {
        let reports = self.clone();
        tokio::spawn(async move {
            let id = r.id.clone();
            if let Err(e) = reports.generate(r).await {
                tracing::warn!(report = %id, error = %e, "a report's state could not be saved");
            }
        });
    }

    async fn generate(&self, mut r: Reporte) -> Result<(), ReportError> {
        let started = std::time::Instant::now();
        match gather::lines(self.catalog.as_ref(), &r.alcance).await {
            Ok(filas) => {
                let images = filas.len() as u64;
                let report = r.clone();
                let rendered = tokio::task::spawn_blocking(move || match report.formato {
                    Formato::Pdf => pdf::render(&report, &filas, now_millis()),
                    Formato::Csv => csv::render(&filas),
                })
                .await;
                let Ok(bytes) = rendered else {
                    return self.fail(r, "the report could not be rendered; ask for a new one").await;
                };
                r.sha256 = Some(sha256_hex(&bytes));
                r.bytes = Some(bytes.len() as u64);
                self.blobs.put_at(&file_key(&r), bytes.into()).await?;
                r.imagenes = Some(images);
                r.estado = EstadoReporte::Listo;
                r.terminado_at = Some(now_millis());
                self.save(&r).await?;
                tracing::info!(report = %r.id, images, millis = started.elapsed().as_millis() as u64, "report ready");
                Ok(())
            }
            Err(GatherError::TooMany) => self.fail(r, &GatherError::TooMany.to_string()).await,
            Err(GatherError::Store(e)) => {
                tracing::warn!(report = %r.id, error = %e, "a report's images could not be read");
                self.fail(r, "the catalog could not be read; ask for a new one").await
            }
        }
    }

    async fn fail(&self, mut r: Reporte, motivo: &str) -> Result<(), ReportError> {
        r.estado = EstadoReporte::Fallido;
        r.motivo = Some(motivo.to_owned());
        r.terminado_at = Some(now_millis());
        self.save(&r).await
    }
}
