//! The catalog's side of consent on ScyllaDB (`schemas/cql/012_catalog_consent.cql`): which
//! institution an image is of, each institution's patients' consent and its policy, the release
//! gate every consumer's read applies, and the dashboards.
//!
//! - An image's institution is written from whichever of its `ImagenRegistrada` and
//!   `ImagenAnonimizada` comes first (both carry it, the same one), with the image's row in its
//!   institution's list, so an anonymized image is never offered before its institution is known.
//! - A consent (by institution and PatientID pseudonym, and again by doctor) and an institution's
//!   policy are written `USING TIMESTAMP` of their event ([`write_timestamp`]): the newest event
//!   stands in any order of arrival, as SQLite's `WHERE at <= excluded.at` does.
//! - The gate is not copied into the image rows: it is evaluated on each read, from those rows, by
//!   the domain's rule ([`alpes_domain::consent::offered`]), so a revocation hides the images at
//!   once. A listing or QIDO search reads the institution of each image it would return and the
//!   consent and policy of each distinct (institution, pseudonym) among them.
//! - A download of an institution's image is written to its institution's usage when it is
//!   applied (the image was in the catalog, institution known, before anyone could download it).
//!
//! The dashboards count on read: the institution's images (16 partitions, each image read), its
//! patients' consent partition, its downloads; the doctor's consent partition. Unlike SQLite,
//! where these are indexed joins, an institution's dashboard reads every image of it: fine for
//! tens of thousands, a counting table is the next step beyond.

use super::keys::{now_micros, write_timestamp};
use super::{ScyllaCatalog, READS_IN_FLIGHT, STUDY_SHARDS};
use crate::store::catalog::CatalogImage;
use crate::store::cql::exec::{Cql, Kind};
use crate::Result;
use alpes_domain::consent::{offered, ConsentState, Subject, UnregisteredPolicy};
use alpes_domain::panel::{DoctorPanel, InstitutionPanel};
use alpes_schemas::{ConsentimientoCambiado, EventoUsoDatos, InstitucionActualizada};
use futures::{StreamExt, TryStreamExt};
use scylla::deserialize::row::DeserializeRow;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use std::collections::{BTreeMap, HashMap};

const IMAGE_INSTITUTION_WRITE: &str = "INSERT INTO {ks}.catalog_image_institution (image_id, institution_id) VALUES (?, ?)";
const IMAGE_INSTITUTION_READ: &str = "SELECT institution_id FROM {ks}.catalog_image_institution WHERE image_id = ?";
const INSTITUTION_IMAGE_WRITE: &str = "INSERT INTO {ks}.catalog_institution_images (institution_id, shard, image_id) VALUES (?, ?, ?)";
const INSTITUTION_IMAGES: &str = "SELECT image_id FROM {ks}.catalog_institution_images WHERE institution_id = ? AND shard = ?";
const CONSENT_WRITE: &str = "INSERT INTO {ks}.catalog_consent (institution_id, subject, patient_id, doctor_id, estado, deleted) \
    VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
const CONSENT_READ: &str = "SELECT estado, deleted FROM {ks}.catalog_consent WHERE institution_id = ? AND subject = ?";
const CONSENTS_OF_INSTITUTION: &str = "SELECT estado, deleted FROM {ks}.catalog_consent WHERE institution_id = ?";
const DOCTOR_CONSENT_WRITE: &str = "INSERT INTO {ks}.catalog_consent_by_doctor (doctor_id, institution_id, subject, estado, deleted) \
    VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?";
const CONSENTS_OF_DOCTOR: &str = "SELECT estado, deleted FROM {ks}.catalog_consent_by_doctor WHERE doctor_id = ?";
const POLICY_WRITE: &str =
    "INSERT INTO {ks}.catalog_institution_policies (institution_id, politica, deleted) VALUES (?, ?, ?) USING TIMESTAMP ?";
const POLICY_READ: &str = "SELECT politica, deleted FROM {ks}.catalog_institution_policies WHERE institution_id = ?";
const USAGE_WRITE: &str =
    "INSERT INTO {ks}.catalog_institution_usage (institution_id, event_id, amount_minor, currency) VALUES (?, ?, ?, ?)";
const USAGE_OF_INSTITUTION: &str = "SELECT amount_minor, currency FROM {ks}.catalog_institution_usage WHERE institution_id = ?";

/// The consent statements, prepared once.
#[derive(Debug)]
pub(super) struct Statements {
    image_institution_write: PreparedStatement,
    image_institution_read: PreparedStatement,
    institution_image_write: PreparedStatement,
    institution_images: PreparedStatement,
    consent_write: PreparedStatement,
    consent_read: PreparedStatement,
    consents_of_institution: PreparedStatement,
    doctor_consent_write: PreparedStatement,
    consents_of_doctor: PreparedStatement,
    policy_write: PreparedStatement,
    policy_read: PreparedStatement,
    usage_write: PreparedStatement,
    usage_of_institution: PreparedStatement,
}

impl Statements {
    pub(super) async fn prepare(cql: &Cql) -> Result<Statements> {
        Ok(Statements {
            image_institution_write: cql.prepare(IMAGE_INSTITUTION_WRITE, Kind::Plain).await?,
            image_institution_read: cql.prepare(IMAGE_INSTITUTION_READ, Kind::Plain).await?,
            institution_image_write: cql.prepare(INSTITUTION_IMAGE_WRITE, Kind::Plain).await?,
            institution_images: cql.prepare(INSTITUTION_IMAGES, Kind::Scan).await?,
            consent_write: cql.prepare(CONSENT_WRITE, Kind::Plain).await?,
            consent_read: cql.prepare(CONSENT_READ, Kind::Plain).await?,
            consents_of_institution: cql.prepare(CONSENTS_OF_INSTITUTION, Kind::Scan).await?,
            doctor_consent_write: cql.prepare(DOCTOR_CONSENT_WRITE, Kind::Plain).await?,
            consents_of_doctor: cql.prepare(CONSENTS_OF_DOCTOR, Kind::Scan).await?,
            policy_write: cql.prepare(POLICY_WRITE, Kind::Plain).await?,
            policy_read: cql.prepare(POLICY_READ, Kind::Plain).await?,
            usage_write: cql.prepare(USAGE_WRITE, Kind::Plain).await?,
            usage_of_institution: cql.prepare(USAGE_OF_INSTITUTION, Kind::Scan).await?,
        })
    }
}

/// A consent or policy row: `(estado or politica, deleted)`.
type Row = (Option<String>, Option<bool>);

/// The shard of an image in its institution's list.
fn shard_of(image_id: &str) -> i32 {
    super::keys::study_shard(image_id)
}

/// Whether a consumer is offered an image of `institution` whose PatientID is `subject`, given
/// its institution's policy row and the consent row of `(institution, subject)`.
fn is_offered(institution: Option<&str>, policy: Option<&Row>, consent: Option<&Row>) -> bool {
    let Some(_) = institution else {
        return offered(Subject::NoInstitution);
    };
    if policy.is_some_and(|(_, deleted)| deleted.unwrap_or(false)) {
        return offered(Subject::InstitutionDeleted);
    }
    match consent {
        Some((estado, deleted)) => estado.as_deref().and_then(ConsentState::parse).is_some_and(|state| {
            offered(Subject::Registered {
                state,
                deleted: deleted.unwrap_or(false),
            })
        }),
        None => {
            let policy = policy
                .and_then(|(p, _)| p.as_deref())
                .and_then(UnregisteredPolicy::parse)
                .unwrap_or(UnregisteredPolicy::Retener);
            offered(Subject::Unregistered(policy))
        }
    }
}

/// What the gate needs of an image: its id and the PatientID of its current output.
pub(super) fn gate_key(image: &CatalogImage) -> (&str, Option<&str>) {
    (
        image.image_id.as_str(),
        image.anonymized.as_ref().and_then(|o| o.patient_id.as_deref()),
    )
}

/// Live rows counted by state.
fn by_state(rows: &[Row]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for (estado, deleted) in rows {
        if let (Some(estado), false) = (estado, deleted.unwrap_or(false)) {
            *counts.entry(estado.clone()).or_insert(0) += 1;
        }
    }
    counts
}

impl ScyllaCatalog {
    /// Remembers the institution of an image (from an image event that names one).
    pub(super) async fn write_image_institution(&self, image_id: &str, institution: Option<&str>) -> Result<()> {
        let Some(institution) = institution.filter(|i| !i.is_empty()) else {
            return Ok(());
        };
        let st = &self.st.consent;
        self.cql
            .write(
                &st.institution_image_write,
                (institution, shard_of(image_id), image_id),
                "list an institution's image",
            )
            .await?;
        self.cql
            .write(&st.image_institution_write, (image_id, institution), "write an image's institution")
            .await
    }

    /// A patient's consent, unless a newer one is there.
    pub(super) async fn write_consent(&self, e: &ConsentimientoCambiado) -> Result<()> {
        if e.institucion_id.is_empty() || e.sujeto.is_empty() {
            return Ok(());
        }
        let ts = write_timestamp(e.ocurrido_at, &e.evento_id, now_micros());
        let st = &self.st.consent;
        let values = (
            e.institucion_id.as_str(),
            e.sujeto.as_str(),
            e.paciente_id.as_str(),
            e.medico_id.as_str(),
            e.estado.as_str(),
            e.eliminado,
            ts,
        );
        self.cql.write(&st.consent_write, values, "write a consent").await?;
        if e.medico_id.is_empty() {
            return Ok(());
        }
        let values = (
            e.medico_id.as_str(),
            e.institucion_id.as_str(),
            e.sujeto.as_str(),
            e.estado.as_str(),
            e.eliminado,
            ts,
        );
        self.cql.write(&st.doctor_consent_write, values, "write a doctor's consent").await
    }

    /// An institution's policy, unless a newer one is there.
    pub(super) async fn write_policy(&self, e: &InstitucionActualizada) -> Result<()> {
        if e.institucion_id.is_empty() {
            return Ok(());
        }
        let ts = write_timestamp(e.ocurrido_at, &e.evento_id, now_micros());
        let values = (e.institucion_id.as_str(), e.politica.as_str(), e.eliminada, ts);
        self.cql
            .write(&self.st.consent.policy_write, values, "write an institution's policy")
            .await
    }

    /// A download, in its image's institution's usage (if the image is of one).
    pub(super) async fn write_institution_usage(&self, u: &EventoUsoDatos) -> Result<()> {
        if u.image_id.is_empty() {
            return Ok(());
        }
        if let Some(institution) = self.institution_of(&u.image_id).await? {
            let values = (institution.as_str(), u.event_id.as_str(), u.amount_minor, u.currency.as_str());
            self.cql
                .write(&self.st.consent.usage_write, values, "write an institution's download")
                .await?;
        }
        Ok(())
    }

    async fn institution_of(&self, image_id: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = self
            .cql
            .read_one(&self.st.consent.image_institution_read, (image_id,), "read an image's institution")
            .await?;
        Ok(row.and_then(|(i,)| i))
    }

    /// Which of `images` (`(image_id, PatientID)`) a consumer is offered now, in order.
    pub(super) async fn gate(&self, images: &[(&str, Option<&str>)]) -> Result<Vec<bool>> {
        let reads: Vec<_> = images.iter().map(|(id, _)| self.institution_of(id)).collect();
        let institutions: Vec<Option<String>> = futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
        // Each distinct institution's policy and (institution, PatientID)'s consent, read once, at once.
        let mut wanted_policies: Vec<&str> = institutions.iter().flatten().map(String::as_str).collect();
        wanted_policies.sort_unstable();
        wanted_policies.dedup();
        let mut wanted_consents: Vec<(&str, &str)> = images
            .iter()
            .zip(&institutions)
            .filter_map(|((_, subject), i)| i.as_deref().zip(subject.filter(|s| !s.is_empty())))
            .collect();
        wanted_consents.sort_unstable();
        wanted_consents.dedup();
        let st = &self.st.consent;
        let reads: Vec<_> = wanted_policies
            .iter()
            .map(|i| self.cql.read_one::<Row>(&st.policy_read, (*i,), "read a policy"))
            .collect();
        let found: Vec<Option<Row>> = futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
        let policies: HashMap<&str, Option<Row>> = wanted_policies.into_iter().zip(found).collect();
        let reads: Vec<_> = wanted_consents
            .iter()
            .map(|k| self.cql.read_one::<Row>(&st.consent_read, *k, "read a consent"))
            .collect();
        let found: Vec<Option<Row>> = futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
        let consents: HashMap<(&str, &str), Option<Row>> = wanted_consents.into_iter().zip(found).collect();
        Ok(images
            .iter()
            .zip(&institutions)
            .map(|((_, subject), institution)| {
                let i = institution.as_deref();
                let policy = i.and_then(|i| policies.get(i)).and_then(Option::as_ref);
                let consent = i.zip(*subject).and_then(|key| consents.get(&key)).and_then(Option::as_ref);
                is_offered(i, policy, consent)
            })
            .collect())
    }

    /// Whether a consumer is offered the image now; false for an unknown image.
    pub(super) async fn offered_image(&self, image_id: &str) -> Result<bool> {
        let Some((image, _)) = self.read_image(image_id).await? else {
            return Ok(false);
        };
        Ok(self.gate(&[gate_key(&image)]).await?.first().copied().unwrap_or(false))
    }

    /// Every row of a partition.
    async fn all<T>(&self, stmt: &PreparedStatement, values: impl SerializeRow, step: &'static str) -> Result<Vec<T>>
    where
        T: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let stream = self.cql.scan::<T>(stmt, values, step).await?;
        stream.try_collect().await.map_err(crate::store::cql::conn::db(step))
    }

    /// An institution's dashboard.
    pub(super) async fn panel_of_institution(&self, institution: &str) -> Result<InstitutionPanel> {
        let mut ids = Vec::new();
        for shard in 0..STUDY_SHARDS {
            let rows: Vec<(String,)> = self
                .all(
                    &self.st.consent.institution_images,
                    (institution, shard),
                    "read an institution's images",
                )
                .await?;
            ids.extend(rows.into_iter().map(|(id,)| id));
        }
        let reads: Vec<_> = ids.iter().map(|id| self.read_image(id)).collect();
        let images: Vec<_> = futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
        let images: Vec<_> = images.into_iter().flatten().map(|(image, _)| image).collect();
        let mut panel = InstitutionPanel::default();
        let mut anonymized = Vec::new();
        for image in &images {
            *panel.imagenes_por_estado.entry(image.estado.as_str().to_owned()).or_insert(0) += 1;
            match (image.estado, &image.rejection_reason) {
                (crate::store::catalog::Estado::Anonimizada, _) => anonymized.push(gate_key(image)),
                (crate::store::catalog::Estado::Rechazada, Some(reason)) => {
                    *panel.rechazos_por_motivo.entry(reason.clone()).or_insert(0) += 1;
                }
                _ => {}
            }
        }
        let offered = self.gate(&anonymized).await?;
        panel.imagenes_ofrecidas = i64::try_from(offered.iter().filter(|o| **o).count()).unwrap_or(i64::MAX);
        let usage: Vec<(Option<i64>, Option<String>)> = self
            .all(
                &self.st.consent.usage_of_institution,
                (institution,),
                "read an institution's downloads",
            )
            .await?;
        panel.descargas = i64::try_from(usage.len()).unwrap_or(i64::MAX);
        for (amount, currency) in usage {
            *panel.ingresos_minor.entry(currency.unwrap_or_default()).or_insert(0) += amount.unwrap_or(0);
        }
        let patients = by_state(
            &self
                .all::<Row>(
                    &self.st.consent.consents_of_institution,
                    (institution,),
                    "read an institution's consents",
                )
                .await?,
        );
        panel.pendientes_medico = patients.get(ConsentState::Pending.as_str()).copied().unwrap_or(0);
        panel.pendientes_institucion = patients.get(ConsentState::ValidatedByDoctor.as_str()).copied().unwrap_or(0);
        panel.pacientes_por_estado = patients;
        Ok(panel)
    }

    /// A doctor's dashboard.
    pub(super) async fn panel_of_doctor(&self, doctor: &str) -> Result<DoctorPanel> {
        let patients = by_state(
            &self
                .all::<Row>(&self.st.consent.consents_of_doctor, (doctor,), "read a doctor's consents")
                .await?,
        );
        Ok(DoctorPanel {
            pendientes_validacion: patients.get(ConsentState::Pending.as_str()).copied().unwrap_or(0),
            pacientes_por_estado: patients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cql::check::assert_statements_cover;

    #[test]
    fn every_statement_names_only_tables_and_columns_of_the_schema() {
        const ALL_STATEMENTS: [&str; 13] = [
            IMAGE_INSTITUTION_WRITE,
            IMAGE_INSTITUTION_READ,
            INSTITUTION_IMAGE_WRITE,
            INSTITUTION_IMAGES,
            CONSENT_WRITE,
            CONSENT_READ,
            CONSENTS_OF_INSTITUTION,
            DOCTOR_CONSENT_WRITE,
            CONSENTS_OF_DOCTOR,
            POLICY_WRITE,
            POLICY_READ,
            USAGE_WRITE,
            USAGE_OF_INSTITUTION,
        ];
        const KEYWORDS: [&str; 10] = [
            "select",
            "from",
            "where",
            "and",
            "insert",
            "into",
            "values",
            "using",
            "timestamp",
            "limit",
        ];
        assert_statements_cover("012_catalog_consent.cql", 6, &ALL_STATEMENTS, &KEYWORDS);
    }

    #[test]
    fn the_gate_reads_its_rows_as_the_domains_subjects() {
        let row = |s: &str, deleted: bool| (Some(s.to_owned()), Some(deleted));
        assert!(is_offered(None, None, None), "no institution");
        assert!(!is_offered(Some("i"), None, None), "retener by default");
        assert!(is_offered(Some("i"), Some(&row("liberar", false)), None));
        assert!(
            !is_offered(Some("i"), Some(&row("liberar", true)), Some(&row("full_access", false))),
            "deleted institution"
        );
        assert!(is_offered(
            Some("i"),
            Some(&row("retener", false)),
            Some(&row("full_access", false))
        ));
        assert!(
            !is_offered(Some("i"), Some(&row("liberar", false)), Some(&row("revocado", false))),
            "a registered patient's consent decides"
        );
        assert!(!is_offered(Some("i"), None, Some(&row("full_access", true))), "deleted patient");
        assert!(
            !is_offered(Some("i"), None, Some(&row("no-such-state", false))),
            "an unknown state is not consent"
        );
    }
}
