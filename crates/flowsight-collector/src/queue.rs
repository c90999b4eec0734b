//! The queue from the receivers to one decode worker, bounded by the bytes it holds rather
//! than by a count of chunks.
//!
//! Raw datagrams are the cheapest form in which to ride out a stall downstream (a store
//! flush, a burst of exporters, a neighbour taking the CPU): 120 - 200 bytes a flow, against
//! 300 - 350 once decoded into columns, and in user space they cost no kernel `truesize`
//! overhead and need no `rmem_max` or `CAP_NET_ADMIN`. A count bound would hold anything
//! from 256 single datagrams to 256 full `recvmmsg` batches; a byte bound holds what the
//! configuration says (`receive_queue`). When it is full the receiver waits, the kernel
//! buffer fills, and its drops are counted, as before.

use crate::Chunk;
use crate::metrics::Shared;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

/// Bytes a chunk holds in memory (its buffers' capacity, and a fixed share for the
/// chunk itself, so even empty datagrams count).
pub(crate) fn cost(c: &Chunk) -> usize {
    64 + c.data.capacity() + c.items.capacity() * std::mem::size_of::<crate::Item>()
}

#[derive(Debug)]
struct Budget {
    cap: usize,
    /// Bytes queued, and whether the worker is gone (senders must not wait for it).
    state: Mutex<(usize, bool)>,
    freed: Condvar,
    shared: Arc<Shared>,
}

/// The sending side, one per (receiver, worker); cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct WorkerTx {
    tx: Sender<Chunk>,
    budget: Arc<Budget>,
}

/// The worker's side: releases each chunk's bytes once it is decoded, and on drop (the
/// worker ending, normally or not) lets waiting senders go.
#[derive(Debug)]
pub(crate) struct WorkerRx {
    pub rx: Receiver<Chunk>,
    budget: Arc<Budget>,
}

/// A queue holding at most `cap` bytes of chunks (one chunk larger than `cap` is still
/// admitted when the queue is empty, so no datagram can block forever).
pub(crate) fn channel(cap: usize, shared: Arc<Shared>) -> (WorkerTx, WorkerRx) {
    let (tx, rx) = std::sync::mpsc::channel();
    let budget = Arc::new(Budget {
        cap,
        state: Mutex::new((0, false)),
        freed: Condvar::new(),
        shared,
    });
    (
        WorkerTx {
            tx,
            budget: budget.clone(),
        },
        WorkerRx { rx, budget },
    )
}

impl WorkerTx {
    /// Queues `chunk`, waiting while the queue is full. Fails when the worker is gone.
    pub(crate) fn send(&self, chunk: Chunk) -> Result<(), ()> {
        let n = cost(&chunk);
        let b = &self.budget;
        {
            let mut st = b.state.lock().map_err(|_| ())?;
            while !st.1 && st.0 > 0 && st.0 + n > b.cap {
                st = b.freed.wait(st).map_err(|_| ())?;
            }
            if st.1 {
                return Err(());
            }
            st.0 += n;
        }
        b.shared
            .counters
            .receive_queue_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        self.tx.send(chunk).map_err(|_| {
            self.budget.release(n);
        })
    }
}

impl WorkerRx {
    /// Gives back the bytes of a chunk the worker has finished with.
    pub(crate) fn done(&self, chunk: &Chunk) {
        self.budget.release(cost(chunk));
    }
}

impl Budget {
    fn release(&self, n: usize) {
        if let Ok(mut st) = self.state.lock() {
            st.0 = st.0.saturating_sub(n);
        }
        self.shared
            .counters
            .receive_queue_bytes
            .fetch_sub(n as u64, Ordering::Relaxed);
        self.freed.notify_all();
    }
}

impl Drop for WorkerRx {
    fn drop(&mut self) {
        if let Ok(mut st) = self.budget.state.lock() {
            st.1 = true;
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

    #[test]
    fn a_full_queue_makes_the_sender_wait_until_the_worker_frees_bytes() {
        let shared = Arc::new(Shared::default());
        let one = cost(&chunk(1000));
        let (tx, rx) = channel(2 * one, shared.clone());
        tx.send(chunk(1000)).unwrap();
        tx.send(chunk(1000)).unwrap();
        assert_eq!(
            shared.counters.receive_queue_bytes.load(Ordering::Relaxed),
            2 * one as u64
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
        let (tx, rx) = channel(100, Arc::new(Shared::default()));
        tx.send(chunk(10_000)).unwrap();
        assert_eq!(rx.rx.recv().unwrap().data.len(), 10_000);
    }

    #[test]
    fn a_waiting_sender_is_released_when_the_worker_ends() {
        let one = cost(&chunk(1000));
        let (tx, rx) = channel(one, Arc::new(Shared::default()));
        tx.send(chunk(1000)).unwrap();
        let t = std::thread::spawn(move || tx.send(chunk(1000)));
        std::thread::sleep(Duration::from_millis(50));
        drop(rx);
        assert_eq!(t.join().unwrap(), Err(()));
    }
}
