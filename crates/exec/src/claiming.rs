//! Claiming tasks before running them, so that any number of writers can share one output
//! root (array shards, a sweep submitted twice, runs of different specs): a [`TaskSource`]
//! that claims the tasks of another source in small groups and hands out only the ones this
//! writer got, then waits for the tasks other live writers hold until each is committed,
//! taking over those whose writer dies. See `crates/store/PROTOCOL.md`, "Claims" and
//! "Waiting for other writers".

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use synthsweep_store::{Claim, PendingClaims, Store, StoreError};

use crate::source::{Assignment, TaskEnd, TaskSource};

/// How often a waiting writer looks again at tasks other writers hold, at most and at least.
const POLL_MIN: Duration = Duration::from_millis(200);
const POLL_MAX: Duration = Duration::from_secs(5);
/// How often the waiting writer says who holds what.
const SAY_EVERY: Duration = Duration::from_secs(30);
/// Claim groups grow (doubling, up to this) while a group's tasks are all handed out within
/// [`QUICK`], and shrink back when they take longer: quick tasks cost few claim rounds, and
/// long ones are not held ahead of other writers that could run them.
const GROUP_MAX: usize = 256;
const QUICK: Duration = Duration::from_secs(2);

/// Hands out the tasks of `inner` that this writer claimed (see the module docs). The store
/// must have a writer session (`Store::start_session`). A storage failure or a lost lease
/// ends the stream; [`ClaimingSource::error`] returns it.
pub struct ClaimingSource<'a> {
    inner: &'a dyn TaskSource,
    store: &'a Store,
    cancel: &'a AtomicBool,
    /// The smallest claim group.
    group: usize,
    poll: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Claimed, not handed out yet.
    ready: VecDeque<Assignment>,
    /// Held by other live writers: asked for again until committed.
    held: Vec<(Assignment, String)>,
    inner_done: bool,
    error: Option<StoreError>,
    said: Option<Instant>,
    /// Tasks another writer committed while this one waited for them.
    by_others: u64,
    /// The current claim group size and when the last group was claimed.
    group: usize,
    claimed_at: Option<Instant>,
    /// The next group, taken from the inner source and being claimed in the background
    /// while the slots run the tasks of the current one (see [`ClaimingSource::next`]).
    ahead: Option<(Vec<Assignment>, PendingClaims)>,
}

impl<'a> ClaimingSource<'a> {
    /// Claims at least `group` tasks of `inner` per request round (more while tasks are
    /// quick, see [`GROUP_MAX`]); waiting writers look
    /// again every `poll` (clamped to 0.2-5 s; half the lease's renewal period is a good
    /// choice: `LeaseOptions::renew_every / 2`).
    pub fn new(
        inner: &'a dyn TaskSource,
        store: &'a Store,
        cancel: &'a AtomicBool,
        group: usize,
        poll: Duration,
    ) -> Self {
        ClaimingSource {
            inner,
            store,
            cancel,
            group: group.max(1),
            poll: poll.clamp(POLL_MIN, POLL_MAX),
            state: Mutex::new(State {
                group: group.max(1),
                ..State::default()
            }),
        }
    }

    /// The storage failure or lost lease that ended the stream, if any.
    pub fn error(&self) -> Option<StoreError> {
        self.state.lock().expect("claims lock").error.take()
    }

    /// Tasks of this run that another writer committed: found committed when taking over a
    /// dead writer's claim, or committed by a live writer while this one waited for them.
    pub fn committed_by_others(&self) -> u64 {
        self.state.lock().expect("claims lock").by_others
    }

    /// The size of the next claim group: doubled while groups are used up quickly, halved
    /// back towards the smallest when not.
    fn next_group(&self, s: &mut State) -> usize {
        s.group = match s.claimed_at {
            Some(t) if t.elapsed() < QUICK => (s.group * 2).min(GROUP_MAX.max(self.group)),
            Some(_) => (s.group / 2).max(self.group),
            None => s.group,
        };
        s.claimed_at = Some(Instant::now());
        s.group
    }

    /// Takes the next group (at least `at_least` tasks, a slot's batch) from the inner
    /// source and starts claiming it in the background (nothing when the inner source is
    /// done).
    fn claim_ahead(&self, slot: usize, s: &mut State, at_least: usize) -> Result<(), StoreError> {
        // A source shared with other processes is asked for a slot's batch only (each
        // process taking a whole group would leave the others idle at the end); a local
        // one for a group that grows while tasks are quick.
        let n = if self.inner.shared_with_other_processes() {
            at_least
        } else {
            self.next_group(s).max(at_least)
        };
        let group = self.inner.next(slot, n);
        if group.is_empty() {
            s.inner_done = true;
            return Ok(());
        }
        let ids: Vec<String> = group.iter().map(|a| a.task.id().to_string()).collect();
        match self.store.claim_ahead(ids) {
            Ok(p) => {
                s.ahead = Some((group, p));
                Ok(())
            }
            Err(e) => {
                for a in &group {
                    self.inner.finished(slot, a, TaskEnd::Abandoned);
                }
                Err(e)
            }
        }
    }

    /// Waits for the group claimed ahead, if any, and sorts its tasks: ours to the ready
    /// queue, held ones to wait for, committed ones reported.
    fn land_ahead(&self, slot: usize, s: &mut State) -> Result<(), StoreError> {
        let Some((group, pending)) = s.ahead.take() else {
            return Ok(());
        };
        let claims = match pending.wait() {
            Ok(c) => c,
            Err(e) => {
                for a in &group {
                    self.inner.finished(slot, a, TaskEnd::Abandoned);
                }
                return Err(e);
            }
        };
        for (a, c) in group.into_iter().zip(claims) {
            match c {
                Claim::Ours => s.ready.push_back(a),
                Claim::Held { by } => s.held.push((a, by)),
                // Committed by a dead writer before it died: not run here.
                Claim::Committed => {
                    s.by_others += 1;
                    self.inner.finished(slot, &a, TaskEnd::CommittedElsewhere)
                }
            }
        }
        Ok(())
    }

    /// One look at the held tasks: drops those committed meanwhile, takes those whose
    /// writer died (or that were given back).
    fn look_again(&self, slot: usize, s: &mut State) -> Result<(), StoreError> {
        self.store.refresh_ledger()?;
        let mut still = Vec::new();
        for (a, by) in std::mem::take(&mut s.held) {
            if self.store.known_committed(a.task.id()) {
                s.by_others += 1;
                self.inner.finished(slot, &a, TaskEnd::CommittedElsewhere);
            } else {
                still.push((a, by));
            }
        }
        s.held = still;
        if s.held.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = s
            .held
            .iter()
            .map(|(a, _)| a.task.id().to_string())
            .collect();
        let claims = self.store.claim(&ids)?;
        let mut still = Vec::new();
        for ((a, _), c) in std::mem::take(&mut s.held).into_iter().zip(claims) {
            match c {
                Claim::Ours => s.ready.push_back(a),
                Claim::Held { by } => still.push((a, by)),
                Claim::Committed => {
                    s.by_others += 1;
                    self.inner.finished(slot, &a, TaskEnd::CommittedElsewhere);
                }
            }
        }
        s.held = still;
        Ok(())
    }

    /// Gives the tasks not run back to the source (the run is stopping). A group claimed
    /// ahead is waited for first, so that its claims are recorded (the session releases
    /// them at its end).
    fn give_back(&self, slot: usize, s: &mut State) {
        if let Err(e) = self.land_ahead(slot, s) {
            s.error.get_or_insert(e);
        }
        for a in s.ready.drain(..) {
            self.inner.finished(slot, &a, TaskEnd::Abandoned);
        }
        for (a, _) in s.held.drain(..) {
            self.inner.finished(slot, &a, TaskEnd::Abandoned);
        }
    }

    fn say_who(&self, s: &mut State) {
        if s.said.is_some_and(|t| t.elapsed() < SAY_EVERY) {
            return;
        }
        s.said = Some(Instant::now());
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, by) in &s.held {
            *per.entry(by.as_str()).or_default() += 1;
        }
        let who: Vec<String> = per
            .iter()
            .map(|(by, n)| format!("{n} held by writer {by}"))
            .collect();
        tracing::info!(
            "waiting for {} task(s) other live writers claimed: {} (`synthsweep status` shows them)",
            s.held.len(),
            who.join(", ")
        );
    }
}

impl ClaimingSource<'_> {
    /// Positions in `ready` of its first task and of those that share its batch key, up to
    /// `max` in all.
    fn compatible_ready(ready: &VecDeque<Assignment>, max: usize) -> Vec<usize> {
        let Some(first) = ready.front() else {
            return Vec::new();
        };
        let mut out = vec![0];
        if max > 1 {
            out.extend(
                ready
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, a)| crate::methods::batch_compatible(&first.task, &a.task))
                    .map(|(k, _)| k)
                    .take(max - 1),
            );
        }
        out
    }
}

impl TaskSource for ClaimingSource<'_> {
    fn committed_elsewhere(&self) -> u64 {
        self.committed_by_others()
    }

    /// Up to `max` claimed tasks: the first ready task and the ready ones that share its
    /// batch key ([`batch_compatible`](crate::methods::batch_compatible)); with fewer than
    /// `max` of those, one more group is landed or claimed first (a slot's batch is filled
    /// where the plan allows; the others wait in the ready queue for the next request).
    /// Claims are made in groups ahead of the slots: when a slot takes its tasks and at
    /// most half a group is left ready, the next group is claimed in the background
    /// ([`Store::claim_ahead`]), so that claim requests overlap with the tasks running
    /// instead of stopping every slot. At most one group is claimed ahead of what the slots
    /// run; a writer that dies holding it leaves it to expire with its lease, and a writer
    /// that stops releases it (see PROTOCOL.md, "Claims").
    fn next(&self, slot: usize, max: usize) -> Vec<Assignment> {
        let max = max.max(1);
        let mut s = self.state.lock().expect("claims lock");
        let mut filled = false;
        loop {
            if s.error.is_some() || self.cancel.load(Ordering::Relaxed) {
                self.give_back(slot, &mut s);
                return Vec::new();
            }
            let compatible = Self::compatible_ready(&s.ready, max);
            let no_more = s.inner_done && s.ahead.is_none();
            // Enough ready already (its first task cannot fill a batch with them, e.g. a
            // kind that runs alone or other batch keys): hand out what fits rather than
            // claim yet another group, which would let the ready queue, and the claims a
            // killed writer strands, grow without bound.
            let enough = s.ready.len() >= max;
            if !compatible.is_empty() && (compatible.len() >= max || no_more || filled || enough) {
                // The first ready task and the ready tasks that share its batch key, in order.
                let mut out = Vec::with_capacity(compatible.len());
                for (taken, k) in compatible.into_iter().enumerate() {
                    out.push(s.ready.remove(k - taken).expect("a ready task"));
                }
                if s.ahead.is_none() && !s.inner_done && s.ready.len() <= s.group / 2 {
                    if let Err(e) = self.claim_ahead(slot, &mut s, max) {
                        tracing::error!("claiming tasks: {e}");
                        s.error = Some(e);
                    }
                }
                return out;
            }
            let step = if s.ahead.is_some() {
                filled = true;
                self.land_ahead(slot, &mut s)
            } else if !s.inner_done {
                filled = true;
                self.claim_ahead(slot, &mut s, max)
                    .and_then(|()| self.land_ahead(slot, &mut s))
            } else if s.held.is_empty() {
                return Vec::new();
            } else {
                // Only tasks others hold are left: wait (other slots of this process may
                // still be running theirs; the writer flushes on age meanwhile).
                self.say_who(&mut s);
                drop(s);
                let until = Instant::now() + self.poll;
                while Instant::now() < until && !self.cancel.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                s = self.state.lock().expect("claims lock");
                if s.held.is_empty() || self.cancel.load(Ordering::Relaxed) {
                    continue;
                }
                self.look_again(slot, &mut s)
            };
            if let Err(e) = step {
                tracing::error!("claiming tasks: {e}");
                s.error = Some(e);
            }
        }
    }

    fn finished(&self, slot: usize, task: &Assignment, end: TaskEnd) {
        self.inner.finished(slot, task, end);
    }

    fn abort(&self, why: &StoreError) {
        self.inner.abort(why);
    }
}
