//! What a process does when the run cannot go on: a peer that dies (killed, out of memory,
//! its node gone) or peers that never show up.
//!
//! timely has no recovery: when a connection closes, its receive thread panics with
//! "timely communication error". That panic is turned into one clear line on stderr and an
//! immediate exit with status 75 (EX_TEMPFAIL, transient: the Slurm script requeues the job)
//! in every surviving process. The exit is `_exit(2)` ([`exit_now`]): `exit()` would run
//! libtorch's static destructors under the feet of threads still computing and can crash
//! (SIGSEGV) instead; `_exit` ends the process at once, the same way every time, without
//! running them. The writer lease of the process is left to expire, so other writers take
//! its claimed tasks over once it has. Nothing is left half
//! visible: a batch becomes visible only when its `tasks` file appears (see the store's
//! PROTOCOL.md), so a process that exits in the middle of a commit leaves orphan data files,
//! which the next run's recovery deletes. Committed tasks stay committed; tasks in flight
//! (and results buffered but not committed yet) are lost and run again when the sweep is
//! re-run, with any number of processes.
use crate::cluster::Cluster;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// Exit status of a process whose run lost one of its processes: transient (EX_TEMPFAIL,
/// the same as a preemption), so the Slurm script requeues the job.
pub const EXIT_PEER_LOST: i32 = 75;
/// Exit code when the processes could not all connect in time (a process that never
/// started or died at start, a port another program holds, a node unreachable): transient
/// (EX_TEMPFAIL), so the Slurm script requeues the job. A host list that cannot be read is
/// bad input (exit 2) and is refused before any connection is tried.
pub const EXIT_NOT_CONNECTED: i32 = 75;
/// Exit code of a Ctrl-C while the processes connect (as any interrupted run).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Installs the panic hook that ends the process on a lost connection (once per process;
/// other panics go to the hook installed before).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            if is_peer_lost(&msg) {
                static REPORTED: AtomicBool = AtomicBool::new(false);
                if REPORTED.swap(true, Ordering::SeqCst) {
                    // Another thread is already exiting the process.
                    loop {
                        std::thread::park();
                    }
                }
                tracing::error!(
                    "lost the connection to another process of the run ({msg}); \
                     committed tasks are kept, tasks in flight are lost: run the sweep again to finish it"
                );
                exit_now(EXIT_PEER_LOST);
            }
            previous(info)
        }));
    });
}

/// Ends the process at once with `code`, after flushing stdout and stderr, without running
/// exit handlers or destructors: libtorch's static destructors, run by `exit()` while other
/// threads still compute, can crash the process (SIGSEGV) instead of exiting. The one place
/// the workspace allows `unsafe`: std has no `_exit`, and nix's is unsafe too.
#[allow(unsafe_code)]
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit(2) takes no pointers and is async-signal-safe; skipping atexit handlers
    // and destructors is its purpose here. Committed data is already durable (fsync /
    // completed PUTs), and nothing half-written is visible (PROTOCOL.md).
    unsafe { libc::_exit(code) }
}

/// Whether a panic message is timely's report of a broken connection.
pub fn is_peer_lost(msg: &str) -> bool {
    msg.contains("timely communication error") || msg.contains("MergeQueue poisoned")
}

/// The processes of the run are still connecting (see [`watch_connection`]).
pub const CONNECTING: u8 = 0;
/// Every process is connected: the run goes on.
pub const CONNECTED: u8 = 1;
/// The connection watcher gave up (time out or a stop signal) and ends the process.
pub const GAVE_UP: u8 = 2;

/// Moves `state` from [`CONNECTING`] to [`CONNECTED`]; `false` when the watcher gave up
/// first (it is ending the process: write nothing). Either the run starts or the process
/// ends before anything is written, never both.
pub fn mark_connected(state: &AtomicU8) -> bool {
    state
        .compare_exchange(CONNECTING, CONNECTED, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Gives up connecting: `true` when `state` was still [`CONNECTING`] (the caller ends the
/// process), `false` when every process connected first (the run goes on).
fn give_up(state: &AtomicU8) -> bool {
    state
        .compare_exchange(CONNECTING, GAVE_UP, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Ends the process with a clear message if the processes are not all connected within
/// `timeout` (timely retries connecting forever), or at once when `cancel` is set while
/// they connect (Ctrl-C: exit 130; SIGTERM/SIGUSR1, a preemption: 75). Nothing was written
/// then: the writer session starts only once every process is connected
/// ([`mark_connected`]).
pub fn watch_connection(
    state: Arc<AtomicU8>,
    timeout: Duration,
    cluster: Cluster,
    cancel: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if state.load(Ordering::SeqCst) != CONNECTING {
                return;
            }
            if cancel.load(Ordering::SeqCst) {
                if !give_up(&state) {
                    return;
                }
                let (what, code) = if synthsweep_exec::preempted() {
                    ("preempted", EXIT_NOT_CONNECTED)
                } else {
                    ("interrupted", EXIT_INTERRUPTED)
                };
                tracing::error!(
                    "process {} {what} while the {} processes connected: nothing was written \
                     (exit {code})",
                    cluster.index,
                    cluster.processes(),
                );
                exit_now(code);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !give_up(&state) {
            return;
        }
        let others: Vec<String> = cluster
            .addresses
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != cluster.index)
            .map(|(i, a)| format!("process {i} at {a}"))
            .collect();
        tracing::error!(
            "process {} (listening on {}) could not connect to all {} processes within {} s \
             (waited for {}; from {}): a process that never started or died at start, or a \
             node that cannot be reached; is every process started with the same process \
             count and host list? Inside a Slurm job, start one synthsweep per task with srun \
             (exit {EXIT_NOT_CONNECTED}, transient: nothing was written)",
            cluster.index,
            cluster.addresses[cluster.index],
            cluster.processes(),
            timeout.as_secs_f64(),
            others.join(", "),
            cluster.origin,
        );
        exit_now(EXIT_NOT_CONNECTED);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn timely_connection_panics_are_recognised() {
        assert!(super::is_peer_lost(
            "timely communication error: reading data: socket closed"
        ));
        assert!(!super::is_peer_lost("index out of bounds"));
    }
}
