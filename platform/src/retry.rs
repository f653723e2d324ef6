//! The one retry policy: a step that failed for a reason outside its input
//! (the store, the blob store or the broker is briefly away) is tried again
//! with exponential backoff (50 ms, doubling, at most 5 s) until it works.
//! Once the process is stopping, a step gets a few quick last tries and then
//! gives up, so a stop never hangs on a dead dependency. Every consume loop
//! (the projections, billing, the anonymizer worker) retries this way.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::shutdown::Shutdown;

const FIRST_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(5);
const STOPPING_DELAY: Duration = Duration::from_millis(200);
/// Tries left to a failing step once the worker is stopping.
const TRIES_WHEN_STOPPING: u32 = 3;

/// Runs `op` until it succeeds, or until it has failed [`TRIES_WHEN_STOPPING`] times since
/// `stop` fired; then returns the last error. `what` names the step in logs (a fixed text).
pub async fn retry<T, E, F, Fut>(stop: &Shutdown, what: &'static str, mut op: F) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = FIRST_DELAY;
    let mut attempt = 0u32;
    let mut stopping_failures = 0u32;
    loop {
        attempt += 1;
        let err = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if stop.is_triggered() {
            stopping_failures += 1;
            if stopping_failures >= TRIES_WHEN_STOPPING {
                tracing::warn!(step = what, attempt, error = %err, "giving up: the process is stopping");
                return Err(err);
            }
        }
        tracing::warn!(step = what, attempt, error = %err, "retrying");
        if stop.is_triggered() {
            tokio::time::sleep(STOPPING_DELAY).await;
        } else {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.wait() => {}
            }
        }
        delay = (delay * 2).min(MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_step_is_retried_until_it_works() {
        let tries = AtomicU32::new(0);
        let out = retry(&Shutdown::new(), "test", || async {
            if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                Err("not yet")
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out, Ok(7));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_step_gives_up_a_few_tries_after_the_stop() {
        let stop = Shutdown::new();
        stop.trigger();
        let tries = AtomicU32::new(0);
        let out: Result<(), &str> = retry(&stop, "test", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err("down")
        })
        .await;
        assert_eq!(out, Err("down"));
        assert_eq!(tries.load(Ordering::SeqCst), TRIES_WHEN_STOPPING);
    }
}
