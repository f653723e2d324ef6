//! The catalog's rows as stored and how they fold into an image, a user, a
//! listing key or a usage; no I/O.

use super::*;

/// The anonymized output as stored in the `output` cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredOutput {
    /// The `ImagenAnonimizada` it came from.
    pub(super) event_id: String,
    /// The write timestamp of its cells (microseconds).
    pub(super) write_ts: i64,
    pub(super) anonymized_at: i64,
    /// The DICOM Modality (or the provider's label), upper-case.
    pub(super) modality: Option<String>,
    pub(super) blob_key: String,
    pub(super) sha256: String,
    pub(super) size_bytes: i64,
    pub(super) media_type: String,
    pub(super) study_uid: Option<String>,
    pub(super) series_uid: Option<String>,
    pub(super) sop_instance_uid: Option<String>,
    pub(super) sop_class_uid: Option<String>,
    pub(super) patient_id: Option<String>,
    pub(super) study_date: Option<String>,
    pub(super) series_number: Option<i32>,
    pub(super) instance_number: Option<i32>,
    pub(super) body_part: Option<String>,
    pub(super) rows: i32,
    pub(super) columns: i32,
    pub(super) frames: i32,
    #[serde(default)]
    pub(super) report: serde_json::Value,
}

impl StoredOutput {
    pub(super) fn of(e: &ImagenAnonimizada, now_micros: i64) -> StoredOutput {
        StoredOutput {
            event_id: e.event_id.clone(),
            write_ts: write_timestamp(e.occurred_at, &e.event_id, now_micros),
            anonymized_at: e.occurred_at,
            modality: e.modality.clone().or_else(|| e.tipo_imagen.clone()).map(|m| m.to_uppercase()),
            blob_key: e.blob_key.clone(),
            sha256: e.sha256.clone(),
            size_bytes: e.size_bytes,
            media_type: e.media_type.clone(),
            study_uid: e.study_uid.clone(),
            series_uid: e.series_uid.clone(),
            sop_instance_uid: e.sop_instance_uid.clone(),
            sop_class_uid: e.sop_class_uid.clone(),
            patient_id: e.patient_id.clone(),
            study_date: e.study_date.clone(),
            series_number: e.series_number,
            instance_number: e.instance_number,
            body_part: e.body_part.clone(),
            rows: e.rows,
            columns: e.columns,
            frames: e.frames,
            report: report_summary(e),
        }
    }

    pub(super) fn to_output(&self) -> AnonymizedOutput {
        AnonymizedOutput {
            blob_key: self.blob_key.clone(),
            sha256: self.sha256.clone(),
            size_bytes: self.size_bytes,
            media_type: self.media_type.clone(),
            study_uid: self.study_uid.clone(),
            series_uid: self.series_uid.clone(),
            sop_instance_uid: self.sop_instance_uid.clone(),
            sop_class_uid: self.sop_class_uid.clone(),
            patient_id: self.patient_id.clone(),
            study_date: self.study_date.clone(),
            series_number: self.series_number,
            instance_number: self.instance_number,
            body_part: self.body_part.clone(),
            rows: self.rows,
            columns: self.columns,
            frames: self.frames,
            anonymized_at: self.anonymized_at,
            report: ReportJson::of(&self.report),
        }
    }
}

/// The clustering key of a `catalog_instances` row (absent values as empty text or [`ABSENT_NUMBER`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct InstanceKey {
    pub(super) study: String,
    pub(super) series: String,
    pub(super) number: i32,
    pub(super) sop: String,
}

impl InstanceKey {
    /// The instance row an output writes: none without a StudyInstanceUID.
    pub(super) fn of(o: &StoredOutput) -> Option<InstanceKey> {
        InstanceKey::from_parts(
            o.study_uid.as_deref(),
            o.series_uid.as_deref(),
            o.instance_number,
            o.sop_instance_uid.as_deref(),
        )
    }

    pub(super) fn from_parts(study: Option<&str>, series: Option<&str>, number: Option<i32>, sop: Option<&str>) -> Option<InstanceKey> {
        let study = study.filter(|s| !s.is_empty())?;
        Some(InstanceKey {
            study: study.to_owned(),
            series: series.unwrap_or_default().to_owned(),
            number: number.unwrap_or(ABSENT_NUMBER),
            sop: sop.unwrap_or_default().to_owned(),
        })
    }
}

/// One row of an image's partition: a sighting, with the partition's static cells.
#[derive(Debug, Clone, Default, DeserializeRow)]
pub(super) struct ImageRow {
    pub(super) seen_at: Option<i64>,
    pub(super) event_id: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) provider_id: Option<String>,
    pub(super) tipo_imagen: Option<String>,
    pub(super) region_anatomica: Option<String>,
    pub(super) study_uid: Option<String>,
    pub(super) series_uid: Option<String>,
    pub(super) instance_number: Option<i32>,
    pub(super) sop_instance_uid: Option<String>,
    pub(super) output: Option<String>,
    pub(super) rejection: Option<String>,
}

/// One event seen for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sighting {
    pub(super) seen_at: i64,
    pub(super) event_id: String,
    pub(super) kind: String,
    pub(super) provider_id: String,
    pub(super) tipo_imagen: Option<String>,
    pub(super) region_anatomica: Option<String>,
    /// The instance row an output sighting wrote.
    pub(super) instance: Option<InstanceKey>,
}

impl Sighting {
    pub(super) fn registered(e: &ImagenRegistrada) -> Sighting {
        Sighting {
            seen_at: e.occurred_at,
            event_id: e.event_id.clone(),
            kind: REGISTERED.to_owned(),
            provider_id: e.provider_id.clone(),
            tipo_imagen: e.tipo_imagen.clone(),
            region_anatomica: e.region_anatomica.clone(),
            instance: None,
        }
    }

    pub(super) fn anonymized(e: &ImagenAnonimizada, stored: &StoredOutput) -> Sighting {
        Sighting {
            seen_at: e.occurred_at,
            event_id: e.event_id.clone(),
            kind: ANONYMIZED.to_owned(),
            provider_id: e.provider_id.clone(),
            tipo_imagen: e.tipo_imagen.clone(),
            region_anatomica: e.region_anatomica.clone(),
            instance: InstanceKey::of(stored),
        }
    }

    pub(super) fn rejected(e: &ImagenRechazada) -> Sighting {
        Sighting {
            seen_at: e.occurred_at,
            event_id: e.event_id.clone(),
            kind: REJECTED.to_owned(),
            provider_id: e.provider_id.clone().unwrap_or_default(),
            tipo_imagen: None,
            region_anatomica: None,
            instance: None,
        }
    }
}

/// An image's partition, read back.
#[derive(Debug, Clone, Default)]
pub(super) struct ImageParts {
    /// Earliest first, by `(seen_at, event_id)`.
    pub(super) sightings: Vec<Sighting>,
    pub(super) output: Option<StoredOutput>,
    pub(super) rejection: Option<String>,
}

impl ImageParts {
    pub(super) fn from_rows(rows: Vec<ImageRow>) -> Result<ImageParts> {
        let mut parts = ImageParts::default();
        for row in rows {
            if parts.output.is_none() {
                if let Some(json) = &row.output {
                    parts.output = Some(
                        serde_json::from_str(json).map_err(|_| Error::Store("scylla: a stored anonymized output does not parse".into()))?,
                    );
                }
            }
            if parts.rejection.is_none() {
                parts.rejection = row.rejection.clone();
            }
            let (Some(seen_at), Some(event_id)) = (row.seen_at, row.event_id) else {
                continue; // the static row of a partition without sightings
            };
            let instance = if row.kind.as_deref() == Some(ANONYMIZED) {
                InstanceKey::from_parts(
                    row.study_uid.as_deref(),
                    row.series_uid.as_deref(),
                    row.instance_number.filter(|n| *n != ABSENT_NUMBER),
                    row.sop_instance_uid.as_deref(),
                )
            } else {
                None
            };
            parts.sightings.push(Sighting {
                seen_at,
                event_id,
                kind: row.kind.unwrap_or_default(),
                provider_id: row.provider_id.unwrap_or_default(),
                tipo_imagen: row.tipo_imagen,
                region_anatomica: row.region_anatomica,
                instance,
            });
        }
        parts
            .sightings
            .sort_by(|a, b| (a.seen_at, &a.event_id).cmp(&(b.seen_at, &b.event_id)));
        Ok(parts)
    }

    /// Keeps `o` as the output if it is newer (by write timestamp) than the one held; on a tie the
    /// one held stays (ScyllaDB breaks it by value, which only the stored cell shows).
    pub(super) fn keep_newer_output(&mut self, o: StoredOutput) {
        if self.output.as_ref().is_none_or(|cur| o.write_ts > cur.write_ts) {
            self.output = Some(o);
        }
    }

    /// Adds what this replica wrote (`own`) to what it read back: the sightings the read missed,
    /// and its output where newer.
    pub(super) fn merge(&mut self, own: ImageParts) {
        let read: HashSet<String> = self.sightings.iter().map(|s| s.event_id.clone()).collect();
        self.sightings
            .extend(own.sightings.into_iter().filter(|s| !read.contains(&s.event_id)));
        self.sightings
            .sort_by(|a, b| (a.seen_at, &a.event_id).cmp(&(b.seen_at, &b.event_id)));
        if let Some(o) = own.output {
            self.keep_newer_output(o);
        }
        if self.rejection.is_none() {
            self.rejection = own.rejection;
        }
    }

    /// The image, folded from its sightings and statics, with its current output's event id; none
    /// before its first sighting.
    pub(super) fn image(&self, image_id: &str) -> Option<(CatalogImage, Option<String>)> {
        let first = self.sightings.first()?;
        let tipo_imagen = self.sightings.iter().find_map(|s| s.tipo_imagen.clone());
        let region_anatomica = self.sightings.iter().find_map(|s| s.region_anatomica.clone());
        let modality = match &self.output {
            Some(o) => o.modality.clone(),
            None => tipo_imagen.as_ref().map(|t| t.to_uppercase()),
        };
        let image = CatalogImage {
            image_id: image_id.to_owned(),
            provider_id: first.provider_id.clone(),
            estado: estado_of(self.output.is_some(), self.rejection.is_some()),
            created_at: first.seen_at,
            modality,
            tipo_imagen,
            region_anatomica,
            anonymized: self.output.as_ref().map(StoredOutput::to_output),
            rejection_reason: self.rejection.clone(),
        };
        Some((image, self.output.as_ref().map(|o| o.event_id.clone())))
    }

    /// The write timestamp of the current output and the instance rows of every other output whose
    /// key is not the current one's: rows to delete at that timestamp.
    pub(super) fn stale_instance_keys(&self) -> Option<(i64, BTreeSet<InstanceKey>)> {
        let current = self.output.as_ref()?;
        let keep = InstanceKey::of(current);
        let stale: BTreeSet<InstanceKey> = self
            .sightings
            .iter()
            .filter(|s| s.kind == ANONYMIZED && s.event_id != current.event_id)
            .filter_map(|s| s.instance.clone())
            .filter(|k| Some(k) != keep.as_ref())
            .collect();
        (!stale.is_empty()).then_some((current.write_ts, stale))
    }
}

/// One row of a user's partition.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct UserRow {
    pub(super) registered_at: i64,
    pub(super) event_id: String,
    pub(super) user_role: Option<String>,
    pub(super) organization: Option<String>,
}

/// The user: created when first registered, with the latest registration's role and organization.
pub(super) fn fold_user(user_id: &str, mut rows: Vec<UserRow>) -> Option<CatalogUser> {
    rows.sort_by(|a, b| (a.registered_at, &a.event_id).cmp(&(b.registered_at, &b.event_id)));
    let first = rows.first()?;
    let last = rows.last()?;
    Some(CatalogUser {
        user_id: user_id.to_owned(),
        role: last.user_role.clone().unwrap_or_default(),
        organization: last.organization.clone(),
        created_at: first.registered_at,
    })
}

/// A row a [`Walk`] reads: its place in the listing.
pub(super) trait Keyed {
    fn key(&self) -> (i64, &str);
}

/// A `catalog_listings` row.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct ListingRow {
    pub(super) sort_at: i64,
    pub(super) item_id: String,
}

impl Keyed for ListingRow {
    fn key(&self) -> (i64, &str) {
        (self.sort_at, &self.item_id)
    }
}

/// A `catalog_usage` row.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct UsageRow {
    pub(super) occurred_at: i64,
    pub(super) event_id: String,
    pub(super) consumer_id: Option<String>,
    pub(super) provider_id: Option<String>,
    pub(super) image_id: Option<String>,
    pub(super) size_bytes: Option<i64>,
    pub(super) amount_minor: Option<i64>,
    pub(super) currency: Option<String>,
    pub(super) charge_key: Option<String>,
}

impl Keyed for UsageRow {
    fn key(&self) -> (i64, &str) {
        (self.occurred_at, &self.event_id)
    }
}

impl UsageRow {
    pub(super) fn into_usage(self) -> Usage {
        Usage {
            charge_key: self.charge_key.unwrap_or_else(|| self.event_id.clone()),
            event_id: self.event_id,
            occurred_at: self.occurred_at,
            consumer_id: self.consumer_id.unwrap_or_default(),
            provider_id: self.provider_id.unwrap_or_default(),
            image_id: self.image_id.unwrap_or_default(),
            bytes: self.size_bytes.unwrap_or(0),
            amount_minor: self.amount_minor.unwrap_or(0),
            currency: self.currency.unwrap_or_default(),
        }
    }
}
