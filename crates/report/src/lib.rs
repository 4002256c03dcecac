//! `synthsweep report`: an output root as a static HTML site — plenoptic's figures per task
//! and per MAD competition, and a whole-sweep view — readable from disk with no server, no
//! network and no Python. No libtorch: it reads the tables through `synthsweep-store`.
//!
//! # Layout of the site
//!
//! ```text
//! OUT/index.html            counts by status and axis, results against each grid axis,
//!                           MAD figures, score matrices, durations, failures, provenance
//! OUT/tasks.html            every task, in pages of 500 rows (tasks-2.html, ...), each
//! OUT/tasks-N.html          sortable and filterable (report.js) and linked to the others;
//! OUT/tasks-data-N.js       its rows as a script, for OUT/search.html: a text filter and a
//!                           sort over every page, one page at a time (the first 2 000 kept)
//! OUT/report.css, report.js the one style sheet and script every page shares
//! OUT/t/<task_id>/          one task's page (index.html, charts inlined as SVG), its images
//!                           (PNG, GIF) and, for MAD, losses.json (for the MAD page)
//! OUT/mad/<key>.html        one MAD competition: 2x2 images and plot_loss_all (<key>.tasks:
//!                           its four task ids, to tell when it must be drawn again)
//! OUT/fig/*.svg             the index's figures
//! OUT/_manifest/*.json    what was drawn from each batch (for incremental runs)
//! ```
//!
//! # Memory and incremental runs
//!
//! Memory is bounded whatever the number of tasks: what the report knows of each task
//! beyond the batch being drawn is on disk. Every table is read one committed batch at a
//! time. The `tasks` table is read twice: first to learn which axes vary and whether the
//! `--where` filters are valid and keep anything (before anything is written), while a
//! 25-byte reference to each row (task key, batch, row, kept or not) is spilled to a scratch
//! folder in 64 buckets by task key ([`spill`]); read back one bucket at a time, these say
//! which row is each task's latest (a task committed twice shows once) and how many tasks
//! each batch holds. The second pass, batch by batch, draws, counts
//! ([`summary::Summary`], bounded), spills each MAD task's place in its competition, and
//! writes the task table's pages as they fill. Each batch has its manifest
//! (`_manifest/<digest>.json`: per task, the batch its page was drawn from and the values
//! the index and MAD pages show), read and rewritten while that batch is drawn. The data
//! tables (at most 256 tasks or 64 MiB a batch, the writer's limits) are read only for
//! batches holding a task not drawn yet: a task's page is drawn once, from the batch that
//! committed it, and again only when it is committed again (a retried task) or its folder
//! is gone. Pages of tasks no longer in the report (uncommitted, filtered out, or of a
//! batch no longer there) are removed at the end, one bucket of task keys at a time; MAD
//! competition pages are drawn one bucket of competitions at a time, again only when one of
//! their tasks was drawn or their tasks changed. Pixels are decoded only for the tasks
//! being drawn. What grows with the root is the list of batch ids (as the store lists
//! them) and a count per batch.
//!
//! # Damaged data
//!
//! A `tasks` file that cannot be read leaves its tasks out; a data file that cannot be read
//! leaves its tasks' pages without figures, each page naming the file. A run record
//! (`_runs/*.json`) that cannot be read is left out of the provenance, named. All are
//! warnings on the index (and in the returned [`ReportOutcome`]), not errors: the rest of
//! the report is written.
//!
//! # The output folder
//!
//! The report writes only into a new or empty folder or one holding a report (its
//! `_manifest/`), and removes only files it names as it does (task folders by id, MAD
//! files by competition key, task table pages by number); never the root itself, a table
//! folder of it or anything under one (see `check_out`).

mod error;
pub mod figures;
pub mod layout;
pub mod pixels;
pub mod render;
pub mod spill;
pub mod summary;
pub mod tasks;
mod templates;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use synthsweep_store::{RunInfo, Store};

pub use error::{ReportError, Result};
pub use summary::axis_value_order;
pub use tasks::{Filter, TaskInfo};

use layout::{headline_name, LossPoint, MadGroup, TaskExtra};
use render::{render_task, split_by_task, TaskRows};
use spill::{Spill, SpillFiles};

/// Bumped when pages change shape: a manifest of another version redraws everything.
const MANIFEST_VERSION: u32 = 4;
/// Kinds whose done tasks are committed with `images` rows (target, initial, synthesized).
const DRAWS_IMAGES: &[&str] = &[
    "mad",
    "metamer",
    "metamer_ctf",
    "simple_metamer",
    "eigendistortion",
];
/// The folder of the manifests, one per batch drawn from (`<digest of the batch id>.json`).
const MANIFESTS: &str = "_manifest";
/// The one manifest of the report's versions before per-batch manifests (removed).
const OLD_MANIFEST: &str = "_report.json";
/// MAD competitions the index lists at most (each has its page under `mad/`).
pub const MAX_INDEX_GROUPS: usize = 1000;

/// What to report and where.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The site's folder (created).
    pub out: PathBuf,
    /// `--where AXIS=VALUE` filters: a task must match one filter of each axis named
    /// (values of one axis are alternatives, axes are all required).
    pub filters: Vec<Filter>,
    /// Rows per page of the task table; 0 means [`PAGE_ROWS`].
    pub page_rows: usize,
}

/// What a report run did.
#[derive(Debug, Clone, Default)]
pub struct ReportOutcome {
    /// `OUT/index.html`.
    pub index: PathBuf,
    /// Tasks in the report (after filters).
    pub tasks: usize,
    /// Task pages drawn by this run.
    pub drawn: usize,
    /// Task pages kept from an earlier run.
    pub kept: usize,
    /// Data batches read by this run.
    pub batches_read: usize,
    /// Damaged or unreadable parts, left out.
    pub warnings: Vec<String>,
}

/// What was drawn from one batch: for each of its tasks in the report, what its page
/// recorded. One file per batch, read and written while that batch is drawn.
#[derive(Debug, Default, Serialize, Deserialize)]
struct BatchManifest {
    version: u32,
    batch_id: String,
    tasks: BTreeMap<String, TaskExtra>,
}

/// The task ids of a manifest of any version (for removing their pages).
#[derive(Deserialize)]
struct ManifestIds {
    #[serde(default)]
    tasks: BTreeMap<String, serde::de::IgnoredAny>,
}

fn manifest_file(out: &Path, batch_id: &str) -> PathBuf {
    out.join(MANIFESTS)
        .join(format!("{}.json", &digest(batch_id)[..32]))
}

/// The first hex digits of SHA-256 of `s` (stable file names).
pub(crate) fn digest(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(ReportError::io(path))
}

/// Rows per page of the task table (`tasks.html`, `tasks-2.html`, ...) by default.
pub const PAGE_ROWS: usize = 500;

/// A task id as a fixed-size key (its SHA-256's first 16 bytes).
fn id_key(id: &str) -> [u8; 16] {
    let d = Sha256::digest(id.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

/// The competition a file of `OUT/mad/` belongs to: its name's first 32 characters
/// (`<key>.html`, `<key>.tasks`, `<key>_m1.svg`, `<key>_m2.svg`).
fn mad_file_key(name: &str) -> &str {
    name.get(..32).unwrap_or(name)
}

/// Whether `name` is a file the report writes in `OUT/mad/`: a competition's key (32 hex
/// digits) then `.html`, `.tasks`, `_m1.svg` or `_m2.svg`. Nothing else there is removed.
fn is_mad_file(name: &str) -> bool {
    name.len() > 32
        && name.is_char_boundary(32)
        && name[..32].bytes().all(|b| b.is_ascii_hexdigit())
        && matches!(&name[32..], ".html" | ".tasks" | "_m1.svg" | "_m2.svg")
}

/// Whether `name` is named as the report names a task's folder in `OUT/t/`: a task id, 64
/// hex digits.
fn is_task_dir_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Refuses an `--out` folder the report must not write into, before anything is written:
///
/// - an existing folder holding files but no report of this crate (no `_manifest/` and no
///   `_report.json` of an older version): a report removes the files it wrote before, and
///   must not take the user's `t/` or `mad/` for its own;
/// - for a local root, the root itself, a folder of one of its tables or anything under one
///   (a reader of the table, pandas or pyarrow, would read the report's files as part of
///   it), or one of the store's own folders (`_runs/`, `_staging/`, ...). `ROOT/_report`
///   (the default) and other folders beside the tables are fine.
fn check_out(store: &Store, out: &Path) -> Result<()> {
    let bad = |why: String| ReportError::BadOut {
        out: out.display().to_string(),
        why,
    };
    if let synthsweep_store::OutputRoot::Local(root) = store.root() {
        let (root_abs, out_abs) = (resolve(root), resolve(out));
        if out_abs == root_abs {
            return Err(bad(format!(
                "is the output root itself; write the report to {} (the default) or a folder outside the root",
                root.join("_report").display()
            )));
        }
        if let Ok(rest) = out_abs.strip_prefix(&root_abs) {
            let first = rest
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .unwrap_or_default();
            let why = if synthsweep_store::Table::from_name(&first).is_some() {
                Some(format!(
                    "is inside the root's table folder {first}/, whose readers (pandas, pyarrow) would take the report's files for part of the table"
                ))
            } else if first.starts_with('_') && first != "_report" {
                Some(format!(
                    "is inside {first}/, a folder the store keeps for itself"
                ))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(bad(format!(
                    "{why}; write the report to {} (the default) or a folder outside the root",
                    root.join("_report").display()
                )));
            }
        }
    }
    if out.exists() && !out.is_dir() {
        return Err(bad("is a file, not a folder".into()));
    }
    if out.is_dir() && !out.join(MANIFESTS).is_dir() && !out.join(OLD_MANIFEST).is_file() {
        let mut entries = std::fs::read_dir(out).map_err(ReportError::io(out))?;
        if entries.next().is_some() {
            return Err(bad(
                "the folder holds files and no report written by synthsweep (no _manifest/): the report removes files it wrote before and will not write among other files; give an empty or new folder".into(),
            ));
        }
    }
    Ok(())
}

/// `p` made absolute, one component at a time: `..` pops, and each prefix that exists is
/// resolved by the file system (symbolic links followed); the rest is taken as written.
fn resolve(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut cur = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                cur.pop();
            }
            std::path::Component::CurDir => {}
            c => {
                cur.push(c);
                if let Ok(real) = cur.canonicalize() {
                    cur = real;
                }
            }
        }
    }
    cur
}

/// 32 hex digits (a MAD competition's key) as 16 bytes.
fn hex_key(hex: &str) -> [u8; 16] {
    let mut k = [0u8; 16];
    for (i, b) in k.iter_mut().enumerate() {
        *b = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    k
}

/// One `tasks` row as the first pass spills it: the task's key, the row's batch and
/// position, whether the filters keep it.
#[derive(Debug, Clone, Copy)]
struct RowRef {
    key: [u8; 16],
    batch: u32,
    row: u32,
    kept: bool,
}

impl RowRef {
    fn to_bytes(self) -> [u8; 25] {
        let mut b = [0u8; 25];
        b[..16].copy_from_slice(&self.key);
        b[16..20].copy_from_slice(&self.batch.to_le_bytes());
        b[20..24].copy_from_slice(&self.row.to_le_bytes());
        b[24] = u8::from(self.kept);
        b
    }

    fn from_bytes(b: &[u8]) -> RowRef {
        let mut key = [0u8; 16];
        key.copy_from_slice(&b[..16]);
        let u = |r: std::ops::Range<usize>| u32::from_le_bytes(b[r].try_into().expect("4 bytes"));
        RowRef {
            key,
            batch: u(16..20),
            row: u(20..24),
            kept: b[24] != 0,
        }
    }
}

/// The rows of one bucket of the spilled `tasks` rows, split into each task's latest row
/// (the last of the last batch holding it: the one the report shows) and the rows it
/// supersedes (a task committed twice, before recovery resolves it).
fn latest_rows(rows: &SpillFiles, bucket: usize) -> Result<(Vec<RowRef>, Vec<RowRef>)> {
    let mut refs: Vec<RowRef> = rows
        .bucket(bucket)?
        .iter()
        .map(|r| RowRef::from_bytes(r))
        .collect();
    refs.sort_by_key(|r| (r.key, r.batch, r.row));
    let (mut latest, mut superseded) = (Vec::new(), Vec::new());
    for (i, r) in refs.iter().enumerate() {
        if refs.get(i + 1).is_some_and(|n| n.key == r.key) {
            superseded.push(*r);
        } else {
            latest.push(*r);
        }
    }
    Ok((latest, superseded))
}

/// The first pass over the `tasks` table.
struct Scan {
    /// Per batch, how many tasks it holds the latest row of (of those the filters keep).
    per_batch: Vec<usize>,
    /// Rows (batch, row) superseded by a later row of the same task: empty unless a task
    /// was committed twice.
    superseded: HashSet<(u32, u32)>,
    /// Batches whose tasks file could not be read.
    unreadable: BTreeSet<usize>,
    /// Axes that vary per kind (over every task, before filters).
    varying: BTreeMap<String, Vec<String>>,
    /// Axes of the task table's columns (those of the tasks the filters keep).
    columns: Vec<String>,
    /// Tasks the filters keep.
    total: usize,
    /// Every row as a [`RowRef`], on disk, by the task's key.
    rows: SpillFiles,
}

/// Reads the `tasks` table one batch file at a time: which axes vary, whether the filters
/// are valid and what they keep, and a [`RowRef`] of each row spilled to disk; then, one
/// bucket of those at a time, which row is each task's latest and how many each batch holds.
/// Memory: one batch's rows, the axes, a count per batch.
fn scan_tasks(
    store: &Store,
    batches: &[String],
    filters: &[Filter],
    scratch: &Path,
    warnings: &mut Vec<String>,
) -> Result<Scan> {
    let mut spill = Spill::create(&scratch.join("rows"))?;
    let mut unreadable = BTreeSet::new();
    let mut values = tasks::AxisValues::default();
    let mut check = tasks::FilterCheck::new(filters);
    let mut axes_seen: BTreeSet<String> = BTreeSet::new();
    for (i, b) in batches.iter().enumerate() {
        let rows = match store.read_batch_tasks(b) {
            Ok(rows) => rows,
            Err(e) => {
                warnings.push(format!(
                    "tasks/part-{b}.parquet unreadable, its tasks are left out: {e}"
                ));
                unreadable.insert(i);
                continue;
            }
        };
        for (j, r) in rows.iter().enumerate() {
            let t = TaskInfo::from_row(r);
            values.observe(&t);
            let kept = check.observe(&t);
            if kept {
                for a in t.axes.keys() {
                    if !axes_seen.contains(a) {
                        axes_seen.insert(a.clone());
                    }
                }
            }
            let key = id_key(&r.task_id);
            let r = RowRef {
                key,
                batch: i as u32,
                row: j as u32,
                kept,
            };
            spill.push(&key, &r.to_bytes())?;
        }
    }
    check.finish()?;
    let rows = spill.finish()?;
    let mut per_batch = vec![0usize; batches.len()];
    let mut superseded = HashSet::new();
    let mut total = 0;
    for b in 0..spill::BUCKETS {
        let (latest, older) = latest_rows(&rows, b)?;
        for r in latest.iter().filter(|r| r.kept) {
            per_batch[r.batch as usize] += 1;
            total += 1;
        }
        superseded.extend(older.iter().map(|r| (r.batch, r.row)));
    }
    let varying = values.varying();
    let any_varying: BTreeSet<&String> = varying.values().flatten().collect();
    let columns = axes_seen
        .into_iter()
        .filter(|a| !a.starts_with("params.") || any_varying.contains(a))
        .collect();
    Ok(Scan {
        per_batch,
        superseded,
        unreadable,
        varying,
        columns,
        total,
        rows,
    })
}

/// A done MAD task's place in its competition, as spilled while the tasks stream by.
#[derive(Serialize, Deserialize)]
struct MadEntry {
    group: MadGroup,
    m: usize,
    d: usize,
    task_id: String,
    final_optimized: Option<f64>,
    final_reference: Option<f64>,
    /// Drawn by this run.
    fresh: bool,
    /// Why rows of the task are missing, when some are (its page's first note).
    #[serde(default)]
    problem: Option<String>,
}

/// Reads a manifest; `None` when it is missing or unreadable.
fn read_manifest(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// Writes the report of `store`'s committed tasks into `opts.out`.
///
/// The `tasks` table is read twice, one batch file at a time (see the crate's
/// documentation). What is known of each task beyond the batch being drawn is on disk: a
/// 25-byte reference per `tasks` row and one record per MAD task and per removed page in a
/// scratch folder (the system's temporary folder, `TMPDIR`), removed at the end, and the
/// manifest of each batch in `OUT/_manifest/`. Memory holds one batch's rows and data, the
/// whole-sweep counts ([`summary::Summary`], bounded), one bucket (1/64) of the scratch
/// records at a time, the page of the task table being filled, and a few bytes per batch.
///
/// # Errors
///
/// [`ReportError::NotARoot`] for a root with no `tasks/` and no `_runs/`,
/// [`ReportError::Empty`] for one with runs but no committed task, [`ReportError::BadFilter`]
/// for a filter naming no axis or matching nothing (all three before anything is written
/// into `opts.out`); a storage failure listing the root; a failure writing the site or the
/// scratch folder.
pub fn write_report(store: &Store, opts: &ReportOptions) -> Result<ReportOutcome> {
    let root = store.root().display();
    let mut warnings = Vec::new();
    let batches = store.committed_batches()?;
    let runs = match store.read_runs_lenient() {
        Ok((r, bad)) => {
            for b in bad {
                warnings.push(format!("run record {b}: left out of the provenance"));
            }
            r
        }
        Err(e) => {
            warnings.push(format!("run records (_runs/) unreadable: {e}"));
            Vec::new()
        }
    };
    if batches.is_empty() {
        return Err(if runs.is_empty() && warnings.is_empty() {
            ReportError::NotARoot(root)
        } else {
            ReportError::Empty {
                root,
                runs: runs.len(),
            }
        });
    }
    check_out(store, &opts.out)?;
    let tmp = tempfile::Builder::new()
        .prefix("synthsweep-report-")
        .tempdir()
        .map_err(|source| ReportError::Scratch {
            dir: std::env::temp_dir(),
            source,
        })?;
    let scratch = tmp.path();
    let scan = scan_tasks(store, &batches, &opts.filters, scratch, &mut warnings)?;

    let out = &opts.out;
    let first_run = !out.join(MANIFESTS).is_dir();
    // The manifests' folder first: it marks the folder as a report's (see [`check_out`]).
    for d in [MANIFESTS, "t", "fig", "mad"] {
        std::fs::create_dir_all(out.join(d)).map_err(ReportError::io(out))?;
    }
    write(&out.join("report.css"), templates::CSS.as_bytes())?;
    write(&out.join("report.js"), templates::JS.as_bytes())?;
    // Task pages to remove unless their task is in this report: those of an earlier
    // report of another version, and those its manifests hold that this run does not draw.
    let mut stale = Spill::create(&scratch.join("stale"))?;
    let push_stale = |stale: &mut Spill, id: &str| stale.push(&id_key(id), id.as_bytes());
    if first_run {
        let old = out.join(OLD_MANIFEST);
        if old.is_file() {
            std::fs::remove_file(&old).map_err(ReportError::io(&old))?;
        }
        let dir = out.join("t");
        for e in std::fs::read_dir(&dir)
            .map_err(ReportError::io(&dir))?
            .flatten()
        {
            // Only folders named as this report names them (a task id's 64 hex digits).
            match e.file_name().to_str() {
                Some(id) if is_task_dir_name(id) => push_stale(&mut stale, id)?,
                _ => {}
            }
        }
        // Competition pages of another version: drawn again (only the files the report
        // names as it does; see [`is_mad_file`]).
        let mad = out.join("mad");
        for e in std::fs::read_dir(&mad)
            .map_err(ReportError::io(&mad))?
            .flatten()
        {
            let p = e.path();
            if e.file_name().to_str().is_some_and(is_mad_file) && p.is_file() {
                std::fs::remove_file(&p).map_err(ReportError::io(&p))?;
            }
        }
    }

    let env = templates::env();
    let common = minijinja::context! {
        version => env!("CARGO_PKG_VERSION"),
        written => tasks::rfc3339(std::time::SystemTime::now()),
        root => root.clone(),
    };
    let mut summary = summary::Summary::new(scan.varying.clone(), &scratch.join("durations"))?;
    let mut mads = Spill::create(&scratch.join("mad"))?;
    let page_rows = if opts.page_rows == 0 {
        PAGE_ROWS
    } else {
        opts.page_rows
    };
    let mut pager = Pager::new(&env, out, &scan.columns, scan.total, page_rows, &common);
    // Manifest files of the batches drawn from (a few bytes per batch).
    let mut current: HashSet<std::ffi::OsString> = HashSet::new();
    let (mut drawn, mut kept, mut batches_read) = (0, 0, 0);
    // Done tasks drawn without any images row: how many, and the first (task id, batch),
    // for a warning rather than silence.
    let mut no_images: (usize, Option<(String, String)>) = (0, None);
    // The second pass, in batch order: each task from its latest row, drawn when new.
    for (i, b) in batches.iter().enumerate() {
        if scan.per_batch[i] == 0 || scan.unreadable.contains(&i) {
            continue;
        }
        let rows = match store.read_batch_tasks(b) {
            Ok(rows) => rows,
            Err(e) => {
                warnings.push(format!(
                    "tasks/part-{b}.parquet unreadable, its tasks are left out: {e}"
                ));
                continue;
            }
        };
        let mut infos: Vec<TaskInfo> = Vec::new();
        for (j, r) in rows.iter().enumerate() {
            if scan.superseded.contains(&(i as u32, j as u32)) {
                continue;
            }
            let mut t = TaskInfo::from_row(r);
            if !tasks::FilterCheck::passes(&opts.filters, &t) {
                continue;
            }
            tasks::keep_axes(&mut t, &scan.varying);
            infos.push(t);
        }
        drop(rows);
        let mpath = manifest_file(out, b);
        let mut old = BatchManifest::default();
        if let Some(bytes) = read_manifest(&mpath) {
            match serde_json::from_slice::<BatchManifest>(&bytes) {
                Ok(m) if m.version == MANIFEST_VERSION && m.batch_id == *b => old = m,
                _ => {
                    if let Ok(m) = serde_json::from_slice::<ManifestIds>(&bytes) {
                        for id in m.tasks.keys() {
                            push_stale(&mut stale, id)?;
                        }
                    }
                }
            }
        }
        let mut manifest = BatchManifest {
            version: MANIFEST_VERSION,
            batch_id: b.clone(),
            tasks: BTreeMap::new(),
        };
        let mut todo: BTreeMap<&str, Vec<&TaskInfo>> = BTreeMap::new();
        for t in &infos {
            match old.tasks.remove(&t.task_id) {
                Some(x)
                    if x.batch_id == t.batch_id
                        && task_dir(out, t).join("index.html").is_file() =>
                {
                    manifest.tasks.insert(t.task_id.clone(), x);
                    kept += 1;
                }
                _ => todo.entry(t.batch_id.as_str()).or_default().push(t),
            }
        }
        // Tasks this batch held last time and holds no more (uncommitted, filtered out).
        for id in old.tasks.keys() {
            push_stale(&mut stale, id)?;
        }
        drop(old);
        let mut fresh: HashSet<&str> = HashSet::new();
        for (batch, members) in todo {
            batches_read += 1;
            let (mut rows, damaged) = match store.read_batch_data(batch) {
                Ok(d) => (split_by_task(d), None),
                Err(e) => {
                    warnings.push(format!(
                        "data files of batch {batch} unreadable, {} task page(s) without figures: {e}",
                        members.len()
                    ));
                    (BTreeMap::new(), Some(e.to_string()))
                }
            };
            for t in members {
                let mut r = rows.remove(&t.task_id).unwrap_or_else(TaskRows::default);
                if let Some(e) = &damaged {
                    r.problem = Some(format!(
                        "The data files of batch {batch} could not be read, so this page has no figures (the next report draws it again): {e}"
                    ));
                } else if t.done()
                    && r.images.is_empty()
                    && DRAWS_IMAGES.contains(&t.synth.as_str())
                {
                    r.problem = Some(format!(
                        "The images table holds no row of this task (images/part-{batch}.parquet), though a done {} task is committed with its images: they are not shown.",
                        t.synth
                    ));
                    no_images.0 += 1;
                    no_images
                        .1
                        .get_or_insert_with(|| (t.task_id.clone(), batch.to_string()));
                }
                r.unreadable = damaged.is_some();
                let dir = task_dir(out, t);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(ReportError::io(&dir))?;
                }
                let mut extra = render_task(&env, t, &r, &dir, &common)?;
                if damaged.is_some() {
                    // Not recorded as drawn from its batch: the next report tries again.
                    extra.batch_id = String::new();
                }
                manifest.tasks.insert(t.task_id.clone(), extra);
                fresh.insert(t.task_id.as_str());
                drawn += 1;
            }
            tracing::debug!("report: batch {batch} drawn");
        }
        for t in &infos {
            let x = manifest.tasks.get(&t.task_id);
            summary.add(t, x)?;
            if let Some((group, m, d)) = layout::mad_place(t) {
                let key = hex_key(&group.key);
                let e = MadEntry {
                    group,
                    m,
                    d,
                    task_id: t.task_id.clone(),
                    final_optimized: x.and_then(|x| x.final_optimized),
                    final_reference: x.and_then(|x| x.final_reference),
                    fresh: fresh.contains(t.task_id.as_str()),
                    problem: x.and_then(|x| x.problem.clone()),
                };
                let json = serde_json::to_vec(&e)
                    .map_err(|e| ReportError::figure("mad")(e.to_string()))?;
                mads.push(&key, &json)?;
            }
            pager.push(t, x.and_then(|x| x.headline))?;
        }
        let json = serde_json::to_vec(&manifest)
            .map_err(|e| ReportError::figure(MANIFESTS)(e.to_string()))?;
        write(&mpath, &json)?;
        if let Some(name) = mpath.file_name() {
            current.insert(name.to_os_string());
        }
    }
    pager.finish()?;
    if let (n, Some((id, batch))) = &no_images {
        warnings.push(format!(
            "{n} done task page(s) drawn without images: the images table holds no row of them (first: task {id}, images/part-{batch}.parquet)"
        ));
    }
    // Manifests of batches not drawn from now (uncommitted, unreadable, filtered out).
    let mdir = out.join(MANIFESTS);
    for e in std::fs::read_dir(&mdir)
        .map_err(ReportError::io(&mdir))?
        .flatten()
    {
        if current.contains(&e.file_name()) {
            continue;
        }
        let p = e.path();
        if let Some(m) =
            read_manifest(&p).and_then(|b| serde_json::from_slice::<ManifestIds>(&b).ok())
        {
            for id in m.tasks.keys() {
                push_stale(&mut stale, id)?;
            }
        }
        std::fs::remove_file(&p).map_err(ReportError::io(&p))?;
    }
    drop(current);
    // Pages of tasks no longer in the report, one bucket of task keys at a time.
    let stale = stale.finish()?;
    for b in 0..spill::BUCKETS {
        let gone = stale.bucket(b)?;
        if gone.is_empty() {
            continue;
        }
        let (latest, _) = latest_rows(&scan.rows, b)?;
        let shown: HashSet<[u8; 16]> = latest.iter().filter(|r| r.kept).map(|r| r.key).collect();
        for id in gone {
            let Ok(id) = std::str::from_utf8(&id) else {
                continue;
            };
            if shown.contains(&id_key(id))
                || id.is_empty()
                || id.contains(['/', '\\'])
                || id.starts_with('.')
            {
                continue;
            }
            let dir = out.join("t").join(id);
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir).map_err(ReportError::io(&dir))?;
            }
        }
    }
    drop(stale);

    // MAD competitions, one bucket of groups at a time: a page is drawn again when one of
    // its tasks was drawn, when it is missing, or when its tasks changed.
    // Files of competitions no longer there are removed (their names spilled by key).
    let mads = mads.finish()?;
    let mut mad_files = Spill::create(&scratch.join("mad_files"))?;
    let mad_dir = out.join("mad");
    for e in std::fs::read_dir(&mad_dir)
        .map_err(ReportError::io(&mad_dir))?
        .flatten()
    {
        match e.file_name().to_str() {
            Some(name) if is_mad_file(name) => {
                mad_files.push(&hex_key(mad_file_key(name)), name.as_bytes())?
            }
            _ => {}
        }
    }
    let mad_files = mad_files.finish()?;
    let mut group_rows: Vec<GroupRow> = Vec::new();
    let mut n_groups = 0usize;
    for b in 0..spill::BUCKETS {
        let mut groups: BTreeMap<String, (MadGroup, MadValues, bool, Vec<String>)> =
            BTreeMap::new();
        for rec in mads.bucket(b)? {
            let e: MadEntry = serde_json::from_slice(&rec)
                .map_err(|e| ReportError::figure("mad")(e.to_string()))?;
            let g = groups
                .entry(e.group.key.clone())
                .or_insert_with(|| (e.group, MadValues::default(), false, Vec::new()));
            if g.0.cells[e.m][e.d].is_none() {
                if let Some(why) = e.problem {
                    g.3.push(format!(
                        "The {} {} task ({}): {why}",
                        ["min", "max"][e.d],
                        [&g.0.metric1, &g.0.metric2][e.m],
                        &e.task_id[..12.min(e.task_id.len())]
                    ));
                }
                g.0.cells[e.m][e.d] = Some(e.task_id);
                g.1[e.m][e.d] = (e.final_optimized, e.final_reference);
                g.2 |= e.fresh;
            }
        }
        for name in mad_files.bucket(b)? {
            let Ok(name) = std::str::from_utf8(&name) else {
                continue;
            };
            if !groups.contains_key(mad_file_key(name)) && is_mad_file(name) {
                let p = mad_dir.join(name);
                std::fs::remove_file(&p).map_err(ReportError::io(&p))?;
            }
        }
        for (key, (g, vals, fresh, notes)) in groups {
            let page = out.join("mad").join(format!("{key}.html"));
            let sig_file = out.join("mad").join(format!("{key}.tasks"));
            let sig = g
                .cells
                .iter()
                .flatten()
                .map(|c| c.as_deref().unwrap_or("-"))
                .collect::<Vec<_>>()
                .join("\n");
            let same = std::fs::read_to_string(&sig_file).is_ok_and(|s| s == sig);
            if fresh || !same || !page.is_file() {
                mad_page(&env, out, &g, &vals, &notes, &common)?;
                write(&sig_file, sig.as_bytes())?;
            }
            n_groups += 1;
            if group_rows.len() < MAX_INDEX_GROUPS {
                group_rows.push(GroupRow {
                    count: g.cells.iter().flatten().flatten().count(),
                    key: g.key,
                    image: g.image,
                    metric1: g.metric1,
                    metric2: g.metric2,
                    rest: g.rest,
                });
            }
        }
    }
    drop((mads, mad_files));
    index_page(
        &env,
        out,
        &root,
        &mut summary,
        &group_rows,
        n_groups,
        &runs,
        &warnings,
        &opts.filters,
        page_rows,
        &common,
    )?;
    for w in &warnings {
        tracing::warn!("report: {w}");
    }
    Ok(ReportOutcome {
        index: out.join("index.html"),
        tasks: summary.total(),
        drawn,
        kept,
        batches_read,
        warnings,
    })
}

/// Per cell of a MAD figure, the final image's optimized and reference metric values.
type MadValues = [[(Option<f64>, Option<f64>); 2]; 2];

fn task_dir(out: &Path, t: &TaskInfo) -> PathBuf {
    out.join("t").join(&t.task_id)
}

#[derive(Serialize)]
struct Cell {
    file: Option<String>,
    link: String,
    caption: String,
}

fn load_losses(out: &Path, id: &str) -> Vec<LossPoint> {
    std::fs::read(out.join("t").join(id).join(render::LOSSES_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<LossPoint>>(&b).ok())
        .unwrap_or_default()
}

/// A MAD competition's page: `display_mad_image_all` and `plot_loss_all`.
fn mad_page(
    env: &minijinja::Environment<'_>,
    out: &Path,
    g: &MadGroup,
    values: &MadValues,
    notes: &[String],
    common: &minijinja::Value,
) -> Result<()> {
    let metric = [&g.metric1, &g.metric2];
    // An image the task's page drew (its file is there).
    let file_of = |id: &str, name: &str| {
        out.join("t")
            .join(id)
            .join(name)
            .is_file()
            .then(|| format!("../t/{id}/{name}"))
    };
    let any = g.cells.iter().flatten().flatten().next().cloned();
    let mut grid: Vec<Vec<Cell>> = Vec::new();
    let first_row = vec![
        Cell {
            file: any.as_deref().and_then(|id| file_of(id, "target.png")),
            link: String::new(),
            caption: "Reference image".into(),
        },
        Cell {
            file: any.as_deref().and_then(|id| file_of(id, "initial.png")),
            link: String::new(),
            caption: "Initial image (reference + noise)".into(),
        },
        Cell {
            file: None,
            link: String::new(),
            caption: String::new(),
        },
    ];
    grid.push(first_row);
    for (d, dir) in ["min", "max"].iter().enumerate() {
        let mut row = vec![Cell {
            file: None,
            link: String::new(),
            caption: format!("{dir}imize"),
        }];
        for m in 0..2 {
            let cell = match &g.cells[m][d] {
                Some(id) => {
                    // Values of metric1 and metric2 at the final image: the optimized one is
                    // `final_optimized` of the task that optimized it.
                    let (v_opt, v_ref) = values[m][d];
                    let (v1, v2) = if m == 0 {
                        (v_opt, v_ref)
                    } else {
                        (v_ref, v_opt)
                    };
                    Cell {
                        file: file_of(id, "final.png"),
                        link: format!("../t/{id}/index.html"),
                        caption: format!(
                            "{dir} {} ({} held): {} = {}, {} = {}",
                            metric[m],
                            metric[1 - m],
                            g.metric1,
                            render::num(v1),
                            g.metric2,
                            render::num(v2)
                        ),
                    }
                }
                None => Cell {
                    file: None,
                    link: String::new(),
                    caption: format!("{dir} {}: not committed (or failed)", metric[m]),
                },
            };
            row.push(cell);
        }
        grid.push(row);
    }
    // plot_loss_all: metric 1's values for all four syntheses on one axis, metric 2's on
    // the other; color = which metric was optimized, dashed = min.
    let mut plots = Vec::new();
    let mut loaded: Vec<(usize, usize, Vec<LossPoint>)> = Vec::new();
    for m in 0..2 {
        for d in 0..2 {
            if let Some(id) = &g.cells[m][d] {
                loaded.push((m, d, load_losses(out, id)));
            }
        }
    }
    for (k, name) in metric.iter().enumerate() {
        let series: Vec<figures::Series> = loaded
            .iter()
            .map(|(m, d, pts)| figures::Series {
                name: format!("{} {}", ["min", "max"][*d], metric[*m]),
                points: pts
                    .iter()
                    .filter_map(|p| {
                        let v = if *m == k { p.optimized } else { p.reference };
                        v.map(|v| (p.iteration as f64, v))
                    })
                    .collect(),
                color: *m,
                dashed: *d == 0,
            })
            .collect();
        let title = name.to_string();
        let svg = figures::line_chart(
            &figures::LineChart {
                title: &title,
                x_label: "iteration",
                y_label: name,
                ..Default::default()
            },
            &series,
        )?;
        let file = format!("{}_m{}.svg", g.key, k + 1);
        write(&out.join("mad").join(&file), svg.as_bytes())?;
        plots.push(Cell {
            file: Some(file),
            link: String::new(),
            caption: format!(
                "{name} over iterations in the four syntheses (color: the metric optimized, blue {}, orange {}; dashed: min, solid: max).",
                g.metric1, g.metric2
            ),
        });
    }
    let width = 192;
    let html = env.get_template("mad.html")?.render(minijinja::context! {
        title => format!("MAD: {} — {} vs {} {}", g.image, g.metric1, g.metric2, g.rest),
        up => "../",
        grid => grid,
        notes => notes,
        plots => plots,
        width => width,
        ..common.clone()
    })?;
    write(
        &out.join("mad").join(format!("{}.html", g.key)),
        html.as_bytes(),
    )
}

#[derive(Serialize)]
struct KindRow {
    kind: String,
    done: usize,
    failed: usize,
    total: usize,
    seconds: String,
}

#[derive(Serialize)]
struct AxisValue {
    value: String,
    done: usize,
    failed: usize,
}

#[derive(Serialize)]
struct AxisTable {
    kind: String,
    axis: String,
    values: Vec<AxisValue>,
}

#[derive(Serialize)]
struct Fig {
    file: String,
    caption: String,
}

#[derive(Serialize)]
struct Failure {
    count: usize,
    error: String,
    example: String,
    example_label: String,
}

#[derive(Serialize)]
struct GroupRow {
    key: String,
    image: String,
    metric1: String,
    metric2: String,
    rest: String,
    count: usize,
}

#[derive(Serialize)]
struct MatrixCell {
    text: String,
    color: String,
}

#[derive(Serialize)]
struct MatrixRow {
    name: String,
    cells: Vec<MatrixCell>,
}

#[derive(Serialize)]
struct Matrix {
    metric: String,
    cols: Vec<String>,
    rows: Vec<MatrixRow>,
}

#[derive(Serialize)]
struct RunRow {
    run_id: String,
    started_at: String,
    state: String,
    processes: usize,
    threads: usize,
    devices: String,
    hosts: String,
    version: String,
    torch: String,
    git: String,
    committed: String,
    command: String,
    spec_path: Option<String>,
    spec_text: String,
}

fn score_matrices(summary: &summary::Summary) -> Vec<Matrix> {
    summary
        .scores
        .iter()
        .map(|(metric, cells)| {
            let rows: BTreeSet<&String> = cells.keys().map(|k| &k.0).collect();
            let cols: BTreeSet<&String> = cells.keys().map(|k| &k.1).collect();
            let (lo, hi) = cells
                .values()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                    (l.min(*v), h.max(*v))
                });
            let color = |v: f64| {
                let x = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                // white (low) to blue (high)
                let c = |a: f64, b: f64| (a + (b - a) * x).round() as u8;
                format!(
                    "rgb({},{},{})",
                    c(255.0, 100.0),
                    c(255.0, 150.0),
                    c(255.0, 230.0)
                )
            };
            Matrix {
                metric: metric.clone(),
                cols: cols.iter().map(|c| (*c).clone()).collect(),
                rows: rows
                    .iter()
                    .map(|r| MatrixRow {
                        name: (*r).clone(),
                        cells: cols
                            .iter()
                            .map(|c| match cells.get(&((*r).clone(), (*c).clone())) {
                                Some(v) => MatrixCell {
                                    text: format!("{v:.4}"),
                                    color: color(*v),
                                },
                                None => MatrixCell {
                                    text: String::new(),
                                    color: "#fff".into(),
                                },
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Whether a run of the same spec started after `r` ran every task (complete, or with
/// failed tasks): then whatever `r` left unrun was run since.
fn superseded(r: &RunInfo, runs: &[RunInfo]) -> bool {
    runs.iter().any(|l| {
        l.completed()
            && l.spec_text == r.spec_text
            && (l.started(), &l.run_id) > (r.started(), &r.run_id)
    })
}

#[allow(clippy::too_many_arguments)]
fn index_page(
    env: &minijinja::Environment<'_>,
    out: &Path,
    root: &str,
    summary: &mut summary::Summary,
    group_rows: &[GroupRow],
    n_groups: usize,
    runs: &[RunInfo],
    warnings: &[String],
    filters: &[Filter],
    page_rows: usize,
    common: &minijinja::Value,
) -> Result<()> {
    let kind_rows: Vec<KindRow> = summary
        .kinds
        .iter()
        .map(|(k, c)| KindRow {
            kind: k.to_string(),
            done: c.done,
            failed: c.failed,
            total: c.done + c.failed,
            seconds: format!("{:.1}", c.seconds),
        })
        .collect();
    // Counts by axis and the strip plots, per kind and varying axis.
    let mut axis_tables = Vec::new();
    let mut strips = Vec::new();
    for ((kind, axis), counts) in &summary.axis_counts {
        if counts.len() < 2 {
            continue;
        }
        // Numbers numerically (seeds 0, 1, 2, 10), then text.
        let mut counts: Vec<(&String, &(usize, usize))> = counts.iter().collect();
        counts.sort_by(|a, b| summary::axis_value_order(a.0, b.0));
        axis_tables.push(AxisTable {
            kind: kind.clone(),
            axis: axis.clone(),
            values: counts
                .iter()
                .map(|(v, (d, f))| AxisValue {
                    value: v.to_string(),
                    done: *d,
                    failed: *f,
                })
                .collect(),
        });
        let Some(strip) = summary.strips.get(&(kind.clone(), axis.clone())) else {
            continue;
        };
        let Some(seen_cats) = &strip.cats else {
            continue;
        };
        if strip.points.is_empty() {
            continue;
        }
        // Categories in the axis's value order.
        let cats: Vec<String> = counts.iter().map(|(v, _)| (*v).clone()).collect();
        let order: Vec<usize> = seen_cats
            .iter()
            .map(|c| cats.iter().position(|x| x == c).unwrap_or(0))
            .collect();
        let pts: Vec<(usize, f64, usize)> = strip
            .points
            .iter()
            .map(|&(c, y, g)| (order[c], y, g))
            .collect();
        let grouped = strip.groups.iter().any(|g| !g.is_empty());
        let y = headline_name(kind);
        let svg = figures::strip_chart(
            &format!("{kind}: {y} by {axis}"),
            axis,
            y,
            &cats,
            &pts,
            &strip.groups,
        )?;
        let file = format!(
            "fig/{}.svg",
            digest(&format!("{kind}\u{1}{axis}"))[..16].to_owned()
        );
        write(&out.join(&file), svg.as_bytes())?;
        let shown = if pts.len() < strip.seen {
            format!("{} points, a uniform sample of {}", pts.len(), strip.seen)
        } else {
            format!("{} points", pts.len())
        };
        strips.push(Fig {
            file,
            caption: format!(
                "{kind}: {y} of each finished task ({shown}) against {axis}{}.",
                if grouped { ", colored by minmax" } else { "" }
            ),
        });
    }
    // Durations, read back from their file.
    let (bins, counts) = summary.durations.histogram(30)?;
    let svg = figures::bar_chart("Task durations", "seconds", &bins, &counts)?;
    write(&out.join("fig/durations.svg"), svg.as_bytes())?;
    let median = summary.durations.median()?.unwrap_or(0.0);
    let max = summary.durations.min_max.map_or(0.0, |m| m.1);
    // Failures, grouped by message.
    let mut failures: Vec<Failure> = summary
        .failures
        .iter()
        .map(|(e, f)| Failure {
            count: f.count,
            error: e.clone(),
            example: f.example.clone(),
            example_label: f.example_label.clone(),
        })
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.count));
    failures.truncate(100);
    let run_rows: Vec<RunRow> = runs
        .iter()
        .rev()
        .map(|r| RunRow {
            run_id: r.run_id.clone(),
            started_at: r.started_at.clone(),
            state: match &r.finished_at {
                Some(f) => format!("{} {f}", r.state()),
                None => "not finished (running, or stopped)".into(),
            },
            processes: r.processes,
            threads: r.threads,
            devices: r.devices.join(", "),
            hosts: r.hosts.join(", "),
            version: r.synthsweep_version.clone(),
            torch: r.torch_version.clone().unwrap_or_else(|| "?".into()),
            git: r.git_commit.clone().unwrap_or_else(|| "?".into()),
            committed: match (r.committed_done, r.committed_failed) {
                (Some(d), Some(f)) => format!("{d} done, {f} failed"),
                _ => String::new(),
            },
            command: r.command.join(" "),
            spec_path: r.spec_path.clone(),
            spec_text: r.spec_text.clone(),
        })
        .collect();
    // A run stopped or killed before running every task leaves tasks uncommitted only until
    // a later run of the same spec runs every task (the resume the note asks for).
    let open: Vec<&RunInfo> = runs.iter().filter(|r| !superseded(r, runs)).collect();
    let unfinished = open.iter().filter(|r| r.finished_at.is_none()).count();
    let stopped = open
        .iter()
        .filter(|r| r.finished_at.is_some() && !r.completed())
        .count();
    let running_note = if unfinished > 0 {
        format!("{unfinished} run(s) not finished: a sweep may still be running; this report shows what was committed when it was written (run the report again for more; only new tasks are drawn).")
    } else if stopped > 0 {
        format!("{stopped} run(s) ended before running every task (interrupted, preempted or stopped): run the same command again to resume.")
    } else {
        "Every recorded run finished.".to_string()
    };
    let html = env.get_template("index.html")?.render(minijinja::context! {
        title => format!("synthsweep report: {}", summary.sweeps.iter().cloned().collect::<Vec<_>>().join(", ")),
        up => "",
        warnings => warnings,
        filters => filters.iter().map(|f| format!("{}={}", f.axis, f.value)).collect::<Vec<_>>().join(", "),
        kinds => kind_rows,
        done => summary.done,
        failed => summary.failed,
        total => summary.total(),
        seconds => format!("{:.1}", summary.seconds),
        running_note => running_note,
        axes => axis_tables,
        strips => strips,
        mad_groups => group_rows,
        mad_groups_total => n_groups,
        scores_left_out => summary.scores_left_out,
        score_side => summary::MAX_SCORE_IMAGES,
        score_matrices => score_matrices(summary),
        durations => "fig/durations.svg",
        median_s => format!("{median:.2}"),
        max_s => format!("{max:.2}"),
        failures => failures,
        other_failures => summary.other_failures,
        pages => summary.total().div_ceil(page_rows).max(1),
        page_rows => page_rows,
        runs => run_rows,
        root => root,
        ..common.clone()
    })?;
    write(&out.join("index.html"), html.as_bytes())
}

#[derive(Serialize)]
struct Column {
    name: String,
    num: bool,
}

#[derive(Serialize)]
struct Row {
    id: String,
    status: String,
    cells: Vec<String>,
}

#[derive(Serialize)]
struct PageLink {
    n: usize,
    /// Pages left out before this one.
    gap: bool,
    file: String,
    current: bool,
}

/// The file of page `n` (from 1) of the task table.
pub fn tasks_page_file(n: usize) -> String {
    if n <= 1 {
        "tasks.html".to_string()
    } else {
        format!("tasks-{n}.html")
    }
}

/// The rows of page `n` (from 1) of the task table as a script, for `search.html`.
pub fn tasks_data_file(n: usize) -> String {
    format!("tasks-data-{n}.js")
}

/// Rows `search.html` shows at most (the browser holds these and one page of the table).
pub const SEARCH_KEEP: usize = 2000;

/// The task table as pages of `page_rows` rows, written as the tasks stream by (in commit
/// order): a page holds its rows only while they are gathered.
struct Pager<'a> {
    env: &'a minijinja::Environment<'a>,
    out: &'a Path,
    axes: &'a [String],
    columns: Vec<Column>,
    total: usize,
    page_rows: usize,
    pages: usize,
    page: usize,
    first_row: usize,
    rows: Vec<Row>,
    common: &'a minijinja::Value,
}

impl<'a> Pager<'a> {
    fn new(
        env: &'a minijinja::Environment<'a>,
        out: &'a Path,
        axes: &'a [String],
        total: usize,
        page_rows: usize,
        common: &'a minijinja::Value,
    ) -> Pager<'a> {
        let mut columns: Vec<Column> = ["task", "kind", "status"]
            .into_iter()
            .map(|n| Column {
                name: n.into(),
                num: false,
            })
            .collect();
        columns.extend(axes.iter().map(|a| Column {
            name: a.trim_start_matches("params.").to_string(),
            num: a == "seed",
        }));
        for (n, num) in [
            ("value", true),
            ("final loss", true),
            ("iterations", true),
            ("seconds", true),
            ("error", false),
        ] {
            columns.push(Column {
                name: n.into(),
                num,
            });
        }
        Pager {
            env,
            out,
            axes,
            columns,
            total,
            page_rows,
            pages: total.div_ceil(page_rows).max(1),
            page: 1,
            first_row: 1,
            rows: Vec::with_capacity(page_rows.min(total)),
            common,
        }
    }

    fn push(&mut self, t: &TaskInfo, headline: Option<f64>) -> Result<()> {
        let f = |v: Option<f64>| v.map_or(String::new(), render::fmt_value);
        let mut cells = vec![t.short_id().to_string(), t.synth.clone(), t.status.clone()];
        cells.extend(
            self.axes
                .iter()
                .map(|a| t.axes.get(a).cloned().unwrap_or_default()),
        );
        cells.push(f(headline));
        cells.push(f(t.final_loss));
        cells.push(t.iterations.to_string());
        cells.push(format!("{:.3}", t.duration_s));
        cells.push(t.error.clone().unwrap_or_default());
        self.rows.push(Row {
            id: t.task_id.clone(),
            status: t.status.clone(),
            cells,
        });
        if self.rows.len() == self.page_rows && self.page < self.pages {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let n = self.page;
        // Links: first, last, and the pages near this one.
        let mut links: Vec<PageLink> = Vec::new();
        for k in (1..=self.pages).filter(|&k| k == 1 || k == self.pages || k.abs_diff(n) <= 5) {
            links.push(PageLink {
                n: k,
                gap: links.last().is_some_and(|l| l.n + 1 < k),
                file: tasks_page_file(k),
                current: k == n,
            });
        }
        let rows = std::mem::take(&mut self.rows);
        let last_row = self.first_row + rows.len().saturating_sub(1);
        let html = self
            .env
            .get_template("tasks.html")?
            .render(minijinja::context! {
                title => format!("All tasks ({}): page {n} of {}", self.total, self.pages),
                up => "",
                columns => &self.columns,
                first_row => self.first_row,
                last_row => last_row,
                total => self.total,
                page => n,
                pages => self.pages,
                links => links,
                prev => (n > 1).then(|| tasks_page_file(n - 1)),
                next => (n < self.pages).then(|| tasks_page_file(n + 1)),
                rows => &rows,
                ..self.common.clone()
            })?;
        write(&self.out.join(tasks_page_file(n)), html.as_bytes())?;
        // The page's rows for search.html, as a script (file:// pages load scripts, not JSON).
        let json = serde_json::to_string(&rows)
            .map_err(|e| ReportError::figure("tasks-data")(e.to_string()))?;
        write(
            &self.out.join(tasks_data_file(n)),
            format!("ssReport.page({n},{json});\n").as_bytes(),
        )?;
        self.first_row = last_row + 1;
        self.page += 1;
        Ok(())
    }

    /// Writes the last page and `search.html`, and removes pages beyond the last left by an
    /// earlier, longer report.
    fn finish(mut self) -> Result<()> {
        while self.page <= self.pages {
            self.flush()?;
        }
        let html = self
            .env
            .get_template("search.html")?
            .render(minijinja::context! {
                title => format!("Search all {} tasks", self.total),
                up => "",
                columns => &self.columns,
                pages => self.pages,
                total => self.total,
                keep => SEARCH_KEEP,
                ..self.common.clone()
            })?;
        write(&self.out.join("search.html"), html.as_bytes())?;
        let mut k = self.pages + 1;
        loop {
            let (p, d) = (
                self.out.join(tasks_page_file(k)),
                self.out.join(tasks_data_file(k)),
            );
            if !p.is_file() && !d.is_file() {
                break;
            }
            for f in [p, d] {
                if f.is_file() {
                    std::fs::remove_file(&f).map_err(ReportError::io(&f))?;
                }
            }
            k += 1;
        }
        Ok(())
    }
}
