//! Rules over axis values: `[[exclude]]` drops combinations, `[[when]]` sets parameters for
//! the combinations it matches. Both are compiled here into per-row tables, so testing a
//! task is a few array lookups.
//!
//! A pattern matches a value when their canonical JSON is equal (so `1` matches `1.0`), or
//! when the pattern is a string and the value is a spec table with that `name`
//! (`model = "gaussian"` matches `{name = "gaussian", kernel_size = 5}`), or for images when
//! the pattern is the file name or the path relative to the spec file.
use crate::axes::Group;
use crate::canonical::canonical_json;
use crate::error::SweepError;
use crate::source::{child_key, did_you_mean, index_key, to_json, Entry, Node, Source};
use crate::values::{
    check_name, dotted_base, parse_value, resolve_model_paths, short_value, spec_relative, Item,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use synthsweep_core::Role;

/// Where each axis column lives: `(group, column)`.
pub(crate) type Columns = HashMap<String, (usize, usize)>;

/// A test on one column: which rows of its group pass.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    pub group: usize,
    pub matches: Vec<bool>,
}

/// One `[[exclude]]`: a task is dropped when every condition holds and the `same` columns
/// are all equal.
#[derive(Debug, Clone)]
pub(crate) struct Exclude {
    pub label: String,
    /// `same(optimized_metric, reference_metric)`, `minmax = "max"`, ...
    pub desc: String,
    pub conds: Vec<Cond>,
    /// For each `same` column: its group and an id per row (equal ids = equal values).
    pub same: Vec<(usize, Vec<u32>)>,
}

/// One `[[when]]`: for tasks matching every condition, the `set` values apply.
#[derive(Debug, Clone)]
pub(crate) struct When {
    pub label: String,
    pub desc: String,
    pub conds: Vec<Cond>,
    pub set: Vec<(String, Item)>,
}

/// Whether all conditions hold for the given rows (one per group).
pub(crate) fn holds(conds: &[Cond], rows: &[usize]) -> bool {
    conds.iter().all(|c| c.matches[rows[c.group]])
}

impl Exclude {
    pub fn excludes(&self, rows: &[usize]) -> bool {
        if !holds(&self.conds, rows) {
            return false;
        }
        match self.same.split_first() {
            None => true,
            Some(((g0, ids0), rest)) => {
                let id = ids0[rows[*g0]];
                rest.iter().all(|(g, ids)| ids[rows[*g]] == id)
            }
        }
    }

    /// The groups this rule looks at.
    pub fn groups(&self) -> impl Iterator<Item = usize> + '_ {
        self.conds
            .iter()
            .map(|c| c.group)
            .chain(self.same.iter().map(|(g, _)| *g))
    }
}

fn pattern_matches(pattern: &Value, pcanon: &str, item: &Item) -> bool {
    if item.canon == pcanon {
        return true;
    }
    let Value::String(s) = pattern else {
        return false;
    };
    if let Some(img) = &item.image {
        let s = s.trim_start_matches("./");
        return s == img.display || s == img.name;
    }
    matches!(item.value.get("name"), Some(Value::String(n)) if n == s)
}

/// What the rules need to know about the spec's parameters.
pub(crate) struct Names<'a> {
    /// The spec's folder: a pattern's TorchScript path resolves against it, as the axis
    /// values it is matched with do.
    pub base: &'a Path,
    pub groups: &'a [Group],
    pub columns: &'a Columns,
    pub fixed: &'a [(String, Item)],
}

impl Names<'_> {
    fn axis(
        &self,
        src: &Source,
        key: &str,
        name: &str,
        node: &Node,
    ) -> Result<(usize, usize), SweepError> {
        if let Some(&gc) = self.columns.get(name) {
            return Ok(gc);
        }
        let mut axes: Vec<&str> = self.columns.keys().map(String::as_str).collect();
        axes.sort_unstable();
        let why = if self.fixed.iter().any(|(n, _)| n == name) {
            format!("`{name}` is fixed in [params], not an axis; rules can only test axes")
        } else {
            format!(
                "`{name}` is not an axis{}; the axes are {}",
                did_you_mean(name, axes.iter().copied()),
                if axes.is_empty() {
                    "(none)".to_string()
                } else {
                    axes.join(", ")
                }
            )
        };
        Err(src.err(key, &node.span, why))
    }

    /// A condition `name = pattern`, which must match at least one value of the axis.
    fn cond(
        &self,
        src: &Source,
        key: &str,
        name: &str,
        node: &Node,
    ) -> Result<(Cond, String), SweepError> {
        let (g, c) = self.axis(src, key, name, node)?;
        let mut pattern = to_json(src, key, node)?;
        // A model/metric pattern names its TorchScript file as the axis value does.
        if Role::from_name(name).is_some_and(|r| r.is_spec()) {
            resolve_model_paths(&mut pattern, self.base);
        } else if name.ends_with(".path")
            && dotted_base(name)
                .and_then(Role::from_name)
                .is_some_and(|r| r.is_spec())
        {
            if let Value::String(p) = &pattern {
                pattern = Value::String(spec_relative(self.base, p));
            }
        }
        let pcanon = canonical_json(&pattern);
        let group = &self.groups[g];
        let matches: Vec<bool> = (0..group.len())
            .map(|r| pattern_matches(&pattern, &pcanon, &group.row(r)[c]))
            .collect();
        if !matches.iter().any(|&m| m) {
            let mut shown: Vec<String> = (0..group.len().min(8))
                .map(|r| group.row(r)[c].short())
                .collect();
            if group.len() > 8 {
                shown.push(format!("... ({} values)", group.len()));
            }
            return Err(src.err(
                key,
                &node.span,
                format!(
                    "{} matches no value of the axis `{name}`; its values are {}",
                    pcanon,
                    shown.join(", ")
                ),
            ));
        }
        let text = format!("{name} = {}", short_pattern(&pattern));
        Ok((Cond { group: g, matches }, text))
    }
}

fn short_pattern(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => short_value(other),
    }
}

fn expect_table<'n>(
    src: &Source,
    key: &str,
    node: &'n Node,
    what: &str,
) -> Result<&'n [Entry], SweepError> {
    match node.as_table() {
        Some(t) if !t.is_empty() => Ok(t),
        Some(_) => Err(src.err(
            key,
            &node.span,
            format!("expected {what}, got an empty table"),
        )),
        None => Err(src.err(
            key,
            &node.span,
            format!("expected {what}, got {}", node.type_name()),
        )),
    }
}

/// One `[[exclude]]` table.
pub(crate) fn exclude(
    src: &Source,
    names: &Names<'_>,
    index: usize,
    node: &Node,
) -> Result<Exclude, SweepError> {
    let label = index_key("exclude", index);
    let entries = expect_table(
        src,
        &label,
        node,
        "a table like {same = [\"a\", \"b\"]} or {axis = value, ...}",
    )?;
    let mut conds = Vec::new();
    let mut same = Vec::new();
    let mut desc = Vec::new();
    for e in entries {
        let key = child_key(&label, &e.key);
        if e.key == "same" {
            let list = e.value.as_array().unwrap_or(&[]);
            let axes: Vec<(&str, &Node)> = list
                .iter()
                .filter_map(|n| n.as_str().map(|s| (s, n)))
                .collect();
            if axes.len() < 2 || axes.len() != list.len() {
                return Err(src.err(
                    &key,
                    &e.value.span,
                    "expected a list of two or more axis names, like same = [\"optimized_metric\", \"reference_metric\"]",
                ));
            }
            let mut ids: HashMap<String, u32> = HashMap::new();
            for (i, (name, n)) in axes.iter().enumerate() {
                let (g, c) = names.axis(src, &index_key(&key, i), name, n)?;
                let group = &names.groups[g];
                let col = (0..group.len())
                    .map(|r| {
                        let row = group.row(r);
                        let canon = row[c].canon.as_str();
                        if let Some(&id) = ids.get(canon) {
                            return id;
                        }
                        let id = ids.len() as u32;
                        ids.insert(canon.to_string(), id);
                        id
                    })
                    .collect();
                same.push((g, col));
            }
            desc.push(format!(
                "same({})",
                axes.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ));
        } else {
            let (cond, text) = names.cond(src, &key, &e.key, &e.value)?;
            conds.push(cond);
            desc.push(text);
        }
    }
    Ok(Exclude {
        label,
        desc: desc.join(", "),
        conds,
        same,
    })
}

/// One `[[when]]` table: `match = {axis = pattern, ...}`, `set = {param = value, ...}`.
pub(crate) fn when(
    src: &Source,
    base: &Path,
    names: &Names<'_>,
    index: usize,
    node: &Node,
) -> Result<When, SweepError> {
    let label = index_key("when", index);
    let entries = expect_table(src, &label, node, "a table with `match` and `set`")?;
    let (mut matched, mut set_node) = (None, None);
    for e in entries {
        match e.key.as_str() {
            "match" => matched = Some(&e.value),
            "set" => set_node = Some(&e.value),
            other => {
                return Err(src.err(
                    &child_key(&label, other),
                    &e.value.span,
                    format!(
                        "unknown key `{other}` in a [[when]]{}; expected `match` and `set`",
                        did_you_mean(other, ["match", "set"])
                    ),
                ))
            }
        }
    }
    let missing = |what: &str| src.err(&label, &node.span, format!("a [[when]] needs `{what}`"));
    let matched = matched.ok_or_else(|| missing("match"))?;
    let set_node = set_node.ok_or_else(|| missing("set"))?;

    let mkey = child_key(&label, "match");
    let mut conds = Vec::new();
    let mut desc = Vec::new();
    for e in expect_table(src, &mkey, matched, "a table of axis = value")? {
        let (cond, text) = names.cond(src, &child_key(&mkey, &e.key), &e.key, &e.value)?;
        conds.push(cond);
        desc.push(text);
    }
    let skey = child_key(&label, "set");
    let mut set = Vec::new();
    for e in expect_table(src, &skey, set_node, "a table of parameter = value")? {
        let key = child_key(&skey, &e.key);
        check_name(src, &key, &e.key, &e.value)?;
        if names.columns.contains_key(&e.key) {
            return Err(src.err(
                &key,
                &e.value.span,
                format!(
                    "`{}` is an axis; a [[when]] can only set parameters that are not axes",
                    e.key
                ),
            ));
        }
        if Role::from_name(&e.key).is_some_and(|r| r.is_image()) {
            return Err(src.err(&key, &e.value.span, "a [[when]] cannot set an image"));
        }
        let mut items = parse_value(src, base, &e.key, &key, &e.value)?;
        set.push((e.key.clone(), items.remove(0)));
    }
    Ok(When {
        label,
        desc: desc.join(", "),
        conds,
        set,
    })
}
