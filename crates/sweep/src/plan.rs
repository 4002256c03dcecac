//! `Plan`: a spec with its resolver, its images digested and every value checked, from which
//! tasks are computed one at a time by index arithmetic. Nothing proportional to the number
//! of tasks is held: a task's rows are its index in mixed radix (the last axis fastest),
//! exclusions and `[[when]]` rules are per-row tables, and resolved model/metric specs and
//! image digests are computed once and shared.
use crate::axes::Group;
use crate::canonical::canonical_json;
use crate::error::{Location, SweepError};
use crate::images::{self, ImageRef};
use crate::kind::{MinMax, Role};
use crate::resolve::Resolver;
use crate::rules::holds;
use crate::spec::SweepSpec;
use crate::task::{image_canonical, Description, Task, TaskImages};
use crate::values::{short_value, Item};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// A resolved model or metric spec and its canonical text.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub value: Arc<Value>,
    pub canon: String,
}

/// Why a task could not be built, and the spec value to blame when one can be named.
pub(crate) struct Fail {
    pub message: String,
    pub at: Option<Location>,
}

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
    /// Per item (by `Item::slot`): its image and the image's canonical text.
    image_slots: Vec<Option<(Arc<ImageRef>, String)>>,
    /// Per item: its resolved spec, when used without `base.field` overrides.
    spec_slots: Vec<OnceLock<Result<Arc<Resolved>, String>>>,
    /// Resolved specs by kind and canonical text: each distinct spec is resolved once.
    cache: Mutex<HashMap<String, Result<Arc<Resolved>, String>>>,
    col_names: Vec<Vec<Arc<str>>>,
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
    /// Plans the sweep: digests every image, resolves every model/metric spec and checks
    /// every value (and every `[[when]]` rule) in at least one task through `resolver`,
    /// and counts what the exclusions drop. Errors name the spec value to blame.
    pub fn plan(self, resolver: impl Resolver + 'static) -> Result<Plan, SweepError> {
        self.plan_shared(Arc::new(resolver))
    }

    /// [`SweepSpec::plan`] with a resolver that is already shared.
    pub fn plan_shared(self, resolver: Arc<dyn Resolver>) -> Result<Plan, SweepError> {
        Plan::new(self, resolver)
    }
}

impl Plan {
    fn new(mut spec: SweepSpec, resolver: Arc<dyn Resolver>) -> Result<Plan, SweepError> {
        let slots = assign_slots(&mut spec);
        let radix: Vec<u64> = spec.groups.iter().map(|g| g.rows.len() as u64).collect();
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
        plan.probe()?;
        Ok(plan)
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

    fn index_of(&self, rows: &[usize]) -> u64 {
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
    fn excluding_groups(&self) -> Vec<usize> {
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

    /// The first task (in index order) whose rows all pass `allow`, or `None` (also when
    /// the search would be too long to be worth it while planning).
    fn first_kept(&self, allow: &dyn Fn(usize, usize) -> bool) -> Option<Vec<usize>> {
        let cands: Vec<Vec<usize>> = (0..self.radix.len())
            .map(|g| {
                (0..self.radix[g] as usize)
                    .filter(|&r| allow(g, r))
                    .collect()
            })
            .collect();
        if cands.iter().any(Vec::is_empty) {
            return None;
        }
        let m = self.excluding_groups();
        let mut pos = vec![0usize; cands.len()];
        for _ in 0..1_000_000 {
            let rows: Vec<usize> = cands.iter().zip(&pos).map(|(c, p)| c[*p]).collect();
            if self.excluded_by(&rows).is_none() {
                return Some(rows);
            }
            let mut k = m.len();
            loop {
                if k == 0 {
                    return None;
                }
                k -= 1;
                let g = m[k];
                pos[g] += 1;
                if pos[g] < cands[g].len() {
                    break;
                }
                pos[g] = 0;
            }
        }
        None
    }

    /// Builds one task in each context that shows a new value: every row of every axis and
    /// every `[[when]]`, each in the first task that has it. This checks every value through
    /// the resolver (and fills the caches) without visiting the whole grid, and catches two
    /// grid positions that describe the same task.
    fn probe(&self) -> Result<(), SweepError> {
        let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
        let mut check = |rows: Vec<usize>, blame: &Location| -> Result<(), SweepError> {
            let task = match self.build(self.index_of(&rows), &rows) {
                Ok(t) => t,
                Err(fail) => {
                    let at = fail
                        .at
                        .or_else(|| self.blame_params(&rows))
                        .unwrap_or_else(|| blame.clone());
                    return Err(SweepError::Spec {
                        at,
                        message: fail.message,
                    });
                }
            };
            if let Some(other) = seen.get(task.id()) {
                if *other != rows {
                    return Err(SweepError::Spec {
                        at: blame.clone(),
                        message: format!(
                            "two grid positions describe the same task after resolution ({} and \
                             {}); the tasks would repeat",
                            self.coords_text(other),
                            self.coords_text(&rows)
                        ),
                    });
                }
            }
            seen.insert(task.id, rows);
            Ok(())
        };
        let whole = Location {
            file: self.spec.src.file.clone(),
            key: "params".into(),
            line: None,
        };
        if self.spec.groups.is_empty() {
            return check(Vec::new(), &whole);
        }
        for (g, group) in self.spec.groups.iter().enumerate() {
            for (r, row) in group.rows.iter().enumerate() {
                if let Some(rows) = self.first_kept(&|h, s| h != g || s == r) {
                    check(rows, &row[0].at)?;
                }
            }
        }
        for w in &self.spec.whens {
            let allow = |h: usize, s: usize| {
                w.conds
                    .iter()
                    .filter(|c| c.group == h)
                    .all(|c| c.matches[s])
            };
            match self.first_kept(&allow) {
                Some(rows) => check(rows, &w.set[0].1.at)?,
                None => {
                    let mut at = w.set[0].1.at.clone();
                    at.key = w.label.clone();
                    return Err(SweepError::Spec {
                        at,
                        message: format!(
                            "applies to no task: no task has {} (or every such task is excluded)",
                            w.desc
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Which parameter the resolver objects to, tried one at a time.
    fn blame_params(&self, rows: &[usize]) -> Option<Location> {
        let merged = self.assemble(rows);
        for (name, item) in &merged {
            if name.contains('.') || Role::from_name(name).is_some() {
                continue;
            }
            let mut one = Map::new();
            one.insert(name.to_string(), item.value.clone());
            if self.resolver.resolve_params(self.spec.synth, &one).is_err() {
                return Some(item.at.clone());
            }
        }
        None
    }

    /// Every parameter's item for these rows: `[params]`, then the axes, then the
    /// `[[when]]` rules that hold, in order (a later rule overrides an earlier one).
    fn assemble(&self, rows: &[usize]) -> BTreeMap<&str, &Item> {
        let mut m: BTreeMap<&str, &Item> = BTreeMap::new();
        for (n, i) in &self.spec.fixed {
            m.insert(n, i);
        }
        for (g, group) in self.spec.groups.iter().enumerate() {
            for (c, name) in group.columns.iter().enumerate() {
                m.insert(name, &group.rows[rows[g]][c]);
            }
        }
        for w in &self.spec.whens {
            if holds(&w.conds, rows) {
                for (n, i) in &w.set {
                    m.insert(n, i);
                }
            }
        }
        m
    }

    pub(crate) fn coords_text(&self, rows: &[usize]) -> String {
        coords_of(&self.spec.groups, rows)
            .into_iter()
            .map(|(k, v)| format!("{k}={}", short_value(&v)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn resolve_spec(
        &self,
        role: Role,
        item: &Item,
        overrides: &[(&str, &Item)],
    ) -> Result<Arc<Resolved>, Fail> {
        let out = if overrides.is_empty() {
            self.spec_slots[item.slot]
                .get_or_init(|| self.resolve_cached(role, &item.value, &item.canon))
                .clone()
        } else {
            let v = apply_overrides(role.as_str(), item, overrides)?;
            let canon = canonical_json(&v);
            self.resolve_cached(role, &v, &canon)
        };
        out.map_err(|message| Fail {
            message,
            at: Some(blame_of(item, overrides)),
        })
    }

    fn resolve_cached(
        &self,
        role: Role,
        raw: &Value,
        canon: &str,
    ) -> Result<Arc<Resolved>, String> {
        let kind = role.spec_kind();
        let key = format!("{kind}\u{1}{canon}");
        if let Some(hit) = self.cache.lock().expect("cache lock").get(&key) {
            return hit.clone();
        }
        // Resolved outside the lock: two threads may both resolve a new spec, which is
        // harmless (resolvers are pure) and keeps a slow resolver from serialising others.
        let out = if kind == "model" {
            self.resolver.resolve_model(raw)
        } else {
            self.resolver.resolve_metric(raw)
        };
        let out = out
            .map(|v| {
                Arc::new(Resolved {
                    canon: canonical_json(&v),
                    value: Arc::new(v),
                })
            })
            .map_err(|e| format!("{kind} {}: {e}", short_value(raw)));
        self.cache
            .lock()
            .expect("cache lock")
            .entry(key)
            .or_insert(out)
            .clone()
    }

    /// The task at grid position `index` and these rows (exclusions are the caller's job).
    pub(crate) fn build(&self, index: u64, rows: &[usize]) -> Result<Task, Fail> {
        let merged = self.assemble(rows);
        let dotted: Vec<(&str, &Item)> = merged
            .iter()
            .filter(|(k, _)| k.contains('.'))
            .map(|(k, v)| (*k, *v))
            .collect();
        let mut params = Map::new();
        let mut specs: Vec<(Role, Arc<Resolved>)> = Vec::new();
        let (mut image, mut image_a, mut image_b) = (None, None, None);
        let mut parts: Vec<(&'static str, &str)> = Vec::with_capacity(6);
        let mut minmax = None;
        let mut seed = 0u64;
        for (name, item) in &merged {
            if name.contains('.') {
                continue;
            }
            let overrides: Vec<(&str, &Item)> = dotted
                .iter()
                .filter(|(k, _)| {
                    k.len() > name.len() && k.starts_with(name) && k.as_bytes()[name.len()] == b'.'
                })
                .copied()
                .collect();
            match Role::from_name(name) {
                Some(r) if r.is_image() => {
                    let (img, canon) = self.image_slots[item.slot]
                        .as_ref()
                        .expect("image items are digested while planning");
                    parts.push((r.as_str(), canon));
                    let img = img.clone();
                    match r {
                        Role::Image => image = Some(img),
                        Role::ImageA => image_a = Some(img),
                        _ => image_b = Some(img),
                    }
                }
                Some(r) if r.is_spec() => specs.push((r, self.resolve_spec(r, item, &overrides)?)),
                Some(Role::Minmax) => {
                    minmax = Some(if item.value == "max" {
                        MinMax::Max
                    } else {
                        MinMax::Min
                    })
                }
                Some(Role::Seed) => seed = item.value.as_u64().unwrap_or(0),
                _ => {
                    let v = if overrides.is_empty() {
                        item.value.clone()
                    } else {
                        apply_overrides(name, item, &overrides)?
                    };
                    params.insert(name.to_string(), v);
                }
            }
        }
        let synth = self.spec.synth;
        let params = self
            .resolver
            .resolve_params(synth, &params)
            .map_err(|e| Fail {
                message: format!("{synth} parameters: {e}"),
                at: None,
            })?;
        let images = match (image, image_a, image_b) {
            (Some(a), _, _) => TaskImages::One(a),
            (None, Some(a), Some(b)) => TaskImages::Pair(a, b),
            _ => unreachable!("the spec check guarantees the method's images"),
        };
        parts.extend(specs.iter().map(|(r, s)| (r.as_str(), s.canon.as_str())));
        let (canonical, id) = Description {
            synth,
            parts,
            minmax,
            seed,
            params: &params,
        }
        .render();
        let spec_of = |role: Role| {
            specs
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, s)| s.value.clone())
        };
        Ok(Task {
            index,
            sweep: self.sweep.clone(),
            synth,
            model: spec_of(Role::Model),
            metric: spec_of(Role::Metric),
            optimized_metric: spec_of(Role::OptimizedMetric),
            reference_metric: spec_of(Role::ReferenceMetric),
            images,
            minmax,
            seed,
            params,
            coords: self
                .spec
                .groups
                .iter()
                .enumerate()
                .flat_map(|(g, group)| {
                    group.columns.iter().enumerate().map(move |(c, _)| {
                        (
                            self.col_names[g][c].clone(),
                            group.rows[rows[g]][c].value.clone(),
                        )
                    })
                })
                .collect(),
            canonical,
            id,
        })
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

fn coords_of(groups: &[Group], rows: &[usize]) -> Vec<(String, Value)> {
    groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| {
            group
                .columns
                .iter()
                .enumerate()
                .map(move |(c, name)| (name.clone(), group.rows[rows[g]][c].value.clone()))
        })
        .collect()
}

fn blame_of(item: &Item, overrides: &[(&str, &Item)]) -> Location {
    overrides
        .last()
        .map(|(_, i)| i.at.clone())
        .unwrap_or_else(|| item.at.clone())
}

/// `base` with every `base.field(.field...) = value` applied, in name order.
fn apply_overrides(base: &str, item: &Item, overrides: &[(&str, &Item)]) -> Result<Value, Fail> {
    let mut value = item.value.clone();
    for (name, o) in overrides {
        let fail = |what: String| Fail {
            message: format!("`{name}` sets a field of `{base}`, but {what}"),
            at: Some(o.at.clone()),
        };
        let path: Vec<&str> = name[base.len() + 1..].split('.').collect();
        let mut cur = &mut value;
        for (i, seg) in path.iter().enumerate() {
            let Value::Object(map) = cur else {
                let at = if i == 0 {
                    base.to_string()
                } else {
                    path[..i].join(".")
                };
                return Err(fail(format!(
                    "`{at}` is {} (not a table)",
                    short_value(cur)
                )));
            };
            if i + 1 == path.len() {
                map.insert(seg.to_string(), o.value.clone());
                break;
            }
            cur = map
                .entry(seg.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    Ok(value)
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

type ImageSlots = Vec<Option<(Arc<ImageRef>, String)>>;

/// Reads and digests every image once.
fn digest_images(
    spec: &SweepSpec,
    slots: usize,
) -> Result<(HashMap<PathBuf, Arc<ImageRef>>, ImageSlots), SweepError> {
    let mut by_path: HashMap<PathBuf, (Arc<ImageRef>, String)> = HashMap::new();
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
            let canon = image_canonical(&img);
            by_path.insert(file.abs.clone(), (Arc::new(img), canon));
        }
        by_slot[item.slot] = by_path.get(&file.abs).cloned();
    }
    let images = by_path.into_iter().map(|(k, (img, _))| (k, img)).collect();
    Ok((images, by_slot))
}
