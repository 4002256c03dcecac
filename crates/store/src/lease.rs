//! Writer leases: one object per live writer, `_leases/<lease_id>.json`, renewed by a
//! heartbeat thread, and the judgement of which writers are alive, made with the storage's
//! clock so that the clocks of the writers' machines never matter. See `PROTOCOL.md`,
//! "Leases".

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::store::Store;

/// Folder of the writers' leases.
pub(crate) const LEASES: &str = "_leases";
/// Folder of clock probes: objects written only to read the storage's time back.
pub(crate) const CLOCK: &str = "_clock";

/// Environment variable that sets the lease length in seconds (default 120). Tests use a
/// few seconds so that a killed writer's tasks are taken over quickly.
pub const LEASE_SECS_ENV: &str = "SYNTHSWEEP_LEASE_SECS";

/// Slack added to a lease before it is judged expired, on S3: it reports `Last-Modified`
/// to the second, so two timestamps can each be up to a second early.
pub(crate) const S3_TIMESTAMP_SLACK: Duration = Duration::from_secs(2);
/// The same on a file system, whose modification times are finer than a millisecond.
pub(crate) const FS_TIMESTAMP_SLACK: Duration = Duration::from_millis(100);

/// How long a writer's lease lasts and how it is kept.
///
/// A writer renews its lease every `renew_every`. It stops committing (and claiming) once
/// `length - margin` has passed since the start of its last successful renewal, by its own
/// monotonic clock; other writers judge it dead only once `length` (plus
/// a slack for the storage's timestamp resolution) has passed since that renewal reached the storage, by the storage's
/// clock. The margin covers the time a commit's last request may take to land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    pub length: Duration,
    pub renew_every: Duration,
    pub margin: Duration,
}

impl Default for LeaseOptions {
    /// 120 s, renewed every 15 s, with a 30 s margin (see `PROTOCOL.md` for the choice).
    fn default() -> Self {
        LeaseOptions::with_length(Duration::from_secs(120))
    }
}

impl LeaseOptions {
    /// A lease of `length`, renewed every `length / 8`, with a margin of `length / 4`.
    pub fn with_length(length: Duration) -> Self {
        LeaseOptions {
            length,
            renew_every: length / 8,
            margin: length / 4,
        }
    }

    /// The default, or the length set by `SYNTHSWEEP_LEASE_SECS` (seconds, at least 1).
    ///
    /// # Errors
    /// [`StoreError::Config`] when the variable is set to something else than a number of
    /// seconds of at least 1.
    pub fn from_env() -> Result<Self> {
        match std::env::var(LEASE_SECS_ENV) {
            Err(_) => Ok(LeaseOptions::default()),
            Ok(v) => match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 1.0 => {
                    Ok(LeaseOptions::with_length(Duration::from_secs_f64(s)))
                }
                _ => Err(StoreError::Config(format!(
                    "{LEASE_SECS_ENV}={v:?}: expected a lease length in seconds, at least 1"
                ))),
            },
        }
    }

    /// How long after its last renewal a writer stops committing, by its own clock.
    pub fn commit_window(&self) -> Duration {
        self.length.saturating_sub(self.margin)
    }
}

/// What a lease says about its writer (the JSON content of `_leases/<lease_id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterInfo {
    /// `<run_id>-<tag>-<8 random hex>`; every batch id of this writer starts with it.
    pub lease_id: String,
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    /// Which share of the work: `local`, `shard 3/8`, `process 2 of 4`.
    pub role: String,
    /// RFC 3339 UTC, by the writer's clock (for people; liveness uses the storage's clock).
    pub started_at: String,
    /// Lease length in milliseconds: others judge the writer dead this long after its last
    /// renewal reached the storage.
    pub lease_ms: u64,
}

impl WriterInfo {
    pub(crate) fn length(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// Who a writer is, before its lease exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterIdentity {
    pub run_id: String,
    /// Process tag, e.g. `p0`; part of the lease id (letters, digits, '_' only).
    pub tag: String,
    /// See [`WriterInfo::role`].
    pub role: String,
}

/// One writer as another one sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseView {
    pub lease_id: String,
    /// The lease's content, when it could be read.
    pub info: Option<WriterInfo>,
    /// When the last renewal reached the storage (storage clock).
    pub renewed: SystemTime,
    /// How long ago that was, by the storage's clock.
    pub age: Duration,
    /// Whether the lease has expired: the writer no longer commits, its leftovers may be
    /// cleaned up and its claims taken over.
    pub expired: bool,
    /// Whether the writer is ending (`_leases/<lease_id>.ending` exists): it claims nothing
    /// any more, so the claims of committed tasks may be deleted (PROTOCOL.md, "Claims").
    pub ending: bool,
}

/// A snapshot of the writers' leases, judged with the storage's clock: the time a probe
/// object written just before the listing got from the storage.
#[derive(Debug, Clone)]
pub(crate) struct Liveness {
    pub now: SystemTime,
    pub leases: HashMap<String, LeaseView>,
    /// Ending markers whose lease is gone (the writer died between deleting the two).
    pub orphan_markers: Vec<String>,
}

impl Liveness {
    /// Whether this writer may still commit. A lease that is not there is dead: a writer
    /// writes its lease before anything else and deletes it only once it has stopped, and
    /// recovery deletes only expired ones.
    pub fn is_live(&self, lease_id: &str) -> bool {
        self.leases.get(lease_id).is_some_and(|l| !l.expired)
    }

    /// Whether every live writer but `me` is ending (or there is none): then no writer can
    /// claim a task it does not know to be committed (see `Store::clean_committed_claims`).
    pub fn others_ending(&self, me: &str) -> bool {
        self.leases
            .values()
            .all(|l| l.expired || l.ending || l.lease_id == me)
    }
}

/// The suffix of a writer's ending marker, `_leases/<lease_id>.ending`.
pub(crate) const ENDING: &str = ".ending";

impl Store {
    /// Writes a clock probe and reads its timestamp back: the storage's current time.
    pub(crate) async fn storage_now(&self, probe: &str) -> Result<SystemTime> {
        let path = self.path(&[CLOCK, probe]);
        let store = &self.inner.coord;
        store
            .put(&path, PutPayload::from_static(b"clock probe"))
            .await?;
        Ok(store.head(&path).await?.last_modified.into())
    }

    /// Lists the leases and judges them with the storage's clock. The probe is written
    /// first: a lease renewed after the probe looks younger, never older, than it is.
    pub(crate) async fn liveness(&self, probe: &str) -> Result<Liveness> {
        let now = self.storage_now(probe).await?;
        if probe.starts_with("nolease-") {
            // A reader's probe: not kept (a writer's is overwritten at each look).
            self.delete_coord(&self.path(&[CLOCK, probe])).await?;
        }
        let files = self.list_coord(&[LEASES]).await?;
        let slack = if self.inner.local.is_some() {
            FS_TIMESTAMP_SLACK
        } else {
            S3_TIMESTAMP_SLACK
        };
        let ending: std::collections::HashSet<String> = files
            .iter()
            .filter_map(|f| f.path.filename()?.strip_suffix(ENDING).map(str::to_string))
            .collect();
        let mut leases = HashMap::new();
        for f in files {
            let Some(id) = f
                .path
                .filename()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
            else {
                continue;
            };
            let info = self.lease_info(&id, &f.path).await?;
            let length = info
                .as_ref()
                .map_or(LeaseOptions::default().length, WriterInfo::length);
            let age = now.duration_since(f.last_modified).unwrap_or_default();
            leases.insert(
                id.clone(),
                LeaseView {
                    ending: ending.contains(&id),
                    lease_id: id,
                    info,
                    renewed: f.last_modified,
                    age,
                    expired: age > length + slack,
                },
            );
        }
        let orphan_markers = ending
            .into_iter()
            .filter(|id| !leases.contains_key(id))
            .collect();
        Ok(Liveness {
            now,
            leases,
            orphan_markers,
        })
    }

    pub(crate) fn ending_path(&self, lease_id: &str) -> Path {
        self.path(&[LEASES, &format!("{lease_id}{ENDING}")])
    }

    /// A lease's content, read once and cached (only the storage timestamp changes).
    async fn lease_info(&self, id: &str, path: &Path) -> Result<Option<WriterInfo>> {
        if let Some(i) = self.inner.lease_cache.lock().unwrap().get(id) {
            return Ok(Some(i.clone()));
        }
        let Some(data) = self.get_coord(path).await? else {
            return Ok(None);
        };
        let info: Option<WriterInfo> = serde_json::from_slice(&data).ok();
        if let Some(i) = &info {
            self.inner
                .lease_cache
                .lock()
                .unwrap()
                .insert(id.to_string(), i.clone());
        }
        Ok(info)
    }

    pub(crate) fn lease_path(&self, lease_id: &str) -> Path {
        self.path(&[LEASES, &format!("{lease_id}.json")])
    }

    /// Writes (creates or renews) a lease.
    pub(crate) async fn put_lease(&self, info: &WriterInfo, create: bool) -> Result<()> {
        let data = serde_json::to_vec_pretty(info)?;
        let mode = if create {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        self.inner
            .coord
            .put_opts(
                &self.lease_path(&info.lease_id),
                PutPayload::from(data),
                PutOptions::from(mode),
            )
            .await?;
        Ok(())
    }
}

/// The state of this process's lease, shared by the heartbeat and the committing threads.
#[derive(Debug)]
pub(crate) struct LeaseClock {
    /// After this instant the writer must not commit or claim any more.
    pub deadline: Instant,
    /// Set once the deadline has passed: why, and whether failed renewals caused it.
    pub lost: Option<(String, bool)>,
    /// Consecutive failed renewals and the last error.
    pub failures: u32,
    pub last_error: Option<String>,
    pub last_renewal: Instant,
}

impl LeaseClock {
    pub fn new(sent: Instant, opts: &LeaseOptions) -> Self {
        LeaseClock {
            deadline: sent + opts.commit_window(),
            lost: None,
            failures: 0,
            last_error: None,
            last_renewal: sent,
        }
    }

    /// Checks the deadline now; marks the lease lost when it has passed.
    pub fn check(&mut self, lease_id: &str) -> Result<Duration> {
        let now = Instant::now();
        if self.lost.is_none() && now >= self.deadline {
            let since = now.duration_since(self.last_renewal).as_secs_f64();
            self.lost = Some(match &self.last_error {
                Some(e) if self.failures > 0 => (
                    format!(
                        "{} renewal(s) failed over {since:.1} s (last: {e})",
                        self.failures
                    ),
                    true,
                ),
                _ => (
                    format!("no renewal for {since:.1} s (the process was stalled)"),
                    false,
                ),
            });
        }
        match &self.lost {
            Some((why, storage)) => Err(StoreError::LeaseLost {
                lease_id: lease_id.to_string(),
                why: why.clone(),
                storage: *storage,
            }),
            None => Ok(self.deadline - now),
        }
    }
}

/// A time limit whose timer fired more than this late means the process itself did not
/// run (SIGSTOP, Slurm's suspend, a frozen VM, heavy swapping), not that the storage was slow.
const STALL_LATENESS: Duration = Duration::from_secs(1);

/// A time limit that ran out because the process was stalled (see [`STALL_LATENESS`]).
#[derive(Debug)]
pub(crate) struct Stalled(pub String);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stalled {}

/// Runs `f` with a time limit; running out of time is a storage failure, unless the timer
/// fired late because the process was stalled ([`Stalled`], inside the storage failure: the
/// session then reports the lease lost to a stall, see `Session::explain`).
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let start = Instant::now();
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => {
            let took = start.elapsed();
            let msg = format!("{what}: no answer within {:.1} s", limit.as_secs_f64());
            if took > limit + STALL_LATENESS {
                Err(StoreError::Storage(Box::new(Stalled(format!(
                    "{msg} (the process was stalled: the time limit was seen {:.1} s late)",
                    (took - limit).as_secs_f64()
                )))))
            } else {
                Err(StoreError::storage(msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_lengths_scale_and_the_window_leaves_the_margin() {
        let o = LeaseOptions::default();
        assert_eq!(o.length, Duration::from_secs(120));
        assert_eq!(o.renew_every, Duration::from_secs(15));
        assert_eq!(o.margin, Duration::from_secs(30));
        assert_eq!(o.commit_window(), Duration::from_secs(90));
        let s = LeaseOptions::with_length(Duration::from_secs(4));
        assert_eq!(s.renew_every, Duration::from_millis(500));
        assert_eq!(s.commit_window(), Duration::from_secs(3));
    }

    #[test]
    fn a_time_limit_seen_late_is_a_stall_not_a_slow_storage() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The storage does not answer: the limit runs out on time.
        let e = rt
            .block_on(within(
                Duration::from_millis(50),
                "a put",
                std::future::pending::<Result<()>>(),
            ))
            .unwrap_err();
        assert!(e.is_storage() && !e.is_stall(), "{e}");
        // The process does not run (the thread blocked past the limit, as SIGSTOP would
        // stop it): the timer fires late.
        let e = rt
            .block_on(within(Duration::from_millis(50), "a put", async {
                std::thread::sleep(Duration::from_millis(1200));
                std::future::pending::<Result<()>>().await
            }))
            .unwrap_err();
        assert!(e.is_stall() && e.is_lease_lost() && !e.is_storage(), "{e}");
        assert!(e.to_string().contains("the process was stalled"), "{e}");
    }

    #[test]
    fn a_clock_past_its_deadline_is_lost_for_good() {
        let opts = LeaseOptions::with_length(Duration::from_millis(40));
        let mut c = LeaseClock::new(Instant::now(), &opts);
        assert!(c.check("l").is_ok());
        std::thread::sleep(Duration::from_millis(40));
        let e = c.check("l").unwrap_err();
        assert!(e.is_lease_lost() && !e.is_storage(), "{e}");
        c.deadline = Instant::now() + Duration::from_secs(60);
        assert!(c.check("l").is_err(), "a lost lease stays lost");
        let mut c = LeaseClock::new(Instant::now() - Duration::from_secs(1), &opts);
        c.failures = 3;
        c.last_error = Some("connection refused".into());
        let e = c.check("l").unwrap_err();
        assert!(e.is_storage(), "failed renewals are a storage failure: {e}");
    }
}
