//! The one retry policy: a step that failed for a reason outside its input
//! (the store, the blob store or the broker is briefly away) is tried again
//! with exponential backoff (50 ms, doubling, at most 5 s) until it works.
//! Once the process is stopping, a step gets a few quick last tries and then
//! gives up, so a stop never hangs on a dead dependency. Every consume loop
//! (the projections, billing, the anonymizer worker) retries this way.
//!
//! Calls to servers outside the platform (the importer's sources) are tried a
//! bounded number of times instead ([`retry_bounded`]): exponential backoff
//! with jitter ([`Backoff`]), at least as long as the server's `Retry-After`
//! ([`retry_after`]), and never again for a failure the server says is final
//! ([`Attempt::Final`], a 4xx).

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

/// The longest `Retry-After` honoured; a server asking for more is tried again after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Exponential backoff with jitter, for a bounded number of attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub first: Duration,
    /// The largest ceiling.
    pub max: Duration,
    /// How many attempts in all (at least 1).
    pub attempts: u32,
}

impl Backoff {
    /// The wait after `failures` failed attempts (1 for the first): a random time between half
    /// and all of `first · 2^(failures-1)` (capped at `max`), the "equal jitter" that keeps
    /// clients that failed together from retrying together; at least `retry_after` (capped at
    /// [`MAX_RETRY_AFTER`]) when the server said how long to wait.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let ceiling = self.first.saturating_mul(1u32 << doublings).min(self.max);
        let half = ceiling / 2;
        let jittered = half + half.mul_f64(unit_random());
        retry_after.map_or(jittered, |r| jittered.max(r.min(MAX_RETRY_AFTER)))
    }
}

/// A random number in `[0, 1)` (the operating system's randomness; 0.5 without it).
fn unit_random() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// A `Retry-After` value: delay-seconds, or an HTTP date (then the time from `now` to it).
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How one attempt of [`retry_bounded`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<E> {
    /// Worth another try (a timeout, a refused connection, a 5xx, a 429), after at least the
    /// server's `Retry-After` if it gave one.
    Again(E, Option<Duration>),
    /// Final: trying again cannot help (a 4xx, bytes that are not an image).
    Final(E),
}

/// Why [`retry_bounded`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp<E> {
    /// The last attempt's error.
    pub error: E,
    /// How many attempts were made.
    pub attempts: u32,
    /// Whether it stopped because `stop` fired rather than for the error.
    pub stopped: bool,
}

/// Runs `op` until it succeeds, fails finally, has failed `backoff.attempts` times, or `stop`
/// fires (checked before each attempt and during each wait). `op` gets the attempt number
/// (1 for the first); `on_retry` is told each wait before it is waited, with the error.
pub async fn retry_bounded<T, E, F, Fut>(
    backoff: Backoff,
    stop: &Shutdown,
    mut on_retry: impl FnMut(u32, &E, Duration),
    mut op: F,
) -> Result<T, GaveUp<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let (error, retry_after) = match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(Attempt::Final(error)) => {
                return Err(GaveUp {
                    error,
                    attempts: attempt,
                    stopped: false,
                })
            }
            Err(Attempt::Again(error, retry_after)) => (error, retry_after),
        };
        if attempt >= backoff.attempts.max(1) || stop.is_triggered() {
            let stopped = stop.is_triggered();
            return Err(GaveUp {
                error,
                attempts: attempt,
                stopped,
            });
        }
        let wait = backoff.delay(attempt, retry_after);
        on_retry(attempt, &error, wait);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.wait() => {
                return Err(GaveUp { error, attempts: attempt, stopped: true });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_with_jitter_and_honours_retry_after() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(1),
            attempts: 5,
        };
        for _ in 0..50 {
            let d1 = b.delay(1, None);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100), "{d1:?}");
            let d3 = b.delay(3, None);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400), "{d3:?}");
            let d9 = b.delay(9, None);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1), "capped: {d9:?}");
        }
        let spread: std::collections::HashSet<Duration> = (0..20).map(|_| b.delay(4, None)).collect();
        assert!(spread.len() > 1, "jittered");
        assert_eq!(b.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(b.delay(1, Some(Duration::from_secs(9_999))), MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO), "past");
        assert_eq!(retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn a_bounded_retry_stops_at_its_attempts_and_at_a_final_failure() {
        let b = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(2),
            attempts: 3,
        };
        let mut waits = 0;
        let out: Result<(), GaveUp<&str>> = retry_bounded(
            b,
            &Shutdown::new(),
            |_, _, _| waits += 1,
            |_| async { Err(Attempt::Again("503", None)) },
        )
        .await;
        assert_eq!(
            out,
            Err(GaveUp {
                error: "503",
                attempts: 3,
                stopped: false
            })
        );
        assert_eq!(waits, 2);
        let tries = std::sync::atomic::AtomicU32::new(0);
        let out: Result<(), GaveUp<&str>> = retry_bounded(
            b,
            &Shutdown::new(),
            |_, _, _| {},
            |_| {
                tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Err(Attempt::Final("404")) }
            },
        )
        .await;
        assert_eq!(out.map_err(|g| g.attempts), Err(1));
        assert_eq!(tries.into_inner(), 1, "a 4xx is never tried again");
        let ok = retry_bounded(
            b,
            &Shutdown::new(),
            |_, _, _| {},
            |n| async move {
                if n < 2 {
                    Err(Attempt::Again("429", Some(Duration::ZERO)))
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(ok, Ok(2));
    }
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
