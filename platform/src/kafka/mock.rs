//! The development broker: librdkafka's in-process mock cluster.
//!
//! `MockCluster` holds raw pointers and is neither `Send` nor `Sync`, so it
//! lives on its own thread; [`MockBroker`] talks to it over a channel and stops
//! it on drop. Not durable, and each partition keeps only a few MB.

use crate::{Error, Result};
use rdkafka::mocking::MockCluster;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;

enum Command {
    CreateTopic(String, i32, i32, mpsc::Sender<Result<()>>),
    BrokerDown(i32, mpsc::Sender<Result<()>>),
    BrokerUp(i32, mpsc::Sender<Result<()>>),
    Stop,
}

/// A handle on the in-process mock cluster.
#[derive(Debug)]
pub struct MockBroker {
    bootstrap: String,
    brokers: i32,
    tx: Mutex<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl MockBroker {
    /// Starts a mock cluster with `brokers` brokers on 127.0.0.1.
    pub fn start(brokers: i32) -> Result<MockBroker> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String>>();
        let thread = std::thread::Builder::new().name("kafka-mock".into()).spawn(move || {
            let cluster = match MockCluster::new(brokers) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
            while let Ok(cmd) = rx.recv() {
                match cmd {
                    Command::CreateTopic(t, p, r, reply) => {
                        let _ = reply.send(cluster.create_topic(&t, p, r).map_err(Error::from));
                    }
                    Command::BrokerDown(id, reply) => {
                        let _ = reply.send(cluster.broker_down(id).map_err(Error::from));
                    }
                    Command::BrokerUp(id, reply) => {
                        let _ = reply.send(cluster.broker_up(id).map_err(Error::from));
                    }
                    Command::Stop => break,
                }
            }
        })?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| Error::Config("the mock cluster thread exited".into()))??;
        Ok(MockBroker {
            bootstrap,
            brokers,
            tx: Mutex::new(tx),
            thread: Some(thread),
        })
    }

    /// The mock cluster's bootstrap servers, e.g. `127.0.0.1:40123`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn call(&self, make: impl FnOnce(mpsc::Sender<Result<()>>) -> Command) -> Result<()> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .lock()
            .map_err(|_| Error::Config("mock broker lock poisoned".into()))?
            .send(make(reply))
            .map_err(|_| Error::Config("the mock cluster has stopped".into()))?;
        rx.recv().map_err(|_| Error::Config("the mock cluster has stopped".into()))?
    }

    /// Creates a topic (the mock cluster does not take the CreateTopics admin call).
    pub fn create_topic(&self, topic: &str, partitions: i32, replication: i32) -> Result<()> {
        self.call(|r| Command::CreateTopic(topic.to_owned(), partitions, replication, r))
    }

    /// Takes every broker down: clients then time out, as with a real outage.
    pub fn all_down(&self) -> Result<()> {
        (1..=self.brokers).try_for_each(|id| self.call(|r| Command::BrokerDown(id, r)))
    }

    /// Brings every broker back.
    pub fn all_up(&self) -> Result<()> {
        (1..=self.brokers).try_for_each(|id| self.call(|r| Command::BrokerUp(id, r)))
    }
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(Command::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
