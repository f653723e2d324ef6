//! `GET /eventos/imagenes`: the caller's image changes as they happen, as Server-Sent Events
//! (`text/event-stream`), for the live views: a provider's own images, every image for an admin.
//!
//! - `event: imagen`, data a [`CambioImagen`] (JSON): registered, anonymized or rejected.
//! - `event: desfase`, data `{"perdidos": n}`: the stream fell behind and lost `n` changes;
//!   reload the list (`GET /imagenes`) and go on.
//! - A comment line every [`KEEP_ALIVE`], so neither the server's idle timeout nor a proxy ends a
//!   quiet stream. The stream ends when the server shuts down; reconnect then.
//!
//! Changes are not stored: a stream sees those from its start ([`crate::live`]). The bearer
//! token is checked when the stream opens (a browser sends it with `fetch`, since
//! `EventSource` cannot send a header).

use crate::live::{CambioImagen, Live};
use crate::openapi::IMAGES;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{content, schema, Op};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How often a quiet stream gets a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/eventos/imagenes",
        "streamImageChanges",
        IMAGES,
        "Image changes as they happen (Server-Sent Events)",
    )
    .describe(
        "A `text/event-stream` of the caller's image changes from now on: a provider's own images, every image \
             for an admin. `event: imagen` carries a `CambioImagen` (id, provider, new state, a rejection's reason \
             code); `event: desfase` with `{\"perdidos\": n}` says the stream lost `n` changes (reload the list). \
             A comment every 15 s keeps a quiet stream open; the stream ends when the server shuts down. Nothing \
             is replayed: read `GET /imagenes` first, then apply the changes.",
    )
    .auth(&["proveedor", "admin"])
    .ok(
        200,
        "The stream. Each event's `data` is a `CambioImagen` (or, for `desfase`, `{\"perdidos\": n}`).",
        Some(content(
            "text/event-stream",
            json!({ "type": "string", "contentSchema": schema("CambioImagen") }),
        )),
        &[],
    )
}

/// Whether `caller` sees `change`.
fn sees(caller: &Caller, change: &CambioImagen) -> bool {
    caller.is_admin_or(&change.proveedor_id)
}

/// The caller's changes from `live`, until it closes.
fn changes(live: &Live, caller: Caller) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let rx = live.subscribe();
    let stream = futures::stream::unfold(rx, move |mut rx| {
        let caller = caller.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(change) if sees(&caller, &change) => {
                        let event = Event::default().event("imagen").json_data(&*change).ok()?;
                        return Some((Ok(event), rx));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        let event = Event::default().event("desfase").data(json!({ "perdidos": n }).to_string());
                        return Some((Ok(event), rx));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    stream.take_until(live.closed())
}

/// The handler.
#[tracing::instrument(name = "GET /eventos/imagenes", skip_all, fields(user = %caller.user_id))]
pub async fn handler(State(state): State<Shared>, Authenticated(caller): Authenticated) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    let stream = changes(&state.live, caller);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_platform::store::Estado;

    fn caller(user: &str, role: Role) -> Caller {
        Caller {
            user_id: user.into(),
            role,
        }
    }

    fn change(provider: &str) -> CambioImagen {
        CambioImagen {
            id: format!("img-of-{provider}"),
            proveedor_id: provider.into(),
            estado: Estado::Anonimizada,
            modalidad: Some("CT".into()),
            region_anatomica: None,
            motivo_rechazo: None,
            ocurrido_at: alpes_schemas::now_millis(),
        }
    }

    #[test]
    fn a_provider_sees_its_own_images_and_an_admin_every_image() {
        assert!(sees(&caller("h1", Role::Proveedor), &change("h1")));
        assert!(!sees(&caller("h1", Role::Proveedor), &change("h2")));
        assert!(sees(&caller("ops", Role::Admin), &change("h2")));
    }

    #[tokio::test]
    async fn a_stream_gets_its_changes_is_told_what_it_lost_and_ends_on_close() {
        use alpes_platform::kafka::projector::Projection;
        let live = Live::default();
        let mut stream = Box::pin(changes(&live, caller("h1", Role::Proveedor)));
        let projector = crate::live::Projector::new(alpes_schemas::Codec::single_object(), live.clone());
        let stop = alpes_platform::shutdown::Shutdown::new();
        let next = |e: Option<Result<Event, Infallible>>| format!("{:?}", e.expect("an event").expect("infallible"));
        let mut stale = change("h1");
        stale.id = "replayed".into();
        stale.ocurrido_at -= crate::live::FRESH_MS + 1000;
        assert!(projector.apply(vec![stale, change("h2"), change("h1")], &stop).await);
        let first = next(stream.next().await);
        assert!(
            first.contains("imagen") && first.contains("img-of-h1") && !first.contains("h2"),
            "{first}"
        );
        assert!(!first.contains("replayed"), "history is not news: {first}");
        // More than the channel holds: the stream lags, and says by how much.
        let flood: Vec<CambioImagen> = (0..crate::live::CAPACITY + 10).map(|_| change("h1")).collect();
        assert!(projector.apply(flood, &stop).await);
        let lost = next(stream.next().await);
        assert!(
            lost.contains("desfase") && lost.contains("perdidos") && lost.contains("10"),
            "{lost}"
        );
        live.close();
        assert!(stream.next().await.is_none(), "the stream ends on close");
        drop(stream);
        assert_eq!(live.subscribers(), 0);
    }
}
