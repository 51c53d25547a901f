//! The message phase of a session: from 354 to the reply to the final dot.
//!
//! The data streams through a [`DataDecoder`] straight from the receive buffer. A `body` fault
//! fires once its byte count has arrived, whatever the packet boundaries; `end_of_data` faults
//! fire after the final dot and before the reply. A message is stored before its 250 is queued.

use bytes::Buf;
use tracing::{debug, info, warn};

use super::{Decision, Ending, Flow, Session, Socket, Stream};
use crate::capture::{Direction, Message};
use crate::faults::{self, FaultKind, Stage, Then};
use crate::protocol::{DataDecoder, DataOutcome, Reply};

impl<S: Socket> Session<S> {
    /// Receives the message after 354, then answers its final dot.
    pub(super) async fn receive_message(&mut self) -> Flow {
        let settings = &self.env.scenario.server;
        let mut decoder = DataDecoder::new(
            settings.bare_newlines,
            settings.max_message_bytes,
            settings.max_line_octets,
        );

        // The first `body` fault that applies to this transaction, if any; others with a later
        // byte count would never be reached, since the first one ends the message.
        let scenario = self.env.scenario.clone();
        let facts = self.facts();
        let mut body_fault = scenario
            .faults_at(Stage::Body)
            .filter(|f| f.when.matches(&facts))
            .min_by_key(|f| f.after_bytes)
            .cloned();

        let mut aborted = false;
        loop {
            if let Some(fault) = body_fault.as_ref()
                && decoder.octets() >= fault.after_bytes
            {
                let fault = body_fault.take().expect("checked above");
                self.fired(&fault);
                match fault.kind {
                    FaultKind::Reply(reply) => {
                        // A reply in the middle of the data: the rest of the message is read
                        // and thrown away, and the final dot gets no second reply.
                        let then = reply.effective_then();
                        self.reply(reply.reply);
                        self.flush().await?;
                        match then {
                            Then::Continue => aborted = true,
                            Then::Close => return Err(Ending::Close),
                            Then::Reset => return Err(Ending::Reset),
                        }
                    }
                    FaultKind::Close(_) => return Err(Ending::Fin),
                    FaultKind::Reset(_) => return Err(Ending::Reset),
                    FaultKind::Stall(stall) => {
                        self.stall(stall).await?;
                        return Err(Ending::Fin);
                    }
                    _ => {}
                }
            }

            let limit = body_fault.as_ref().map_or(usize::MAX, |f| {
                usize::try_from(f.after_bytes - decoder.octets()).unwrap_or(usize::MAX)
            });
            let available = self.rbuf.len().min(limit);
            let feed = decoder.feed(&self.rbuf[..available]);
            self.rbuf.advance(feed.consumed);
            if feed.done {
                break;
            }
            let threshold_reached = body_fault
                .as_ref()
                .is_some_and(|f| decoder.octets() >= f.after_bytes);
            if !threshold_reached {
                self.fill().await?;
            }
        }

        let outcome = decoder.finish();
        self.transcript.record(
            Direction::Client,
            format!(
                "<message data: {} octets, final dot received>",
                outcome.octets
            ),
        );
        if aborted {
            self.reset_transaction();
            return Ok(());
        }
        self.end_of_data(outcome).await
    }

    /// The `end_of_data` stage: the final dot is in, the reply is not out.
    async fn end_of_data(&mut self, outcome: DataOutcome) -> Flow {
        let decision = self.decide(Stage::EndOfData, None).await?;
        let result = match decision {
            Decision::Normal => {
                let reply = match self.verdict(&outcome) {
                    Some(refusal) => refusal,
                    None => self.store(outcome, None).await,
                };
                self.reply(reply);
                Ok(())
            }
            Decision::Reply(fault) => {
                let reply = if fault.reply.is_positive() {
                    // A scenario that answers 250 in its own words still stores the message
                    // first; if storing fails, the client must not see a 250.
                    let stored = self.store(outcome, Some(fault.reply.clone())).await;
                    if stored.is_positive() {
                        fault
                    } else {
                        faults::ReplyFault::new(stored)
                    }
                } else {
                    fault
                };
                self.reply_then(reply)
            }
            Decision::End(ending) => {
                info!(
                    octets = outcome.octets,
                    "message received but never acknowledged"
                );
                Err(ending)
            }
        };
        self.reset_transaction();
        result
    }

    /// What the strict receiver says of a message it will not take, if anything.
    fn verdict(&self, outcome: &DataOutcome) -> Option<Reply> {
        let settings = &self.env.scenario.server;
        if outcome.too_big {
            return Some(Reply::message_too_big(settings.max_message_bytes));
        }
        if outcome.long_line {
            return Some(Reply::line_too_long(settings.max_line_octets));
        }
        if settings.bare_newlines == crate::protocol::BareNewlines::Reject {
            if outcome.bare_lf {
                warn!("message with a bare LF refused");
                return Some(Reply::bare_newline("<LF>"));
            }
            if outcome.bare_cr {
                warn!("message with a bare CR refused");
                return Some(Reply::bare_newline("<CR>"));
            }
        }
        None
    }

    /// Stores the message and returns the reply for the client: `accepted` (or the normal 250)
    /// once it is stored, 451 if it could not be.
    async fn store(&mut self, outcome: DataOutcome, accepted: Option<Reply>) -> Reply {
        let message = Message {
            id: 0,
            session_id: self.env.id,
            received_at: crate::capture::now_rfc3339(),
            peer: self.env.peer,
            helo: self.helo.clone().unwrap_or_default(),
            mail_from: self.tx.from.clone().unwrap_or_default(),
            rcpt_to: self.tx.rcpts.clone(),
            tls: self.io.as_ref().and_then(Stream::tls_info),
            size: outcome.body.len(),
            data: outcome.body,
        };
        match self.env.capture.store(message).await {
            Ok(stored) => {
                debug!(id = stored.id, size = stored.size, "message stored");
                self.transcript
                    .record(Direction::Event, format!("message {} stored", stored.id));
                accepted.unwrap_or_else(|| Reply::message_accepted(stored.id))
            }
            Err(e) => {
                tracing::error!("{e}");
                self.transcript
                    .record(Direction::Event, format!("message not stored: {e}"));
                Reply::local_error()
            }
        }
    }
}
