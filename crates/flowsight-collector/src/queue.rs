//! The queues from the receivers to the decode workers, bounded together by the bytes they
//! hold rather than each by a count of chunks.
//!
//! Raw datagrams are the cheapest form in which to ride out a stall downstream (a store
//! flush, a burst of exporters, a neighbour taking the CPU): about 125 bytes a flow, against
//! 300 - 350 once decoded into columns, and in user space they cost no kernel `truesize`
//! overhead and need no `rmem_max` or `CAP_NET_ADMIN`. A count bound would hold anything
//! from 256 single datagrams to 256 full `recvmmsg` batches; a byte bound holds what the
//! configuration says (`receive_queue`). When it is full the receiver waits, the kernel
//! buffer fills, and its drops are counted, as before.

use crate::Chunk;
use crate::metrics::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

/// Bytes a chunk holds in memory (its buffers' capacity, and a fixed share for the
/// chunk itself, so even empty datagrams count).
pub(crate) fn cost(c: &Chunk) -> usize {
    64 + c.data.capacity() + c.items.capacity() * std::mem::size_of::<crate::Item>()
}

/// The memory all the workers' queues share. One budget, not a share per worker: a
/// receiver that finds its worker's queue full waits whatever the other queues hold, so
/// per-worker shares would isolate nothing and would leave the one busy worker of a single
/// large exporter half the memory.
#[derive(Debug)]
struct Budget {
    cap: usize,
    /// Bytes queued. Sends and a closing worker's drain hold this lock across the channel
    /// operation, so no chunk's bytes are counted without the chunk being in a queue.
    used: Mutex<usize>,
    freed: Condvar,
    shared: Arc<Shared>,
}

/// The sending side of one worker's queue; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct WorkerTx {
    tx: Sender<Chunk>,
    /// The worker is gone: senders must not wait for it.
    closed: Arc<AtomicBool>,
    budget: Arc<Budget>,
}

/// The worker's side: releases each chunk's bytes once it is decoded, and on drop (the
/// worker ending, normally or not) gives back what is still queued and lets waiting
/// senders go.
#[derive(Debug)]
pub(crate) struct WorkerRx {
    pub rx: Receiver<Chunk>,
    closed: Arc<AtomicBool>,
    budget: Arc<Budget>,
}

/// One queue per worker, together holding at most `cap` bytes of chunks (a chunk larger
/// than `cap` is still admitted when nothing is queued, so no datagram waits forever).
pub(crate) fn channels(
    workers: usize,
    cap: usize,
    shared: Arc<Shared>,
) -> Vec<(WorkerTx, WorkerRx)> {
    let budget = Arc::new(Budget {
        cap,
        used: Mutex::new(0),
        freed: Condvar::new(),
        shared,
    });
    (0..workers)
        .map(|_| {
            let (tx, rx) = std::sync::mpsc::channel();
            let closed = Arc::new(AtomicBool::new(false));
            (
                WorkerTx {
                    tx,
                    closed: closed.clone(),
                    budget: budget.clone(),
                },
                WorkerRx {
                    rx,
                    closed,
                    budget: budget.clone(),
                },
            )
        })
        .collect()
}

impl WorkerTx {
    /// Queues `chunk`, waiting while the queues are full. Fails when the worker is gone.
    pub(crate) fn send(&self, chunk: Chunk) -> Result<(), ()> {
        let n = cost(&chunk);
        let b = &self.budget;
        let mut used = b.used.lock().map_err(|_| ())?;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(());
            }
            if *used == 0 || *used + n <= b.cap {
                break;
            }
            used = b.freed.wait(used).map_err(|_| ())?;
        }
        self.tx.send(chunk).map_err(|_| ())?;
        *used += n;
        b.gauge(n as i64);
        Ok(())
    }
}

impl WorkerRx {
    /// Gives back the bytes of a chunk the worker has finished with.
    pub(crate) fn done(&self, chunk: &Chunk) {
        let n = cost(chunk);
        if let Ok(mut used) = self.budget.used.lock() {
            *used = used.saturating_sub(n);
        }
        self.budget.gauge(-(n as i64));
        self.budget.freed.notify_all();
    }
}

impl Budget {
    fn gauge(&self, delta: i64) {
        let g = &self.shared.counters.receive_queue_bytes;
        if delta >= 0 {
            g.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            g.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }
}

impl Drop for WorkerRx {
    fn drop(&mut self) {
        if let Ok(mut used) = self.budget.used.lock() {
            self.closed.store(true, Ordering::Release);
            while let Ok(c) = self.rx.try_recv() {
                let n = cost(&c);
                *used = used.saturating_sub(n);
                self.budget.gauge(-(n as i64));
            }
        }
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    fn chunk(bytes: usize) -> Chunk {
        let mut c = Chunk::default();
        c.push(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, &vec![0u8; bytes]);
        c
    }

    fn one(cap: usize, shared: Arc<Shared>) -> (WorkerTx, WorkerRx) {
        channels(1, cap, shared).pop().unwrap()
    }

    #[test]
    fn a_full_queue_makes_the_sender_wait_until_the_worker_frees_bytes() {
        let shared = Arc::new(Shared::default());
        let one_chunk = cost(&chunk(1000));
        let (tx, rx) = one(2 * one_chunk, shared.clone());
        tx.send(chunk(1000)).unwrap();
        tx.send(chunk(1000)).unwrap();
        assert_eq!(
            shared.counters.receive_queue_bytes.load(Ordering::Relaxed),
            2 * one_chunk as u64
        );
        let t = std::thread::spawn(move || {
            tx.send(chunk(1000)).unwrap();
        });
        std::thread::sleep(Duration::from_millis(100));
        // The third chunk is not in the queue while two fill it.
        assert!(!t.is_finished(), "sender went past a full queue");
        let first = rx.rx.recv().unwrap();
        rx.done(&first);
        t.join().unwrap();
        let mut n = 0;
        while let Ok(c) = rx.rx.try_recv() {
            rx.done(&c);
            n += 1;
        }
        assert_eq!(n, 2);
        assert_eq!(
            shared.counters.receive_queue_bytes.load(Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn a_chunk_larger_than_the_queue_passes_when_it_is_empty() {
        let (tx, rx) = one(100, Arc::new(Shared::default()));
        tx.send(chunk(10_000)).unwrap();
        assert_eq!(rx.rx.recv().unwrap().data.len(), 10_000);
    }

    #[test]
    fn one_busy_worker_may_use_the_whole_budget() {
        let c = cost(&chunk(1000));
        let mut q = channels(2, 4 * c, Arc::new(Shared::default()));
        let (tx, _rx) = q.remove(0);
        for _ in 0..4 {
            tx.send(chunk(1000)).unwrap();
        }
    }

    #[test]
    fn a_waiting_sender_is_released_and_bytes_returned_when_a_worker_ends() {
        let shared = Arc::new(Shared::default());
        let c = cost(&chunk(1000));
        let mut q = channels(2, c, shared.clone());
        let (tx_b, rx_b) = q.pop().unwrap();
        let (tx_a, rx_a) = q.pop().unwrap();
        tx_a.send(chunk(1000)).unwrap();
        let to_a = tx_a.clone();
        let waiting_a = std::thread::spawn(move || to_a.send(chunk(1000)));
        let waiting_b = std::thread::spawn(move || tx_b.send(chunk(1000)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiting_b.is_finished(), "sender went past a full budget");
        // Worker A ends with a chunk still queued: its sender fails, and its bytes go
        // back, so worker B's sender gets through.
        drop(rx_a);
        assert_eq!(waiting_a.join().unwrap(), Err(()));
        let t0 = std::time::Instant::now();
        while !waiting_b.is_finished() {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "worker B's sender still waits: worker A's queued bytes were not given back"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(waiting_b.join().unwrap(), Ok(()));
        assert_eq!(tx_a.send(chunk(1)), Err(()));
        let got = rx_b.rx.recv().unwrap();
        rx_b.done(&got);
        assert_eq!(
            shared.counters.receive_queue_bytes.load(Ordering::Relaxed),
            0
        );
    }
}
