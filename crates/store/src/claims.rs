//! Claims: a writer claims a task before running it, with a create-if-absent object
//! `_claims/<task_id>/g<generation>`, and takes over the claim of a dead writer by creating
//! the next generation. The same generation keys make the locks of `_locks/<name>/`. The
//! argument that at most one live writer holds a task is in `PROTOCOL.md`, "Claims".

use std::collections::HashSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::claimsets::{ClaimSet, SetView, SET_MIN};
use crate::error::{Result, StoreError};
use crate::lease::{within, Liveness};
use crate::session::{Held, HeldState, Session, HELD_FRESH};
use crate::store::Store;

/// Folder of the task claims.
pub(crate) const CLAIMS: &str = "_claims";
/// Folder of the locks (one folder per lock, generation keys inside).
pub(crate) const LOCKS: &str = "_locks";
/// Folder of the dead-writer marks: `_dead/<lease_id>` is written before the first claim
/// of that writer is taken over, so its commits need one look per batch, not per task.
pub(crate) const DEAD: &str = "_dead";

/// Requests in flight at once when claiming or checking many tasks.
const IN_FLIGHT: usize = 32;

/// What claiming a task gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This writer holds the task now: run it.
    Ours,
    /// Another writer, alive, holds it (its lease id): skip it for now, ask again later.
    Held { by: String },
    /// Committed already (found when taking over a dead writer's claim): skip it for good.
    Committed,
}

/// Claims made ahead, in flight on the store's runtime (see [`Store::claim_ahead`]).
pub struct PendingClaims {
    handle: std::thread::JoinHandle<Result<Vec<Claim>>>,
}

impl PendingClaims {
    /// Whether the answers are in (waiting would not block).
    pub fn is_ready(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the answers: one [`Claim`] per id, in order, as [`Store::claim`] gives.
    ///
    /// # Errors
    /// As [`Store::claim`].
    pub fn wait(self) -> Result<Vec<Claim>> {
        match self.handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl std::fmt::Debug for PendingClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingClaims")
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// The content of a generation key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Owner {
    lease: String,
    at: String,
}

/// Who was found holding a task, and when (see `Session::held_by`).
type Sighting = (String, std::time::Instant);

/// Where a task's per-task claim got: answered, or a claim created that still has to be
/// checked against the claim sets.
enum Step {
    Done(Acquired),
    Created { gen: u32, takeover: bool },
}

/// What acquiring a generation folder gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Acquired {
    Ours { gen: u32, takeover: bool },
    Held { by: String },
}

pub(crate) fn gen_name(gen: u32) -> String {
    format!("g{gen:06}")
}

fn parse_gen(name: &str) -> Option<u32> {
    let digits = name.strip_prefix('g')?;
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The liveness snapshot of a claiming round, taken when first needed, and the leases
/// known to be dead (dead for good: a dead writer never comes back).
///
/// A lease the snapshot does not list at all may belong to a writer that started after
/// the snapshot (its claim, read later, is newer than the snapshot): such a lease is looked
/// at again with a fresh snapshot before it is judged, so that only a lease absent from a
/// look made *after* its claim was read counts as gone (a writer writes its lease before
/// any claim). Judged on the old snapshot, a writer that had just started would count as
/// dead: its claims taken over, or its set ignored beside a task claim of the same task.
struct Judge<'a> {
    store: &'a Store,
    session: &'a Session,
    snapshot: tokio::sync::Mutex<Option<Liveness>>,
}

impl<'a> Judge<'a> {
    fn new(store: &'a Store, session: &'a Session) -> Self {
        Judge {
            store,
            session,
            snapshot: tokio::sync::Mutex::new(None),
        }
    }

    async fn is_live(&self, lease: &str) -> Result<bool> {
        if lease == self.session.info.lease_id {
            return Ok(true);
        }
        if self.session.dead.lock().unwrap().contains(lease) {
            return Ok(false);
        }
        let mut snap = self.snapshot.lock().await;
        if !snap.as_ref().is_some_and(|l| l.leases.contains_key(lease)) {
            // A look writes this writer's clock probe: nothing is written past the deadline.
            self.session.check()?;
            *snap = Some(self.store.liveness(&self.session.info.lease_id).await?);
        }
        let live = snap.as_ref().is_some_and(|l| l.is_live(lease));
        if !live {
            self.session.dead.lock().unwrap().insert(lease.to_string());
        }
        Ok(live)
    }
}

impl Store {
    fn claim_dir(&self, task_id: &str) -> Path {
        self.path(&[CLAIMS, task_id])
    }

    /// Creates `dir/g<gen>` if absent, naming `me` as its owner. `Ok(false)`: it exists.
    async fn create_gen(&self, dir: &Path, gen: u32, me: &str) -> Result<bool> {
        let owner = Owner {
            lease: me.to_string(),
            at: crate::runs::now_rfc3339(),
        };
        let path = dir.clone().join(gen_name(gen));
        let put = self.inner.coord.put_opts(
            &path,
            PutPayload::from(serde_json::to_vec(&owner)?),
            PutOptions::from(PutMode::Create),
        );
        match put.await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // A create whose reply was lost and that was sent again finds its own key.
                Ok(self.owner_of(&path).await?.as_deref() == Some(me))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn owner_of(&self, path: &Path) -> Result<Option<String>> {
        Ok(self.get_coord(path).await?.map(|data| {
            serde_json::from_slice::<Owner>(&data)
                .map(|o| o.lease)
                .unwrap_or_default()
        }))
    }

    /// The generations present under `dir`, highest last.
    async fn gens(&self, dir: &Path) -> Result<Vec<u32>> {
        let mut gens: Vec<u32> = self
            .inner
            .coord
            .list(Some(dir))
            .map_ok(|m| m.location)
            .try_collect::<Vec<_>>()
            .await?
            .iter()
            .filter_map(|p| p.filename().and_then(parse_gen))
            .collect();
        gens.sort_unstable();
        Ok(gens)
    }

    /// Claims tasks for this writer before it runs them (see [`Claim`]); one answer per id,
    /// in order. A task this writer holds already is [`Claim::Ours`] again. Taking over a
    /// dead writer's claim re-reads the ledger first, since that writer may have committed
    /// the task before it died.
    ///
    /// # Errors
    /// [`StoreError::NoSession`] without a session, [`StoreError::LeaseLost`] once this
    /// writer's lease may have expired, [`StoreError::Storage`] when the storage fails.
    pub fn claim(&self, task_ids: &[String]) -> Result<Vec<Claim>> {
        let s = self.session("claiming tasks")?;
        let guard = s.begin_claim()?;
        self.block_on(self.claim_async(guard.session(), task_ids))
            .map_err(|e| s.explain(e))
    }

    /// [`Store::claim`] in the background: the requests run on the store's runtime while
    /// the caller goes on (a task source claims the next group while its slots run the
    /// current one); [`PendingClaims::wait`] gives the answers. Claims made ahead are
    /// claims like any other: recorded in the session when they land, released by
    /// [`Store::finish_session`] if their tasks were not run, and left to expire with the
    /// lease if the writer dies. The session waits for claims in flight before it ends
    /// (no claim lands after its ending marker), so dropping a `PendingClaims` unwaited
    /// only loses the answers.
    ///
    /// # Errors
    /// As [`Store::claim`], at once for [`StoreError::NoSession`] and
    /// [`StoreError::LeaseLost`]; the others from [`PendingClaims::wait`].
    pub fn claim_ahead(&self, task_ids: Vec<String>) -> Result<PendingClaims> {
        let s = self.session("claiming tasks")?;
        let guard = s.begin_claim()?;
        let store = self.clone();
        // A thread of its own that blocks on the runtime (the claim future is not `Send`,
        // so it cannot be spawned onto the runtime): one per group, not per task.
        let handle = std::thread::Builder::new()
            .name("synthsweep-claims".into())
            .spawn(move || {
                let r = store
                    .block_on(store.claim_async(guard.session(), &task_ids))
                    .map_err(|e| guard.session().explain(e));
                drop(guard);
                r
            })?;
        Ok(PendingClaims { handle })
    }

    async fn claim_async(&self, s: &Session, task_ids: &[String]) -> Result<Vec<Claim>> {
        let judge = Judge::new(self, s);
        let me = s.info.lease_id.as_str();
        let (held, seen): (Vec<Option<Held>>, Vec<Option<Sighting>>) = {
            let claims = s.claims.lock().unwrap();
            let seen = s.held_by.lock().unwrap();
            task_ids
                .iter()
                .map(|t| (claims.get(t).copied(), seen.get(t).cloned()))
                .unzip()
        };
        let mut acquired: Vec<Option<Acquired>> = vec![None; task_ids.len()];
        for (k, (h, seen)) in held.iter().zip(&seen).enumerate() {
            if let Some(h) = h {
                acquired[k] = Some(Acquired::Ours {
                    gen: h.gen,
                    takeover: false,
                });
            } else if let Some((by, when)) = seen {
                // Held by a writer that is still alive: still held (it commits the task or,
                // ending, releases it, and then its lease is gone too).
                if when.elapsed() < HELD_FRESH && judge.is_live(by).await? {
                    acquired[k] = Some(Acquired::Held { by: by.clone() });
                }
            }
        }
        // Fresh: never found held by another writer. Tasks found held before are asked for
        // again per task (a set for them would only exclude them again).
        let fresh: Vec<usize> = (0..task_ids.len())
            .filter(|&k| acquired[k].is_none() && seen[k].is_none())
            .collect();
        // Many fresh tasks: one claim set for them all (PROTOCOL.md, "Claims"); the tasks
        // it finds claimed elsewhere go on to their per-task claims below.
        let mut view = None;
        if fresh.len() >= SET_MIN {
            let seq = s
                .next_set
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tasks: Vec<String> = fresh.iter().map(|&k| task_ids[k].clone()).collect();
            let mut set = ClaimSet::new(me, tasks);
            // Remembered before it is written: if the write fails after landing, the
            // session still knows the set (to release it at the end).
            self.remember_set(s, seq, set.clone());
            s.check()?;
            self.put_set(seq, &set).await?;
            let v = self.look(me, true).await?;
            set.excluded = set
                .tasks
                .iter()
                .filter(|t| v.claimed_elsewhere(t))
                .cloned()
                .collect();
            set.confirmed = true;
            if set.named().next().is_some() {
                self.remember_set(s, seq, set.clone());
                s.check()?;
                self.put_set(seq, &set).await?;
            } else {
                // Every task claimed elsewhere: a set that holds nothing goes at once.
                s.check()?;
                self.delete_set(me, seq).await?;
                s.sets.lock().unwrap().remove(&seq);
            }
            let excluded: HashSet<&String> = set.excluded.iter().collect();
            {
                let mut claims = s.claims.lock().unwrap();
                for &k in &fresh {
                    if !excluded.contains(&task_ids[k]) {
                        acquired[k] = Some(Acquired::Ours {
                            gen: 0,
                            takeover: false,
                        });
                        claims.entry(task_ids[k].clone()).or_insert(Held {
                            gen: 0,
                            state: HeldState::Claimed,
                            set: Some(seq),
                        });
                    }
                }
            }
            let contested: Vec<String> = set.excluded.clone();
            view = Some(self.settle(&judge, &contested, v).await?);
        }
        // The others, one per-task claim each; then one look at the sets, since a set
        // published meanwhile may name the same task.
        let single: Vec<usize> = (0..task_ids.len())
            .filter(|&k| acquired[k].is_none())
            .collect();
        if !single.is_empty() {
            // Tasks asked for again (found held before): a look at the sets first, so that
            // a task a live writer holds through its set is answered without a claim
            // created and deleted again.
            let view = match view {
                Some(v) => Some(v),
                None if single.iter().any(|&k| seen[k].is_some()) => {
                    Some(self.look(me, false).await?)
                }
                None => None,
            };
            let mut view = view.unwrap_or_default();
            let mut todo = single;
            for _ in 0..4 {
                let steps: Vec<Step> = futures::stream::iter(todo.iter())
                    .map(|&k| {
                        let (judge, view) = (&judge, &view);
                        self.acquire_task(&task_ids[k], view, judge, seen[k].is_some())
                    })
                    .buffered(IN_FLIGHT)
                    .try_collect()
                    .await?;
                let created: Vec<(usize, u32, bool)> = todo
                    .iter()
                    .zip(&steps)
                    .filter_map(|(&k, st)| match st {
                        Step::Created { gen, takeover } => Some((k, *gen, *takeover)),
                        Step::Done(_) => None,
                    })
                    .collect();
                for (&k, st) in todo.iter().zip(steps) {
                    if let Step::Done(a) = st {
                        acquired[k] = Some(a);
                    }
                }
                if created.is_empty() {
                    break;
                }
                // Recorded as soon as they land: when a later request of the round fails,
                // the round's error returns early, and a claim recorded only after the
                // whole round would outlive the session (never released, its writer later
                // marked dead although it ended cleanly).
                {
                    let mut claims = s.claims.lock().unwrap();
                    for &(k, gen, _) in &created {
                        claims.entry(task_ids[k].clone()).or_insert(Held {
                            gen,
                            state: HeldState::Claimed,
                            set: None,
                        });
                    }
                }
                let ids: Vec<String> = created.iter().map(|c| task_ids[c.0].clone()).collect();
                let looked = self.look(me, false).await?;
                view = self.settle(&judge, &ids, looked).await?;
                let mut again = Vec::new();
                for (k, gen, takeover) in created {
                    let t = &task_ids[k];
                    let mut live_set = None;
                    for m in view.mentions(t) {
                        if judge.is_live(&m.lease).await? {
                            live_set = Some(m.lease.clone());
                            break;
                        }
                    }
                    let over_dead_set = gen == 0 && view.confirmed_holder(t).is_some();
                    if live_set.is_none() && !over_dead_set {
                        acquired[k] = Some(Acquired::Ours { gen, takeover });
                        continue;
                    }
                    // A live writer's set names the task (it looked before this claim
                    // landed, or is looking now): the task is its own, or it will claim it
                    // per task itself. Or a dead writer's set holds it, which only a
                    // takeover (a next generation, then a ledger re-read) may take. Either
                    // way this claim goes.
                    // Only while the lease holds: past it, a writer that judged this one
                    // dead may have created the next generation above this claim.
                    s.check()?;
                    self.delete_coord(&self.claim_dir(t).join(gen_name(gen)))
                        .await?;
                    s.claims.lock().unwrap().remove(t);
                    match live_set {
                        Some(by) => acquired[k] = Some(Acquired::Held { by }),
                        None => again.push(k),
                    }
                }
                todo = again;
                if todo.is_empty() {
                    break;
                }
            }
            for k in todo {
                if acquired[k].is_none() {
                    acquired[k] = Some(Acquired::Held { by: String::new() });
                }
            }
        }
        let acquired: Vec<Acquired> = acquired
            .into_iter()
            .map(|a| a.expect("every task answered"))
            .collect();
        let takeover = acquired
            .iter()
            .any(|a| matches!(a, Acquired::Ours { takeover: true, .. }));
        let committed: HashSet<String> = if takeover {
            self.refresh_view(s).await?;
            let view = s.view.lock().unwrap();
            task_ids
                .iter()
                .filter(|t| view.ledger.is_committed(t))
                .cloned()
                .collect()
        } else {
            HashSet::new()
        };
        {
            let mut seen = s.held_by.lock().unwrap();
            for (t, a) in task_ids.iter().zip(&acquired) {
                match a {
                    Acquired::Held { by } if !by.is_empty() => {
                        seen.insert(t.clone(), (by.clone(), std::time::Instant::now()));
                    }
                    _ => {
                        seen.remove(t);
                    }
                }
            }
        }
        let mut claims = s.claims.lock().unwrap();
        Ok(task_ids
            .iter()
            .zip(acquired)
            .map(|(t, a)| match a {
                Acquired::Ours { gen, .. } => {
                    let e = claims.entry(t.clone()).or_insert(Held {
                        gen,
                        state: HeldState::Claimed,
                        set: None,
                    });
                    if committed.contains(t) {
                        // Committed by the dead writer: ours now only to keep others off.
                        e.state = HeldState::Committed;
                        Claim::Committed
                    } else {
                        Claim::Ours
                    }
                }
                Acquired::Held { by } => Claim::Held { by },
            })
            .collect())
    }

    /// Waits, briefly, until no live writer's *pending* set names one of `tasks`: a writer
    /// confirms its set right after its look, and what it confirmed decides who holds
    /// the task (two writers whose sets crossed each see the other's pending and leave the
    /// task to the per-task claims; deciding on the pending sets, each would wait for the
    /// other). After about 2 s (a writer stalled or killed in the middle of its round) the
    /// last view is returned as it is.
    async fn settle(
        &self,
        judge: &Judge<'_>,
        tasks: &[String],
        mut view: SetView,
    ) -> Result<SetView> {
        let me = judge.session.info.lease_id.as_str();
        let mut pause = Duration::from_millis(5);
        let mut waited = Duration::ZERO;
        loop {
            let mut pending = false;
            'tasks: for t in tasks {
                for m in view.mentions(t) {
                    if !m.confirmed && judge.is_live(&m.lease).await? {
                        pending = true;
                        break 'tasks;
                    }
                }
            }
            if !pending || waited >= Duration::from_secs(2) {
                return Ok(view);
            }
            tokio::time::sleep(pause).await;
            waited += pause;
            pause = (pause * 2).min(Duration::from_millis(250));
            let per_task = std::mem::take(&mut view.per_task);
            view = self.look(me, false).await?;
            view.per_task = per_task;
        }
    }

    /// One task's per-task claim (`_claims/<task>/`), given what a look at the sets found
    /// (`view`; an empty view when there was none). The holder is the owner of the highest
    /// generation when that is 1 or more (a takeover), else the writer whose confirmed set
    /// holds the task (generation 0), else the owner of generation 0. A live holder keeps
    /// it; a dead one's is taken over with the next generation; with no holder, generation
    /// 0 is created. A claim created here still has to be checked against the sets
    /// ([`Step::Created`]).
    async fn acquire_task(
        &self,
        task: &str,
        view: &SetView,
        judge: &Judge<'_>,
        asked_before: bool,
    ) -> Result<Step> {
        for m in view.mentions(task) {
            if !m.confirmed && judge.is_live(&m.lease).await? {
                // A live writer is looking at its set: it holds the task or leaves it to
                // the per-task claims in a moment; ask again later.
                return Ok(Step::Done(Acquired::Held {
                    by: m.lease.clone(),
                }));
            }
        }
        let by_set = view.confirmed_holder(task).map(str::to_string);
        if let Some(h) = &by_set {
            // A live writer's confirmed set: it holds the task (a takeover of it would need
            // it dead, and a writer judged dead never renews its lease again), so its task
            // claims need no look. A writer waiting for many such tasks asks for them again
            // with one look at the sets, not a listing a task.
            if judge.is_live(h).await? {
                return Ok(Step::Done(Acquired::Held { by: h.clone() }));
            }
        }
        // The generations are listed first when a task claim is known or likely to exist
        // (a task found held before); otherwise generation 0 is simply created.
        let list = asked_before || view.per_task.contains(task) || by_set.is_some();
        self.acquire_gens(&self.claim_dir(task), by_set.as_deref(), judge, list)
            .await
    }

    /// Acquires the generation folder `dir` (a task's claims, or a lock) for this session's
    /// writer: works out the holder (the highest generation when it is 1 or more, else
    /// `by_set`, the dead writer whose confirmed set holds the task, else generation 0's
    /// owner; see `acquire_task`), keeps a live holder's, takes a dead one's over
    /// with the next generation, and creates generation 0 when there is no holder. Two
    /// writers racing for one generation: create-if-absent lets one win. `list`: list the
    /// generations before the first create.
    async fn acquire_gens(
        &self,
        dir: &Path,
        by_set: Option<&str>,
        judge: &Judge<'_>,
        mut list: bool,
    ) -> Result<Step> {
        let me = judge.session.info.lease_id.as_str();
        let mut last = String::new();
        for _ in 0..8 {
            let gens = if list {
                self.gens(dir).await?
            } else {
                Vec::new()
            };
            list = true;
            let top = gens.last().copied();
            let holder = match (top, by_set) {
                (Some(g), _) if g >= 1 => {
                    match self.owner_of(&dir.clone().join(gen_name(g))).await? {
                        Some(o) => Some((o, g)),
                        None => continue, // released meanwhile
                    }
                }
                (Some(0), Some(h)) => {
                    // A dead writer's confirmed set (`acquire_task` answers a live one) beside a
                    // task claim 0: that claim survived its own look at the sets only if the
                    // set was not confirmed by a live writer then (pending and dead, its
                    // confirmation landing later), so a live owner of it holds the task. Both
                    // dead: the set's writer is marked dead too, and the claim taken over.
                    let Some(o) = self.owner_of(&dir.clone().join(gen_name(0))).await? else {
                        continue;
                    };
                    if o != me && !judge.is_live(&o).await? {
                        judge.session.check()?;
                        self.mark_dead(h).await?;
                    }
                    Some((o, 0))
                }
                (_, Some(h)) => Some((h.to_string(), 0)),
                (Some(0), None) => match self.owner_of(&dir.clone().join(gen_name(0))).await? {
                    Some(o) => Some((o, 0)),
                    None => continue,
                },
                _ => None,
            };
            let Some((owner, gen)) = holder else {
                judge.session.check()?;
                if self.create_gen(dir, 0, me).await? {
                    return Ok(Step::Created {
                        gen: 0,
                        takeover: false,
                    });
                }
                continue;
            };
            if owner == me {
                return Ok(Step::Done(Acquired::Ours {
                    gen,
                    takeover: gen > 0,
                }));
            }
            if judge.is_live(&owner).await? {
                return Ok(Step::Done(Acquired::Held { by: owner }));
            }
            judge.session.check()?;
            self.mark_dead(&owner).await?;
            if self.create_gen(dir, gen + 1, me).await? {
                return Ok(Step::Created {
                    gen: gen + 1,
                    takeover: true,
                });
            }
            last = owner;
        }
        // Lost every race: someone else got it; ask again later.
        Ok(Step::Done(Acquired::Held { by: last }))
    }

    /// Marks `lease` dead (`_dead/<lease>`), before this writer takes over a claim of it:
    /// once per dead writer and process. On a local root it then deletes that writer's
    /// staging folder: a commit of it still in flight (a process stopped past its lease)
    /// then cannot land (see `Store::put_atomic_fenced`).
    async fn mark_dead(&self, lease: &str) -> Result<()> {
        if self.inner.marked_dead.lock().unwrap().contains(lease) {
            return Ok(());
        }
        self.inner
            .coord
            .put(
                &self.path(&[DEAD, lease]),
                PutPayload::from_static(b"taken over"),
            )
            .await?;
        if let Some(root) = &self.inner.local {
            let dir = root.join(crate::store::STAGING).join(lease);
            tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            })
            .await
            .map_err(|e| StoreError::storage(format!("deleting a dead writer's staging: {e}")))??;
        }
        self.inner
            .marked_dead
            .lock()
            .unwrap()
            .insert(lease.to_string());
        Ok(())
    }

    /// Of these tasks, those this writer does not hold any more (or never held): their
    /// claim has a next generation, created by a writer that judged this one dead. The
    /// commit path drops them. A takeover marks the dead writer (`_dead/<lease>`) before it
    /// creates the next generation, so while this writer has no mark no claim of it has a
    /// next generation: one HEAD for the batch. With a mark, each task's next generation is
    /// looked at (one HEAD per task, in flight together).
    pub(crate) async fn lost_claims(
        &self,
        s: &Session,
        task_ids: &[String],
    ) -> Result<Vec<String>> {
        let gens: Vec<Option<u32>> = {
            let claims = s.claims.lock().unwrap();
            task_ids
                .iter()
                .map(|t| claims.get(t).map(|h| h.gen))
                .collect()
        };
        let marked = match self
            .inner
            .coord
            .head(&self.path(&[DEAD, &s.info.lease_id]))
            .await
        {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !marked {
            return Ok(task_ids
                .iter()
                .zip(gens)
                .filter(|(_, g)| g.is_none())
                .map(|(t, _)| t.clone())
                .collect());
        }
        let lost: Vec<Option<String>> = futures::stream::iter(task_ids.iter().zip(gens))
            .map(|(t, g)| async move {
                let Some(g) = g else {
                    return Ok(Some(t.clone()));
                };
                let next = self.claim_dir(t).join(gen_name(g + 1));
                match self.inner.coord.head(&next).await {
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Ok(_) => Ok(Some(t.clone())),
                    Err(e) => Err(StoreError::from(e)),
                }
            })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(lost.into_iter().flatten().collect())
    }

    /// Gives back claims this writer holds but will not run (a stop before their turn), so
    /// others can take them at once instead of after the lease expires. Only tasks that
    /// never went into a commit are released (a commit whose reply was lost may have
    /// landed), and only while the lease is valid. Returns how many were released.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] (nothing released), [`StoreError::Storage`].
    pub fn release(&self, task_ids: &[String]) -> Result<usize> {
        let s = self.session("releasing claims")?;
        self.release_with(&s, task_ids).map_err(|e| s.explain(e))
    }

    pub(crate) fn release_with(&self, s: &Session, task_ids: &[String]) -> Result<usize> {
        let remaining = s.check()?;
        let held: Vec<(String, Held)> = {
            let claims = s.claims.lock().unwrap();
            task_ids
                .iter()
                .filter_map(|t| match claims.get(t) {
                    Some(h) if h.state == HeldState::Claimed => Some((t.clone(), *h)),
                    _ => None,
                })
                .collect()
        };
        let n = held.len();
        let paths: Vec<Path> = held
            .iter()
            .filter(|(_, h)| h.set.is_none())
            .map(|(t, h)| self.claim_dir(t).join(gen_name(h.gen)))
            .collect();
        // Tasks held through a set: the set is written again with them excluded, or
        // deleted when it holds nothing any more.
        let mut by_set: std::collections::BTreeMap<u32, HashSet<String>> = Default::default();
        for (t, h) in &held {
            if let Some(seq) = h.set {
                by_set.entry(seq).or_default().insert(t.clone());
            }
        }
        let sets: Vec<(u32, Option<ClaimSet>)> = {
            let mine = s.sets.lock().unwrap();
            by_set
                .into_iter()
                .filter_map(|(seq, gone)| {
                    let mut set = mine.get(&seq)?.clone();
                    set.excluded.extend(
                        set.tasks
                            .iter()
                            .filter(|t| gone.contains(*t) && !set.excluded.contains(t))
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                    let empty = set.named().next().is_none();
                    Some((seq, (!empty).then_some(set)))
                })
                .collect()
        };
        self.block_on(within(remaining, "releasing claims", async {
            self.delete_many_coord(paths).await?;
            for (seq, set) in &sets {
                match set {
                    Some(set) => self.put_set(*seq, set).await?,
                    None => self.delete_set(&s.info.lease_id, *seq).await?,
                }
            }
            Ok(())
        }))?;
        {
            let mut mine = s.sets.lock().unwrap();
            for (seq, set) in sets {
                match set {
                    Some(set) => {
                        mine.insert(seq, set);
                    }
                    None => {
                        mine.remove(&seq);
                    }
                }
            }
        }
        let mut claims = s.claims.lock().unwrap();
        for (t, _) in &held {
            claims.remove(t);
        }
        Ok(n)
    }

    /// Writes this writer's ending marker `_leases/<lease_id>.ending`: from now on it
    /// claims nothing (it is ending its session), see [`Store::clean_committed_claims`].
    pub(crate) async fn mark_ending(&self, s: &Session) -> Result<()> {
        let remaining = s.check()?;
        within(remaining, "marking the writer as ending", async {
            self.inner
                .coord
                .put(
                    &self.ending_path(&s.info.lease_id),
                    PutPayload::from_static(b"ending"),
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Deletes the claim objects (every generation) of committed tasks, when no writer but
    /// `me` could still claim a task it does not know to be committed: every other live
    /// writer is ending (has written its ending marker, after its last claim). The ledger
    /// is read before the leases are listed, so a writer whose lease is not listed yet
    /// reads the ledger (after creating its lease) later than this one did and sees those
    /// tasks committed; it never claims them. `me` (this writer, or a reader's probe) knows
    /// them too: it claims only tasks of a ledger read after this. `ledger`: one read
    /// before this call, when the caller has it (else it is read here). Returns the
    /// objects deleted (0 when a live writer is not ending).
    ///
    /// Writers that end together each write their marker before looking, so the last of
    /// them sees all the others ending and cleans up; a recovery at the start of a later
    /// writer does it after crashes.
    ///
    /// # Errors
    /// [`StoreError::Storage`], [`StoreError::LeaseLost`] (this writer's lease ran out).
    pub(crate) async fn clean_committed_claims(
        &self,
        me: &str,
        ledger: Option<&crate::ledger::Ledger>,
    ) -> Result<usize> {
        let claims = self.list_coord(&[CLAIMS]).await?;
        let sets = self.read_sets(None).await?;
        if claims.is_empty() && sets.is_empty() {
            return Ok(0);
        }
        let read;
        let ledger = match ledger {
            Some(l) => l,
            None => {
                read = self.ledger_async().await?;
                &read
            }
        };
        let live = self.liveness(me).await?;
        if !live.others_ending(me) {
            return Ok(0);
        }
        let mut stale: Vec<Path> = claims
            .into_iter()
            .filter(|f| {
                let parts: Vec<_> = f.path.parts().collect();
                parts.len() >= 2 && ledger.is_committed(parts[parts.len() - 2].as_ref())
            })
            .map(|f| f.path)
            .collect();
        // Sets: those whose tasks are all committed (or given back), and the pending ones
        // of other writers that look no more (dead, or ending: their claiming is over; this
        // writer's own may belong to a round still in flight). A dead writer's set that
        // holds uncommitted tasks stays, for a takeover.
        let looking = |lease: &str| {
            lease == me
                || live
                    .leases
                    .get(lease)
                    .is_some_and(|l| !l.expired && !l.ending)
        };
        stale.extend(sets.into_iter().filter_map(|(path, set)| {
            let done = set.named().all(|t| ledger.is_committed(t));
            let idle = !set.confirmed && !looking(&set.lease);
            (done || idle).then_some(path)
        }));
        let n = stale.len();
        if n == 0 {
            return Ok(0);
        }
        let remaining = match self.current_session() {
            Some(s) => s.check()?,
            None => Duration::from_secs(600),
        };
        within(remaining, "deleting claims", self.delete_many_coord(stale)).await?;
        Ok(n)
    }

    /// Takes the lock `name` (`_locks/<name>/`), waiting while a live writer holds it (a
    /// dead holder's lock is taken over after its lease expires).
    pub(crate) async fn lock(&self, s: &Session, name: &str) -> Result<LockGuard> {
        let dir = self.path(&[LOCKS, name]);
        let mut waited = Duration::ZERO;
        loop {
            s.check()?;
            let judge = Judge::new(self, s);
            match self.acquire_gens(&dir, None, &judge, false).await? {
                Step::Done(Acquired::Ours { gen, .. }) | Step::Created { gen, .. } => {
                    return Ok(LockGuard {
                        path: dir.join(gen_name(gen)),
                    })
                }
                Step::Done(Acquired::Held { by }) => {
                    if waited.is_zero() {
                        tracing::info!("waiting for the {name} lock, held by writer {by}");
                    }
                    let step = (s.opts.renew_every / 2).max(Duration::from_millis(100));
                    tokio::time::sleep(step).await;
                    waited += step;
                }
            }
        }
    }

    pub(crate) async fn unlock(&self, s: &Session, guard: LockGuard) -> Result<()> {
        let remaining = s.check()?;
        within(
            remaining,
            "releasing a lock",
            self.delete_coord(&guard.path),
        )
        .await
    }
}

/// A lock held by this writer (release with `Store::unlock`; a writer that dies holding it
/// leaves it to be taken over once its lease expires).
#[derive(Debug)]
pub(crate) struct LockGuard {
    path: Path,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_names_sort_as_numbers() {
        assert_eq!(gen_name(0), "g000000");
        assert_eq!(gen_name(42), "g000042");
        assert_eq!(parse_gen("g000042"), Some(42));
        assert_eq!(parse_gen("g000042#1"), None);
        assert_eq!(parse_gen("g42"), None);
        assert_eq!(parse_gen("x000001"), None);
        assert!(gen_name(9) < gen_name(10));
    }
}
