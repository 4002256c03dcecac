//! One process of a multi-process run. Every process plans the spec itself, connects to the
//! others through timely (TCP), and runs one timely worker thread whose dataflow carries
//! requests to process 0 and answers back:
//!
//! ```text
//! engine slots --Want/Finished/Stop--> input --exchange(0)--> Coordinator (process 0)
//!   ^  (RemoteSource)                                              |
//!   +---- Task/NoMore/Stop/Hello <-- inbox <-- exchange(process) <-+
//! ```
//!
//! Process 0 recovers the output root first and only then broadcasts the `Hello` (the run
//! id), so no process writes before recovery is over. Once every process has joined, each
//! runs the exec engine (slots, writer tagged `p<I>`, checkpoints) with a
//! [`RemoteSource`] on a thread of its own, while this thread keeps the dataflow moving.
use crate::cluster::Cluster;
use crate::coordinator::{fingerprint, Dispatcher, PendingTasks, Totals};
use crate::error::{DistError, Result};
use crate::protocol::{Hello, StopKind, StopReason, ToCoordinator, ToProcess};
use crate::remote::{Event, RemoteSource, Reply};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use synthsweep_exec::progress::Progress;
use synthsweep_exec::{
    engine, prepare_root, ClaimingSource, EngineOptions, ExecError, RunReport, TaskSource,
};
use synthsweep_models::device::device_name;
use synthsweep_store::{
    LeaseOptions, Ledger, PrepareOptions, RunInfo, Store, TaskStatus, WriterIdentity, WriterOptions,
};
use synthsweep_sweep::Plan;
use tch::Device;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange as Pact;
use timely::dataflow::operators::{Exchange, Input, Inspect, Operator, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle};

/// How to run one process of a multi-process run.
#[derive(Debug, Clone)]
pub struct DistOptions {
    pub cluster: Cluster,
    /// One worker slot (thread) per entry.
    pub devices: Vec<Device>,
    /// libtorch intra-op threads of this process.
    pub intra_op_threads: usize,
    /// Tasks a slot takes at once (see `EngineOptions::batch`).
    pub batch: usize,
    /// Batch limits; the run id and writer tag are set here.
    pub writer: WriterOptions,
    /// What process 0 does to the root first (recovery, `--retry-failed`).
    pub prepare: PrepareOptions,
    /// The run's provenance; process 0 writes it (its run id becomes the run's).
    pub run: RunInfo,
    /// The output root as the user wrote it, for messages.
    pub root_text: String,
    /// Give up if the processes are not all connected by then.
    pub connect_timeout: Duration,
    /// How often a slot looks again at tasks another writer on the root holds (half the
    /// lease's renewal period is a good choice).
    pub claim_poll: Duration,
    /// This process's writer session (lease), started once every process is connected and
    /// before anything reads or writes the root; a failure to write it stops the whole run
    /// as a storage failure. The caller ends it (`Store::finish_session`).
    pub identity: WriterIdentity,
    pub lease: LeaseOptions,
}

/// What one process did.
#[derive(Debug, Clone)]
pub struct DistReport {
    pub process: usize,
    pub processes: usize,
    pub run_id: String,
    /// What this process's engine did: tasks run, committed, batches, dispatch waits
    /// (all zero when it never started).
    pub engine: RunReport,
    /// Process 0: the whole run as the coordinator counted it.
    pub totals: Option<Totals>,
    /// Process 0: tasks committed by this run in the root at the end (done, failed).
    pub committed_by_run: Option<(usize, usize)>,
    /// Set when the run stopped early (Ctrl-C somewhere, a mismatch, a planning error).
    pub stop: Option<StopReason>,
}

struct Ctx {
    plan: Arc<Plan>,
    store: Store,
    opts: DistOptions,
    cancel: Arc<AtomicBool>,
    fingerprint: String,
    /// [`crate::abort::CONNECTING`], `CONNECTED` or `GAVE_UP` (see `abort::watch_connection`).
    connected: Arc<AtomicU8>,
}

/// Runs this process's part of the run; returns when every process is done (or stopped).
/// A process that dies takes the others down: see [`crate::abort`].
///
/// # Errors
/// [`DistError`]: the processes could not connect, planned different sweeps, the root
/// could not be prepared or committed to, or another process stopped the run.
pub fn run(
    plan: Arc<Plan>,
    store: Store,
    opts: DistOptions,
    cancel: Arc<AtomicBool>,
) -> Result<DistReport> {
    let cluster = opts.cluster.clone();
    crate::abort::install();
    let connected = Arc::new(AtomicU8::new(crate::abort::CONNECTING));
    crate::abort::watch_connection(
        connected.clone(),
        opts.connect_timeout,
        cluster.clone(),
        cancel.clone(),
    );
    let ctx = Arc::new(Ctx {
        fingerprint: fingerprint(&plan),
        plan,
        store,
        opts,
        cancel,
        connected,
    });
    let config = timely::Config {
        communication: timely::CommunicationConfig::Cluster {
            threads: 1,
            process: cluster.index,
            addresses: cluster.addresses.clone(),
            report: false,
            zerocopy: false,
        },
        worker: timely::WorkerConfig::default(),
    };
    check_listen(&cluster)?;
    let guards =
        timely::execute(config, move |worker| process_main(worker, &ctx)).map_err(|msg| {
            DistError::Connect {
                processes: cluster.processes(),
                msg: format!(
                    "process {} (at {}): {msg}",
                    cluster.index, cluster.addresses[cluster.index]
                ),
            }
        })?;
    let mut results = guards.join();
    match results.pop() {
        Some(Ok(r)) => r,
        Some(Err(panic)) => Err(DistError::Stopped(format!("internal failure: {panic}"))),
        None => Err(DistError::Stopped("no timely worker ran".into())),
    }
}

/// Whether this process can listen on its address(es) before timely tries (timely's own
/// error says neither which address nor why in a form that can be told apart): a port in
/// use is transient ([`DistError::Connect`], exit 75: another program, or an earlier run
/// still exiting, holds it); an address that is not this host's, or that does not resolve,
/// is a wrong host list ([`DistError::Config`], exit 2).
fn check_listen(cluster: &Cluster) -> Result<()> {
    let mine = &cluster.addresses[cluster.index];
    for addr in mine.split_whitespace() {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            let what = format!(
                "process {} cannot listen on {addr} (its address in {}): {e}",
                cluster.index, cluster.origin
            );
            return Err(match e.kind() {
                std::io::ErrorKind::AddrInUse => DistError::Connect {
                    processes: cluster.processes(),
                    msg: format!(
                        "{what}; another program (or an earlier run still exiting) holds the port"
                    ),
                },
                _ => DistError::config(format!(
                    "{what}; expected an address of this host (`host:port`)"
                )),
            });
        }
    }
    Ok(())
}

type Requests = InputHandleVec<u64, ToCoordinator>;

/// Sends one message into the dataflow (nothing once the input is closed).
fn send(input: &mut Option<Requests>, m: ToCoordinator) {
    if let Some(i) = input.as_mut() {
        // Advancing the epoch flushes the exchange buffers, so the message leaves now.
        i.send(m);
        let next = *i.time() + 1;
        i.advance_to(next);
    }
}

/// The dataflow: requests to the coordinator on process 0, answers back to the asking
/// process's `inbox`.
fn build_dataflow(
    worker: &mut timely::worker::Worker,
    dispatcher: Rc<RefCell<Dispatcher>>,
    inbox: Rc<RefCell<Vec<ToProcess>>>,
) -> (Requests, ProbeHandle<u64>) {
    let mut input: Requests = InputHandleVec::new();
    let probe = ProbeHandle::new();
    worker.dataflow::<u64, _, _>(|scope| {
        scope
            .input_from(&mut input)
            .unary::<CapacityContainerBuilder<Vec<ToProcess>>, _, _, _>(
                Pact::new(|_: &ToCoordinator| 0u64),
                "Coordinator",
                move |_, _| {
                    move |input, output| {
                        input.for_each(|cap, msgs| {
                            let mut out = Vec::new();
                            let mut d = dispatcher.borrow_mut();
                            for m in msgs.drain(..) {
                                d.handle(m, &mut out);
                            }
                            let mut session = output.session(&cap);
                            for m in out {
                                session.give(m);
                            }
                        });
                    }
                },
            )
            .exchange(|m: &ToProcess| m.process() as u64)
            .inspect(move |m: &ToProcess| inbox.borrow_mut().push(m.clone()))
            .probe_with(&probe);
    });
    (input, probe)
}

/// The timely worker of this process: the dataflow, then the loop that moves messages
/// between it and this process's engine until every process is done.
fn process_main(worker: &mut timely::worker::Worker, ctx: &Ctx) -> Result<DistReport> {
    if !crate::abort::mark_connected(&ctx.connected) {
        // The connection watcher gave up (time out, or a stop signal while connecting) and
        // is ending the process: nothing may be written from here.
        loop {
            std::thread::park();
        }
    }
    let me = worker.index();
    let n = worker.peers();
    let opts = &ctx.opts;
    let inbox: Rc<RefCell<Vec<ToProcess>>> = Rc::default();
    let dispatcher = Rc::new(RefCell::new(Dispatcher::idle(n)));
    let (input, probe) = build_dataflow(worker, dispatcher.clone(), inbox.clone());
    let mut input = Some(input);
    let mut report = DistReport {
        process: me,
        processes: n,
        run_id: opts.run.run_id.clone(),
        engine: RunReport::default(),
        totals: None,
        committed_by_run: None,
        stop: None,
    };
    let mut own_error: Option<DistError> = None;
    let mut stop_sent = false;

    // This process's writer lease, before anything reads or writes the root: other writers
    // on it (array shards, other runs) spare what this process does, and it claims each
    // task before running it (PROTOCOL.md). Started here, once every process is connected,
    // so that a storage failure now stops every process with the same exit code instead
    // of leaving the others waiting for a process that is gone.
    if let Err(e) = ctx
        .store
        .start_session(opts.identity.clone(), opts.lease)
        .map_err(DistError::Store)
    {
        send(&mut input, ToCoordinator::Stop(error_stop(me, &e)));
        stop_sent = true;
        own_error = Some(e);
    }

    // Process 0: recover the root, then tell everyone the run id (the start signal).
    let mut ledger0: Option<Arc<Ledger>> = None;
    let mut info = opts.run.clone();
    if me == 0 && own_error.is_none() {
        match prepare(ctx, &mut info, n) {
            Ok((ledger, hello)) => {
                let progress = Progress::new(hello.pending);
                dispatcher.borrow_mut().start(
                    PendingTasks::new(ctx.plan.clone(), ledger.clone()),
                    Some(progress),
                );
                ledger0 = Some(ledger);
                send(&mut input, ToCoordinator::Start(hello));
            }
            Err(e) => {
                send(&mut input, ToCoordinator::Stop(error_stop(0, &e)));
                stop_sent = true;
                own_error = Some(e);
            }
        }
    }

    let wake = std::thread::current();
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let (source, reply_tx) = RemoteSource::new(
        me as u32,
        &ctx.plan,
        opts.devices.len(),
        ev_tx,
        &ctx.cancel,
        wake.clone(),
    );
    let mut ledger_here: Option<Arc<Ledger>> = None;
    let mut hello_here: Option<Hello> = None;
    let mut stop_received: Option<StopReason> = None;
    let mut local_done = false;
    let mut engine_result: Option<std::result::Result<RunReport, ExecError>> = None;

    std::thread::scope(|s| {
        let mut engine_thread = None;
        loop {
            // Messages from the coordinator.
            let msgs: Vec<ToProcess> = inbox.borrow_mut().drain(..).collect();
            for m in msgs {
                match m {
                    ToProcess::Hello { hello, .. } => {
                        report.run_id = hello.run_id.clone();
                        if own_error.is_some() || stop_received.is_some() {
                            continue;
                        }
                        match joined(ctx, me, &hello, ledger0.clone()) {
                            Ok(ledger) => {
                                ledger_here = Some(ledger);
                                send(&mut input, ToCoordinator::Joined { process: me as u32 });
                            }
                            Err(e) => {
                                send(&mut input, ToCoordinator::Stop(error_stop(me, &e)));
                                stop_sent = true;
                                own_error = Some(e);
                            }
                        }
                        hello_here = Some(hello);
                    }
                    ToProcess::Go { .. } => {
                        let (Some(hello), Some(ledger)) = (&hello_here, ledger_here.clone()) else {
                            continue;
                        };
                        if stop_received.is_some() || engine_thread.is_some() {
                            continue;
                        }
                        let mut writer = opts.writer.clone();
                        writer.run_id = hello.run_id.clone();
                        writer.writer_tag = format!("p{me}");
                        let eopts = EngineOptions {
                            devices: opts.devices.clone(),
                            intra_op_threads: opts.intra_op_threads,
                            batch: opts.batch,
                            writer,
                            // Process 0's coordinator shows the whole run's progress.
                            progress: None,
                        };
                        let (source, wake) = (&source, wake.clone());
                        engine_thread = Some(s.spawn(move || {
                            // Each task is claimed on the root before it runs (other runs
                            // or array shards may write there too); a task another live
                            // writer holds is waited for (PROTOCOL.md, "Claims").
                            let claiming = ClaimingSource::new(
                                source,
                                &ctx.store,
                                &ctx.cancel,
                                1,
                                ctx.opts.claim_poll,
                            );
                            let r =
                                engine::run(&claiming, &ctx.store, &ledger, &eopts, &ctx.cancel);
                            let r = match (r, claiming.error()) {
                                (Ok(_), Some(e)) => {
                                    // Claiming failed: the others stop too.
                                    claiming.abort(&e);
                                    Err(ExecError::Store(e))
                                }
                                (r, _) => r,
                            };
                            wake.unpark();
                            r
                        }));
                        if me != 0 {
                            tracing::info!(
                                "process {me} of {n}: joined run {} ({} tasks to run in all) with {} worker(s) x {} thread(s) [{}]",
                                hello.run_id,
                                hello.pending,
                                opts.devices.len(),
                                opts.intra_op_threads,
                                devices_text(&opts.devices)
                            );
                        }
                    }
                    ToProcess::Task {
                        slot,
                        index,
                        task_id,
                        more,
                        ..
                    } => {
                        // A slot gone (stopping) leaves the task unreported to nobody: it
                        // stays uncommitted and runs next time.
                        let _ = reply_tx[slot as usize].send(Reply::Task(index, task_id, more));
                    }
                    ToProcess::NoMore { slot, .. } => {
                        let _ = reply_tx[slot as usize].send(Reply::NoMore);
                    }
                    ToProcess::Stop { reason, .. } => {
                        ctx.cancel.store(true, Ordering::SeqCst);
                        stop_received.get_or_insert(reason);
                    }
                }
            }
            // Ctrl-C here stops the whole run.
            if ctx.cancel.load(Ordering::SeqCst) && !stop_sent && stop_received.is_none() {
                stop_sent = true;
                send(
                    &mut input,
                    ToCoordinator::Stop(StopReason {
                        process: me as u32,
                        kind: StopKind::Interrupted,
                        // The run record's outcome reads "preempted" from this message
                        // when the signal reached another process than 0.
                        message: if synthsweep_exec::preempted() {
                            format!("preempted (SIGTERM/SIGUSR1) on process {me}")
                        } else {
                            format!("interrupted (Ctrl-C) on process {me}")
                        },
                    }),
                );
            }
            // Whether the engine is done, looked at before draining its events, so that
            // every event it sent is forwarded before the input closes.
            let engine_done = engine_thread.as_ref().is_some_and(|h| h.is_finished());
            while let Ok(e) = ev_rx.try_recv() {
                let m = match e {
                    Event::Want(slot, max) => ToCoordinator::Want {
                        process: me as u32,
                        slot,
                        max,
                    },
                    Event::Finished(index, end) => ToCoordinator::Finished {
                        process: me as u32,
                        index,
                        end,
                    },
                    Event::Stop(reason) => {
                        stop_sent = true;
                        ToCoordinator::Stop(reason)
                    }
                };
                send(&mut input, m);
            }
            if engine_done {
                let r = engine_thread
                    .take()
                    .expect("engine")
                    .join()
                    .expect("engine thread");
                if let Err(e) = &r {
                    // Its results cannot be committed. The source has told the coordinator
                    // when a commit or a claim failed; any other failure (the last flush,
                    // the writer's set-up) is told here, with its kind, so that every
                    // process exits with the same code.
                    if !stop_sent {
                        stop_sent = true;
                        send(
                            &mut input,
                            ToCoordinator::Stop(StopReason {
                                process: me as u32,
                                kind: exec_kind(e),
                                message: format!("process {me}: {e}"),
                            }),
                        );
                    }
                    ctx.cancel.store(true, Ordering::SeqCst);
                }
                engine_result = Some(r);
            }
            // This process is done once its engine is (or it never started one); then it
            // closes its input and keeps the dataflow going until every process has closed
            // theirs.
            let never_started = engine_thread.is_none()
                && engine_result.is_none()
                && (own_error.is_some() || stop_received.is_some());
            if !local_done && (engine_result.is_some() || never_started) {
                match engine_result.take() {
                    Some(Ok(r)) => report.engine = r,
                    Some(Err(e)) => {
                        own_error.get_or_insert(DistError::Exec(e));
                    }
                    None => {}
                }
                if let Some(m) = source.mismatch() {
                    own_error.get_or_insert(DistError::Mismatch(m));
                }
                input = None;
                local_done = true;
            }
            if local_done && probe.done() {
                break;
            }
            if let Some(p) = dispatcher.borrow().progress() {
                p.tick();
            }
            worker.step_or_park(Some(Duration::from_millis(100)));
        }
    });
    report.stop = stop_received;
    if me == 0 {
        let d = dispatcher.borrow();
        if let Some(p) = d.progress() {
            p.finish();
        }
        report.totals = Some(d.totals().clone());
        if report.stop.is_none() {
            report.stop = d.stop_reason().cloned();
        }
        if ledger0.is_some() {
            report.committed_by_run = finish_run(ctx, &mut info, report.stop.as_ref());
        }
    }
    match own_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

fn devices_text(devices: &[Device]) -> String {
    devices
        .iter()
        .map(|d| device_name(*d))
        .collect::<Vec<_>>()
        .join(", ")
}

fn error_stop(process: usize, e: &DistError) -> StopReason {
    let kind = match e {
        DistError::Store(s) => StopKind::of_store(s),
        DistError::Exec(e) => exec_kind(e),
        _ => StopKind::Failed,
    };
    StopReason {
        process: process as u32,
        kind,
        message: format!("process {process}: {e}"),
    }
}

fn exec_kind(e: &ExecError) -> StopKind {
    match e {
        ExecError::Store(s) => StopKind::of_store(s),
        ExecError::Thread(_) => StopKind::Failed,
    }
}

/// Process 0, before anyone writes: recovery (and `--retry-failed`), the count of tasks to
/// run, the run record.
fn prepare(ctx: &Ctx, info: &mut RunInfo, n: usize) -> Result<(Arc<Ledger>, Hello)> {
    let opts = &ctx.opts;
    let prepared = prepare_root(&ctx.store, opts.prepare)?;
    let ledger = Arc::new(prepared.ledger);
    let pending = PendingTasks::new(ctx.plan.clone(), ledger.clone())
        .filter(|t| t.is_ok())
        .count() as u64;
    let plan = &ctx.plan;
    tracing::info!(
        "sweep {}: {} tasks, {} already committed in {}, {} to run on {n} processes ({}); process 0: {} worker(s) x {} thread(s) [{}]",
        plan.spec().name(),
        plan.len(),
        plan.len().saturating_sub(pending),
        opts.root_text,
        pending,
        opts.cluster.origin,
        opts.devices.len(),
        opts.intra_op_threads,
        devices_text(&opts.devices)
    );
    if prepared.uncommitted_failed > 0 {
        tracing::info!("retrying {} failed task(s)", prepared.uncommitted_failed);
    }
    info.processes = n;
    let mut hosts: Vec<String> = opts
        .cluster
        .addresses
        .iter()
        .map(|a| {
            a.rsplit_once(':')
                .map_or(a.as_str(), |(h, _)| h)
                .to_string()
        })
        .collect();
    hosts.dedup();
    info.hosts = hosts;
    info.devices = opts.devices.iter().map(|d| device_name(*d)).collect();
    info.threads = opts.intra_op_threads;
    info.extra = serde_json::json!({
        "cluster": opts.cluster.origin,
        "addresses": opts.cluster.addresses,
    });
    ctx.store.write_run(info)?;
    let hello = Hello {
        run_id: info.run_id.clone(),
        fingerprint: ctx.fingerprint.clone(),
        pending,
    };
    Ok((ledger, hello))
}

/// Every process on the hello: check it planned the same sweep, get the ledger (process 0
/// has it already; the others read it now that recovery is over).
fn joined(
    ctx: &Ctx,
    me: usize,
    hello: &Hello,
    ledger0: Option<Arc<Ledger>>,
) -> Result<Arc<Ledger>> {
    if hello.fingerprint != ctx.fingerprint {
        return Err(DistError::Mismatch(format!(
            "process {me} planned another sweep than process 0: here {}; on process 0 {}. \
             Run every process with the same spec and the same images",
            ctx.fingerprint, hello.fingerprint
        )));
    }
    match ledger0 {
        Some(l) => Ok(l),
        // Read after this process's writer lease exists (PROTOCOL.md): it is also the view
        // its claims start from.
        None => Ok(Arc::new(ctx.store.read_ledger()?)),
    }
}

/// Process 0 at the end: the run record, finished, with what this run committed.
fn finish_run(ctx: &Ctx, info: &mut RunInfo, stop: Option<&StopReason>) -> Option<(usize, usize)> {
    let ledger = ctx.store.ledger().ok()?;
    let (mut done, mut failed) = (0, 0);
    for (_, c) in ledger.iter() {
        if c.run_id == info.run_id {
            match c.status {
                TaskStatus::Done => done += 1,
                TaskStatus::Failed => failed += 1,
            }
        }
    }
    info.finish();
    info.outcome = Some(match stop {
        None if failed > 0 => "tasks failed".into(),
        None => "complete".into(),
        Some(s)
            if s.interrupted()
                && (synthsweep_exec::preempted() || s.message.starts_with("preempted")) =>
        {
            "preempted".into()
        }
        Some(s) if s.interrupted() => "interrupted".into(),
        Some(s) => format!("stopped: {}", s.message),
    });
    info.committed_done = Some(done);
    info.committed_failed = Some(failed);
    if let Err(e) = ctx.store.write_run(info) {
        tracing::warn!("cannot write the run record: {e}");
    }
    Some((done, failed))
}
