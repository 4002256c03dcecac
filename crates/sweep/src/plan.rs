//! `Plan`: a spec with its resolver, its images digested and every task checked, from
//! which tasks are computed one at a time by index arithmetic. Nothing proportional to the
//! number of tasks is held: a task's rows are its index in mixed radix (the last axis
//! fastest), exclusions and `[[when]]` rules are per-row tables, and resolved model/metric
//! specs, typed parameters, shape checks and image digests are computed once per distinct
//! value and shared (the typed-parameter cache is bounded). The check of every task
//! ([`Plan::check`]) holds at most a fixed buffer of task hashes while it runs, to find two
//! tasks with one id, sorting the rest into a scratch file (16 bytes a task).
use crate::error::{Location, SweepError};
use crate::images::{self, ImageRef};
use crate::resolve::Resolver;
use crate::spec::SweepSpec;
use crate::task::{image_canonical, Task};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use synthsweep_core::params::MethodParams;
use synthsweep_core::{ImageShape, Role, SynthKind};

/// A resolved model or metric spec and its canonical text.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub value: Arc<Value>,
    pub canon: String,
    /// A hash of `canon`, for telling tasks apart cheaply (see [`Plan::check`]).
    pub key: u64,
}

/// A task's method parameters, typed, with their canonical text.
#[derive(Debug)]
pub(crate) struct Typed {
    pub params: Arc<MethodParams>,
    pub canon: String,
    /// A hash of `canon`, for telling tasks apart cheaply (see [`Plan::check`]).
    pub key: u64,
}

/// A hash of a canonical text, stable within one process (what [`Plan::check`] compares
/// tasks by before rendering their ids).
pub(crate) fn text_key(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Why a task could not be built, and the spec value to blame when one can be named.
#[derive(Debug, Clone)]
pub(crate) struct Fail {
    pub message: String,
    pub at: Option<Location>,
}

/// Which tasks planning checks one by one (every value is checked in any case, in the first
/// task that has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckScope {
    /// Every task: what `plan` and a whole `run` do, so that nothing runs before every task
    /// is known to be valid.
    #[default]
    All,
    /// The tasks of shard `index` of `count` (strided, as [`Plan::shard`]): what one element
    /// of a job array checks before it runs its share.
    Shard { index: u64, count: u64 },
    /// None beyond the values: for tools that only look at a plan's structure.
    Values,
}

/// How to plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Which tasks to check before the plan is returned.
    pub check: CheckScope,
}

type ShapeKey = (usize, Role, ImageShape);
type ParamsCache = HashMap<Vec<u32>, Result<Arc<Typed>, Fail>>;
type RangeCache = HashMap<(PathBuf, bool), Result<Option<(f64, f64)>, String>>;

/// A planned sweep. Share it across threads freely (`Plan: Send + Sync`).
pub struct Plan {
    pub(crate) spec: SweepSpec,
    pub(crate) resolver: Arc<dyn Resolver>,
    pub(crate) sweep: Arc<str>,
    pub(crate) radix: Vec<u64>,
    pub(crate) stride: Vec<u64>,
    pub(crate) grid_size: u64,
    pub(crate) len: u64,
    /// Tasks dropped by each `[[exclude]]`; a task two rules drop counts for the first.
    pub(crate) excluded: Vec<u64>,
    pub(crate) images: HashMap<PathBuf, Arc<ImageRef>>,
    /// Per item (by `Item::slot`): its image and the image's canonical text, loaded with
    /// `as_gray` false (`[0]`) and true (`[1]`).
    pub(crate) image_slots: ImageSlots,
    /// Per item: its resolved spec, when used without `base.field` overrides.
    pub(crate) spec_slots: Vec<OnceLock<Result<Arc<Resolved>, String>>>,
    /// Resolved specs by kind and canonical text: each distinct spec is resolved once.
    pub(crate) cache: Mutex<HashMap<String, Result<Arc<Resolved>, String>>>,
    pub(crate) col_names: Vec<Vec<Arc<str>>>,
    /// Groups with a method-parameter column, and `[[when]]`s that set one: a task's
    /// parameters depend on these rows and rules only.
    pub(crate) param_groups: Vec<usize>,
    pub(crate) param_whens: Vec<usize>,
    /// Typed parameters by the rows of `param_groups` and the `param_whens` that hold.
    pub(crate) params_cache: Mutex<ParamsCache>,
    /// Shape checks by resolved spec (its address: specs live as long as the plan), role
    /// and image shape.
    pub(crate) shape_cache: Mutex<HashMap<ShapeKey, Result<(), String>>>,
    /// Pixel value ranges of images, asked only for a narrow `allowed_range`.
    pub(crate) range_cache: Mutex<RangeCache>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("sweep", &self.sweep)
            .field("synth", &self.spec.synth)
            .field("grid_size", &self.grid_size)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl SweepSpec {
    /// Plans the sweep: digests every image (and reads its size from its header), resolves
    /// every model/metric spec, checks every value (and every `[[when]]` rule) in at least
    /// one task through `resolver`, counts what the exclusions drop, then checks every task
    /// (typed parameters and the rules relating them, each model/metric against each
    /// image's shape, pairs of one shape, `allowed_range` against the images). Errors name
    /// the spec value to blame and, for a task, its coordinates.
    pub fn plan(self, resolver: impl Resolver + 'static) -> Result<Plan, SweepError> {
        self.plan_shared(Arc::new(resolver))
    }

    /// [`SweepSpec::plan`] with a resolver that is already shared.
    pub fn plan_shared(self, resolver: Arc<dyn Resolver>) -> Result<Plan, SweepError> {
        self.plan_with(resolver, PlanOptions::default())
    }

    /// [`SweepSpec::plan`], checking the tasks `options.check` names.
    pub fn plan_with(
        self,
        resolver: Arc<dyn Resolver>,
        options: PlanOptions,
    ) -> Result<Plan, SweepError> {
        let plan = Plan::new(self, resolver)?;
        plan.check(options.check)?;
        Ok(plan)
    }
}

impl Plan {
    fn new(mut spec: SweepSpec, resolver: Arc<dyn Resolver>) -> Result<Plan, SweepError> {
        let slots = assign_slots(&mut spec);
        let radix: Vec<u64> = spec.groups.iter().map(|g| g.len() as u64).collect();
        let mut stride = vec![1u64; radix.len()];
        let mut grid_size: u64 = 1;
        for g in (0..radix.len()).rev() {
            stride[g] = grid_size;
            grid_size = grid_size
                .checked_mul(radix[g])
                .ok_or_else(|| SweepError::Spec {
                    at: spec.groups[g].at.clone(),
                    message: "the grid has more than 2^64 positions".into(),
                })?;
        }
        let (images, image_slots) = digest_images(&spec, slots)?;
        let col_names = spec
            .groups
            .iter()
            .map(|g| g.columns.iter().map(|c| Arc::from(c.as_str())).collect())
            .collect();
        let is_param = |name: &str| {
            let base = name.split('.').next().unwrap_or(name);
            Role::from_name(base).is_none()
        };
        let param_groups = (0..spec.groups.len())
            .filter(|&g| spec.groups[g].columns.iter().any(|c| is_param(c)))
            .collect();
        let param_whens = (0..spec.whens.len())
            .filter(|&w| spec.whens[w].set.iter().any(|(n, _)| is_param(n)))
            .collect();
        let mut plan = Plan {
            sweep: Arc::from(spec.name.as_str()),
            spec,
            resolver,
            radix,
            stride,
            grid_size,
            len: 0,
            excluded: Vec::new(),
            images,
            image_slots,
            spec_slots: (0..slots).map(|_| OnceLock::new()).collect(),
            cache: Mutex::new(HashMap::new()),
            col_names,
            param_groups,
            param_whens,
            params_cache: Mutex::new(HashMap::new()),
            shape_cache: Mutex::new(HashMap::new()),
            range_cache: Mutex::new(HashMap::new()),
        };
        plan.excluded = plan.count_excluded();
        plan.len = grid_size - plan.excluded.iter().sum::<u64>();
        if plan.len == 0 {
            return Err(SweepError::Spec {
                at: Location {
                    file: plan.spec.src.file.clone(),
                    key: "exclude".into(),
                    line: None,
                },
                message: format!("the exclusions drop all {grid_size} tasks"),
            });
        }
        plan.check_axis_identities()?;
        plan.probe()?;
        Ok(plan)
    }

    /// Whether `spec` (resolved) takes `shape` as `role`: asked of the resolver once per
    /// distinct (spec, role, shape).
    pub(crate) fn shape_check(
        &self,
        synth: SynthKind,
        role: Role,
        spec: &Arc<Resolved>,
        shape: ImageShape,
    ) -> Result<(), String> {
        let key = (Arc::as_ptr(spec) as usize, role, shape);
        if let Some(hit) = self.shape_cache.lock().expect("cache lock").get(&key) {
            return hit.clone();
        }
        let out = self.resolver.check_input(synth, role, &spec.value, shape);
        self.shape_cache
            .lock()
            .expect("cache lock")
            .insert(key, out.clone());
        out
    }

    /// The pixel value range of `img` as loaded (with `as_gray`), asked of the resolver once
    /// per image and loading.
    pub(crate) fn value_range(
        &self,
        img: &ImageRef,
        as_gray: bool,
    ) -> Result<Option<(f64, f64)>, Fail> {
        let key = (img.path.clone(), as_gray);
        let hit = self
            .range_cache
            .lock()
            .expect("cache lock")
            .get(&key)
            .cloned();
        let out = match hit {
            Some(r) => r,
            None => {
                let r = self.resolver.image_value_range(img, as_gray);
                self.range_cache
                    .lock()
                    .expect("cache lock")
                    .insert(key, r.clone());
                r
            }
        };
        out.map_err(|e| Fail {
            message: format!("image {}: {e}", img.display),
            at: None,
        })
    }

    /// The spec this plan was made from.
    pub fn spec(&self) -> &SweepSpec {
        &self.spec
    }

    /// Number of tasks (after exclusions).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true: a plan whose exclusions drop every task is an error.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of grid positions (the product of the axis sizes, before exclusions): task
    /// indices run over `0..grid_size()`.
    pub fn grid_size(&self) -> u64 {
        self.grid_size
    }

    /// Every distinct image of the sweep, digested, sorted by path.
    pub fn images(&self) -> Vec<Arc<ImageRef>> {
        let mut v: Vec<Arc<ImageRef>> = self.images.values().cloned().collect();
        v.sort_by(|a, b| a.display.cmp(&b.display));
        v
    }

    /// The row of each axis at grid position `index`.
    pub(crate) fn rows_of(&self, index: u64) -> Vec<usize> {
        self.radix
            .iter()
            .zip(&self.stride)
            .map(|(r, s)| ((index / s) % r) as usize)
            .collect()
    }

    pub(crate) fn index_of(&self, rows: &[usize]) -> u64 {
        rows.iter()
            .zip(&self.stride)
            .map(|(r, s)| *r as u64 * s)
            .sum()
    }

    /// The `[[exclude]]` rule (its position) that drops these rows, if any.
    pub(crate) fn excluded_by(&self, rows: &[usize]) -> Option<usize> {
        self.spec.excludes.iter().position(|e| e.excludes(rows))
    }

    /// The label of the `[[exclude]]` rule that drops grid position `index` (`exclude[0]`),
    /// or `None` if it is a task.
    pub fn excluded_by_index(&self, index: u64) -> Option<&str> {
        if index >= self.grid_size {
            return None;
        }
        self.excluded_by(&self.rows_of(index))
            .map(|r| self.spec.excludes[r].label.as_str())
    }

    /// Groups that some exclusion looks at; exclusion depends on their rows only.
    pub(crate) fn excluding_groups(&self) -> Vec<usize> {
        let mut m: Vec<usize> = self.spec.excludes.iter().flat_map(|e| e.groups()).collect();
        m.sort_unstable();
        m.dedup();
        m
    }

    /// Per rule, how many grid positions it drops: counted over the product of the axes the
    /// rules look at only, times the sizes of the others.
    fn count_excluded(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.spec.excludes.len()];
        if counts.is_empty() {
            return counts;
        }
        let m = self.excluding_groups();
        let others: u64 = (0..self.radix.len())
            .filter(|g| !m.contains(g))
            .map(|g| self.radix[g])
            .product();
        let mut rows = vec![0usize; self.radix.len()];
        loop {
            if let Some(r) = self.excluded_by(&rows) {
                counts[r] += others;
            }
            // Odometer over the excluding groups.
            let mut k = m.len();
            loop {
                if k == 0 {
                    return counts;
                }
                k -= 1;
                let g = m[k];
                rows[g] += 1;
                if (rows[g] as u64) < self.radix[g] {
                    break;
                }
                rows[g] = 0;
            }
        }
    }

    /// The task at grid position `index`: `Ok(None)` if an exclusion drops it, an error if
    /// the index is past the grid or the task cannot be resolved.
    pub fn task_by_index(&self, index: u64) -> Result<Option<Task>, SweepError> {
        if index >= self.grid_size {
            return Err(SweepError::IndexOutOfRange {
                index,
                grid_size: self.grid_size,
            });
        }
        let rows = self.rows_of(index);
        if self.excluded_by(&rows).is_some() {
            return Ok(None);
        }
        self.build(index, &rows)
            .map(Some)
            .map_err(|f| self.task_error(index, &rows, f))
    }

    pub(crate) fn task_error(&self, index: u64, rows: &[usize], fail: Fail) -> SweepError {
        let message = match fail.at {
            Some(at) => format!("{} (from {at})", fail.message),
            None => fail.message,
        };
        SweepError::Task {
            file: self.spec.src.file.clone(),
            index,
            coords: self.coords_text(rows),
            message,
        }
    }
}

/// Numbers every item (`[params]`, axis values, `[[when]]` values) for the per-item caches.
fn assign_slots(spec: &mut SweepSpec) -> usize {
    let mut n = 0;
    let items = spec
        .fixed
        .iter_mut()
        .map(|(_, i)| i)
        .chain(
            spec.groups
                .iter_mut()
                .flat_map(|g| g.rows.iter_mut().flatten()),
        )
        .chain(
            spec.whens
                .iter_mut()
                .flat_map(|w| w.set.iter_mut().map(|(_, i)| i)),
        );
    for item in items {
        item.slot = n;
        n += 1;
    }
    n
}

pub(crate) type ImageSlots = Vec<Option<(Arc<ImageRef>, [String; 2])>>;

/// Reads and digests every image once.
fn digest_images(
    spec: &SweepSpec,
    slots: usize,
) -> Result<(HashMap<PathBuf, Arc<ImageRef>>, ImageSlots), SweepError> {
    let mut by_path: HashMap<PathBuf, (Arc<ImageRef>, [String; 2])> = HashMap::new();
    let mut by_slot: ImageSlots = vec![None; slots];
    let items = spec
        .fixed
        .iter()
        .map(|(_, i)| i)
        .chain(spec.groups.iter().flat_map(|g| g.rows.iter().flatten()));
    for item in items {
        let Some(file) = &item.image else { continue };
        if !by_path.contains_key(&file.abs) {
            let img = images::digest(file).map_err(|source| SweepError::Image {
                at: item.at.clone(),
                path: file.abs.clone(),
                source,
            })?;
            let canon = [image_canonical(&img, false), image_canonical(&img, true)];
            by_path.insert(file.abs.clone(), (Arc::new(img), canon));
        }
        by_slot[item.slot] = by_path.get(&file.abs).cloned();
    }
    let images = by_path.into_iter().map(|(k, (img, _))| (k, img)).collect();
    Ok((images, by_slot))
}
