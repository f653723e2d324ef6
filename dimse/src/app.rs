//! The listener as one app: [`DimseApp::build`] checks the settings, stores
//! the calling AE titles the flags name and binds the port;
//! [`DimseApp::run_until_stopped`] takes associations until the shutdown
//! signal, then lets those under way finish (up to [`DRAIN`]).
//!
//! Each connection gets the calling AE titles as the store has them now
//! ([`crate::access`]), is negotiated by dicom-rs's upper layer (over TLS when
//! configured), and is served by [`crate::association::serve`]. Past
//! `--dimse-max-associations` a connection is rejected (transient, local
//! limit exceeded) without being read further. Every association, accepted
//! or rejected, is counted and audited (`dimse_association`, the calling AE
//! title as target; never a patient's or a study's identifier).

use crate::access::{Admitted, Rule};
use crate::args::DimseArgs;
use crate::association::{self, Peer, Tally};
use crate::stable::Studies;
use crate::{syntaxes, Error, Result};
use alpes_domain::dimse::ae_title;
use alpes_ingest::IngestState;
use alpes_platform::audit::Auditor;
use alpes_platform::shutdown::Shutdown;
use alpes_schemas::{new_event_id, now_millis, RegistroAuditoria};
use dicom_ul::association::server::{AcceptAny, DefaultNegotiation};
use dicom_ul::association::AsyncServerAssociation;
use dicom_ul::association::{Association, Error as UlError};
use dicom_ul::pdu::{AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason, AssociationRJSource};
use dicom_ul::{Pdu, ServerAssociationOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How long associations under way may finish after the shutdown signal.
pub const DRAIN: Duration = Duration::from_secs(10);
/// Connections past the association limit being refused at once; more are closed unanswered.
const REFUSING: usize = 64;
/// How long a refused connection has to send its association request. A client sends it at
/// once after connecting, but a loaded host may stall it for seconds: 2 s once left pynetdicom
/// closed unanswered on a busy CI machine. At most [`REFUSING`] connections wait at a time.
const REFUSAL_WAIT: Duration = Duration::from_secs(10);

type Options = ServerAssociationOptions<'static, AcceptAny, DefaultNegotiation>;

/// The DICOM listener, bound and ready to serve.
#[derive(Debug)]
pub struct DimseApp {
    listener: TcpListener,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
}

#[derive(Debug)]
struct Shared {
    state: IngestState,
    options: Options,
    tls: bool,
    auditor: Auditor,
    timeout: Duration,
    studies: Arc<Studies>,
}

impl DimseApp {
    /// Checks `args`, stores the calling AE titles they name (a provider the store does not
    /// know yet is warned of: its associations are rejected until the account exists), and
    /// binds the listener. `state` is ingest's: an instance is registered as an upload is.
    pub async fn build(state: IngestState, args: &DimseArgs) -> Result<DimseApp> {
        let own = ae_title(&args.ae_title).map_err(|e| Error::Config(format!("--dimse-ae-title: {e}")))?;
        if args.max_associations == 0 {
            return Err(Error::Config("--dimse-max-associations must be at least 1".into()));
        }
        for (ae, provider) in &args.calling_aes {
            state.store.put_calling_ae(ae, provider, now_millis()).await?;
            if state.identity.store.account(provider).await?.is_none() {
                tracing::warn!(ae_title = %ae, "--dimse-calling-ae names a provider with no account yet");
            }
        }
        let timeout = Duration::from_secs(args.timeout_secs.max(1));
        let mut options = ServerAssociationOptions::new()
            .accept_any()
            .ae_title(own.clone())
            .max_pdu_length(args.max_pdu)
            .read_timeout(timeout)
            .write_timeout(timeout);
        for uid in syntaxes::abstract_syntaxes() {
            options = options.with_abstract_syntax(uid);
        }
        for uid in syntaxes::transfer_syntaxes() {
            options = options.with_transfer_syntax(uid);
        }
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                options = options.tls_config(crate::tls::server_config(cert, key, args.tls_client_ca.as_deref())?);
                true
            }
            _ => false,
        };
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|source| Error::Bind { addr: args.listen, source })?;
        let auditor = Auditor::new(state.producer.clone(), "dimse", state.metrics.clone());
        tracing::info!(addr = %listener.local_addr().map_err(|source| Error::Bind { addr: args.listen, source })?, ae_title = %own, tls, "DICOM listener bound");
        Ok(DimseApp {
            listener,
            limit: Arc::new(Semaphore::new(args.max_associations)),
            refusing: Arc::new(Semaphore::new(REFUSING)),
            shared: Arc::new(Shared {
                state,
                options,
                tls,
                auditor,
                timeout,
                studies: Studies::new(Duration::from_secs(args.stable_study_secs.max(1))),
            }),
        })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Takes associations until `stop`, then lets those under way finish for up to [`DRAIN`];
    /// announces stable studies meanwhile, and those still pending once the last association ended.
    pub async fn run_until_stopped(self, stop: Shutdown) -> Result<()> {
        let DimseApp {
            listener,
            shared,
            limit,
            refusing,
        } = self;
        let announcing = Shutdown::new();
        let announcer = tokio::spawn(
            shared
                .studies
                .clone()
                .run_until_stopped(shared.state.producer.clone(), announcing.clone()),
        );
        let mut running = JoinSet::new();
        loop {
            tokio::select! {
                () = stop.wait() => break,
                Some(_) = running.join_next(), if !running.is_empty() => {}
                accepted = listener.accept() => {
                    let (socket, _) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors, say: wait a little rather than spin.
                            tracing::warn!(error = %e, "a DICOM connection could not be accepted");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let _ = socket.set_nodelay(true);
                    match limit.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let shared = shared.clone();
                            running.spawn(async move {
                                shared.associate(socket).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            shared.state.metrics.dimse_associations.with_label_values(&["over_limit"]).inc();
                            // Refused with an answer while few are; past that, closed at once.
                            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                                running.spawn(async move {
                                    reject_busy(socket).await;
                                    drop(permit);
                                });
                            }
                        }
                    }
                }
            }
        }
        drop(listener);
        let drained = tokio::time::timeout(DRAIN, async { while running.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(left = running.len(), "DICOM associations still open at shutdown were cut");
            running.shutdown().await;
        }
        announcing.trigger();
        if let Err(e) = announcer.await {
            tracing::error!(error = %e, "the stable-study announcer panicked");
        }
        Ok(())
    }
}

impl Shared {
    /// Negotiates and serves one connection. The negotiation (the TLS handshake included) has
    /// `--dimse-timeout-secs` in all, so a connection that says nothing frees its slot.
    async fn associate(&self, socket: TcpStream) {
        let metrics = &self.state.metrics;
        let admitted = match Admitted::load(self.state.store.as_ref(), self.state.identity.store.as_ref()).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the calling AE titles; the association is rejected");
                metrics.dimse_associations.with_label_values(&["failed"]).inc();
                reject_busy(socket).await;
                return;
            }
        };
        let rule = Rule::new(admitted.clone());
        let options = self.options.clone().ae_access_control(rule.clone());
        let late = || {
            metrics.dimse_associations.with_label_values(&["failed"]).inc();
            tracing::info!("a DICOM connection did not negotiate an association in time");
        };
        if self.tls {
            match tokio::time::timeout(self.timeout, options.establish_tls_async(socket)).await {
                Ok(Ok(assoc)) => self.served(&admitted, assoc).await,
                Ok(Err(e)) => self.refused(&rule, &e).await,
                Err(_) => late(),
            }
        } else {
            match tokio::time::timeout(self.timeout, options.establish_async(socket)).await {
                Ok(Ok(assoc)) => self.served(&admitted, assoc).await,
                Ok(Err(e)) => self.refused(&rule, &e).await,
                Err(_) => late(),
            }
        }
    }

    /// Serves an admitted association, then logs and audits what it did.
    async fn served<S>(&self, admitted: &Admitted, assoc: AsyncServerAssociation<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let calling = ae_title(assoc.peer_ae_title()).unwrap_or_default();
        let Some(provider) = admitted.provider(&calling) else {
            return;
        };
        self.state.metrics.dimse_associations.with_label_values(&["accepted"]).inc();
        let peer = Peer {
            provider,
            calling_ae: &calling,
            studies: &self.studies,
        };
        let tally: Tally = association::serve(assoc, &self.state, peer).await;
        tracing::info!(
            ae_title = %calling,
            provider = %provider,
            stored = tally.stored,
            duplicates = tally.duplicates,
            failed = tally.failed,
            echoes = tally.echoes,
            released = tally.released,
            "DICOM association ended"
        );
        let outcome = if tally.failed == 0 { "ok" } else { "error" };
        let reason = format!(
            "stored={} duplicates={} failed={} echoes={} released={}",
            tally.stored, tally.duplicates, tally.failed, tally.echoes, tally.released
        );
        self.audit(provider, Some("proveedor"), &calling, outcome, Some(reason)).await;
    }

    async fn refused(&self, rule: &Rule, e: &UlError) {
        let metrics = &self.state.metrics;
        match (e, rule.rejected()) {
            (UlError::Rejected { .. }, Some(calling)) => {
                metrics.dimse_associations.with_label_values(&["rejected"]).inc();
                tracing::info!(ae_title = %calling, "a DICOM association was rejected: calling or called AE title not recognized");
                self.audit(
                    &format!("ae:{calling}"),
                    None,
                    &calling,
                    "denied",
                    Some("ae_title_not_recognized".into()),
                )
                .await;
            }
            _ => {
                metrics.dimse_associations.with_label_values(&["failed"]).inc();
                tracing::info!(error = %e, "a DICOM association could not be negotiated");
            }
        }
    }

    async fn audit(&self, actor: &str, role: Option<&str>, calling: &str, outcome: &str, reason: Option<String>) {
        let entry = RegistroAuditoria {
            event_id: new_event_id(),
            occurred_at: now_millis(),
            actor: actor.to_owned(),
            actor_role: role.map(str::to_owned),
            action: "dimse_association".into(),
            target: Some(calling.to_owned()),
            route: Some("DIMSE".into()),
            outcome: outcome.to_owned(),
            status: None,
            reason,
            request_id: None,
            service: "dimse".into(),
        };
        self.auditor.send(&entry).await;
    }
}

/// Rejects a connection past the association limit: reads its A-ASSOCIATE-RQ
/// (at most 64 KiB, within [`REFUSAL_WAIT`]) and answers A-ASSOCIATE-RJ,
/// transient, local limit exceeded. A TLS client's handshake is not one: it
/// sees the connection closed.
async fn reject_busy(mut socket: TcpStream) {
    let answer = async {
        let mut head = [0u8; 6];
        socket.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
        if head[0] != 0x01 || len > 64 * 1024 {
            return Ok(());
        }
        let mut rq = vec![0u8; len];
        socket.read_exact(&mut rq).await?;
        let mut out = Vec::with_capacity(10);
        let rj = Pdu::AssociationRJ(AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceProviderPresentation(AssociationRJServiceProviderPresentationReason::LocalLimitExceeded),
        });
        dicom_ul::write_pdu(&mut out, &rj).map_err(std::io::Error::other)?;
        socket.write_all(&out).await?;
        socket.shutdown().await
    };
    if let Ok(Err(e)) = tokio::time::timeout(REFUSAL_WAIT, answer).await {
        tracing::debug!(error = %e, "a rejected DICOM connection went away first");
    }
}
