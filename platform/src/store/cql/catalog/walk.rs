//! Reading the time-ordered listings page by page, bucket after bucket, and
//! choosing the studies a QIDO query reads.

use super::*;
use scylla::serialize::row::SerializeRow;

/// A page-by-page read of one listing, bucket after bucket, in one direction, strictly past a
/// keyset bound.
#[derive(Debug)]
pub(super) struct Walk {
    pub(super) listing: &'static str,
    pub(super) owner: String,
    pub(super) newest_first: bool,
    /// The last key returned (or the cursor): the next row comes strictly after it.
    pub(super) after: (i64, String),
    /// Newest first: nothing older than this time (ms, inclusive).
    pub(super) floor: Option<i64>,
    /// Buckets known to hold rows, to read in order; the front one is being read.
    pub(super) buckets: VecDeque<i64>,
    /// Where the next read of `catalog_buckets` starts (inclusive); none once it is exhausted.
    pub(super) next_bucket: Option<i64>,
}

impl Walk {
    /// Newest first, from just before `before`, down to `floor`.
    pub(super) fn newest_first(listing: &'static str, owner: String, before: (i64, String), floor: Option<i64>) -> Walk {
        Walk {
            listing,
            owner,
            newest_first: true,
            next_bucket: Some(bucket_of(before.0)),
            after: before,
            floor,
            buckets: VecDeque::new(),
        }
    }

    /// Oldest first, from just after `after`.
    pub(super) fn oldest_first(listing: &'static str, owner: String, after: (i64, String)) -> Walk {
        Walk {
            listing,
            owner,
            newest_first: false,
            next_bucket: Some(bucket_of(after.0)),
            after,
            floor: None,
            buckets: VecDeque::new(),
        }
    }

    /// Ends the walk.
    pub(super) fn finish(&mut self) {
        self.buckets.clear();
        self.next_bucket = None;
    }

    /// The bucket being read, reading more of `catalog_buckets` when needed.
    pub(super) async fn bucket(&mut self, cat: &ScyllaCatalog) -> Result<Option<i64>> {
        if self.buckets.is_empty() {
            let Some(from) = self.next_bucket else { return Ok(None) };
            let stmt = if self.newest_first {
                &cat.st.buckets_newest
            } else {
                &cat.st.buckets_oldest
            };
            let found: Vec<(i64,)> = cat
                .cql
                .read_rows(stmt, (self.listing, self.owner.as_str(), from, BUCKETS_PER_READ), "read buckets")
                .await?;
            self.next_bucket = next_bucket_read(&found, self.newest_first);
            let floor = self.floor.map(bucket_of);
            for (bucket,) in found {
                if floor.is_some_and(|f| bucket < f) {
                    self.next_bucket = None;
                    break;
                }
                self.buckets.push_back(bucket);
            }
        }
        Ok(self.buckets.front().copied())
    }

    /// Up to `n` rows past the last one returned, from one bucket; empty once the walk is over.
    pub(super) async fn next<T>(&mut self, cat: &ScyllaCatalog, page: &PreparedStatement, n: usize) -> Result<Vec<T>>
    where
        T: Keyed + for<'f, 'm> RowDeserialize<'f, 'm>,
    {
        let limit = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
        loop {
            let Some(bucket) = self.bucket(cat).await? else {
                return Ok(Vec::new());
            };
            let values = (
                self.listing,
                self.owner.as_str(),
                bucket,
                self.after.0,
                self.after.1.as_str(),
                limit,
            );
            let rows: Vec<T> = cat.cql.read_rows(page, values, "read a listing").await?;
            if rows.len() < n.max(1) {
                self.buckets.pop_front();
            }
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let (at, id) = row.key();
                if self.newest_first && self.floor.is_some_and(|f| at < f) {
                    self.finish();
                    return Ok(out);
                }
                self.after = (at, id.to_owned());
                out.push(row);
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// Where to continue reading `catalog_buckets` after a read that returned `found`: none when it
/// returned fewer than it asked for (nothing is left).
pub(super) fn next_bucket_read(found: &[(i64,)], newest_first: bool) -> Option<i64> {
    if found.len() < usize::try_from(BUCKETS_PER_READ).unwrap_or(usize::MAX) {
        return None;
    }
    let (last,) = *found.last()?;
    if newest_first {
        last.checked_sub(1)
    } else {
        last.checked_add(1)
    }
}

/// A row of a partition clustered by study (several rows a study, side by side).
pub(super) trait StudyRow {
    /// The study it names.
    fn study_uid(&self) -> &str;
    /// Whether some instance it stands for could match `q` (the instance rows decide).
    fn may_match(&self, q: &DicomQuery) -> bool;
}

/// A `catalog_study_index` row.
#[derive(Debug, Clone, DeserializeRow)]
pub(super) struct IndexRow {
    pub(super) study_uid: String,
    pub(super) patient_id: String,
    pub(super) study_date: String,
    pub(super) modality: String,
}

impl StudyRow for IndexRow {
    fn study_uid(&self) -> &str {
        &self.study_uid
    }

    /// Whether some instance with this combination could match `q`.
    fn may_match(&self, q: &DicomQuery) -> bool {
        let present = |s: &str| (!s.is_empty()).then_some(s.to_owned());
        patient_and_date_match(q, present(&self.patient_id).as_deref(), present(&self.study_date).as_deref())
            && q.modality
                .as_ref()
                .is_none_or(|m| present(&self.modality) == Some(m.to_uppercase()))
    }
}

/// One partition being merged, with its next row.
pub(super) struct Shard<R> {
    pub(super) head: Option<R>,
    pub(super) rows: TypedRowStream<R>,
    /// What reading it is, for errors.
    pub(super) step: &'static str,
}

impl<R> Shard<R>
where
    R: StudyRow + for<'f, 'm> RowDeserialize<'f, 'm>,
{
    /// The partition `stmt` reads with `values`, its first row read.
    pub(super) async fn open(cql: &Cql, stmt: &PreparedStatement, values: impl SerializeRow, step: &'static str) -> Result<Shard<R>> {
        let mut rows = cql.scan::<R>(stmt, values, step).await?;
        let head = rows.try_next().await.map_err(db(step))?;
        Ok(Shard { head, rows, step })
    }
}

/// The next study of `shards` merged in StudyInstanceUID order, each once, that may match `q`.
async fn next_of<R>(shards: &mut [Shard<R>], q: &DicomQuery) -> Result<Option<String>>
where
    R: StudyRow + for<'f, 'm> RowDeserialize<'f, 'm>,
{
    loop {
        let lowest = shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.head.as_ref().map(|h| (i, h.study_uid())))
            .min_by(|a, b| a.1.cmp(b.1))
            .map(|(i, uid)| (i, uid.to_owned()));
        let Some((i, uid)) = lowest else { return Ok(None) };
        // A study lives in one partition, its rows side by side.
        let shard = &mut shards[i];
        let mut may_match = false;
        while shard.head.as_ref().is_some_and(|h| h.study_uid() == uid) {
            if let Some(h) = shard.head.take() {
                may_match |= h.may_match(q);
            }
            shard.head = shard.rows.try_next().await.map_err(db(shard.step))?;
        }
        if may_match {
            return Ok(Some(uid));
        }
    }
}

/// The studies a QIDO search reads, in StudyInstanceUID order.
pub(super) enum Candidates {
    /// The study the query names.
    One(Option<String>),
    /// The studies of the PatientID the query names exactly.
    Patient(TypedRowStream<(String,)>),
    /// Every study, merged from the study index partitions and prefiltered.
    Shards(Vec<Shard<IndexRow>>),
    /// The studies of the provider the query names, merged from its partitions.
    Provider(Vec<Shard<ProviderRow>>),
}

impl Candidates {
    pub(super) async fn next(&mut self, q: &DicomQuery) -> Result<Option<String>> {
        match self {
            Candidates::One(uid) => Ok(uid.take()),
            Candidates::Patient(rows) => Ok(rows.try_next().await.map_err(db("read the patient index"))?.map(|(uid,)| uid)),
            Candidates::Shards(shards) => next_of(shards, q).await,
            Candidates::Provider(shards) => next_of(shards, q).await,
        }
    }
}
