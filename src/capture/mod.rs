//! What the server saw: every accepted message, and a timed transcript of every session.
//!
//! A message is stored before the 250 that acknowledges it is written, so a client that saw the
//! 250 can always find its message here. With a capture directory each message is also written
//! to disk as `ID.eml` beside `ID.json` (its envelope), each under a temporary name first and
//! then renamed, so that a reader never sees half a file.

mod transcript;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;

pub use transcript::{Direction, Entry, Transcript, TranscriptHandle};

use crate::tls::TlsInfo;

/// One message that got 250 after its final dot.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// Its number in this server's store, from 1, also used in its file names.
    pub id: u64,
    /// The session it arrived in.
    pub session_id: u64,
    /// When its final dot arrived, RFC 3339 in UTC.
    pub received_at: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// The EHLO or HELO name.
    pub helo: String,
    /// The MAIL FROM path; empty for the null sender `<>`.
    pub mail_from: String,
    /// Every RCPT TO path that was accepted, in order.
    pub rcpt_to: Vec<String>,
    /// The TLS facts, if the session ran over TLS.
    pub tls: Option<TlsInfo>,
    /// Its size in octets.
    pub size: usize,
    /// The message exactly as received, after dot-unstuffing.
    #[serde(skip)]
    pub data: Bytes,
}

/// The envelope of a message as written beside it on disk.
#[derive(Serialize)]
struct EnvelopeFile<'a> {
    #[serde(flatten)]
    message: &'a Message,
    eml: String,
}

/// Why a message could not be stored.
#[derive(Debug, thiserror::Error)]
#[error("cannot write message {id} to {path}: {source}")]
pub struct StoreError {
    id: u64,
    path: PathBuf,
    source: std::io::Error,
}

struct Inner {
    next_id: u64,
    messages: Vec<Arc<Message>>,
    sessions: VecDeque<TranscriptHandle>,
}

/// The store shared by every session of a server.
pub struct CaptureStore {
    inner: Mutex<Inner>,
    count: watch::Sender<usize>,
    dir: Option<PathBuf>,
    max_sessions_kept: usize,
}

impl std::fmt::Debug for CaptureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl CaptureStore {
    /// A store in memory, and in `dir` too if one is given. At most `max_sessions_kept`
    /// transcripts are kept, oldest dropped first, so a long run stays bounded.
    ///
    /// Numbering continues after the highest message already in `dir`, so that a second run
    /// into the same directory never overwrites the first one's files.
    pub fn new(dir: Option<PathBuf>, max_sessions_kept: usize) -> Self {
        let next_id = dir.as_deref().map_or(1, |d| highest_id_in(d) + 1);
        Self {
            inner: Mutex::new(Inner {
                next_id,
                messages: Vec::new(),
                sessions: VecDeque::new(),
            }),
            count: watch::Sender::new(0),
            dir,
            max_sessions_kept: max_sessions_kept.max(1),
        }
    }

    /// The capture directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Stores a message and returns its id. The `id` field of `message` is filled in here. When
    /// a capture directory is set, both files are on disk before this returns.
    pub async fn store(&self, mut message: Message) -> Result<Arc<Message>, StoreError> {
        message.id = {
            let mut inner = self.inner.lock().expect("capture lock");
            let id = inner.next_id;
            inner.next_id += 1;
            id
        };
        message.size = message.data.len();
        if let Some(dir) = &self.dir {
            write_files(dir, &message).await?;
        }
        let message = Arc::new(message);
        let count = {
            let mut inner = self.inner.lock().expect("capture lock");
            inner.messages.push(message.clone());
            inner.messages.len()
        };
        self.count.send_replace(count);
        Ok(message)
    }

    /// Every stored message, oldest first.
    pub fn messages(&self) -> Vec<Arc<Message>> {
        self.inner.lock().expect("capture lock").messages.clone()
    }

    /// How many messages are stored.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("capture lock").messages.len()
    }

    /// True when no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message with this id.
    pub fn message(&self, id: u64) -> Option<Arc<Message>> {
        let inner = self.inner.lock().expect("capture lock");
        inner.messages.iter().find(|m| m.id == id).cloned()
    }

    /// Forgets every stored message (files on disk stay) and every finished transcript.
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("capture lock");
        inner.messages.clear();
        inner.sessions.retain(|t| t.is_open());
        drop(inner);
        self.count.send_replace(0);
    }

    /// Waits until at least `n` messages are stored, or `timeout` passes; returns the messages
    /// stored by then either way.
    pub async fn wait_for(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Arc<Message>>, Vec<Arc<Message>>> {
        let mut rx = self.count.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n)).await;
        let messages = self.messages();
        match reached {
            Ok(Ok(_)) => Ok(messages),
            _ => Err(messages),
        }
    }

    /// Keeps a new session's transcript.
    pub fn add_session(&self, transcript: TranscriptHandle) {
        let mut inner = self.inner.lock().expect("capture lock");
        if inner.sessions.len() >= self.max_sessions_kept {
            inner.sessions.pop_front();
        }
        inner.sessions.push_back(transcript);
    }

    /// The transcripts kept, oldest first, as they stand now.
    pub fn sessions(&self) -> Vec<Transcript> {
        let inner = self.inner.lock().expect("capture lock");
        inner.sessions.iter().map(|t| t.snapshot()).collect()
    }
}

/// The highest `NNNNNN` of the `NNNNNN.eml` files in `dir`, or 0.
fn highest_id_in(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".eml")?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

/// The current time in RFC 3339, UTC, to the millisecond.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

pub(crate) fn rfc3339(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

async fn write_files(dir: &Path, message: &Message) -> Result<(), StoreError> {
    let stem = format!("{:06}", message.id);
    let eml = dir.join(format!("{stem}.eml"));
    let json = dir.join(format!("{stem}.json"));
    let envelope = EnvelopeFile {
        message,
        eml: format!("{stem}.eml"),
    };
    let envelope = serde_json::to_vec_pretty(&envelope).expect("envelopes serialise");
    let fail = |path: &Path, source| StoreError {
        id: message.id,
        path: path.to_path_buf(),
        source,
    };

    // The message goes first, so that a reader who finds the envelope finds its message too.
    write_atomically(&eml, &message.data)
        .await
        .map_err(|e| fail(&eml, e))?;
    write_atomically(&json, &envelope)
        .await
        .map_err(|e| fail(&json, e))?;
    Ok(())
}

async fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("message");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, contents).await?;
    tokio::fs::rename(&tmp, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &'static [u8]) -> Message {
        Message {
            id: 0,
            session_id: 1,
            received_at: now_rfc3339(),
            peer: "127.0.0.1:1".parse().unwrap(),
            helo: "client.test".into(),
            mail_from: "a@b.test".into(),
            rcpt_to: vec!["c@d.test".into()],
            tls: None,
            size: 0,
            data: Bytes::from_static(data),
        }
    }

    #[tokio::test]
    async fn stored_messages_get_ids_and_land_on_disk_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = CaptureStore::new(Some(dir.path().to_path_buf()), 10);
        let first = store
            .store(message(b"Subject: a\r\n\r\nx\r\n"))
            .await
            .unwrap();
        let second = store.store(message(b"y\r\n")).await.unwrap();
        assert_eq!((first.id, second.id), (1, 2));
        assert_eq!(
            std::fs::read(dir.path().join("000001.eml")).unwrap(),
            b"Subject: a\r\n\r\nx\r\n"
        );
        let envelope: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("000002.json")).unwrap())
                .unwrap();
        assert_eq!(envelope["mail_from"], "a@b.test");
        assert_eq!(envelope["rcpt_to"][0], "c@d.test");
        assert_eq!(envelope["size"], 3);
        assert_eq!(envelope["eml"], "000002.eml");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn a_second_store_in_the_same_directory_numbers_after_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = CaptureStore::new(Some(dir.path().to_path_buf()), 10);
        first.store(message(b"one\r\n")).await.unwrap();
        first.store(message(b"two\r\n")).await.unwrap();
        let second = CaptureStore::new(Some(dir.path().to_path_buf()), 10);
        assert_eq!(second.store(message(b"three\r\n")).await.unwrap().id, 3);
        assert_eq!(
            std::fs::read(dir.path().join("000001.eml")).unwrap(),
            b"one\r\n"
        );
        assert_eq!(
            std::fs::read(dir.path().join("000003.eml")).unwrap(),
            b"three\r\n"
        );
    }

    #[tokio::test]
    async fn an_unwritable_directory_fails_the_store_and_keeps_nothing() {
        let store = CaptureStore::new(Some(PathBuf::from("/nonexistent/smtp-fault-capture")), 10);
        assert!(store.store(message(b"x")).await.is_err());
        assert!(store.messages().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_messages_returns_when_enough_arrive_or_times_out() {
        let store = Arc::new(CaptureStore::new(None, 10));
        let early = store.wait_for(1, Duration::from_millis(100)).await;
        assert!(early.unwrap_err().is_empty());
        let writer = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.store(message(b"x")).await.unwrap();
        });
        assert_eq!(
            store
                .wait_for(1, Duration::from_secs(5))
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn old_transcripts_are_dropped_past_the_limit() {
        let store = CaptureStore::new(None, 2);
        for id in 1..=3 {
            store.add_session(TranscriptHandle::new(
                id,
                "127.0.0.1:1".parse().unwrap(),
                id,
            ));
        }
        let ids: Vec<u64> = store.sessions().iter().map(|t| t.session_id).collect();
        assert_eq!(ids, vec![2, 3]);
    }
}
