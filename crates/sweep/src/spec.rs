//! `SweepSpec`: a sweep file read and checked, with its images found, ready to plan.
//!
//! Everything that can be checked without the model layer is checked here: the keys, the
//! types, the inputs the method needs, the axes (non-empty, no repeated values, zipped
//! lists of one length), the rules (naming axes that exist, matching at least one value).
use crate::axes::{self, Group};
use crate::error::{Location, SweepError};
use crate::rules::{self, Columns, Exclude, Names, When};
use crate::source::{child_key, did_you_mean, Node, Source};
use crate::values::{check_name, dotted_base, parse_value, Item};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use synthsweep_core::{Role, SynthKind};

const TOP_KEYS: [&str; 9] = [
    "name",
    "synth",
    "description",
    "repeats",
    "params",
    "grid",
    "zip",
    "exclude",
    "when",
];

/// A parsed, checked sweep spec. Build it with [`SweepSpec::from_path`] or
/// [`SweepSpec::from_str`], then [`SweepSpec::plan`] it.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    pub(crate) src: Source,
    pub(crate) base_dir: PathBuf,
    pub(crate) name: String,
    pub(crate) synth: SynthKind,
    pub(crate) description: Option<String>,
    /// `[params]`, in file order.
    pub(crate) fixed: Vec<(String, Item)>,
    /// Axes, slowest first: `[grid]` entries in file order, then `[[zip]]`s, then `repeats`.
    pub(crate) groups: Vec<Group>,
    pub(crate) columns: Columns,
    pub(crate) excludes: Vec<Exclude>,
    pub(crate) whens: Vec<When>,
}

/// One axis as the outside sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisInfo {
    /// Where it was declared: `grid.image`, `zip[0]`, `grid.pairs`, `repeats`.
    pub label: String,
    /// The parameters it sets.
    pub columns: Vec<String>,
    /// Its number of values (after globs and directories are expanded).
    pub len: usize,
}

impl SweepSpec {
    /// Reads and checks a spec file. Relative image paths are relative to its folder.
    pub fn from_path(path: impl AsRef<Path>) -> Result<SweepSpec, SweepError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        SweepSpec::from_str(&text, path)
    }

    /// Checks spec text. `origin` names it in messages, and its folder is where relative
    /// image paths are looked up (`Path::new("spec.toml")`: the current directory).
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: impl AsRef<Path>) -> Result<SweepSpec, SweepError> {
        let origin = origin.as_ref();
        let src = Source::new(origin.display().to_string(), text);
        let base_dir = match origin.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let root = src.parse(text)?;
        Parser {
            src: &src,
            base: &base_dir,
        }
        .spec(&root, src.clone(), base_dir.clone())
    }

    /// The sweep's `name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sweep's `synth`.
    pub fn synth(&self) -> SynthKind {
        self.synth
    }

    /// The optional `description`.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The spec file as named when it was read.
    pub fn origin(&self) -> &str {
        &self.src.file
    }

    /// The folder relative image paths are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The axes, slowest-varying first (task order).
    pub fn axes(&self) -> Vec<AxisInfo> {
        self.groups
            .iter()
            .map(|g| AxisInfo {
                label: g.label.clone(),
                columns: g.columns.clone(),
                len: g.len(),
            })
            .collect()
    }

    /// Whether `name` is set by an axis (a `[grid]` entry, a `[[zip]]` column, `repeats`).
    pub fn is_axis(&self, name: &str) -> bool {
        self.columns.contains_key(name)
    }

    /// The `[params]` values as written (images as paths relative to the spec folder).
    pub fn fixed_params(&self) -> Vec<(String, Value)> {
        self.fixed
            .iter()
            .map(|(n, i)| (n.clone(), i.value.clone()))
            .collect()
    }
}

struct Parser<'a> {
    src: &'a Source,
    base: &'a Path,
}

impl Parser<'_> {
    fn err(&self, key: &str, node: &Node, msg: impl Into<String>) -> SweepError {
        self.src.err(key, &node.span, msg)
    }

    fn table<'n>(
        &self,
        key: &str,
        node: &'n Node,
    ) -> Result<&'n [crate::source::Entry], SweepError> {
        node.as_table().ok_or_else(|| {
            self.err(
                key,
                node,
                format!("expected a table, got {}", node.type_name()),
            )
        })
    }

    fn tables<'n>(&self, key: &str, node: &'n Node) -> Result<&'n [Node], SweepError> {
        match node.as_array() {
            Some(a) if a.iter().all(|n| n.as_table().is_some()) => Ok(a),
            _ => Err(self.err(
                key,
                node,
                format!(
                    "expected an array of tables ([[{key}]] sections), got {}",
                    node.type_name()
                ),
            )),
        }
    }

    fn spec(&self, root: &Node, src: Source, base_dir: PathBuf) -> Result<SweepSpec, SweepError> {
        let src_ref = self.src;
        let entries = self.table("", root)?;
        let mut top: HashMap<&str, &Node> = HashMap::new();
        for e in entries {
            if !TOP_KEYS.contains(&e.key.as_str()) {
                let hint = did_you_mean(&e.key, TOP_KEYS);
                let hint = if hint.is_empty() && Role::from_name(&e.key).is_some() {
                    " (a parameter goes in [params], or in [grid] as an axis)".to_string()
                } else {
                    hint
                };
                return Err(self.err(
                    &child_key("", &e.key),
                    &e.value,
                    format!(
                        "unknown key `{}`{hint}; a sweep spec has {}",
                        e.key,
                        TOP_KEYS.join(", ")
                    ),
                ));
            }
            top.insert(e.key.as_str(), &e.value);
        }
        let whole = |msg: &str| SweepError::Spec {
            at: Location {
                file: src_ref.file.clone(),
                key: String::new(),
                line: None,
            },
            message: msg.to_string(),
        };

        let name = match top.get("name") {
            None => return Err(whole("missing `name = \"...\"` (the sweep's name)")),
            Some(n) => match n.as_str() {
                Some(s)
                    if !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
                {
                    s.to_string()
                }
                _ => {
                    return Err(self.err(
                        "name",
                        n,
                        "expected a non-empty string of letters, digits, `-`, `_` and `.` \
                         (it names output folders)",
                    ))
                }
            },
        };
        let synth = match top.get("synth") {
            None => {
                return Err(whole(&format!(
                    "missing `synth = \"...\"`; one of {}",
                    SynthKind::names()
                )))
            }
            Some(n) => match n.as_str().map(str::parse::<SynthKind>) {
                Some(Ok(k)) => k,
                Some(Err(msg)) => {
                    let word = n.as_str().unwrap_or_default();
                    let names: Vec<&str> = SynthKind::ALL.iter().map(|k| k.as_str()).collect();
                    return Err(self.err(
                        "synth",
                        n,
                        format!("{msg}{}", did_you_mean(word, names)),
                    ));
                }
                None => {
                    return Err(self.err(
                        "synth",
                        n,
                        format!("expected a string, one of {}", SynthKind::names()),
                    ))
                }
            },
        };
        let description = match top.get("description") {
            None => None,
            Some(n) => Some(
                n.as_str()
                    .ok_or_else(|| self.err("description", n, "expected a string"))?
                    .to_string(),
            ),
        };

        // [params]
        let mut fixed = Vec::new();
        if let Some(node) = top.get("params") {
            for e in self.table("params", node)? {
                let key = child_key("params", &e.key);
                if e.key == "pairs" {
                    return Err(self.err(&key, &e.value, "`pairs` is an axis: put it in [grid]"));
                }
                check_name(self.src, &key, &e.key, &e.value)?;
                let mut items = parse_value(self.src, self.base, &e.key, &key, &e.value)?;
                if items.len() != 1 {
                    return Err(self.err(
                        &key,
                        &e.value,
                        format!(
                            "this names {} images; a fixed image must be one file (put several \
                             in [grid] to make an axis)",
                            items.len()
                        ),
                    ));
                }
                fixed.push((e.key.clone(), items.remove(0)));
            }
        }

        // Axes: [grid] in file order, then [[zip]]s, then repeats.
        let mut groups = Vec::new();
        if let Some(node) = top.get("grid") {
            for e in self.table("grid", node)? {
                if e.key == "pairs" {
                    if !synth.takes_pair() {
                        return Err(self.err(
                            "grid.pairs",
                            &e.value,
                            format!("{synth} takes one image, not pairs; use `image`"),
                        ));
                    }
                    groups.push(axes::pairs_axis(self.src, self.base, &e.value)?);
                } else {
                    groups.push(axes::grid_axis(self.src, self.base, &e.key, &e.value)?);
                }
            }
        }
        if let Some(node) = top.get("zip") {
            for (i, z) in self.tables("zip", node)?.iter().enumerate() {
                groups.push(axes::zip_group(self.src, self.base, i, z)?);
            }
        }
        if let Some(node) = top.get("repeats") {
            groups.push(axes::repeats_group(self.src, node)?);
        }

        // Each parameter is set in one place only.
        let mut columns: Columns = HashMap::new();
        let mut defined: HashMap<String, Location> = HashMap::new();
        for (name, item) in &fixed {
            defined.insert(name.clone(), item.at.clone());
        }
        for (g, group) in groups.iter().enumerate() {
            for (c, name) in group.columns.iter().enumerate() {
                if let Some(first) = defined.get(name) {
                    let what = if group.label == "repeats" {
                        "`repeats` makes a seed axis, and the seed is also set".to_string()
                    } else {
                        format!("`{name}` is set twice")
                    };
                    return Err(SweepError::Spec {
                        at: group.at.clone(),
                        message: format!(
                            "{what} (at {}); a parameter is either fixed in [params] or one axis",
                            first.key
                        ),
                    });
                }
                defined.insert(name.clone(), group.at.clone());
                columns.insert(name.clone(), (g, c));
            }
        }
        // `repeats` makes 0..n, distinct by construction.
        for group in groups.iter().filter(|g| g.label != "repeats") {
            axes::check_distinct(group)?;
        }

        let names = Names {
            base: self.base,
            groups: &groups,
            columns: &columns,
            fixed: &fixed,
        };
        let mut excludes = Vec::new();
        if let Some(node) = top.get("exclude") {
            for (i, t) in self.tables("exclude", node)?.iter().enumerate() {
                excludes.push(rules::exclude(self.src, &names, i, t)?);
            }
        }
        let mut whens = Vec::new();
        if let Some(node) = top.get("when") {
            for (i, t) in self.tables("when", node)?.iter().enumerate() {
                whens.push(rules::when(self.src, self.base, &names, i, t)?);
            }
        }

        self.check_roles(synth, &fixed, &groups, &whens, &defined)?;
        Ok(SweepSpec {
            src,
            base_dir,
            name,
            synth,
            description,
            fixed,
            groups,
            columns,
            excludes,
            whens,
        })
    }

    /// Inputs the method does not take are errors; inputs it needs must be given; a dotted
    /// name must set a field of a parameter that is given and is not an image.
    fn check_roles(
        &self,
        synth: SynthKind,
        fixed: &[(String, Item)],
        groups: &[Group],
        whens: &[When],
        defined: &HashMap<String, Location>,
    ) -> Result<(), SweepError> {
        let allowed = synth.roles();
        let inputs = allowed
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut uses: Vec<(&str, &Location)> = Vec::new();
        uses.extend(fixed.iter().map(|(n, i)| (n.as_str(), &i.at)));
        for g in groups {
            uses.extend(g.columns.iter().map(|c| (c.as_str(), &g.at)));
        }
        for w in whens {
            uses.extend(w.set.iter().map(|(n, i)| (n.as_str(), &i.at)));
        }
        for (name, at) in &uses {
            let head = dotted_base(name).unwrap_or(name);
            if let Some(role) = Role::from_name(head) {
                if !allowed.contains(&role) {
                    let hint = match (role, synth.takes_pair()) {
                        (Role::Image, true) => " (use image_a and image_b, or grid.pairs)",
                        (Role::ImageA | Role::ImageB, false) => " (use image)",
                        _ => "",
                    };
                    return Err(SweepError::Spec {
                        at: (*at).clone(),
                        message: format!(
                            "{synth} takes no `{}`{hint}; its inputs are {inputs}",
                            role.as_str()
                        ),
                    });
                }
            }
            if let Some(base) = dotted_base(name) {
                let bad_base = Role::from_name(base).is_some_and(|r| r.is_image() || r.is_scalar());
                if bad_base {
                    return Err(SweepError::Spec {
                        at: (*at).clone(),
                        message: format!("`{name}`: `{base}` has no fields to set"),
                    });
                }
                if !defined.contains_key(base) {
                    return Err(SweepError::Spec {
                        at: (*at).clone(),
                        message: format!(
                            "`{name}` sets a field of `{base}`, which this sweep does not give; \
                             give `{base}` in [params] or as an axis"
                        ),
                    });
                }
            }
        }
        for role in allowed {
            if !role.is_optional() && !defined.contains_key(role.as_str()) {
                // A misspelt input (`imagee`) is what to name, not the input it leaves out.
                let params = synthsweep_core::params::MethodParams::names(synth);
                let typo = uses.iter().find(|(name, _)| {
                    let head = dotted_base(name).unwrap_or(name);
                    Role::from_name(head).is_none()
                        && !params.contains(&head)
                        && !did_you_mean(head, [role.as_str()]).is_empty()
                });
                if let Some((name, at)) = typo {
                    return Err(SweepError::Spec {
                        at: (*at).clone(),
                        message: format!(
                            "`{name}` is neither an input nor a parameter of {synth}{}; its \
                             inputs are {inputs}",
                            did_you_mean(name, [role.as_str()])
                        ),
                    });
                }
                let how = if role.is_image() && synth.takes_pair() {
                    "image_a and image_b as axes (zipped for pairs), or grid.pairs"
                } else {
                    "it in [params], or as an axis in [grid] or [[zip]]"
                };
                return Err(SweepError::Spec {
                    at: Location {
                        file: self.src.file.clone(),
                        key: String::new(),
                        line: None,
                    },
                    message: format!("{synth} needs `{}`: give {how}", role.as_str()),
                });
            }
        }
        Ok(())
    }
}
