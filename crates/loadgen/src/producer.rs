//! Where the sender gets its slices from: encoded on demand, between
//! slices sent (the sender pauses while the next slice is encoded), or by
//! a thread that encodes the next slice while the current one is sent.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::slices::{Slice, SliceEncoder};

/// What went wrong with the encoding thread.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("cannot start the encoding thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the encoding thread panicked")]
    Panicked,
}

/// What encoding the run took, once every slice has been taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeStats {
    /// Distinct series encoded (pod churn included).
    pub distinct_series: u64,
    /// Time spent encoding, summed over the slices.
    pub encode: Duration,
}

enum Source {
    // Boxed: the encoder holds snappy's hash table inline.
    Inline(Box<SliceEncoder>),
    Thread {
        rx: Receiver<Slice>,
        handle: JoinHandle<EncodeStats>,
    },
}

/// Hands out a run's slices in order; see the module docs.
pub struct Producer {
    source: Source,
    max_bytes: usize,
    encode: Duration,
}

impl Producer {
    /// Encodes each slice when [`Producer::next_slice`] asks for it.
    pub fn inline(encoder: SliceEncoder, max_bytes: usize) -> Self {
        Producer {
            source: Source::Inline(Box::new(encoder)),
            max_bytes,
            encode: Duration::ZERO,
        }
    }

    /// Encodes on a thread of its own, one slice ahead: the thread encodes
    /// slice k + 1 while slice k is sent and waits with it until slice k
    /// has been sent, so at most two slices are in memory.
    pub fn ahead(mut encoder: SliceEncoder, max_bytes: usize) -> Result<Self, ProducerError> {
        // A rendezvous channel: a finished slice stays with the thread,
        // which encodes no further, until the sender takes it.
        let (tx, rx) = sync_channel::<Slice>(0);
        let handle = std::thread::Builder::new()
            .name("loadgen-encode".into())
            .spawn(move || {
                let mut encode = Duration::ZERO;
                loop {
                    let t = Instant::now();
                    let slice = encoder.next_slice(max_bytes);
                    encode += t.elapsed();
                    let Some(slice) = slice else { break };
                    // A send fails when the sender gave up: stop too.
                    if tx.send(slice).is_err() {
                        break;
                    }
                }
                EncodeStats {
                    distinct_series: encoder.distinct_series(),
                    encode,
                }
            })
            .map_err(ProducerError::Spawn)?;
        Ok(Producer {
            source: Source::Thread { rx, handle },
            max_bytes,
            encode: Duration::ZERO,
        })
    }

    /// The next slice, `None` after the last.
    pub fn next_slice(&mut self) -> Option<Slice> {
        match &mut self.source {
            Source::Inline(encoder) => {
                let t = Instant::now();
                let slice = encoder.next_slice(self.max_bytes);
                self.encode += t.elapsed();
                slice
            }
            // An error means the thread has ended: after its last slice,
            // or by panicking, which `finish` reports.
            Source::Thread { rx, .. } => rx.recv().ok(),
        }
    }

    /// Ends the run's encoding (the thread, if any, stops before its next
    /// slice) and says what it took.
    pub fn finish(self) -> Result<EncodeStats, ProducerError> {
        match self.source {
            Source::Inline(encoder) => Ok(EncodeStats {
                distinct_series: encoder.distinct_series(),
                encode: self.encode,
            }),
            Source::Thread { rx, handle } => {
                drop(rx);
                handle.join().map_err(|_| ProducerError::Panicked)
            }
        }
    }
}
