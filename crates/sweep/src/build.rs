//! Building one task from its rows: gather every parameter's value (`[params]`, the axes,
//! the `[[when]]` rules that hold), apply `base.field` overrides, resolve model/metric specs
//! (cached per item and per distinct spec) and method parameters, and render the canonical
//! description whose hash is the task id.
use crate::axes::Group;
use crate::canonical::canonical_json;
use crate::error::Location;
use crate::kind::{MinMax, Role};
use crate::plan::{Fail, Plan, Resolved};
use crate::rules::holds;
use crate::task::{Description, Task, TaskImages};
use crate::values::{short_value, Item};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

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
        let mut image_canons: Vec<(Role, &[String; 2])> = Vec::with_capacity(2);
        let mut minmax = None;
        let mut seed = 0u64;
        let mut as_gray = true;
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
                    image_canons.push((r, canon));
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
                Some(Role::AsGray) => as_gray = item.value.as_bool().unwrap_or(true),
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
        parts.extend(
            image_canons
                .iter()
                .map(|(r, canon)| (r.as_str(), canon[as_gray as usize].as_str())),
        );
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
            as_gray,
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
