//! Metering: every retrieval of an anonymized image (a REST download or a
//! WADO-RS instance) is one `EventoUsoDatos` on `alpes.usage`, produced and
//! acknowledged before the bytes go out. It carries the consumer (billed),
//! the provider (credited), the price of the image's modality and the charge
//! key of the repeat window, so billing charges a repeat once, and the
//! request's id.

use crate::QueryState;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::Caller;
use alpes_platform::http::ApiError;
use alpes_platform::store::CatalogImage;
use alpes_schemas::{new_event_id, now_millis, EventoUsoDatos};

/// Produces the usage event of `caller` retrieving `bytes` bytes of `image`;
/// returns the event. A broker that does not acknowledge it fails the
/// retrieval with 503 (no unbilled download leaves).
pub async fn meter(
    state: &QueryState,
    ctx: &RequestContext,
    caller: &Caller,
    image: &CatalogImage,
    bytes: u64,
) -> Result<EventoUsoDatos, ApiError> {
    ctx.target(&image.image_id);
    let now = now_millis();
    let event = EventoUsoDatos {
        event_id: new_event_id(),
        occurred_at: now,
        actor: caller.user_id.clone(),
        consumer_id: caller.user_id.clone(),
        provider_id: image.provider_id.clone(),
        image_id: image.image_id.clone(),
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        amount_minor: state.pricing.price(image.modality.as_deref()),
        currency: state.pricing.currency().to_owned(),
        dedupe_key: Some(state.pricing.charge_key(&caller.user_id, &image.image_id, now)),
        http_request_id: ctx.request_id(),
    };
    // Keyed by the charge key: a repeat lands in the partition of its first charge.
    let key = event.dedupe_key.clone().unwrap_or_default();
    state.producer.send(&key, &event).await?;
    Ok(event)
}
