//! One established association, from its first P-DATA to its release: the
//! command sets are gathered and read, C-ECHO is answered, each C-STORE's
//! data set streams to the blob store ([`crate::cstore`]) and is answered
//! once registered, anything else is refused with a status. A malformed
//! command, a data set without its command, or an unexpected PDU aborts the
//! association (A-ABORT); an instance cut short is never kept.

use crate::command::{self, BadCommand, Command};
use crate::cstore::{self, Incoming};
use crate::stable::Studies;
use crate::syntaxes;
use alpes_ingest::IngestState;
use dicom_ul::association::AsyncServerAssociation;
use dicom_ul::pdu::{AbortRQServiceProviderReason, AbortRQSource, PDataValue, PDataValueType, PresentationContextResultReason};
use dicom_ul::Pdu;
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncWrite};

/// What one association did, for its log line and audit entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Instances stored and announced.
    pub stored: u32,
    /// Instances the provider had sent before (answered as success).
    pub duplicates: u32,
    /// Operations answered with a failure status.
    pub failed: u32,
    /// C-ECHOs answered.
    pub echoes: u32,
    /// Whether it ended by release (else abort, timeout or a lost connection).
    pub released: bool,
}

/// What the association is waiting for after a command.
enum Expecting {
    /// A command.
    Command,
    /// The data set of a C-STORE, streaming to the blob store.
    Store { pc: u8, cmd: Command, incoming: Incoming },
    /// The data set of a command that is refused once it has arrived.
    Discard {
        pc: u8,
        cmd: Command,
        status: u16,
        comment: &'static str,
    },
}

/// An accepted presentation context: its abstract and transfer syntax.
struct Context {
    abstract_syntax: String,
    transfer_syntax: String,
}

fn command_pdu(pc: u8, bytes: Vec<u8>) -> Pdu {
    Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc,
            value_type: PDataValueType::Command,
            is_last: true,
            data: bytes,
        }],
    }
}

fn abort_pdu() -> Pdu {
    Pdu::AbortRQ {
        source: AbortRQSource::ServiceProvider(AbortRQServiceProviderReason::UnexpectedPdu),
    }
}

/// Who an association serves: the provider, the calling AE title, and the study tracker.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// The provider the calling AE title is mapped to.
    pub provider: &'a str,
    /// The calling AE title.
    pub calling_ae: &'a str,
    /// Where new images are noted, for the stable-study announcements.
    pub studies: &'a Studies,
}

/// Serves `assoc` for `peer` until it is released or aborted.
pub async fn serve<S>(mut assoc: AsyncServerAssociation<S>, state: &IngestState, peer: Peer<'_>) -> Tally
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let contexts: HashMap<u8, Context> = assoc
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| {
            (
                pc.id,
                Context {
                    abstract_syntax: pc.abstract_syntax.trim_end_matches(['\0', ' ']).to_owned(),
                    transfer_syntax: pc.transfer_syntax.trim_end_matches(['\0', ' ']).to_owned(),
                },
            )
        })
        .collect();
    let mut tally = Tally::default();
    let mut command_bytes: Vec<u8> = Vec::new();
    let mut expecting = Expecting::Command;
    'pdus: loop {
        let pdu = match assoc.receive().await {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "the association ended without a release");
                break;
            }
        };
        let values = match pdu {
            Pdu::PData { data } => data,
            Pdu::ReleaseRQ => {
                tally.released = true;
                if let Err(e) = assoc.send(&Pdu::ReleaseRP).await {
                    tracing::info!(error = %e, "the release answer was not sent");
                }
                break;
            }
            Pdu::AbortRQ { .. } => break,
            _ => {
                let _ = assoc.send(&abort_pdu()).await;
                break;
            }
        };
        for value in values {
            let pc = value.presentation_context_id;
            let Some(context) = contexts.get(&pc) else {
                tracing::warn!(pc, "a PDV on a presentation context that was not accepted; aborting");
                let _ = assoc.send(&abort_pdu()).await;
                break 'pdus;
            };
            match (value.value_type, &mut expecting) {
                (PDataValueType::Command, Expecting::Command) => {
                    command_bytes.extend_from_slice(&value.data);
                    if command_bytes.len() > command::MAX_COMMAND {
                        let _ = assoc.send(&abort_pdu()).await;
                        break 'pdus;
                    }
                    if !value.is_last {
                        continue;
                    }
                    let cmd = match Command::parse(&std::mem::take(&mut command_bytes)) {
                        Ok(c) => c,
                        Err(e @ (BadCommand::Malformed | BadCommand::NoCommandField)) => {
                            tracing::warn!(error = %e, "an unreadable command set; aborting");
                            let _ = assoc.send(&abort_pdu()).await;
                            break 'pdus;
                        }
                    };
                    let (next, answer) = on_command(state, pc, context, cmd, &mut tally);
                    expecting = next;
                    if let Some(bytes) = answer {
                        if assoc.send(&command_pdu(pc, bytes)).await.is_err() {
                            break 'pdus;
                        }
                    }
                }
                (PDataValueType::Data, Expecting::Store { pc: want, incoming, .. }) if *want == pc => {
                    incoming.push(value.data).await;
                    if !value.is_last {
                        continue;
                    }
                    let Expecting::Store { cmd, incoming, .. } = std::mem::replace(&mut expecting, Expecting::Command) else {
                        unreachable!("matched above")
                    };
                    let done = cstore::complete(state, peer.provider, &cmd, incoming.finish().await).await;
                    state.metrics.dimse_operations.with_label_values(&["c_store", done.outcome]).inc();
                    if let Some((image_id, study)) = &done.new_image {
                        // An instance whose StudyInstanceUID cannot be read is a study of its own.
                        let study = study.clone().unwrap_or_else(|| format!("image:{image_id}"));
                        peer.studies.arrived(peer.provider, &study, peer.calling_ae, image_id);
                    }
                    match done.outcome {
                        "stored" => tally.stored += 1,
                        "duplicate" => tally.duplicates += 1,
                        _ => tally.failed += 1,
                    }
                    if assoc.send(&command_pdu(pc, cmd.response(done.status, done.comment))).await.is_err() {
                        break 'pdus;
                    }
                }
                (PDataValueType::Data, Expecting::Discard { pc: want, .. }) if *want == pc => {
                    if !value.is_last {
                        continue;
                    }
                    let Expecting::Discard { cmd, status, comment, .. } = std::mem::replace(&mut expecting, Expecting::Command) else {
                        unreachable!("matched above")
                    };
                    tally.failed += 1;
                    if assoc.send(&command_pdu(pc, cmd.response(status, Some(comment)))).await.is_err() {
                        break 'pdus;
                    }
                }
                _ => {
                    tracing::warn!(
                        pc,
                        "a PDV out of order (a data set without its command, or a command inside one); aborting"
                    );
                    let _ = assoc.send(&abort_pdu()).await;
                    break 'pdus;
                }
            }
        }
    }
    if let Expecting::Store { incoming, .. } = expecting {
        incoming.abandon().await;
        tally.failed += 1;
        state.metrics.dimse_operations.with_label_values(&["c_store", "incomplete"]).inc();
    }
    tally
}

/// What a complete command set leads to: what to expect next, and the answer to send now.
fn on_command(state: &IngestState, pc: u8, context: &Context, cmd: Command, tally: &mut Tally) -> (Expecting, Option<Vec<u8>>) {
    let refuse = |cmd: Command, status: u16, comment: &'static str, tally: &mut Tally| {
        state
            .metrics
            .dimse_operations
            .with_label_values(&[label(cmd.field), "refused"])
            .inc();
        if cmd.has_data_set {
            (Expecting::Discard { pc, cmd, status, comment }, None)
        } else {
            tally.failed += 1;
            let answer = cmd.response(status, Some(comment));
            (Expecting::Command, Some(answer))
        }
    };
    match cmd.field {
        command::C_ECHO_RQ => {
            tally.echoes += 1;
            state.metrics.dimse_operations.with_label_values(&["c_echo", "ok"]).inc();
            let answer = cmd.response(command::SUCCESS, None);
            (Expecting::Command, Some(answer))
        }
        command::C_STORE_RQ if !syntaxes::is_storage(&context.abstract_syntax) || cmd.sop_class != context.abstract_syntax => refuse(
            cmd,
            command::SOP_CLASS_NOT_SUPPORTED,
            "SOP class not that of the presentation context",
            tally,
        ),
        command::C_STORE_RQ if !cmd.has_data_set || cmd.sop_instance.is_empty() => refuse(
            cmd,
            command::CANNOT_UNDERSTAND,
            "C-STORE without a data set or an instance UID",
            tally,
        ),
        command::C_STORE_RQ => {
            let incoming = Incoming::start(state, &cmd, &context.transfer_syntax);
            (Expecting::Store { pc, cmd, incoming }, None)
        }
        _ => refuse(cmd, command::UNRECOGNIZED_OPERATION, "only C-ECHO and C-STORE are served", tally),
    }
}

fn label(field: u16) -> &'static str {
    match field {
        command::C_ECHO_RQ => "c_echo",
        command::C_STORE_RQ => "c_store",
        _ => "other",
    }
}
