//! One consumed record from bytes to output event: decode the `ImagenRegistrada` (or reject the
//! record as poison), map its profile, fetch the raw blob, run the engine on the pool, store the
//! anonymized blob and build the event. Only sizes, ids and reason codes are ever logged: the raw
//! blob holds PHI.

use alpes_platform::blobs::ANONYMIZED;
use alpes_schemas::{AnalisisCompletado, ImagenRegistrada};
use bytes::Bytes;

use crate::context::Context;
use crate::events::{self, Output, Processed, StoredOutput};
use crate::profile::engine_config;
use crate::record::Record;
use crate::rejection::Rejection;
use crate::Result;
use alpes_platform::retry::retry;

/// The codec reason of a schema registry that could not be reached: transient, not poison.
const REGISTRY_UNAVAILABLE: &str = "registry";

/// Processes one record into its one output event (and the safety net's analysis). An `Err` means
/// a dependency stayed down until the worker stopped: the record is not finished and its offset
/// must not be stored.
pub async fn process(ctx: &Context, record: &Record) -> Result<Processed> {
    let decoded = retry(&ctx.stop, "decode", || async {
        match ctx.codec.decode::<ImagenRegistrada>(&record.payload).await {
            Err(e) if e.reason() == REGISTRY_UNAVAILABLE => Err(e),
            other => Ok(other),
        }
    })
    .await?;
    let input = match decoded {
        Ok(input) => input,
        Err(e) => {
            let rejection = Rejection::poison(&e);
            tracing::warn!(
                partition = record.partition,
                offset = record.offset,
                bytes = record.payload.len(),
                reason = rejection.reason,
                "poison record"
            );
            ctx.metrics.rejections.with_label_values(&[rejection.reason]).inc();
            return Ok(Output::Rejected(Box::new(events::poison(record, &rejection))).into());
        }
    };
    let (result, analysis) = anonymize(ctx, &input).await?;
    if let Some(a) = &analysis {
        ctx.metrics.analyses.with_label_values(&[a.etiqueta.as_str()]).inc();
    }
    let output = match result {
        Ok(event) => event,
        Err(rejection) => {
            tracing::info!(image_id = %input.image_id, reason = rejection.reason, "image rejected");
            ctx.metrics.rejections.with_label_values(&[rejection.reason]).inc();
            Output::Rejected(Box::new(events::rejected(&input, record, &rejection)))
        }
    };
    Ok(Processed {
        output,
        analysis: analysis.map(Box::new),
    })
}

/// An image's result, and the safety net's analysis when it ran.
type Anonymized = (std::result::Result<Output, Rejection>, Option<AnalisisCompletado>);

async fn anonymize(ctx: &Context, input: &ImagenRegistrada) -> Result<Anonymized> {
    let namespace = ctx.pseudonyms.namespace(&input.provider_id, input.institucion_id.as_deref());
    let cfg = match engine_config(&ctx.base, namespace.as_deref(), &input.profile) {
        Ok(cfg) => cfg,
        Err(rejection) => return Ok((Err(rejection), None)),
    };
    let Some(raw) = fetch(ctx, &input.blob_key).await? else {
        return Ok((Err(Rejection::blob_missing()), None));
    };
    let mode = cfg.ocr;
    let in_bytes = raw.len();
    let (result, took) = ctx.pool.run(raw, cfg).await;
    let mut engined = match result {
        Ok(engined) => engined,
        Err(rejection) => {
            ctx.metrics
                .engine_seconds
                .with_label_values(&["rejected"])
                .observe(took.as_secs_f64());
            return Ok((Err(rejection), None));
        }
    };
    ctx.metrics
        .engine_seconds
        .with_label_values(&["anonymized"])
        .observe(took.as_secs_f64());
    let analysis = events::analysis(input, &engined, mode);
    if analysis.as_ref().is_some_and(|a| !a.liberada) {
        // Text that reads as PHI is still in the pixels: the output is not stored or released.
        return Ok((Err(Rejection::residual_text()), analysis));
    }
    let size = engined.bytes.len() as u64;
    // The event needs only the report and the facts: the bytes move into the store.
    let bytes = Bytes::from(std::mem::take(&mut engined.bytes));
    let sha256 = std::mem::take(&mut engined.sha256);
    let key = retry(&ctx.stop, "put anonymized blob", || {
        ctx.blobs.put_hashed(ANONYMIZED, bytes.clone(), &sha256)
    })
    .await?;
    ctx.metrics.bytes_out.inc_by(size);
    tracing::debug!(image_id = %input.image_id, bytes_in = in_bytes, bytes_out = size, micros = engined.report.duration_us, "image anonymized");
    let stored = StoredOutput { key, sha256, size };
    Ok((
        Ok(Output::Anonymized(Box::new(events::anonymized(input, &stored, &engined)))),
        analysis,
    ))
}

/// The raw blob at `key`, or `None` when the store does not have it. Other store failures are
/// retried. At most `fetch_concurrency` fetches run at once across the worker.
async fn fetch(ctx: &Context, key: &str) -> Result<Option<Bytes>> {
    // The semaphore is never closed, so acquiring only fails if it were; treat that as no limit.
    let _permit = ctx.fetches.acquire().await.ok();
    let got = retry(&ctx.stop, "get raw blob", || async {
        match ctx.blobs.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            // The platform error does not say "not found" apart from other failures: ask.
            Err(e) => match ctx.blobs.exists(key).await {
                Ok(false) => Ok(None),
                Ok(true) | Err(_) => Err(e),
            },
        }
    })
    .await?;
    Ok(got)
}
