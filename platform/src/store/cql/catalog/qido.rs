//! QIDO on the CQL catalog: instance rows as stored and as matched, and the
//! study and series summaries, counted as SQLite counts them.

use super::*;

/// A `catalog_instances` row as stored.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct StoredInstance {
    pub(super) series_uid: String,
    pub(super) instance_number: i32,
    pub(super) sop_instance_uid: String,
    pub(super) image_id: String,
    pub(super) output_event: Option<String>,
    pub(super) patient_id: Option<String>,
    pub(super) study_date: Option<String>,
    pub(super) modality: Option<String>,
    pub(super) series_number: Option<i32>,
}

impl StoredInstance {
    pub(super) fn into_row(self, study_uid: &str) -> InstanceRow {
        let present = |s: String| (!s.is_empty()).then_some(s);
        InstanceRow {
            study_uid: study_uid.to_owned(),
            series_uid: present(self.series_uid),
            instance_number: (self.instance_number != ABSENT_NUMBER).then_some(self.instance_number),
            sop_instance_uid: present(self.sop_instance_uid),
            image_id: self.image_id,
            output_event: self.output_event,
            patient_id: self.patient_id,
            study_date: self.study_date,
            modality: self.modality,
            series_number: self.series_number,
        }
    }
}

/// An anonymized DICOM instance, absent values back to `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InstanceRow {
    pub(super) study_uid: String,
    pub(super) series_uid: Option<String>,
    pub(super) instance_number: Option<i32>,
    pub(super) sop_instance_uid: Option<String>,
    pub(super) image_id: String,
    pub(super) output_event: Option<String>,
    pub(super) patient_id: Option<String>,
    pub(super) study_date: Option<String>,
    pub(super) modality: Option<String>,
    pub(super) series_number: Option<i32>,
}

impl InstanceRow {
    /// The query's conditions other than Modality and SOPClassUID (which the row does not hold:
    /// `instances` matches it on the image), as SQLite's `dicom_where`.
    pub(super) fn matches(&self, q: &DicomQuery) -> bool {
        q.study_uid.as_ref().is_none_or(|s| *s == self.study_uid)
            && q.series_uid.as_ref().is_none_or(|s| self.series_uid.as_ref() == Some(s))
            && q.sop_instance_uid
                .as_ref()
                .is_none_or(|s| self.sop_instance_uid.as_ref() == Some(s))
            && patient_and_date_match(q, self.patient_id.as_deref(), self.study_date.as_deref())
            && q.series_number.is_none_or(|n| self.series_number == Some(n))
            && q.instance_number.is_none_or(|n| self.instance_number == Some(n))
    }

    /// What an instance is counted as: its SOP Instance UID (one upload sent again with other
    /// bytes is another image of the same instance), or the image when it has none.
    pub(super) fn instance_key(&self) -> &str {
        self.sop_instance_uid.as_deref().unwrap_or(&self.image_id)
    }

    /// The query's Modality condition, compared upper-case.
    pub(super) fn has_modality(&self, modality: Option<&str>) -> bool {
        modality.is_none_or(|m| self.modality.as_deref() == Some(m.to_uppercase().as_str()))
    }
}

/// PatientID (with wildcards) and the StudyDate range; an absent value matches no condition.
pub(super) fn patient_and_date_match(q: &DicomQuery, patient: Option<&str>, date: Option<&str>) -> bool {
    q.patient_id.as_ref().is_none_or(|p| patient.is_some_and(|v| wildcard_match(p, v)))
        && q.study_date_from
            .as_ref()
            .is_none_or(|from| date.is_some_and(|d| d >= from.as_str()))
        && q.study_date_to.as_ref().is_none_or(|to| date.is_some_and(|d| d <= to.as_str()))
}

/// A study's summary over its matching instances, if one of them has the query's Modality.
pub(super) fn study_summary(study_uid: String, rows: &[InstanceRow], modality: Option<&str>) -> Option<StudySummary> {
    if rows.is_empty() || (modality.is_some() && !rows.iter().any(|r| r.has_modality(modality))) {
        return None;
    }
    let modalities: BTreeSet<&str> = rows.iter().filter_map(|r| r.modality.as_deref()).collect();
    let series: BTreeSet<&str> = rows.iter().filter_map(|r| r.series_uid.as_deref()).collect();
    let instances: BTreeSet<&str> = rows.iter().map(InstanceRow::instance_key).collect();
    Some(StudySummary {
        study_uid,
        patient_id: rows.iter().filter_map(|r| r.patient_id.clone()).max(),
        study_date: rows.iter().filter_map(|r| r.study_date.clone()).max(),
        modalities: modalities.into_iter().map(str::to_owned).collect(),
        series: i64::try_from(series.len()).unwrap_or(i64::MAX),
        instances: i64::try_from(instances.len()).unwrap_or(i64::MAX),
    })
}

/// The summaries of a study's series over its instances with the query's Modality, by SeriesInstanceUID.
pub(super) fn series_summaries(study_uid: &str, rows: &[InstanceRow], modality: Option<&str>) -> Vec<SeriesSummary> {
    let mut by_series: BTreeMap<&str, SeriesSummary> = BTreeMap::new();
    let mut counted: BTreeSet<(&str, &str)> = BTreeSet::new();
    for r in rows.iter().filter(|r| r.has_modality(modality)) {
        let Some(series_uid) = r.series_uid.as_deref() else { continue };
        let s = by_series.entry(series_uid).or_insert_with(|| SeriesSummary {
            study_uid: study_uid.to_owned(),
            series_uid: series_uid.to_owned(),
            modality: None,
            series_number: None,
            instances: 0,
        });
        s.modality = s.modality.take().max(r.modality.clone());
        s.series_number = match (s.series_number, r.series_number) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if counted.insert((series_uid, r.instance_key())) {
            s.instances += 1;
        }
    }
    by_series.into_values().collect()
}
