//! This process's writer session: its lease (written first, renewed by a heartbeat
//! thread, deleted last), the tasks it claimed and what became of them, and the ledger as
//! it has read it. Every commit, claim and clean-up of the process goes through it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Result, StoreError};
use crate::lease::{within, LeaseClock, LeaseOptions, WriterIdentity, WriterInfo, CLOCK};
use crate::ledger::Ledger;
use crate::store::{Store, STAGING};

/// How long a task found held by a live writer counts as held by it without looking at
/// its claims again. A writer that held the task through a set and then excluded it (two
/// writers' sets crossing, PROTOCOL.md "Claims") holds it no more; looking again after this
/// long settles such a crossing even when both writers live on.
pub(crate) const HELD_FRESH: Duration = Duration::from_secs(20);

/// A claim this writer holds, and how far its task got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    pub gen: u32,
    pub state: HeldState,
    /// The number of this writer's claim set that holds it (generation 0), if it was
    /// claimed with a set rather than with a per-task claim.
    pub set: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeldState {
    /// Claimed, not in any commit yet: may be released.
    Claimed,
    /// In a commit that was attempted: it may have landed, so never released.
    Flushing,
    /// Committed.
    Committed,
}

/// The ledger as this writer has read it: the tasks files seen and their rows.
#[derive(Debug, Default)]
pub(crate) struct LedgerView {
    pub ledger: Ledger,
    pub files: HashSet<String>,
}

/// A writer session (one per process; see [`Store::start_session`]).
#[derive(Debug)]
pub(crate) struct Session {
    pub info: WriterInfo,
    pub opts: LeaseOptions,
    pub clock: Mutex<LeaseClock>,
    stop: Mutex<bool>,
    wake: Condvar,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
    pub claims: Mutex<HashMap<String, Held>>,
    pub view: Mutex<LedgerView>,
    /// Leases judged dead: dead for good, so never judged again.
    pub dead: Mutex<HashSet<String>>,
    /// Who held each task this writer found held by another writer, and when: while that
    /// writer lives, asking again within [`HELD_FRESH`] needs no request on the task's claim.
    pub held_by: Mutex<HashMap<String, (String, Instant)>>,
    /// This writer's claim sets as last written, by number (see `claimsets.rs`).
    pub sets: Mutex<std::collections::BTreeMap<u32, crate::claimsets::ClaimSet>>,
    /// The number of its next claim set.
    pub next_set: std::sync::atomic::AtomicU32,
    /// Commit points (tasks-file writes) in flight, for [`Store::quit_session`].
    commits: Mutex<Commits>,
    commits_done: Condvar,
}

/// The commit points of a session in flight, and whether one failed (it may still land);
/// the claim requests in flight, and whether the session is ending (it claims no more).
#[derive(Debug, Default)]
struct Commits {
    in_flight: usize,
    unsure: bool,
    claims: usize,
    ending: bool,
}

/// A claim request in flight (see [`Session::begin_claim`]).
pub(crate) struct ClaimGuard(Arc<Session>);

impl ClaimGuard {
    pub fn session(&self) -> &Session {
        &self.0
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let mut c = self.0.commits.lock().unwrap();
        c.claims -= 1;
        self.0.commits_done.notify_all();
    }
}

/// A commit point in flight (see [`Session::begin_commit`]); dropping it without
/// [`CommitGuard::landed`] records that the commit failed and may still land.
pub(crate) struct CommitGuard<'a> {
    session: &'a Session,
    landed: bool,
}

impl CommitGuard<'_> {
    pub fn landed(mut self) {
        self.landed = true;
    }
}

impl Drop for CommitGuard<'_> {
    fn drop(&mut self) {
        let mut c = self.session.commits.lock().unwrap();
        c.in_flight -= 1;
        c.unsure |= !self.landed;
        self.session.commits_done.notify_all();
    }
}

impl Session {
    /// The time left before this writer must stop committing.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] once that time has run out.
    pub fn check(&self) -> Result<Duration> {
        self.clock.lock().unwrap().check(&self.info.lease_id)
    }

    /// What to report for an error of this writer's storage work: a storage failure met
    /// once the lease is lost to a stall (the process was stopped past its deadline: a time
    /// limit seen late, or a file others already cleaned up after it) is that lost lease
    /// (transient, exit 75), not a storage failure (74), which would send the user after a
    /// storage that is fine.
    pub fn explain(&self, e: StoreError) -> StoreError {
        if !matches!(e, StoreError::Storage(_)) {
            return e;
        }
        match self.check() {
            Err(lost @ StoreError::LeaseLost { storage: false, .. }) => {
                tracing::debug!("{e} (after the lease was lost to a stall)");
                lost
            }
            _ => e,
        }
    }

    /// Starts a commit point: checks the lease and counts the commit in flight, both under
    /// one lock, so that [`Store::quit_session`] either sees it or refuses it. Returns the
    /// time left for it.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the lease is lost or the session was quit.
    pub fn begin_commit(&self) -> Result<(CommitGuard<'_>, Duration)> {
        let mut c = self.commits.lock().unwrap();
        let remaining = self.check()?;
        c.in_flight += 1;
        Ok((
            CommitGuard {
                session: self,
                landed: false,
            },
            remaining,
        ))
    }

    /// Starts a claim request: checks the lease and counts the request in flight, refusing
    /// once the session is ending ([`Session::end_claims`]), both under one lock, so that
    /// no claim is made after the ending marker (PROTOCOL.md, "Claims").
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`]; [`StoreError::NoSession`] once the session is ending.
    pub fn begin_claim(self: &Arc<Self>) -> Result<ClaimGuard> {
        let mut c = self.commits.lock().unwrap();
        if c.ending {
            return Err(StoreError::NoSession(
                "claiming tasks (this writer's session is ending)",
            ));
        }
        self.check()?;
        c.claims += 1;
        Ok(ClaimGuard(self.clone()))
    }

    /// From now on this session claims nothing: refuses new claim requests and waits for
    /// those in flight (claims made ahead, see [`Store::claim_ahead`]) to finish, so that
    /// what they claimed is recorded (and released as unrun).
    pub fn end_claims(&self) {
        let mut c = self.commits.lock().unwrap();
        c.ending = true;
        while c.claims > 0 {
            c = self.commits_done.wait(c).unwrap();
        }
    }

    /// Forgets claims that are no longer this writer's (taken over): they must never be
    /// released, since deleting a generation below a newer one would let a first claim
    /// (generation 0, made without looking) succeed beside the newer holder.
    pub fn forget(&self, task_ids: &[String]) {
        let mut claims = self.claims.lock().unwrap();
        for t in task_ids {
            claims.remove(t);
        }
    }

    /// Marks claimed tasks as being committed (from now on never released).
    pub fn mark(&self, task_ids: &[String], state: HeldState) {
        let mut claims = self.claims.lock().unwrap();
        for t in task_ids {
            if let Some(h) = claims.get_mut(t) {
                h.state = state;
            }
        }
    }
}

/// What ending a session did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEnd {
    /// Claims given back (tasks this writer claimed and did not run).
    pub released: usize,
    /// Claim objects (all generations) of committed tasks deleted, when no other writer was
    /// alive.
    pub claims_cleaned: usize,
    /// What the recovery at the end cleaned up, when this writer took over the claims of
    /// writers that died during its run.
    pub recovered: Option<crate::recover::RecoveryReport>,
}

fn valid_part(what: &str, s: &str, extra: &str) -> Result<()> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    {
        return Err(StoreError::invalid(
            "tasks",
            what,
            format!("{s:?}: use letters, digits or one of {extra:?} only"),
        ));
    }
    Ok(())
}

impl Store {
    /// Starts this process's writer session: writes its lease `_leases/<lease_id>.json`
    /// and starts the heartbeat thread that renews it. From then on this store's writers
    /// name their batches after the lease, claims are made in its name, recovery spares
    /// every writer whose lease is alive, and commits stop once the lease could have
    /// expired. One session per `Store` (open another `Store` for another writer).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a run id or tag with other characters than letters,
    /// digits, '-' and '_' (the tag: no '-'); [`StoreError::Config`] when a session is
    /// already running; [`StoreError::Storage`] when the lease cannot be written.
    pub fn start_session(&self, who: WriterIdentity, opts: LeaseOptions) -> Result<WriterInfo> {
        valid_part("run id", &who.run_id, "-_")?;
        valid_part("writer tag", &who.tag, "_")?;
        if self.inner.session.lock().unwrap().is_some() {
            return Err(StoreError::Config(
                "this store already has a writer session".into(),
            ));
        }
        let nonce = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let info = WriterInfo {
            lease_id: format!("{}-{}-{nonce}", who.run_id, who.tag),
            run_id: who.run_id,
            host: crate::runs::hostname(),
            pid: std::process::id(),
            role: who.role,
            started_at: crate::runs::now_rfc3339(),
            lease_ms: opts.length.as_millis() as u64,
        };
        let sent = Instant::now();
        self.block_on(within(
            opts.commit_window(),
            "writing the writer lease",
            self.put_lease(&info, true),
        ))?;
        let session = Arc::new(Session {
            clock: Mutex::new(LeaseClock::new(sent, &opts)),
            info: info.clone(),
            opts,
            stop: Mutex::new(false),
            wake: Condvar::new(),
            heartbeat: Mutex::new(None),
            claims: Mutex::default(),
            view: Mutex::default(),
            dead: Mutex::default(),
            held_by: Mutex::default(),
            sets: Mutex::default(),
            next_set: std::sync::atomic::AtomicU32::new(0),
            commits: Mutex::default(),
            commits_done: Condvar::new(),
        });
        let (store, s) = (self.clone(), session.clone());
        let handle = std::thread::Builder::new()
            .name("synthsweep-lease".into())
            .spawn(move || heartbeat(&store, &s))?;
        *session.heartbeat.lock().unwrap() = Some(handle);
        *self.inner.session.lock().unwrap() = Some(session);
        tracing::debug!("writer lease {} started", info.lease_id);
        Ok(info)
    }

    pub(crate) fn current_session(&self) -> Option<Arc<Session>> {
        self.inner.session.lock().unwrap().clone()
    }

    pub(crate) fn session(&self, what: &'static str) -> Result<Arc<Session>> {
        self.current_session().ok_or(StoreError::NoSession(what))
    }

    /// This writer's lease id, while a session runs.
    pub fn lease_id(&self) -> Option<String> {
        self.current_session().map(|s| s.info.lease_id.clone())
    }

    /// The time left before this writer must stop committing (`None` without a session).
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] once the lease could have expired.
    pub fn check_lease(&self) -> Result<Option<Duration>> {
        self.current_session().map(|s| s.check()).transpose()
    }

    /// Ends the session: removes the leftovers of writers found dead during the run (a
    /// recovery, when any were), stops the heartbeat, gives back the claims of tasks that never
    /// went into a commit, deletes the claims of committed tasks when no other writer is
    /// alive, then the probe, the staging folder and, last, the lease. After a lost lease
    /// nothing is released (others may have taken the tasks over already). Call it once the
    /// writers of this store have finished.
    ///
    /// # Errors
    /// [`StoreError::Storage`]; the lease then stays and expires by itself.
    pub fn finish_session(&self) -> Result<SessionEnd> {
        let mut end = SessionEnd::default();
        // Writers this one found dead during the run (it took over their claims) died
        // after its start-up recovery: their leftovers go now, not at some later run.
        let met_dead = self
            .current_session()
            .is_some_and(|s| !s.dead.lock().unwrap().is_empty() && s.check().is_ok());
        if met_dead {
            match self.recover(crate::recover::RecoverOptions::default()) {
                Ok(r) => end.recovered = Some(r),
                Err(e) => tracing::warn!("cleaning up after dead writers: {e}"),
            }
        }
        let Some(s) = self.inner.session.lock().unwrap().take() else {
            return Ok(end);
        };
        stop_heartbeat(&s);
        // Claims made ahead and still in flight land (and are recorded) before the marker.
        s.end_claims();
        if s.check().is_ok() {
            let unrun: Vec<String> = s
                .claims
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, h)| h.state == HeldState::Claimed)
                .map(|(t, _)| t.clone())
                .collect();
            // From here this writer claims nothing: say so, so that the last of several
            // writers ending together deletes the claims of committed tasks.
            self.block_on(self.mark_ending(&s))
                .map_err(|e| s.explain(e))?;
            end.released = self.release_with(&s, &unrun).map_err(|e| s.explain(e))?;
            end.claims_cleaned = self
                .block_on(self.clean_committed_claims(&s.info.lease_id, None))
                .map_err(|e| s.explain(e))?;
        }
        let id = s.info.lease_id.clone();
        // A commit that failed (a timeout, say) may still land: then the lease must expire
        // by itself, as after a kill, so that nobody takes those tasks over before the
        // margin has passed (see PROTOCOL.md, "Leases"). Its staging files stay for the
        // same reason; recovery removes them with the expired lease.
        let unsure = s
            .claims
            .lock()
            .unwrap()
            .values()
            .any(|h| h.state == HeldState::Flushing);
        if unsure {
            tracing::warn!(
                "writer lease {id} left to expire: a commit of this writer failed and may still land"
            );
            return Ok(end);
        }
        self.block_on(self.delete_lease(&id))?;
        tracing::debug!("writer lease {id} ended");
        Ok(end)
    }

    /// Ends the session of a process that is about to exit at once (a second Ctrl-C),
    /// taking at most about `wait`: stops the heartbeat, refuses every later commit and
    /// claim (the session stays, closed), waits for commit points in flight to land, then
    /// deletes the lease, so that the next run's recovery removes this writer's leftovers
    /// and takes its claims over right away instead of after the lease's expiry. When a
    /// commit is still in flight after `wait`, or one failed (it may still land), or the
    /// heartbeat is in the middle of a renewal, the lease is left to expire by itself, as
    /// after a kill. Returns whether the lease was deleted. Claims are not given back one by
    /// one: with the lease gone, the next writer takes them over.
    pub fn quit_session(&self, wait: Duration) -> bool {
        let Some(s) = self.current_session() else {
            return false;
        };
        let deadline = Instant::now() + wait;
        *s.stop.lock().unwrap() = true;
        s.wake.notify_all();
        let heartbeat = s.heartbeat.lock().unwrap().take();
        if let Some(h) = &heartbeat {
            while !h.is_finished() {
                if Instant::now() >= deadline {
                    return false; // a renewal in flight could write the lease again
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let mut c = s.commits.lock().unwrap();
        s.clock.lock().unwrap().lost = Some(("the process is quitting".into(), false));
        while c.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            c = s.commits_done.wait_timeout(c, left).unwrap().0;
        }
        if c.unsure {
            return false;
        }
        drop(c);
        let id = s.info.lease_id.clone();
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(200));
        let r = self.block_on(within(
            left,
            "deleting the writer lease",
            self.delete_lease(&id),
        ));
        r.is_ok()
    }

    /// The end of a stopped writer's traces: its clock probe, its staging folder (local
    /// roots), its lease, then its ending marker (if it wrote one).
    async fn delete_lease(&self, id: &str) -> Result<()> {
        self.delete_coord(&self.path(&[CLOCK, id])).await?;
        if let Some(dir) = &self.inner.local {
            let _ = std::fs::remove_dir_all(dir.join(STAGING).join(id));
        }
        self.delete_coord(&self.lease_path(id)).await?;
        // After the lease: a marker without its lease means an ended writer, where a
        // lease without its marker would look like a writer that may still claim.
        self.delete_coord(&self.ending_path(id)).await
    }

    /// Test hook: stops renewing the lease but keeps the session, as when the process is
    /// stalled (SIGSTOP, swapping): once the commit window has passed, commits and claims
    /// are refused.
    #[doc(hidden)]
    pub fn stall_heartbeat(&self) {
        if let Some(s) = self.current_session() {
            stop_heartbeat(&s);
        }
    }

    /// Test hook: stops the heartbeat and forgets the session, leaving the lease, claims and
    /// files as they are, as `kill -9` would. The lease then expires by itself.
    #[doc(hidden)]
    pub fn abandon_session(&self) {
        if let Some(s) = self.inner.session.lock().unwrap().take() {
            stop_heartbeat(&s);
        }
    }

    /// Re-reads the tasks files this writer has not seen yet; returns the tasks they
    /// committed. Waiting writers call it to learn what others committed.
    ///
    /// # Errors
    /// [`StoreError::NoSession`], [`StoreError::Storage`].
    pub fn refresh_ledger(&self) -> Result<Vec<String>> {
        let s = self.session("refreshing the ledger")?;
        self.block_on(self.refresh_view(&s))
    }

    /// Reads new tasks files into the session's view; returns the newly committed ids.
    pub(crate) async fn refresh_view(&self, s: &Session) -> Result<Vec<String>> {
        let seen = s.view.lock().unwrap().files.clone();
        let (files, rows) = self.read_new_tasks_files(&seen).await?;
        let mut view = s.view.lock().unwrap();
        let mut new = Vec::new();
        for (batch_id, rows) in rows {
            for (task_id, c) in rows {
                if !view.ledger.is_committed(&task_id) {
                    new.push(task_id.clone());
                }
                view.ledger.insert(task_id, batch_id.clone(), c);
            }
        }
        view.files.extend(files);
        Ok(new)
    }

    /// Whether this writer knows `task_id` to be committed (from its ledger view).
    pub fn known_committed(&self, task_id: &str) -> bool {
        self.current_session()
            .is_some_and(|s| s.view.lock().unwrap().ledger.is_committed(task_id))
    }
}

fn stop_heartbeat(s: &Session) {
    *s.stop.lock().unwrap() = true;
    s.wake.notify_all();
    if let Some(h) = s.heartbeat.lock().unwrap().take() {
        let _ = h.join();
    }
}

/// The heartbeat: renews the lease every `renew_every` (twice as often after a failure)
/// until stopped or until the lease is lost. A renewal counts only if it completed before
/// the current deadline; the new deadline runs from the moment it was sent.
fn heartbeat(store: &Store, s: &Session) {
    let id = &s.info.lease_id;
    loop {
        let wait = {
            let c = s.clock.lock().unwrap();
            if c.failures > 0 {
                s.opts.renew_every / 2
            } else {
                s.opts.renew_every
            }
        };
        {
            let stop = s.stop.lock().unwrap();
            let (stop, _) = s.wake.wait_timeout_while(stop, wait, |st| !*st).unwrap();
            if *stop {
                return;
            }
        }
        let remaining = match s.check() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}: this writer stops committing");
                return;
            }
        };
        let sent = Instant::now();
        let r = store.block_on(within(
            remaining,
            "renewing the writer lease",
            store.put_lease(&s.info, false),
        ));
        let mut c = s.clock.lock().unwrap();
        match r {
            Ok(()) if c.lost.is_none() && Instant::now() < c.deadline => {
                c.deadline = sent + s.opts.commit_window();
                c.last_renewal = sent;
                c.failures = 0;
                c.last_error = None;
            }
            Ok(()) => {}
            // The renewal's time limit ran out because the process was stopped: not a
            // failed renewal (the next check finds the lease lost to the stall).
            Err(e) if e.is_stall() => {
                tracing::debug!("writer lease {id}: {e}");
            }
            Err(e) => {
                c.failures += 1;
                tracing::warn!("writer lease {id}: renewal failed ({e}); retrying");
                c.last_error = Some(e.to_string());
            }
        }
    }
}
