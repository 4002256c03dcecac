//! What is happening in a root right now, for `synthsweep status`: the live writers, the
//! tasks claimed and not committed yet, and the expired leases awaiting clean-up.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};

use crate::claims::{gen_name, CLAIMS, DEAD};
use crate::error::Result;
use crate::lease::LeaseView;
use crate::store::Store;

/// A task claimed and not committed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimView {
    pub task_id: String,
    /// The claim's generation (0: first claim; more: taken over from dead writers).
    pub generation: u32,
    /// The lease id of the writer holding it.
    pub by: String,
    /// Whether that writer is alive (otherwise the next writer to get there takes it over).
    pub live: bool,
}

/// Writers and claims of a root, judged with the storage's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// The storage's time when the leases were looked at.
    pub now: SystemTime,
    /// Writers whose lease is alive, oldest first.
    pub writers: Vec<LeaseView>,
    /// Expired leases, awaiting clean-up by the next recovery: their writers died (or were
    /// cut off from the storage) without ending cleanly.
    pub stale: Vec<LeaseView>,
    /// Tasks claimed and not committed.
    pub claimed: Vec<ClaimView>,
    /// Writers marked dead (`_dead/<lease_id>`): another writer found their lease expired
    /// and took (or is taking) their claims over. The next recovery removes the marks.
    pub marked_dead: Vec<String>,
}

impl Store {
    /// Looks at the root's writers and claims (writes, then deletes, one clock probe).
    ///
    /// # Errors
    /// [`StoreError::Storage`](crate::StoreError::Storage).
    pub fn activity(&self) -> Result<Activity> {
        self.block_on(async {
            // The claims are listed before the ledger is read: a task committed after its
            // claim was listed is in the ledger, so a committed task is never shown as
            // claimed and not committed (its claim may stay until writers end).
            let claims = self.list_coord(&[CLAIMS]).await?;
            let sets = self.read_sets(None).await?;
            let mut marked_dead: Vec<String> = self
                .list_coord(&[DEAD])
                .await?
                .iter()
                .filter_map(|f| f.path.filename().map(str::to_string))
                .collect();
            marked_dead.sort();
            let ledger = self.ledger_async().await?;
            let live = self.liveness(&self.staging_owner()).await?;
            let mut highest: BTreeMap<String, u32> = BTreeMap::new();
            for f in claims {
                let parts: Vec<String> = f.path.parts().map(|p| p.as_ref().to_string()).collect();
                let (Some(name), Some(task)) = (parts.last(), parts.iter().rev().nth(1)) else {
                    continue;
                };
                let Some(gen) = name.strip_prefix('g').and_then(|g| g.parse::<u32>().ok()) else {
                    continue;
                };
                if ledger.is_committed(task) {
                    continue;
                }
                let e = highest.entry(task.clone()).or_insert(gen);
                *e = (*e).max(gen);
            }
            // Tasks held through confirmed claim sets (generation 0): the set's writer
            // holds them unless a takeover (generation 1 or more) exists.
            let mut by_set: BTreeMap<String, String> = BTreeMap::new();
            for (_, set) in sets.iter().filter(|(_, s)| s.confirmed) {
                for t in set.named().filter(|t| !ledger.is_committed(t)) {
                    by_set.insert(t.clone(), set.lease.clone());
                    highest.entry(t.clone()).or_insert(0);
                }
            }
            let claimed: Vec<ClaimView> = futures::stream::iter(highest)
                .map(|(task_id, generation)| {
                    let path = self.path(&[CLAIMS, &task_id, &gen_name(generation)]);
                    let live = &live;
                    let set_holder = by_set.get(&task_id).filter(|_| generation == 0).cloned();
                    async move {
                        if let Some(by) = set_holder {
                            return Ok::<_, crate::StoreError>(Some(ClaimView {
                                live: live.is_live(&by),
                                task_id,
                                generation,
                                by,
                            }));
                        }
                        let by = self
                            .get_coord(&path)
                            .await?
                            .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
                            .and_then(|v| v["lease"].as_str().map(str::to_string))
                            .unwrap_or_default();
                        Ok::<_, crate::StoreError>(Some(ClaimView {
                            live: live.is_live(&by),
                            task_id,
                            generation,
                            by,
                        }))
                    }
                })
                .buffered(16)
                .try_collect::<Vec<_>>()
                .await?
                .into_iter()
                .flatten()
                .collect();
            let mut writers: Vec<LeaseView> = Vec::new();
            let mut stale: Vec<LeaseView> = Vec::new();
            for l in live.leases.into_values() {
                if l.expired {
                    stale.push(l)
                } else {
                    writers.push(l)
                }
            }
            let key = |l: &LeaseView| {
                (
                    l.info.as_ref().map(|i| i.started_at.clone()),
                    l.lease_id.clone(),
                )
            };
            writers.sort_by_key(key);
            stale.sort_by_key(key);
            Ok(Activity {
                now: live.now,
                writers,
                stale,
                claimed,
                marked_dead,
            })
        })
    }
}

fn secs(d: Duration) -> String {
    format!("{:.0} s", d.as_secs_f64())
}

fn who(l: &LeaseView) -> String {
    match &l.info {
        Some(i) => format!(
            "run {} on {} (pid {}), {}, lease {}",
            i.run_id,
            i.host,
            i.pid,
            i.role,
            secs(i.length())
        ),
        None => format!("lease {}", l.lease_id),
    }
}

impl fmt::Display for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut per: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
        for c in &self.claimed {
            let e = per.entry(c.by.as_str()).or_insert((0, c.live));
            e.0 += 1;
        }
        if self.writers.is_empty() {
            writeln!(f, "live writers: none")?;
        } else {
            writeln!(f, "live writers: {}", self.writers.len())?;
            for l in &self.writers {
                let held = per.get(l.lease_id.as_str()).map_or(0, |p| p.0);
                writeln!(
                    f,
                    "  {}: last heartbeat {} ago, {held} task(s) claimed and not committed",
                    who(l),
                    secs(l.age)
                )?;
            }
        }
        let dead: usize = self.claimed.iter().filter(|c| !c.live).count();
        writeln!(
            f,
            "claimed, not committed: {} task(s){}",
            self.claimed.len(),
            if dead > 0 {
                format!(" ({dead} of dead writers: the next run takes them over)")
            } else {
                String::new()
            }
        )?;
        if !self.stale.is_empty() {
            writeln!(
                f,
                "stale leases awaiting clean-up: {} (the next run cleans up after them)",
                self.stale.len()
            )?;
            for l in &self.stale {
                writeln!(f, "  {}: last heartbeat {} ago", who(l), secs(l.age))?;
            }
        }
        if !self.marked_dead.is_empty() {
            writeln!(
                f,
                "writers marked dead: {} (another writer found their lease expired and took their claims over; the next run removes the marks): {}",
                self.marked_dead.len(),
                self.marked_dead.join(", ")
            )?;
        }
        Ok(())
    }
}
