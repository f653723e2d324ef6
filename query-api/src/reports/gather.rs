//! The lines of a report: the images in its scope, read from the catalog (a study's instances,
//! or a listing by provider and time), each with its latest analysis.

use alpes_domain::catalog::{CatalogImage, CatalogStore, DicomQuery, ImageFilter};
use alpes_domain::report::{Alcance, Fila, MAX_IMAGES};
use futures::{StreamExt, TryStreamExt};

/// Why a report's lines could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// More images than one report covers.
    #[error("more than {MAX_IMAGES} images are in scope: narrow it (a provider, a study or a time range)")]
    TooMany,
    /// The catalog failed.
    #[error("the catalog could not be read")]
    Store(#[from] alpes_domain::Error),
}

/// Catalog pages read at once.
const PAGE: usize = 1000;
/// Analyses read at once.
const READS: usize = 16;

/// Every image of `alcance`, oldest first, with its analysis.
pub async fn lines(catalog: &dyn CatalogStore, alcance: &Alcance) -> Result<Vec<Fila>, GatherError> {
    let mut images = in_scope(catalog, alcance).await?;
    images.sort_by(|a, b| (a.created_at, &a.image_id).cmp(&(b.created_at, &b.image_id)));
    let reads: Vec<_> = images.iter().map(|i| catalog.analysis(&i.image_id)).collect();
    let analyses: Vec<_> = futures::stream::iter(reads).buffered(READS).try_collect().await?;
    Ok(images.iter().zip(&analyses).map(|(i, a)| Fila::of(i, a.as_ref())).collect())
}

async fn in_scope(catalog: &dyn CatalogStore, alcance: &Alcance) -> Result<Vec<CatalogImage>, GatherError> {
    let mut found = Vec::new();
    if let Some(study) = &alcance.estudio_uid {
        let q = DicomQuery {
            study_uid: Some(study.clone()),
            limit: MAX_IMAGES + 1,
            ..DicomQuery::default()
        };
        found.extend(catalog.instances(&q).await?.into_iter().filter(|i| alcance.covers(i)));
    } else {
        let filter = ImageFilter {
            provider_id: alcance.proveedor_id.clone(),
            created_from: alcance.creada_desde,
            created_to: alcance.creada_hasta,
            ..ImageFilter::default()
        };
        let mut cursor: Option<String> = None;
        loop {
            let page = catalog.images(&filter, cursor.as_deref(), PAGE).await?;
            found.extend(page.images.into_iter().filter(|i| alcance.covers(i)));
            if found.len() > MAX_IMAGES {
                break;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    if found.len() > MAX_IMAGES {
        return Err(GatherError::TooMany);
    }
    Ok(found)
}
