//! Background threads (file encoding, compaction) run at a lower CPU priority than the
//! ingest path (receivers, decode workers, the store thread).
//!
//! Why: encoding a flush file takes a fraction of a second of full CPU, and on a small box two
//! writers plus the receive and decode threads want more cores than there are. The kernel's
//! socket buffer absorbs only a short stall of the receivers; a writer that finishes a little
//! later costs nothing (its queue is bounded and back-pressures anyway). With nice 10 the
//! scheduler gives the ingest threads about nine tenths of a contended core.

/// The nice value of background threads.
pub(crate) const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`]; a failure (a sandbox
/// forbidding it) only costs the priority, so it is logged at debug level.
#[allow(unsafe_code)]
pub(crate) fn background() {
    // Linux keeps the nice value per thread: PRIO_PROCESS with a thread id changes only that
    // thread (setpriority(2), NOTES).
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    let r = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BACKGROUND_NICE)
    };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_calling_thread_is_lowered() {
        let own = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        let nice = |stat: &str| -> Option<i32> {
            // Field 19 (nice), counted after the parenthesised command name.
            stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()
        };
        let before = nice(&own);
        let child = std::thread::spawn(move || {
            super::background();
            nice(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default())
        })
        .join()
        .ok()
        .flatten();
        assert_eq!(child, Some(super::BACKGROUND_NICE.max(before.unwrap_or(0))));
        let after = nice(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default());
        assert_eq!(after, before);
    }
}
