//! The production registry: institutions, doctors, provider memberships and patients on
//! ScyllaDB. The tables are in `schemas/cql/010_registry.cql`.
//!
//! Several ingest replicas register and change these at once, and ScyllaDB has no transaction
//! across partitions. SQLite gets each rule of [`RegistryStore`] from one write transaction; here
//! each rule has one single-partition commit point, a lightweight transaction (LWT).
//!
//! # What must be unique: claims
//!
//! An institution's licence and email, a doctor's licence, and a live patient's PatientID
//! pseudonym within its institution are each a row of `registry_claims`, keyed by what is
//! claimed and naming its owner. A create:
//!
//! 1. writes its listing rows (skipped on read until the entity exists);
//! 2. claims what must be unique (`INSERT ... IF NOT EXISTS`), in SQLite's order (an
//!    institution's licence, then its email), releasing what it claimed if a later claim fails,
//!    and answering [`Taken`] as SQLite's unique indexes do;
//! 3. writes the entity's row (`INSERT ... IF NOT EXISTS`).
//!
//! A claim found taken is examined: its owner live means taken; its owner deleted (a deletion
//! whose release was cut short), or missing more than [`STALE_CLAIM_MS`] after the claim (a
//! create cut short between 2 and 3), means it is free, and it is taken over with
//! `UPDATE ... IF owner = <that owner>`, so of two creates that find one stale claim only one
//! takes it. An owner missing for less than that is a create in progress: taken. A deletion
//! sets `deleted_at` (an LWT: once), then releases its claims (`DELETE ... IF owner = <it>`);
//! undoing one claims again first and fails if a live entity took the value meanwhile.
//!
//! # Everything else
//!
//! - A consent moves by `UPDATE ... IF state = <from> AND deleted_at = null`: SQLite's
//!   compare-and-set. Every write of an institution, doctor or patient row is an LWT, so no
//!   plain write (with another clock's timestamp) can shadow one.
//! - Code digests (`registry_codes`) are written before the patient's row and lead to it; a
//!   digest counts only while the live patient it names carries it.
//! - Listings are `registry_listings` partitions, oldest first by `(created_at, id)`, one per
//!   listing (every institution, every doctor, each institution's doctors, every patient, each
//!   institution's and each doctor's patients); a row counts only while its entity exists with
//!   that `created_at`, is live and still matches, so the rows of a create that failed are
//!   skipped. A state filter is applied to the rows read, page after page.
//! - Memberships are plain writes: the last one wins, as SQLite's upsert.
//!
//! # Differences from SQLite
//!
//! - A create takes up to four Paxos rounds (claims and row) instead of one local transaction.
//! - A create cut short after its claims keeps them for [`STALE_CLAIM_MS`]: a second create of
//!   the same licence in that window is refused as taken.
//! - `update_institution` reads the row, writes it (an LWT) and then releases or takes its
//!   claims; two updates of one institution at once (an admin's and its undo) may interleave.
//! - A listing partition grows with every entity ever created (deleted ones included): fine for
//!   institutions and doctors (hundreds), and for the patients of one institution or doctor;
//!   the partition of every patient is read only by an admin's unfiltered listing.

mod rows;
mod statements;

use super::conn::ScyllaArgs;
use super::exec::Cql;
use crate::Result;
use alpes_domain::consent::ConsentState;
use alpes_domain::registry::{CodeKind, Doctor, DoctorStatus, Institution, Patient, PatientFilter, RegistryStore, Taken};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use rows::{DoctorRow, InstitutionRow, PatientRow};
use scylla::client::session::Session;
use statements::Statements;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

/// How long a claim whose owner never appeared is kept for a create still in progress, ms.
pub const STALE_CLAIM_MS: i64 = 60_000;
/// How many times a claim is tried (another create may take over the same stale claim).
const CLAIM_TRIES: usize = 4;
/// How many rows are read at once.
const READS_IN_FLIGHT: usize = 64;
/// The fewest and most listing rows read at a time.
const LISTING_ROWS: (usize, usize) = (16, 256);

/// What a claim makes unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    InstitutionLicence,
    InstitutionEmail,
    DoctorLicence,
    Patient,
}

impl Claim {
    fn name(self) -> &'static str {
        match self {
            Claim::InstitutionLicence => "institucion_licencia",
            Claim::InstitutionEmail => "institucion_email",
            Claim::DoctorLicence => "medico_licencia",
            Claim::Patient => "paciente",
        }
    }
}

/// A patient's claim: its PatientID within its institution.
fn patient_claim(p: &Patient) -> String {
    format!("{}/{}", p.institution_id, p.subject)
}

/// What became of a claim's owner.
enum Owner {
    Live,
    Deleted,
    Missing,
}

impl Owner {
    fn of(deleted_at: Option<Option<i64>>) -> Owner {
        match deleted_at {
            Some(None) => Owner::Live,
            Some(Some(_)) => Owner::Deleted,
            None => Owner::Missing,
        }
    }
}

/// What a listing shows of an entity.
trait Listed {
    fn created_at(&self) -> i64;
    fn live(&self) -> bool;
}

impl Listed for Institution {
    fn created_at(&self) -> i64 {
        self.created_at
    }
    fn live(&self) -> bool {
        self.deleted_at.is_none()
    }
}

impl Listed for Doctor {
    fn created_at(&self) -> i64 {
        self.created_at
    }
    fn live(&self) -> bool {
        self.deleted_at.is_none()
    }
}

impl Listed for Patient {
    fn created_at(&self) -> i64 {
        self.created_at
    }
    fn live(&self) -> bool {
        self.deleted_at.is_none()
    }
}

/// This process's clock, ms since the epoch.
fn now_millis() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The ScyllaDB registry. Cheap to clone; the statements are prepared once, by [`ScyllaRegistry::new`].
#[derive(Clone)]
pub struct ScyllaRegistry {
    cql: Cql,
    st: Arc<Statements>,
}

impl fmt::Debug for ScyllaRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaRegistry")
            .field("keyspace", &self.cql.keyspace())
            .finish_non_exhaustive()
    }
}

impl ScyllaRegistry {
    /// Connects with `args` and prepares the registry's statements (the tables must exist: `alpes migrate`).
    pub async fn connect(args: &ScyllaArgs) -> Result<ScyllaRegistry> {
        let session = args.connect().await?;
        ScyllaRegistry::new(session, args).await
    }

    /// The registry in `args.keyspace` on an open session; prepares every statement now.
    pub async fn new(session: Arc<Session>, args: &ScyllaArgs) -> Result<ScyllaRegistry> {
        let cql = Cql::new(session, args)?;
        let st = Statements::prepare(&cql).await?;
        Ok(ScyllaRegistry { cql, st: Arc::new(st) })
    }

    async fn read_institution(&self, id: &str) -> Result<Option<Institution>> {
        let row: Option<InstitutionRow> = self.cql.read_one(&self.st.institution_read, (id,), "read an institution").await?;
        Ok(row.map(InstitutionRow::into_institution).transpose()?.flatten())
    }

    async fn read_doctor(&self, user_id: &str) -> Result<Option<Doctor>> {
        let row: Option<DoctorRow> = self.cql.read_one(&self.st.doctor_read, (user_id,), "read a doctor").await?;
        Ok(row.map(DoctorRow::into_doctor).transpose()?.flatten())
    }

    async fn read_patient(&self, id: &str) -> Result<Option<Patient>> {
        let row: Option<PatientRow> = self.cql.read_one(&self.st.patient_read, (id,), "read a patient").await?;
        Ok(row.map(PatientRow::into_patient).transpose()?.flatten())
    }

    /// Whether the owner of a claim of `kind` is live, deleted or missing.
    async fn owner(&self, kind: Claim, owner: &str) -> Result<Owner> {
        let deleted_at = match kind {
            Claim::InstitutionLicence | Claim::InstitutionEmail => self.read_institution(owner).await?.map(|i| i.deleted_at),
            Claim::DoctorLicence => self.read_doctor(owner).await?.map(|d| d.deleted_at),
            Claim::Patient => self.read_patient(owner).await?.map(|p| p.deleted_at),
        };
        Ok(Owner::of(deleted_at))
    }

    /// Claims `value` for `owner` (see the module docs); false if a live owner, or a create in
    /// progress, holds it.
    async fn claim(&self, kind: Claim, value: &str, owner: &str) -> Result<bool> {
        let now = now_millis();
        for _ in 0..CLAIM_TRIES {
            let values = (kind.name(), value, owner, now);
            if self.cql.lwt_retried(&self.st.claim_insert, values, "claim a unique value").await? {
                return Ok(true);
            }
            let held: Option<(Option<String>, Option<i64>)> =
                self.cql.read_one(&self.st.claim_read, (kind.name(), value), "read a claim").await?;
            let Some((holder, claimed_at)) = held else {
                continue; // released meanwhile: try again
            };
            let holder = holder.unwrap_or_default();
            if holder == owner {
                return Ok(true); // ours: an earlier try applied
            }
            let free = match self.owner(kind, &holder).await? {
                Owner::Live => false,
                Owner::Deleted => true,
                Owner::Missing => now.saturating_sub(claimed_at.unwrap_or(i64::MIN)) > STALE_CLAIM_MS,
            };
            if !free {
                return Ok(false);
            }
            let values = (owner, now, kind.name(), value, holder.as_str());
            if self.cql.lwt_retried(&self.st.claim_take_over, values, "take over a claim").await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Releases `owner`'s claim of `value` (another owner's is left alone).
    async fn release(&self, kind: Claim, value: &str, owner: &str) -> Result<()> {
        self.cql
            .lwt_retried(&self.st.claim_release, (kind.name(), value, owner), "release a claim")
            .await?;
        Ok(())
    }

    /// Claims an institution's licence, then its email (SQLite's order), or neither.
    async fn claim_institution(&self, i: &Institution) -> Result<std::result::Result<(), Taken>> {
        if !self.claim(Claim::InstitutionLicence, &i.licencia, &i.id).await? {
            return Ok(Err(Taken::Licencia));
        }
        if !self.claim(Claim::InstitutionEmail, &i.email, &i.id).await? {
            self.release(Claim::InstitutionLicence, &i.licencia, &i.id).await?;
            return Ok(Err(Taken::Email));
        }
        Ok(Ok(()))
    }

    /// Releases an institution's claims.
    async fn release_institution(&self, i: &Institution) -> Result<()> {
        self.release(Claim::InstitutionLicence, &i.licencia, &i.id).await?;
        self.release(Claim::InstitutionEmail, &i.email, &i.id).await
    }

    /// Writes the listing rows of an entity created at `at`.
    async fn list(&self, listings: &[String], at: i64, id: &str) -> Result<()> {
        for listing in listings {
            self.cql
                .write(&self.st.listing_write, (listing.as_str(), at, id), "write a registry listing")
                .await?;
        }
        Ok(())
    }

    /// Up to `limit` live entities of `listing` after `after`, oldest first, that `keep` keeps.
    async fn listed<T, F, Fut>(
        &self,
        listing: &str,
        after: Option<(i64, String)>,
        limit: usize,
        read: F,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>>
    where
        T: Listed,
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let mut cursor = after.unwrap_or((i64::MIN, String::new()));
        let mut found = Vec::new();
        while found.len() < limit {
            let n = (limit - found.len()).clamp(LISTING_ROWS.0, LISTING_ROWS.1);
            let values = (listing, cursor.0, cursor.1.as_str(), i32::try_from(n).unwrap_or(i32::MAX));
            let rows: Vec<(i64, String)> = self
                .cql
                .read_rows(&self.st.listing_after, values, "read a registry listing")
                .await?;
            let Some(last) = rows.last().cloned() else {
                break;
            };
            // The futures are collected before they are streamed (see ScyllaCatalog::known).
            let reads: Vec<_> = rows.iter().map(|(_, id)| read(id.clone())).collect();
            let items: Vec<Option<T>> = futures::stream::iter(reads).buffered(READS_IN_FLIGHT).try_collect().await?;
            for ((at, _), item) in rows.iter().zip(items) {
                if let Some(item) = item.filter(|i| i.created_at() == *at && i.live() && keep(i)) {
                    found.push(item);
                }
            }
            if rows.len() < n {
                break;
            }
            cursor = last;
        }
        found.truncate(limit);
        Ok(found)
    }
}

#[async_trait]
impl RegistryStore for ScyllaRegistry {
    async fn create_institution(&self, i: &Institution) -> alpes_domain::Result<Result<(), Taken>> {
        self.list(&["institutions".to_owned()], i.created_at, &i.id).await?;
        if let Err(taken) = self.claim_institution(i).await? {
            return Ok(Err(taken));
        }
        let values = (
            i.id.as_str(),
            i.nombre.as_str(),
            i.tipo.as_str(),
            i.licencia.as_str(),
            i.email.as_str(),
            i.region.as_deref(),
            i.verificacion.as_str(),
            i.politica.as_str(),
            i.created_at,
        );
        self.cql
            .lwt_retried(&self.st.institution_insert, values, "create an institution")
            .await?;
        Ok(Ok(()))
    }

    async fn institution(&self, id: &str) -> alpes_domain::Result<Option<Institution>> {
        Ok(self.read_institution(id).await?)
    }

    async fn institutions(&self, after: Option<(i64, String)>, limit: usize) -> alpes_domain::Result<Vec<Institution>> {
        Ok(self
            .listed(
                "institutions",
                after,
                limit,
                |id| async move { self.read_institution(&id).await },
                |_| true,
            )
            .await?)
    }

    async fn delete_institution(&self, id: &str, at: i64) -> alpes_domain::Result<bool> {
        let Some(i) = self.read_institution(id).await? else {
            return Ok(false);
        };
        if !self
            .cql
            .lwt_retried(&self.st.institution_delete, (at, id), "delete an institution")
            .await?
        {
            return Ok(false);
        }
        self.release_institution(&i).await?;
        Ok(true)
    }

    async fn update_institution(&self, i: &Institution) -> alpes_domain::Result<()> {
        let Some(before) = self.read_institution(&i.id).await? else {
            return Ok(());
        };
        let undeleted = before.deleted_at.is_some() && i.deleted_at.is_none();
        if undeleted && self.claim_institution(&before).await?.is_err() {
            return Err(alpes_domain::Error::Store(
                "scylla: a live institution took this one's licence or email meanwhile".into(),
            ));
        }
        let values = (i.verificacion.as_str(), i.politica.as_str(), i.deleted_at, i.id.as_str());
        self.cql
            .lwt_retried(&self.st.institution_update, values, "update an institution")
            .await?;
        if before.deleted_at.is_none() && i.deleted_at.is_some() {
            self.release_institution(&before).await?;
        }
        Ok(())
    }

    async fn set_member(&self, user_id: &str, institution_id: &str) -> alpes_domain::Result<()> {
        Ok(self
            .cql
            .write(&self.st.member_write, (user_id, institution_id), "write a membership")
            .await?)
    }

    async fn member_of(&self, user_id: &str) -> alpes_domain::Result<Option<String>> {
        let row: Option<(Option<String>,)> = self.cql.read_one(&self.st.member_read, (user_id,), "read a membership").await?;
        Ok(row.and_then(|(i,)| i))
    }

    async fn create_doctor(&self, d: &Doctor) -> alpes_domain::Result<Result<(), Taken>> {
        let listings = ["doctors".to_owned(), format!("doctors/{}", d.institution_id)];
        self.list(&listings, d.created_at, &d.user_id).await?;
        if !self.claim(Claim::DoctorLicence, &d.licencia, &d.user_id).await? {
            return Ok(Err(Taken::Licencia));
        }
        let values = (
            d.user_id.as_str(),
            d.institution_id.as_str(),
            d.licencia.as_str(),
            d.especialidad.as_str(),
            d.status.as_str(),
            d.created_at,
        );
        self.cql.lwt_retried(&self.st.doctor_insert, values, "create a doctor").await?;
        Ok(Ok(()))
    }

    async fn doctor(&self, user_id: &str) -> alpes_domain::Result<Option<Doctor>> {
        Ok(self.read_doctor(user_id).await?)
    }

    async fn doctors(&self, institution_id: Option<&str>, after: Option<(i64, String)>, limit: usize) -> alpes_domain::Result<Vec<Doctor>> {
        let listing = institution_id.map_or_else(|| "doctors".to_owned(), |i| format!("doctors/{i}"));
        let of = |d: &Doctor| institution_id.is_none_or(|i| d.institution_id == i);
        Ok(self
            .listed(&listing, after, limit, |id| async move { self.read_doctor(&id).await }, of)
            .await?)
    }

    async fn set_doctor_status(&self, user_id: &str, status: DoctorStatus) -> alpes_domain::Result<bool> {
        Ok(self
            .cql
            .lwt_retried(&self.st.doctor_status, (status.as_str(), user_id), "set a doctor's status")
            .await?)
    }

    async fn delete_doctor(&self, user_id: &str, at: i64) -> alpes_domain::Result<bool> {
        let Some(d) = self.read_doctor(user_id).await? else {
            return Ok(false);
        };
        if !self
            .cql
            .lwt_retried(&self.st.doctor_delete, (at, user_id), "delete a doctor")
            .await?
        {
            return Ok(false);
        }
        self.release(Claim::DoctorLicence, &d.licencia, user_id).await?;
        Ok(true)
    }

    async fn create_patient(&self, p: &Patient) -> alpes_domain::Result<Result<(), Taken>> {
        for (digest, kind) in [(&p.confirm_digest, "confirm"), (&p.revoke_digest, "revoke")] {
            self.cql
                .write(&self.st.code_write, (digest.as_str(), p.id.as_str(), kind), "write a code digest")
                .await?;
        }
        let listings = [
            "patients".to_owned(),
            format!("patients/i/{}", p.institution_id),
            format!("patients/d/{}", p.doctor_id),
        ];
        self.list(&listings, p.created_at, &p.id).await?;
        if !self.claim(Claim::Patient, &patient_claim(p), &p.id).await? {
            return Ok(Err(Taken::Paciente));
        }
        let values = (
            p.id.as_str(),
            p.institution_id.as_str(),
            p.doctor_id.as_str(),
            p.subject.as_str(),
            p.contact.as_slice(),
            p.idioma.as_str(),
            p.state.as_str(),
            p.confirm_digest.as_str(),
            p.revoke_digest.as_str(),
            p.created_by.as_str(),
            p.created_at,
            p.updated_at,
        );
        self.cql.lwt_retried(&self.st.patient_insert, values, "create a patient").await?;
        Ok(Ok(()))
    }

    async fn patient(&self, id: &str) -> alpes_domain::Result<Option<Patient>> {
        Ok(self.read_patient(id).await?)
    }

    async fn patients(&self, filter: &PatientFilter, after: Option<(i64, String)>, limit: usize) -> alpes_domain::Result<Vec<Patient>> {
        let listing = match (&filter.doctor_id, &filter.institution_id) {
            (Some(d), _) => format!("patients/d/{d}"),
            (None, Some(i)) => format!("patients/i/{i}"),
            (None, None) => "patients".to_owned(),
        };
        let keep = |p: &Patient| {
            filter.institution_id.as_ref().is_none_or(|i| &p.institution_id == i)
                && filter.doctor_id.as_ref().is_none_or(|d| &p.doctor_id == d)
                && filter.state.is_none_or(|s| p.state == s)
        };
        Ok(self
            .listed(&listing, after, limit, |id| async move { self.read_patient(&id).await }, keep)
            .await?)
    }

    async fn patient_by_code(&self, digest: &str) -> alpes_domain::Result<Option<(Patient, CodeKind)>> {
        let row: Option<(Option<String>, Option<String>)> = self.cql.read_one(&self.st.code_read, (digest,), "read a code digest").await?;
        let Some((Some(patient_id), _)) = row else {
            return Ok(None);
        };
        let Some(p) = self.read_patient(&patient_id).await?.filter(|p| p.deleted_at.is_none()) else {
            return Ok(None);
        };
        let kind = if p.confirm_digest == digest {
            CodeKind::Confirm
        } else if p.revoke_digest == digest {
            CodeKind::Revoke
        } else {
            return Ok(None);
        };
        Ok(Some((p, kind)))
    }

    async fn move_patient(&self, id: &str, from: ConsentState, to: ConsentState, at: i64) -> alpes_domain::Result<bool> {
        Ok(self
            .cql
            .lwt_retried(&self.st.patient_move, (to.as_str(), at, id, from.as_str()), "move a consent")
            .await?)
    }

    async fn delete_patient(&self, id: &str, at: i64) -> alpes_domain::Result<bool> {
        let Some(p) = self.read_patient(id).await? else {
            return Ok(false);
        };
        if !self
            .cql
            .lwt_retried(&self.st.patient_delete, (at, at, id), "delete a patient")
            .await?
        {
            return Ok(false);
        }
        self.release(Claim::Patient, &patient_claim(&p), id).await?;
        Ok(true)
    }

    async fn undelete_patient(&self, id: &str) -> alpes_domain::Result<bool> {
        let Some(p) = self.read_patient(id).await?.filter(|p| p.deleted_at.is_some()) else {
            return Ok(false);
        };
        let claim = patient_claim(&p);
        if !self.claim(Claim::Patient, &claim, id).await? {
            return Ok(false);
        }
        if self.cql.lwt_retried(&self.st.patient_undelete, (id,), "undelete a patient").await? {
            return Ok(true);
        }
        self.release(Claim::Patient, &claim, id).await?;
        Ok(false)
    }
}
