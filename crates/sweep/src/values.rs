//! One value of one parameter, checked by what the parameter is: image entries expand to
//! files, model and metric specs must be tables with a `name` (a bare string is shorthand
//! for `{name = "..."}`), `minmax` is "min" or "max", `seed` a non-negative integer,
//! `as_gray` a boolean; any other parameter is passed on as JSON for the resolver to judge.
use crate::canonical::canonical_json;
use crate::error::{Location, SweepError};
use crate::images::{self, ImageFile};
use crate::source::{to_json, Node, NodeKind, Source};
use serde_json::{Map, Value};
use std::path::Path;
use synthsweep_core::Role;

/// A value of a parameter, where it was written, and its canonical text.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// The normalised value: a spec table for model/metric roles, the display path for an
    /// image, the value as written otherwise.
    pub value: Value,
    /// What two items are compared by: canonical JSON of the value, or for an image of its
    /// absolute path (so `./images/a.pgm` and `images/a.pgm` are the same image).
    pub canon: String,
    pub image: Option<ImageFile>,
    pub at: Location,
    /// Index of this item in the plan's per-item caches (set when planning).
    pub slot: usize,
}

impl Item {
    pub fn new(value: Value, at: Location) -> Self {
        let canon = canonical_json(&value);
        Item {
            value,
            canon,
            image: None,
            at,
            slot: usize::MAX,
        }
    }

    fn image(file: ImageFile, at: Location) -> Self {
        let canon = canonical_json(&Value::String(file.abs.to_string_lossy().into_owned()));
        Item {
            value: Value::String(file.display.clone()),
            canon,
            image: Some(file),
            at,
            slot: usize::MAX,
        }
    }

    /// A short form for messages and labels: images by display path, specs by name.
    pub fn short(&self) -> String {
        short_value(&self.value)
    }
}

/// `mse`, `"min"`, `0.1`, `{name = "gaussian", ...}` shown compactly.
pub(crate) fn short_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => match (m.get("name").and_then(Value::as_str), m.len()) {
            (Some(name), 1) => name.to_string(),
            _ => canonical_json(v),
        },
        other => canonical_json(other),
    }
}

/// Checks a parameter name: `snake_case` segments, dotted for a field of a table-valued
/// parameter (`model.kernel_size`).
pub(crate) fn check_name(
    src: &Source,
    key: &str,
    name: &str,
    node: &Node,
) -> Result<(), SweepError> {
    let ok = !name.is_empty()
        && name.split('.').all(|seg| {
            !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(src.err(
            key,
            &node.span,
            format!(
                "`{name}` is not a parameter name: use letters, digits and `_`, and `.` only \
                 to set a field of a table-valued parameter (`model.kernel_size`)"
            ),
        ))
    }
}

/// The base of a dotted name (`model` for `model.kernel_size`), or `None` for a plain name.
pub(crate) fn dotted_base(name: &str) -> Option<&str> {
    name.split_once('.').map(|(base, _)| base)
}

/// Parses one value of parameter `name` written at `key`. An image entry may expand to
/// several files (a glob or a directory); every other value gives exactly one item.
pub(crate) fn parse_value(
    src: &Source,
    base_dir: &Path,
    name: &str,
    key: &str,
    node: &Node,
) -> Result<Vec<Item>, SweepError> {
    let at = src.loc(key, &node.span);
    let err = |msg: String| src.err(key, &node.span, msg);
    let role = if name.contains('.') {
        None
    } else {
        Role::from_name(name)
    };
    match role {
        Some(r) if r.is_image() => {
            let Some(entry) = node.as_str() else {
                return Err(err(format!(
                    "expected an image file, glob or directory (a string), got {}",
                    node.type_name()
                )));
            };
            let files = images::expand(base_dir, entry).map_err(err)?;
            Ok(files
                .into_iter()
                .map(|f| Item::image(f, at.clone()))
                .collect())
        }
        Some(r) if r.is_spec() => {
            let kind = r.spec_kind();
            let example = if kind == "model" {
                "{name = \"gaussian\", kernel_size = 31}"
            } else {
                "{name = \"mse\"}"
            };
            let value = match &node.kind {
                NodeKind::Str(s) => {
                    let mut m = Map::new();
                    m.insert("name".into(), Value::String(s.clone()));
                    Value::Object(m)
                }
                NodeKind::Table(_) => to_json(src, key, node)?,
                _ => {
                    return Err(err(format!(
                        "expected a {kind} spec like {example} (or just its name), got {}",
                        node.type_name()
                    )))
                }
            };
            match value.get("name") {
                Some(Value::String(s)) if !s.is_empty() => {}
                Some(other) => {
                    return Err(err(format!(
                        "a {kind} spec's `name` must be a non-empty string, got {other}"
                    )))
                }
                None => {
                    return Err(err(format!(
                        "a {kind} spec needs a `name`, like {example}; got {}",
                        canonical_json(&value)
                    )))
                }
            }
            let mut value = value;
            resolve_model_paths(&mut value, base_dir);
            Ok(vec![Item::new(value, at)])
        }
        // `model.path = "net.pt"` (a dotted override of a TorchScript model's file): the
        // same folder as the spec's other paths.
        None if name.ends_with(".path")
            && dotted_base(name)
                .and_then(Role::from_name)
                .is_some_and(|r| r.is_spec()) =>
        {
            let mut value = to_json(src, key, node)?;
            if let Value::String(p) = &value {
                value = Value::String(spec_relative(base_dir, p));
            }
            Ok(vec![Item::new(value, at)])
        }
        Some(Role::Minmax) => match node.as_str() {
            Some("min" | "max") => Ok(vec![Item::new(to_json(src, key, node)?, at)]),
            _ => Err(err(format!(
                "expected \"min\" or \"max\", got {}",
                describe(src, key, node)
            ))),
        },
        Some(Role::AsGray) => match &node.kind {
            NodeKind::Bool(b) => Ok(vec![Item::new(Value::Bool(*b), at)]),
            _ => Err(err(format!(
                "expected true or false (load the images as one gray channel, as plenoptic's \
                 load_images(as_gray=True) does; false keeps their colour), got {}",
                describe(src, key, node)
            ))),
        },
        Some(Role::Seed) => match &node.kind {
            NodeKind::Int(n) if *n >= 0 => Ok(vec![Item::new(Value::from(*n), at)]),
            _ => Err(err(format!(
                "expected a seed (a non-negative integer), got {}",
                describe(src, key, node)
            ))),
        },
        _ => Ok(vec![Item::new(to_json(src, key, node)?, at)]),
    }
}

/// A TorchScript model's `path` (in a model spec, or a metric's nested `model`) resolved
/// against the spec's folder, as image paths are: `{name = "torchscript", path = "net.pt"}`
/// in `studies/spec.toml` names `studies/net.pt`. Absolute paths are kept.
pub(crate) fn resolve_model_paths(value: &mut Value, base_dir: &Path) {
    let Value::Object(m) = value else { return };
    if m.get("name").and_then(Value::as_str) == Some("torchscript") {
        if let Some(Value::String(p)) = m.get_mut("path") {
            *p = spec_relative(base_dir, p);
        }
    }
    for v in m.values_mut() {
        if v.is_object() {
            resolve_model_paths(v, base_dir);
        }
    }
}

/// `path` joined to the spec's folder; unchanged when absolute or when the spec is in the
/// current directory (so a spec run from its own folder keeps the text it was written with).
pub(crate) fn spec_relative(base_dir: &Path, path: &str) -> String {
    if base_dir == Path::new(".") || Path::new(path).is_absolute() {
        path.to_string()
    } else {
        base_dir.join(path).to_string_lossy().into_owned()
    }
}

/// The value as JSON when it has one, else its type.
fn describe(src: &Source, key: &str, node: &Node) -> String {
    to_json(src, key, node)
        .map(|v| canonical_json(&v))
        .unwrap_or_else(|_| node.type_name())
}
