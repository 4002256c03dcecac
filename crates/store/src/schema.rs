//! The output tables and their Arrow schemas, built from the JSON files in `schemas/`.
//!
//! `schemas/<table>.json` at the repository root is the single source of truth: a list of
//! `{name, type, nullable, doc}`. The files are compiled in with `include_str!`, so the
//! binary needs no data files at run time, and the Python checks read the same files.
//! Type names: `utf8`, `binary`, `int32`, `int64`, `float32`, `float64`, `bool`,
//! `timestamp[us, UTC]` and `list<T>` of any of them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::error::{Result, StoreError};

/// One output table. Every table has a folder `ROOT/<name>/` of `part-<batch_id>.parquet` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per committed task: identity, parameters, status, timing, provenance.
    Tasks,
    /// One row per recorded iteration of a task.
    Losses,
    /// Eigenvalues of eigendistortion tasks.
    Eigen,
    /// Images a task produced or started from.
    Images,
    /// Metric values between pairs of images.
    Scores,
}

/// A column as `schemas/<table>.json` describes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub nullable: bool,
    pub doc: String,
}

impl Table {
    /// Every table, the `tasks` table (the commit point) last: the order a flush writes them.
    pub const ALL: [Table; 5] = [
        Table::Losses,
        Table::Eigen,
        Table::Images,
        Table::Scores,
        Table::Tasks,
    ];
    /// The tables holding per-task data, written before the commit point.
    pub const DATA: [Table; 4] = [Table::Losses, Table::Eigen, Table::Images, Table::Scores];

    /// The table's name: its folder under the root and its schema file's stem.
    pub fn name(self) -> &'static str {
        match self {
            Table::Tasks => "tasks",
            Table::Losses => "losses",
            Table::Eigen => "eigen",
            Table::Images => "images",
            Table::Scores => "scores",
        }
    }

    /// The table named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The text of `schemas/<table>.json`, as compiled in.
    pub fn schema_json(self) -> &'static str {
        match self {
            Table::Tasks => include_str!("../../../schemas/tasks.json"),
            Table::Losses => include_str!("../../../schemas/losses.json"),
            Table::Eigen => include_str!("../../../schemas/eigen.json"),
            Table::Images => include_str!("../../../schemas/images.json"),
            Table::Scores => include_str!("../../../schemas/scores.json"),
        }
    }

    /// The columns as the schema file lists them.
    pub fn columns(self) -> &'static [ColumnSpec] {
        &parsed()[self.index()].0
    }

    /// The Arrow schema every file of this table has.
    pub fn schema(self) -> SchemaRef {
        parsed()[self.index()].1.clone()
    }

    fn index(self) -> usize {
        match self {
            Table::Tasks => 0,
            Table::Losses => 1,
            Table::Eigen => 2,
            Table::Images => 3,
            Table::Scores => 4,
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

type Parsed = (Vec<ColumnSpec>, SchemaRef);

/// The schema files, parsed once. A malformed file is a build defect caught by the tests,
/// hence the panic (with the parse error) rather than an error every caller must handle.
fn parsed() -> &'static [Parsed; 5] {
    static PARSED: OnceLock<[Parsed; 5]> = OnceLock::new();
    PARSED.get_or_init(|| {
        [
            Table::Tasks,
            Table::Losses,
            Table::Eigen,
            Table::Images,
            Table::Scores,
        ]
        .map(|t| parse_schema(t.name(), t.schema_json()).unwrap_or_else(|e| panic!("{e}")))
    })
}

/// Parses one schema file's text into its columns and the Arrow schema.
pub fn parse_schema(table: &str, json: &str) -> Result<(Vec<ColumnSpec>, SchemaRef)> {
    let err = |msg: String| StoreError::Schema {
        table: table.to_string(),
        msg,
    };
    let columns: Vec<ColumnSpec> =
        serde_json::from_str(json).map_err(|e| err(format!("not a list of columns: {e}")))?;
    let mut seen = HashMap::new();
    let mut fields = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        if let Some(j) = seen.insert(c.name.as_str(), i) {
            return Err(err(format!("column {} listed twice ({j} and {i})", c.name)));
        }
        let dt = parse_type(&c.type_name)
            .ok_or_else(|| err(format!("column {}: unknown type {:?}", c.name, c.type_name)))?;
        fields.push(Field::new(&c.name, dt, c.nullable));
    }
    if columns.first().map(|c| c.name.as_str()) != Some("task_id") {
        return Err(err("the first column must be task_id".into()));
    }
    Ok((columns, Arc::new(Schema::new(fields))))
}

/// Parses a type name of the schema files.
pub fn parse_type(name: &str) -> Option<DataType> {
    let name = name.trim();
    if let Some(inner) = name.strip_prefix("list<").and_then(|s| s.strip_suffix('>')) {
        return Some(DataType::new_list(parse_type(inner)?, true));
    }
    Some(match name {
        "utf8" => DataType::Utf8,
        "binary" => DataType::Binary,
        "bool" => DataType::Boolean,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "timestamp[us, UTC]" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => return None,
    })
}
