//! Building one task from its rows: gather every parameter's value (`[params]`, the axes,
//! the `[[when]]` rules that hold), apply `base.field` overrides, resolve model/metric specs
//! (cached per item and per distinct spec), type the method parameters (cached per distinct
//! combination), check everything the task's values and images decide, and render the
//! canonical description whose hash is the task id.
use crate::axes::Group;
use crate::canonical::canonical_json;
use crate::error::Location;
use crate::images::ImageRef;
use crate::plan::{text_key, Fail, Plan, Resolved, Typed};
use crate::rules::holds;
use crate::task::{Description, Task, TaskImages};
use crate::values::{short_value, Item};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use synthsweep_core::params::MethodParams;
use synthsweep_core::{MinMax, ParamError, Role};

/// A task before its id: every value resolved, typed and checked.
pub(crate) struct Parts {
    pub params: Arc<Typed>,
    pub specs: Vec<(Role, Arc<Resolved>)>,
    /// `(role, image, canonical text)`, in role order.
    pub images: Vec<(Role, Arc<ImageRef>, String)>,
    pub minmax: Option<MinMax>,
    pub seed: u64,
    /// How the images are loaded (plenoptic's `as_gray`).
    pub as_gray: bool,
}

impl Parts {
    /// A hash of everything the task id is rendered from (images, resolved specs, typed
    /// parameters, `minmax`, seed): equal ids give equal keys, so two tasks with different
    /// keys are different tasks, without rendering and hashing their descriptions.
    pub(crate) fn identity_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.params.key.hash(&mut h);
        for (role, spec) in &self.specs {
            role.hash(&mut h);
            spec.key.hash(&mut h);
        }
        for (role, _, canon) in &self.images {
            role.hash(&mut h);
            canon.hash(&mut h);
        }
        self.minmax.hash(&mut h);
        self.seed.hash(&mut h);
        h.finish()
    }
}

impl Plan {
    /// Every parameter's item for these rows: `[params]`, then the axes, then the
    /// `[[when]]` rules that hold, in order (a later rule overrides an earlier one).
    pub(crate) fn assemble(&self, rows: &[usize]) -> BTreeMap<&str, &Item> {
        let mut m: BTreeMap<&str, &Item> = BTreeMap::new();
        for (n, i) in &self.spec.fixed {
            m.insert(n, i);
        }
        for (g, group) in self.spec.groups.iter().enumerate() {
            for (c, name) in group.columns.iter().enumerate() {
                m.insert(name, group.item(rows[g], c));
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

    pub(crate) fn resolve_cached(
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
                let canon = canonical_json(&identity_form(&v));
                Arc::new(Resolved {
                    key: text_key(&canon),
                    canon,
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

    /// The method parameters of these rows, typed and checked; one parse per distinct
    /// combination of the rows and rules that set parameters.
    fn typed_params(
        &self,
        rows: &[usize],
        merged: &BTreeMap<&str, &Item>,
        dotted: &[(&str, &Item)],
    ) -> Result<Arc<Typed>, Fail> {
        let key: Vec<u32> = self
            .param_groups
            .iter()
            .map(|&g| rows[g] as u32)
            .chain(
                self.param_whens
                    .iter()
                    .map(|&w| u32::from(holds(&self.spec.whens[w].conds, rows))),
            )
            .collect();
        if let Some(hit) = self.params_cache.lock().expect("cache lock").get(&key) {
            return hit.clone();
        }
        let mut values: Vec<(&str, Cow<'_, Value>)> = Vec::new();
        for (name, item) in merged {
            if name.contains('.') || Role::from_name(name).is_some() {
                continue;
            }
            let overrides = overrides_of(name, dotted);
            let v = if overrides.is_empty() {
                Cow::Borrowed(&item.value)
            } else {
                Cow::Owned(apply_overrides(name, item, &overrides)?)
            };
            values.push((name, v));
        }
        let synth = self.spec.synth;
        let out = MethodParams::from_values(synth, values.iter().map(|(k, v)| (*k, v.as_ref())))
            .map(|params| {
                let canon = params.canonical_json();
                Arc::new(Typed {
                    key: text_key(&canon),
                    canon,
                    params: Arc::new(params),
                })
            })
            .map_err(|e| param_fail(synth, &e, merged, dotted));
        let mut cache = self.params_cache.lock().expect("cache lock");
        if cache.len() >= PARAMS_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, out.clone());
        out
    }

    /// Resolves, types and checks the task at these rows.
    pub(crate) fn parts(&self, rows: &[usize]) -> Result<Parts, Fail> {
        let merged = self.assemble(rows);
        let dotted: Vec<(&str, &Item)> = merged
            .iter()
            .filter(|(k, _)| k.contains('.'))
            .map(|(k, v)| (*k, *v))
            .collect();
        let mut specs: Vec<(Role, Arc<Resolved>)> = Vec::new();
        let mut images: Vec<(Role, Arc<ImageRef>, &[String; 2])> = Vec::with_capacity(2);
        let mut minmax = None;
        let mut seed = 0u64;
        let mut as_gray = true;
        for (name, item) in &merged {
            if name.contains('.') {
                continue;
            }
            match Role::from_name(name) {
                Some(r) if r.is_image() => {
                    let (img, canon) = self.image_slots[item.slot]
                        .as_ref()
                        .expect("image items are digested while planning");
                    images.push((r, img.clone(), canon));
                }
                Some(r) if r.is_spec() => {
                    let overrides = overrides_of(name, &dotted);
                    specs.push((r, self.resolve_spec(r, item, &overrides)?));
                }
                Some(Role::Minmax) => {
                    minmax = Some(if item.value == "max" {
                        MinMax::Max
                    } else {
                        MinMax::Min
                    })
                }
                Some(Role::Seed) => {
                    // A `repeats` seed is its row; a listed one its value.
                    seed = self
                        .spec
                        .groups
                        .iter()
                        .zip(rows)
                        .find_map(|(g, &r)| g.seed_at(item, r))
                        .unwrap_or_else(|| item.value.as_u64().unwrap_or(0))
                }
                Some(Role::AsGray) => as_gray = item.value.as_bool().unwrap_or(true),
                _ => {}
            }
        }
        images.sort_by_key(|(r, _, _)| *r);
        let images = images
            .into_iter()
            .map(|(r, img, canon)| (r, img, canon[usize::from(as_gray)].clone()))
            .collect();
        let params = self.typed_params(rows, &merged, &dotted)?;
        let parts = Parts {
            params,
            specs,
            images,
            minmax,
            seed,
            as_gray,
        };
        self.check_images(&parts, &merged, &dotted)?;
        Ok(parts)
    }

    /// What the images decide: each model/metric takes each image's shape, the method's
    /// rules on the shapes hold (pairs of one shape, eigendistortion sizes), and the
    /// images lie in the method's `allowed_range`.
    fn check_images(
        &self,
        parts: &Parts,
        merged: &BTreeMap<&str, &Item>,
        dotted: &[(&str, &Item)],
    ) -> Result<(), Fail> {
        let synth = self.spec.synth;
        let shapes: Vec<_> = parts
            .images
            .iter()
            .map(|(_, img, _)| img.loaded_shape(parts.as_gray))
            .collect();
        let blame = |names: &[&str]| blame_among(merged, dotted, names.iter().copied());
        if let Err(e) = parts.params.params.check_images(&shapes) {
            let names: Vec<&str> = e.params().chain(["image", "image_a"]).collect();
            return Err(Fail {
                message: format!("{synth} parameters: {e}"),
                at: blame(&names),
            });
        }
        for ((role, img, _), shape) in parts.images.iter().zip(&shapes) {
            for (spec_role, spec) in &parts.specs {
                self.shape_check(synth, *spec_role, spec, *shape)
                    .map_err(|why| Fail {
                        message: format!(
                            "{} {} ({shape}, C×H×W) does not fit {} {}: {why}",
                            role.as_str(),
                            img.display,
                            spec_role.as_str(),
                            short_value(&spec.value)
                        ),
                        at: blame(&[role.as_str(), spec_role.as_str()]),
                    })?;
            }
        }
        if let Some((a, b)) = parts.params.params.allowed_range() {
            if a > 0.0 || b < 1.0 {
                for (role, img, _) in &parts.images {
                    if let Some((lo, hi)) = self.value_range(img, parts.as_gray)? {
                        if lo < a || hi > b {
                            return Err(Fail {
                                message: format!(
                                    "{} {} has values in [{lo}, {hi}], outside allowed_range [{a}, {b}] (plenoptic requires the image inside it)",
                                    role.as_str(),
                                    img.display
                                ),
                                at: blame(&["allowed_range", role.as_str()]),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The task at grid position `index` and these rows (exclusions are the caller's job).
    pub(crate) fn build(&self, index: u64, rows: &[usize]) -> Result<Task, Fail> {
        let parts = self.parts(rows)?;
        let mut described: Vec<(&'static str, &str)> = parts
            .images
            .iter()
            .map(|(r, _, canon)| (r.as_str(), canon.as_str()))
            .collect();
        described.extend(
            parts
                .specs
                .iter()
                .map(|(r, s)| (r.as_str(), s.canon.as_str())),
        );
        let synth = self.spec.synth;
        let (canonical, id) = Description {
            synth,
            parts: described,
            minmax: parts.minmax,
            seed: parts.seed,
            params: &parts.params.canon,
        }
        .render();
        let images = match parts.images.as_slice() {
            [(_, a, _)] => TaskImages::One(a.clone()),
            [(_, a, _), (_, b, _)] => TaskImages::Pair(a.clone(), b.clone()),
            _ => unreachable!("the spec check guarantees the method's images"),
        };
        let spec_of = |role: Role| {
            parts
                .specs
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
            minmax: parts.minmax,
            seed: parts.seed,
            params: parts.params.params.clone(),
            as_gray: parts.as_gray,
            coords: self
                .spec
                .groups
                .iter()
                .enumerate()
                .flat_map(|(g, group)| {
                    group
                        .columns
                        .iter()
                        .enumerate()
                        .map(move |(c, _)| (self.col_names[g][c].clone(), group.value(rows[g], c)))
                })
                .collect(),
            canonical,
            id,
        })
    }
}

/// Distinct parameter combinations kept typed at once; past this the cache starts over, so
/// memory stays bounded whatever the number of tasks.
const PARAMS_CACHE_LIMIT: usize = 1 << 16;

/// The `name.field` overrides of `name` among the dotted items.
fn overrides_of<'a>(name: &str, dotted: &[(&'a str, &'a Item)]) -> Vec<(&'a str, &'a Item)> {
    dotted
        .iter()
        .filter(|(k, _)| {
            k.len() > name.len() && k.starts_with(name) && k.as_bytes()[name.len()] == b'.'
        })
        .copied()
        .collect()
}

/// A parameter error, blamed on the spec value that set the parameter.
fn param_fail(
    synth: synthsweep_core::SynthKind,
    e: &ParamError,
    merged: &BTreeMap<&str, &Item>,
    dotted: &[(&str, &Item)],
) -> Fail {
    Fail {
        message: format!("{synth} parameters: {e}"),
        at: blame_among(merged, dotted, e.params()),
    }
}

/// Where the value of each parameter path (`optimizer.lr`, `allowed_range[1]`, `image`)
/// was written: a `base.field` override when one sets it, else the base. Among several, a
/// value that varies (an axis or a `[[when]]`) is blamed before one fixed in `[params]`,
/// since the rule broke for the value that changed.
fn blame_among<'p>(
    merged: &BTreeMap<&str, &Item>,
    dotted: &[(&str, &Item)],
    paths: impl IntoIterator<Item = &'p str>,
) -> Option<Location> {
    let mut found: Vec<&Location> = Vec::new();
    for path in paths {
        let over = dotted
            .iter()
            .filter(|(k, _)| {
                path == *k
                    || path.starts_with(&format!("{k}."))
                    || path.starts_with(&format!("{k}["))
            })
            .max_by_key(|(k, _)| k.len());
        let item = match over {
            Some((_, i)) => Some(*i),
            None => {
                let key = path.split(['.', '[']).next().unwrap_or(path);
                merged.get(key).copied()
            }
        };
        if let Some(i) = item {
            found.push(&i.at);
        }
    }
    found
        .iter()
        .find(|at| !at.key.starts_with("params."))
        .or(found.first())
        .map(|at| (*at).clone())
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
                .map(move |(c, name)| (name.clone(), group.value(rows[g], c)))
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

/// A resolved model/metric spec as it enters a task's identity: a TorchScript model (also
/// a metric's nested `model`) whose resolver added the file's `sha256` is named by that
/// digest and the file's name, as an image is, not by the path as typed — so `net.pt`,
/// `./net.pt` and the absolute path of the same file give the same task id, and moving the
/// folder keeps it. The spec the worker loads keeps the path.
pub(crate) fn identity_form(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let hashed_model = m.get("name").and_then(Value::as_str) == Some("torchscript")
        && m.get("sha256").is_some_and(Value::is_string);
    let mut out = Map::new();
    for (k, x) in m {
        let x = match (k.as_str(), x) {
            ("path", Value::String(p)) if hashed_model => Value::String(
                std::path::Path::new(p)
                    .file_name()
                    .map_or_else(|| p.clone(), |n| n.to_string_lossy().into_owned()),
            ),
            _ => identity_form(x),
        };
        out.insert(k.clone(), x);
    }
    Value::Object(out)
}
