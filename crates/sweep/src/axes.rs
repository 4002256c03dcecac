//! Axes of a sweep: `[grid]` lists (one axis each, crossed), `[[zip]]` tables (lists that
//! advance together: one axis with several columns), `grid.pairs` (a two-column axis of
//! image pairs) and `repeats` (a seed axis 0..n).
use crate::error::{Location, SweepError};
use crate::source::{child_key, index_key, Node, NodeKind, Source};
use crate::values::{check_name, parse_value, Item};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use synthsweep_core::Role;

/// One axis of the grid: a list of rows, each giving a value to every column.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Where it was declared: `grid.image`, `zip[0]`, `grid.pairs`, `repeats`.
    pub label: String,
    /// The parameters it sets (one for a grid axis, several for a zip or pairs).
    pub columns: Vec<String>,
    /// `rows[r][c]`: the value of column `c` in row `r`. For `repeats` (see `seeds`) one
    /// row only, the template of every seed: read values with [`Group::value`] and rows
    /// with [`Group::row`], which know both kinds.
    pub rows: Vec<Vec<Item>>,
    /// `repeats = n`: the axis is the seeds 0..n, made when asked, so its memory does not
    /// grow with `n` (a long `repeats` plans in the memory of a grid of the same size).
    pub seeds: Option<u64>,
    pub at: Location,
}

impl Group {
    /// Number of rows (values of the axis).
    pub fn len(&self) -> usize {
        self.seeds.map_or(self.rows.len(), |n| n as usize)
    }

    /// Row `r`'s items: borrowed for a list axis, made for a `repeats` seed.
    pub fn row(&self, r: usize) -> Cow<'_, [Item]> {
        match self.seeds {
            None => Cow::Borrowed(&self.rows[r]),
            Some(_) => Cow::Owned(vec![Item::new(
                Value::from(r as u64),
                self.rows[0][0].at.clone(),
            )]),
        }
    }

    /// The item of column `c` in row `r` as a reference: for `repeats` the template (its
    /// value is not row `r`'s seed; [`Group::seed_at`] gives that).
    pub fn item(&self, r: usize, c: usize) -> &Item {
        match self.seeds {
            None => &self.rows[r][c],
            Some(_) => &self.rows[0][0],
        }
    }

    /// The value of column `c` in row `r`.
    pub fn value(&self, r: usize, c: usize) -> Value {
        match self.seeds {
            None => self.rows[r][c].value.clone(),
            Some(_) => Value::from(r as u64),
        }
    }

    /// When `item` is this `repeats` axis's template: the seed of row `r`.
    pub fn seed_at(&self, item: &Item, r: usize) -> Option<u64> {
        (self.seeds.is_some() && std::ptr::eq(item, &self.rows[0][0])).then_some(r as u64)
    }
}

/// The values of one list (an image entry may expand to several files).
fn list_items(
    src: &Source,
    base: &Path,
    name: &str,
    key: &str,
    node: &Node,
) -> Result<Vec<Item>, SweepError> {
    let is_image = Role::from_name(name).is_some_and(|r| r.is_image());
    match &node.kind {
        NodeKind::Array(elems) => {
            if elems.is_empty() {
                return Err(src.err(key, &node.span, "an axis needs at least one value, got []"));
            }
            let mut items = Vec::new();
            for (i, elem) in elems.iter().enumerate() {
                items.extend(parse_value(src, base, name, &index_key(key, i), elem)?);
            }
            Ok(items)
        }
        // One image entry (a glob, a directory) is a list by itself.
        NodeKind::Str(_) if is_image => parse_value(src, base, name, key, node),
        // `model.kernel_size = [...]` unquoted is a TOML table `model = {kernel_size = [...]}`.
        NodeKind::Table(entries) if entries.len() == 1 => Err(src.err(
            key,
            &node.span,
            format!(
                "expected a list of values (an axis), got a table; to make an axis over a field \
                 of `{name}`, quote the dotted key: \"{name}.{}\" = [...]",
                entries[0].key
            ),
        )),
        _ => Err(src.err(
            key,
            &node.span,
            format!(
                "expected a list of values (an axis), got {}; a single value for every task \
                 belongs in [params]",
                node.type_name()
            ),
        )),
    }
}

/// A `[grid]` entry other than `pairs`.
pub(crate) fn grid_axis(
    src: &Source,
    base: &Path,
    name: &str,
    node: &Node,
) -> Result<Group, SweepError> {
    let key = child_key("grid", name);
    check_name(src, &key, name, node)?;
    let items = list_items(src, base, name, &key, node)?;
    Ok(Group {
        label: key.clone(),
        columns: vec![name.to_string()],
        rows: items.into_iter().map(|i| vec![i]).collect(),
        seeds: None,
        at: src.loc(&key, &node.span),
    })
}

/// `grid.pairs = [["a.pgm", "b.pgm"], ...]`: columns `image_a` and `image_b`.
pub(crate) fn pairs_axis(src: &Source, base: &Path, node: &Node) -> Result<Group, SweepError> {
    let key = "grid.pairs";
    let bad = |span, k: &str| {
        src.err(
            k,
            span,
            "expected a pair of image files like [\"a.pgm\", \"b.pgm\"]",
        )
    };
    let Some(elems) = node.as_array() else {
        return Err(src.err(
            key,
            &node.span,
            format!(
                "expected a list of image pairs like [[\"a.pgm\", \"b.pgm\"]], got {}",
                node.type_name()
            ),
        ));
    };
    if elems.is_empty() {
        return Err(src.err(key, &node.span, "an axis needs at least one value, got []"));
    }
    let mut rows = Vec::new();
    for (i, pair) in elems.iter().enumerate() {
        let pkey = index_key(key, i);
        let sides = match pair.as_array() {
            Some(s) if s.len() == 2 => s,
            _ => return Err(bad(&pair.span, &pkey)),
        };
        let mut row = Vec::new();
        for (j, (side, name)) in sides.iter().zip(["image_a", "image_b"]).enumerate() {
            let skey = index_key(&pkey, j);
            let mut items = parse_value(src, base, name, &skey, side)?;
            if items.len() != 1 {
                return Err(src.err(
                    &skey,
                    &side.span,
                    format!(
                        "each side of a pair must be one file, but this names {} files; \
                         use image_a and image_b axes to pair or cross several",
                        items.len()
                    ),
                ));
            }
            row.push(items.remove(0));
        }
        rows.push(row);
    }
    Ok(Group {
        label: key.to_string(),
        columns: vec!["image_a".into(), "image_b".into()],
        rows,
        seeds: None,
        at: src.loc(key, &node.span),
    })
}

/// One `[[zip]]` table: every entry a list, all of the same length.
pub(crate) fn zip_group(
    src: &Source,
    base: &Path,
    index: usize,
    node: &Node,
) -> Result<Group, SweepError> {
    let label = index_key("zip", index);
    let Some(entries) = node.as_table() else {
        return Err(src.err(
            &label,
            &node.span,
            format!(
                "expected a table of lists ([[zip]] with `a = [...]`, `b = [...]`), got {}",
                node.type_name()
            ),
        ));
    };
    if entries.is_empty() {
        return Err(src.err(&label, &node.span, "a [[zip]] needs at least one list"));
    }
    let mut columns: Vec<String> = Vec::new();
    let mut cols: Vec<Vec<Item>> = Vec::new();
    for e in entries {
        let key = child_key(&label, &e.key);
        if e.key == "pairs" {
            return Err(src.err(
                &key,
                &e.value.span,
                "`pairs` belongs in [grid]; in a [[zip]] use image_a = [...] and image_b = [...]",
            ));
        }
        check_name(src, &key, &e.key, &e.value)?;
        let items = list_items(src, base, &e.key, &key, &e.value)?;
        if let Some(first) = cols.first() {
            if first.len() != items.len() {
                let expanded = if Role::from_name(&e.key).is_some_and(|r| r.is_image())
                    || Role::from_name(&columns[0]).is_some_and(|r| r.is_image())
                {
                    " (counting the files that globs and directories expand to)"
                } else {
                    ""
                };
                return Err(src.err(
                    &key,
                    &e.value.span,
                    format!(
                        "`{}` has {} values but `{}` has {}{expanded}; zipped lists must have \
                         the same length",
                        columns[0],
                        first.len(),
                        e.key,
                        items.len()
                    ),
                ));
            }
        }
        columns.push(e.key.clone());
        cols.push(items);
    }
    let n = cols[0].len();
    let mut rows: Vec<Vec<Item>> = (0..n).map(|_| Vec::with_capacity(cols.len())).collect();
    for col in cols {
        for (r, item) in col.into_iter().enumerate() {
            rows[r].push(item);
        }
    }
    Ok(Group {
        label: label.clone(),
        columns,
        rows,
        seeds: None,
        at: src.loc(&label, &node.span),
    })
}

/// The most values `repeats` may make. Its seeds take no memory (they are made when
/// asked), but every task is checked while planning (about a microsecond each), so this
/// bounds that to minutes; beyond it the size is refused, naming `repeats`.
pub(crate) const MAX_REPEATS: i64 = 1 << 24;

/// `repeats = n`: a `seed` axis 0..n.
pub(crate) fn repeats_group(src: &Source, node: &Node) -> Result<Group, SweepError> {
    let n = match node.kind {
        NodeKind::Int(n) if n > MAX_REPEATS => {
            return Err(src.err(
                "repeats",
                &node.span,
                format!(
                    "{n} seeds is more than one sweep can plan (at most {MAX_REPEATS} per axis); split \
                     the study into several sweeps"
                ),
            ))
        }
        NodeKind::Int(n) if n >= 1 => n,
        _ => {
            return Err(src.err(
                "repeats",
                &node.span,
                format!(
                    "expected a positive integer (the number of seeds, 0..n), got {}",
                    node.type_name()
                ),
            ))
        }
    };
    let at = src.loc("repeats", &node.span);
    Ok(Group {
        label: "repeats".into(),
        columns: vec!["seed".into()],
        rows: vec![vec![Item::new(Value::from(0), at.clone())]],
        seeds: Some(n as u64),
        at,
    })
}

/// Two equal rows would make two identical tasks: an error, naming both.
pub(crate) fn check_distinct(group: &Group) -> Result<(), SweepError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (r, row) in group.rows.iter().enumerate() {
        let key = row
            .iter()
            .map(|i| i.canon.as_str())
            .collect::<Vec<_>>()
            .join("\u{1}");
        if let Some(&first) = seen.get(&key) {
            let what = row.iter().map(Item::short).collect::<Vec<_>>().join(", ");
            let first_at = &group.rows[first][0].at;
            let mut at = row[0].at.clone();
            if group.columns.len() > 1 {
                at.key = format!("{} row {r}", group.label);
            }
            return Err(SweepError::Spec {
                at,
                message: format!(
                    "{what} is listed twice in {} (also at {}{}); the tasks would repeat",
                    group.label,
                    first_at.key,
                    first_at
                        .line
                        .map(|(l, _)| format!(", line {l}"))
                        .unwrap_or_default()
                ),
            });
        }
        seen.insert(key, r);
    }
    Ok(())
}
