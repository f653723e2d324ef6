//! How many requests run at once: per host (name and port) and in all, over
//! every job of this importer. A request waits for its host's permit first,
//! then for a global one, so a slow host never holds global permits idle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The permits of one request; dropped when it is done.
#[derive(Debug)]
pub struct Permit {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// The per-host and global limits.
#[derive(Debug)]
pub struct HostLimits {
    per_host: usize,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimits {
    /// `per_host` requests to one host at once, `global` in all.
    pub fn new(per_host: usize, global: usize) -> HostLimits {
        HostLimits {
            per_host: per_host.max(1),
            global: Arc::new(Semaphore::new(global.max(1))),
            hosts: Mutex::default(),
        }
    }

    fn host(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        // Hosts with no request under way or waiting are forgotten, so the map stays small.
        if hosts.len() > 1024 {
            hosts.retain(|_, s| Arc::strong_count(s) > 1);
        }
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Waits for a permit to `host`, then a global one.
    pub async fn acquire(&self, host: &str) -> Permit {
        let host = self.host(host).acquire_owned().await.expect("the semaphore is never closed");
        let global = self.global.clone().acquire_owned().await.expect("the semaphore is never closed");
        Permit {
            _host: host,
            _global: global,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_host_gets_at_most_its_share_and_others_still_run() {
        let limits = Arc::new(HostLimits::new(2, 3));
        let a1 = limits.acquire("a:80").await;
        let _a2 = limits.acquire("a:80").await;
        let third = tokio::time::timeout(Duration::from_millis(50), limits.acquire("a:80")).await;
        assert!(third.is_err(), "a third request to one host waits");
        let _b = tokio::time::timeout(Duration::from_millis(50), limits.acquire("b:80"))
            .await
            .expect("another host runs");
        let fourth = tokio::time::timeout(Duration::from_millis(50), limits.acquire("c:80")).await;
        assert!(fourth.is_err(), "the global limit holds");
        drop(a1);
        tokio::time::timeout(Duration::from_millis(50), limits.acquire("c:80"))
            .await
            .expect("a permit came back");
    }
}
