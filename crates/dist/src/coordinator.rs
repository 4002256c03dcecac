//! The coordinator's state, on process 0: the tasks not committed yet in plan order, handed
//! out one per request (one request per idle worker slot, a new one after each finished
//! task), so fast and slow processes and short and long tasks balance; the totals of the
//! whole run; and the decision to stop. Plain data in, messages out: no timely here.
use crate::protocol::{Hello, StopKind, StopReason, TaskEnd, ToCoordinator, ToProcess};
use std::collections::HashMap;
use std::sync::Arc;
use synthsweep_exec::progress::Progress;
use synthsweep_store::Ledger;
use synthsweep_sweep::Plan;

/// A task to hand out: plan position and id; `Err` = a planning error at that position.
pub type PendingItem = Result<(u64, String), String>;

/// The plan's tasks that the ledger does not list as committed, in plan order, built one
/// at a time (as the local run's source does).
pub struct PendingTasks {
    plan: Arc<Plan>,
    ledger: Arc<Ledger>,
    next: u64,
}

impl PendingTasks {
    pub fn new(plan: Arc<Plan>, ledger: Arc<Ledger>) -> Self {
        PendingTasks {
            plan,
            ledger,
            next: 0,
        }
    }
}

impl Iterator for PendingTasks {
    type Item = PendingItem;
    fn next(&mut self) -> Option<PendingItem> {
        while self.next < self.plan.grid_size() {
            let index = self.next;
            self.next += 1;
            match self.plan.task_by_index(index) {
                Ok(Some(t)) if !self.ledger.is_committed(t.id()) => {
                    return Some(Ok((index, t.id().to_string())))
                }
                Ok(_) => {}
                Err(e) => {
                    self.next = self.plan.grid_size();
                    return Some(Err(e.to_string()));
                }
            }
        }
        None
    }
}

/// Counts over the whole run, as the coordinator saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub assigned: u64,
    pub done: u64,
    pub failed: u64,
    pub abandoned: u64,
    /// Tasks not run because another writer on the root committed them (another run, an
    /// array shard, or a writer that died after committing them).
    pub by_others: u64,
    /// Tasks finished (done or failed) per process.
    pub per_process: Vec<u64>,
}

/// Process 0's dispatcher.
pub struct Dispatcher {
    pending: Box<dyn Iterator<Item = PendingItem>>,
    processes: u32,
    exhausted: bool,
    /// Processes that have joined (checked the hello).
    joined: u32,
    /// Handed out and not reported back: plan position -> process.
    in_flight: HashMap<u64, u32>,
    stop: Option<StopReason>,
    totals: Totals,
    progress: Option<Progress>,
}

impl Dispatcher {
    /// Hands out `pending` to `processes` processes; `progress` shows the run's totals.
    pub fn new(
        pending: impl Iterator<Item = PendingItem> + 'static,
        processes: usize,
        progress: Option<Progress>,
    ) -> Self {
        Dispatcher {
            pending: Box::new(pending),
            processes: processes as u32,
            exhausted: false,
            joined: 0,
            in_flight: HashMap::new(),
            stop: None,
            totals: Totals {
                per_process: vec![0; processes],
                ..Default::default()
            },
            progress,
        }
    }

    /// A dispatcher with nothing to hand out yet (process 0 before it has prepared the
    /// output root); it can already broadcast a stop. See [`Dispatcher::start`].
    pub fn idle(processes: usize) -> Self {
        Dispatcher::new(std::iter::empty(), processes, None)
    }

    /// Sets what to hand out, once the output root is prepared.
    pub fn start(
        &mut self,
        pending: impl Iterator<Item = PendingItem> + 'static,
        progress: Option<Progress>,
    ) {
        self.pending = Box::new(pending);
        self.progress = progress;
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Why the run stopped early, if it did.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop.as_ref()
    }

    /// Tasks handed out and not reported back yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn progress(&self) -> Option<&Progress> {
        self.progress.as_ref()
    }

    fn broadcast(&self, out: &mut Vec<ToProcess>, make: impl Fn(u32) -> ToProcess) {
        out.extend((0..self.processes).map(make));
    }

    /// Stops the run (the first reason wins) and tells every process.
    fn stop(&mut self, reason: StopReason, out: &mut Vec<ToProcess>) {
        if self.stop.is_some() {
            return;
        }
        self.broadcast(out, |p| ToProcess::Stop {
            process: p,
            reason: reason.clone(),
        });
        self.stop = Some(reason);
    }

    /// Handles one message; the answers go to `out`.
    pub fn handle(&mut self, msg: ToCoordinator, out: &mut Vec<ToProcess>) {
        match msg {
            ToCoordinator::Start(hello) => {
                if self.stop.is_none() {
                    self.broadcast(out, |p| ToProcess::Hello {
                        process: p,
                        hello: hello.clone(),
                    });
                }
            }
            ToCoordinator::Joined { .. } => {
                self.joined += 1;
                if self.joined == self.processes && self.stop.is_none() {
                    self.broadcast(out, |p| ToProcess::Go { process: p });
                }
            }
            ToCoordinator::Want { process, slot, max } => {
                // Up to `max` tasks for this request, each recorded in flight.
                let mut handed: Vec<(u64, String)> = Vec::new();
                while handed.len() < (max as usize).max(1) {
                    let next = if self.stop.is_some() || self.exhausted {
                        None
                    } else {
                        self.pending.next()
                    };
                    match next {
                        Some(Ok((index, task_id))) => {
                            self.in_flight.insert(index, process);
                            self.totals.assigned += 1;
                            if let Some(p) = &self.progress {
                                p.task_started();
                            }
                            handed.push((index, task_id));
                        }
                        Some(Err(e)) => {
                            self.exhausted = true;
                            let reason = StopReason {
                                process: 0,
                                kind: StopKind::Failed,
                                message: format!("planning stopped the run: {e}"),
                            };
                            self.stop(reason, out);
                            break;
                        }
                        None => {
                            self.exhausted = true;
                            break;
                        }
                    }
                }
                if handed.is_empty() {
                    out.push(ToProcess::NoMore { process, slot });
                }
                let n = handed.len();
                for (k, (index, task_id)) in handed.into_iter().enumerate() {
                    out.push(ToProcess::Task {
                        process,
                        slot,
                        index,
                        task_id,
                        more: k + 1 < n,
                    });
                }
            }
            ToCoordinator::Finished {
                process,
                index,
                end,
            } => {
                if self.in_flight.remove(&index).is_none() {
                    // Only a bug could do this; the writer would refuse a second commit.
                    tracing::warn!(
                        "process {process} reported task #{index}, which was not handed out"
                    );
                    return;
                }
                match end {
                    TaskEnd::Done => self.totals.done += 1,
                    TaskEnd::Failed => self.totals.failed += 1,
                    TaskEnd::Abandoned => self.totals.abandoned += 1,
                    TaskEnd::CommittedElsewhere => self.totals.by_others += 1,
                }
                if matches!(end, TaskEnd::Done | TaskEnd::Failed) {
                    if let Some(n) = self.totals.per_process.get_mut(process as usize) {
                        *n += 1;
                    }
                }
                if let Some(p) = &self.progress {
                    match end {
                        TaskEnd::Abandoned => p.task_abandoned(),
                        TaskEnd::CommittedElsewhere => p.task_committed_elsewhere(),
                        _ => p.task_finished(end == TaskEnd::Done),
                    }
                }
            }
            ToCoordinator::Stop(reason) => self.stop(reason, out),
        }
    }
}

/// A short description of a plan that differs when two processes planned different sweeps
/// (other spec, other images): counts and the first and last task ids.
pub fn fingerprint(plan: &Plan) -> String {
    let id_at = |i: u64| -> Option<String> {
        plan.task_by_index(i)
            .ok()
            .flatten()
            .map(|t| t.short_id().to_string())
    };
    let grid = plan.grid_size();
    let first = (0..grid).find_map(id_at).unwrap_or_else(|| "?".into());
    let last = (0..grid)
        .rev()
        .find_map(id_at)
        .unwrap_or_else(|| "?".into());
    format!(
        "sweep {:?}: {} tasks over {grid} grid positions, first task {first}, last {last}",
        plan.spec().name(),
        plan.len()
    )
}

/// A hello for tests and for process 0.
pub fn hello(run_id: &str, fingerprint: &str, pending: u64) -> Hello {
    Hello {
        run_id: run_id.to_string(),
        fingerprint: fingerprint.to_string(),
        pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: u64) -> impl Iterator<Item = PendingItem> {
        (0..n).map(|i| Ok((i * 2, format!("id{i}"))))
    }

    fn want(d: &mut Dispatcher, process: u32, slot: u32) -> ToProcess {
        let mut out = Vec::new();
        d.handle(
            ToCoordinator::Want {
                process,
                slot,
                max: 1,
            },
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        out.pop().unwrap()
    }

    fn finish(d: &mut Dispatcher, process: u32, index: u64, end: TaskEnd) {
        let mut out = Vec::new();
        d.handle(
            ToCoordinator::Finished {
                process,
                index,
                end,
            },
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn hands_out_each_task_once_then_no_more() {
        let mut d = Dispatcher::new(items(3), 2, None);
        let mut out = Vec::new();
        d.handle(ToCoordinator::Start(hello("r", "f", 3)), &mut out);
        assert_eq!(
            out.iter().map(ToProcess::process).collect::<Vec<_>>(),
            [0, 1]
        );
        out.clear();
        d.handle(ToCoordinator::Joined { process: 1 }, &mut out);
        assert!(out.is_empty(), "no start before every process joined");
        d.handle(ToCoordinator::Joined { process: 0 }, &mut out);
        assert_eq!(
            out,
            [ToProcess::Go { process: 0 }, ToProcess::Go { process: 1 }]
        );
        let a = want(&mut d, 0, 0);
        let b = want(&mut d, 1, 0);
        assert!(matches!(
            a,
            ToProcess::Task {
                process: 0,
                slot: 0,
                index: 0,
                ..
            }
        ));
        assert!(matches!(
            b,
            ToProcess::Task {
                process: 1,
                slot: 0,
                index: 2,
                ..
            }
        ));
        finish(&mut d, 1, 2, TaskEnd::Done);
        // The fast process asks again and gets the next task: pull, not a static split.
        assert!(
            matches!(want(&mut d, 1, 0), ToProcess::Task { index: 4, ref task_id, .. } if task_id == "id2")
        );
        assert_eq!(
            want(&mut d, 0, 1),
            ToProcess::NoMore {
                process: 0,
                slot: 1
            }
        );
        finish(&mut d, 0, 0, TaskEnd::Failed);
        finish(&mut d, 1, 4, TaskEnd::Done);
        assert_eq!(
            want(&mut d, 1, 0),
            ToProcess::NoMore {
                process: 1,
                slot: 0
            }
        );
        let t = d.totals();
        assert_eq!((t.assigned, t.done, t.failed, t.abandoned), (3, 2, 1, 0));
        assert_eq!(t.per_process, [1, 2]);
        assert_eq!(d.in_flight(), 0);
        assert!(d.stop_reason().is_none());
    }

    #[test]
    fn a_stop_is_broadcast_once_and_ends_dispatch() {
        let mut d = Dispatcher::new(items(10), 3, None);
        let _ = want(&mut d, 2, 0);
        let reason = StopReason {
            process: 2,
            kind: StopKind::Interrupted,
            message: "interrupted".into(),
        };
        let mut out = Vec::new();
        d.handle(ToCoordinator::Stop(reason.clone()), &mut out);
        assert_eq!(out.len(), 3);
        assert!(out
            .iter()
            .all(|m| matches!(m, ToProcess::Stop { reason: r, .. } if *r == reason)));
        out.clear();
        d.handle(
            ToCoordinator::Stop(StopReason {
                message: "second".into(),
                ..reason.clone()
            }),
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(
            want(&mut d, 0, 0),
            ToProcess::NoMore {
                process: 0,
                slot: 0
            }
        );
        finish(&mut d, 2, 0, TaskEnd::Abandoned);
        assert_eq!(d.totals().abandoned, 1);
        assert_eq!(d.stop_reason(), Some(&reason));
    }

    #[test]
    fn a_planning_error_stops_the_run() {
        let pending = vec![Ok((0, "a".to_string())), Err("bad image".to_string())];
        let mut d = Dispatcher::new(pending.into_iter(), 2, None);
        let _ = want(&mut d, 0, 0);
        let mut out = Vec::new();
        d.handle(
            ToCoordinator::Want {
                process: 1,
                slot: 0,
                max: 1,
            },
            &mut out,
        );
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(
            matches!(&out[0], ToProcess::Stop { reason, .. } if reason.message.contains("planning stopped the run: bad image") && reason.kind == StopKind::Failed)
        );
        assert_eq!(
            out[2],
            ToProcess::NoMore {
                process: 1,
                slot: 0
            }
        );
    }

    #[test]
    fn a_request_for_several_tasks_gets_up_to_that_many_the_last_marked() {
        let mut d = Dispatcher::new(items(3), 1, None);
        let mut out = Vec::new();
        let mut ask = |d: &mut Dispatcher, max| {
            out.clear();
            d.handle(
                ToCoordinator::Want {
                    process: 0,
                    slot: 1,
                    max,
                },
                &mut out,
            );
            out.iter()
                .map(|m| match m {
                    ToProcess::Task { index, more, .. } => {
                        format!("{index}{}", if *more { "+" } else { "" })
                    }
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ask(&mut d, 2), ["0+", "2"]);
        assert_eq!(ask(&mut d, 2), ["4"]);
        assert_eq!(ask(&mut d, 2), ["NoMore { process: 0, slot: 1 }"]);
        for index in [0, 2, 4] {
            finish(&mut d, 0, index, TaskEnd::Done);
        }
        assert_eq!((d.in_flight(), d.totals().done), (0, 3));
    }
}
