//! A timed record of one session: every command and reply with its offset from the connection,
//! and every fault that fired.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::tls::TlsInfo;

/// Who an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A line the client sent.
    Client,
    /// A reply the server sent.
    Server,
    /// A fault that fired.
    Fault,
    /// Something else that happened: TLS up, message stored, connection closed.
    Event,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Milliseconds since the connection was accepted.
    pub at_ms: f64,
    /// Who it came from.
    pub direction: Direction,
    /// The line, without CRLF; a multi-line reply keeps its lines joined by `\n`.
    pub text: String,
}

/// A session's transcript as it stood when it was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// The session's number, from 1.
    pub session_id: u64,
    /// The attempt number the faults saw.
    pub attempt: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// When the connection was accepted, RFC 3339 in UTC.
    pub started_at: String,
    /// The TLS facts, once TLS is up.
    pub tls: Option<TlsInfo>,
    /// False once the connection is closed.
    pub open: bool,
    /// The faults that fired, in order.
    pub faults: Vec<String>,
    /// Every entry, in order; past the limit the middle is elided and said so.
    pub entries: Vec<Entry>,
}

/// The most entries one transcript keeps; a client that sends endless commands cannot grow it
/// without bound.
const MAX_ENTRIES: usize = 500;

/// A live transcript, written by its session and read by anyone.
#[derive(Debug, Clone)]
pub struct TranscriptHandle {
    started: Instant,
    inner: Arc<Mutex<Live>>,
}

/// What a session writes as it goes; kept small, because every open session holds one. The
/// start time is formatted and the faults are gathered only when someone reads it.
#[derive(Debug)]
struct Live {
    session_id: u64,
    attempt: u64,
    peer: SocketAddr,
    started_at: SystemTime,
    tls: Option<TlsInfo>,
    open: bool,
    entries: Vec<Entry>,
}

impl TranscriptHandle {
    /// A new, open transcript.
    pub fn new(session_id: u64, peer: SocketAddr, attempt: u64) -> Self {
        Self {
            started: Instant::now(),
            inner: Arc::new(Mutex::new(Live {
                session_id,
                attempt,
                peer,
                started_at: SystemTime::now(),
                tls: None,
                open: true,
                entries: Vec::new(),
            })),
        }
    }

    /// Adds an entry stamped with the time since the connection began.
    pub fn record(&self, direction: Direction, text: impl Into<String>) {
        let at_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let mut inner = self.inner.lock().expect("transcript lock");
        if inner.entries.len() == MAX_ENTRIES {
            inner.entries.push(Entry {
                at_ms,
                direction: Direction::Event,
                text: "transcript limit reached; later entries are not kept".into(),
            });
        }
        if inner.entries.len() > MAX_ENTRIES {
            return;
        }
        inner.entries.push(Entry {
            at_ms,
            direction,
            text: text.into(),
        });
    }

    /// Records a fault that fired.
    pub fn fault(&self, description: &str) {
        self.record(Direction::Fault, description);
    }

    /// Records the TLS facts once the handshake is done.
    pub fn set_tls(&self, tls: TlsInfo) {
        self.inner.lock().expect("transcript lock").tls = Some(tls);
    }

    /// Marks the session closed.
    pub fn close(&self, how: &str) {
        self.record(Direction::Event, how);
        self.inner.lock().expect("transcript lock").open = false;
    }

    /// True until the session ends.
    pub fn is_open(&self) -> bool {
        self.inner.lock().expect("transcript lock").open
    }

    /// A copy of the transcript as it is now.
    pub fn snapshot(&self) -> Transcript {
        let inner = self.inner.lock().expect("transcript lock");
        Transcript {
            session_id: inner.session_id,
            attempt: inner.attempt,
            peer: inner.peer,
            started_at: super::rfc3339(inner.started_at),
            tls: inner.tls.clone(),
            open: inner.open,
            faults: inner
                .entries
                .iter()
                .filter(|e| e.direction == Direction::Fault)
                .map(|e| e.text.clone())
                .collect(),
            entries: inner.entries.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_timed_in_order_and_faults_listed() {
        let t = TranscriptHandle::new(1, "127.0.0.1:9".parse().unwrap(), 1);
        t.record(Direction::Server, "220 hi");
        t.fault("mail: close (FIN)");
        t.close("closed by server (FIN)");
        let snap = t.snapshot();
        assert_eq!(snap.entries.len(), 3);
        assert!(snap.entries.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(snap.faults, vec!["mail: close (FIN)"]);
        assert!(!snap.open);
    }

    #[test]
    fn a_transcript_stops_growing_at_its_limit() {
        let t = TranscriptHandle::new(1, "127.0.0.1:9".parse().unwrap(), 1);
        for _ in 0..MAX_ENTRIES + 50 {
            t.record(Direction::Client, "NOOP");
        }
        assert_eq!(t.snapshot().entries.len(), MAX_ENTRIES + 1);
    }
}
