//! The schema files in `schemas/` and the Rust tables agree.

use synthsweep_testkit::store as common;

use arrow_schema::{DataType, TimeUnit};
use synthsweep_store::*;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

#[test]
fn schema_files_on_disk_are_the_compiled_ones_and_parse() {
    for t in Table::ALL {
        let path = common::workspace_root().join(format!("schemas/{}.json", t.name()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, t.schema_json(), "{} differs", path.display());
        let (cols, schema) = parse_schema(t.name(), &text).unwrap();
        assert_eq!(cols.len(), schema.fields().len());
        for c in &cols {
            assert!(!c.doc.trim().is_empty(), "{t}.{} has no doc", c.name);
        }
    }
    // Nothing else in schemas/ that no code reads.
    let mut names: Vec<String> = std::fs::read_dir(common::workspace_root().join("schemas"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "eigen.json",
            "images.json",
            "losses.json",
            "scores.json",
            "tasks.json"
        ]
    );
}

#[test]
fn required_columns_have_the_promised_types() {
    use DataType::*;
    let list_f32 = DataType::new_list(Float32, true);
    type Columns<'a> = &'a [(&'a str, DataType, bool)];
    let want: &[(Table, Columns)] = &[
        (
            Table::Tasks,
            &[
                ("task_id", Utf8, false),
                ("sweep", Utf8, false),
                ("synth", Utf8, false),
                ("image", Utf8, true),
                ("model", Utf8, true),
                ("optimized_metric", Utf8, true),
                ("reference_metric", Utf8, true),
                ("minmax", Utf8, true),
                ("seed", Int64, false),
                ("params", Utf8, false),
                ("status", Utf8, false),
                ("error", Utf8, true),
                ("iterations", Int64, false),
                ("duration_s", Float64, false),
                ("device", Utf8, false),
                ("host", Utf8, false),
                ("started_at", ts(), false),
                ("finished_at", ts(), false),
                ("synthsweep_version", Utf8, false),
                ("torch_version", Utf8, true),
                ("run_id", Utf8, false),
                ("batch_id", Utf8, false),
            ],
        ),
        (
            Table::Losses,
            &[
                ("task_id", Utf8, false),
                ("iteration", Int64, false),
                ("loss", Float64, false),
                ("gradient_norm", Float64, true),
                ("pixel_change_norm", Float64, true),
                ("optimized_metric_loss", Float64, true),
                ("reference_metric_loss", Float64, true),
            ],
        ),
        (
            Table::Eigen,
            &[
                ("task_id", Utf8, false),
                ("eigenindex", Int64, false),
                ("eigenvalue", Float64, false),
            ],
        ),
        (
            Table::Images,
            &[
                ("task_id", Utf8, false),
                ("role", Utf8, false),
                ("index", Int64, false),
                ("iteration", Int64, true),
                ("channels", Int32, false),
                ("height", Int32, false),
                ("width", Int32, false),
                ("pixels", list_f32, true),
                ("png", Binary, true),
            ],
        ),
        (
            Table::Scores,
            &[
                ("task_id", Utf8, false),
                ("image_a", Utf8, false),
                ("image_b", Utf8, false),
                ("metric", Utf8, false),
                ("value", Float64, false),
            ],
        ),
    ];
    for (table, cols) in want {
        let schema = table.schema();
        for (name, dt, nullable) in cols.iter() {
            let f = schema
                .field_with_name(name)
                .unwrap_or_else(|_| panic!("{table}.{name} missing"));
            assert_eq!(f.data_type(), dt, "{table}.{name}");
            assert_eq!(f.is_nullable(), *nullable, "{table}.{name} nullable");
        }
    }
}

#[test]
fn rust_rows_build_every_schema_column() {
    // The encoders put columns by name and fail on any column missing on either side, so
    // encoding rows (with and without nulls) checks the row structs against the files.
    let rs: Vec<TaskResult> = (0..8).map(common::sample_result).collect();
    let tasks: Vec<TaskRow> = rs.iter().map(|r| r.task.clone()).collect();
    let losses: Vec<LossRow> = rs.iter().flat_map(|r| r.losses.clone()).collect();
    let eigen: Vec<EigenRow> = rs.iter().flat_map(|r| r.eigen.clone()).collect();
    let images: Vec<ImageRow> = rs.iter().flat_map(|r| r.images.clone()).collect();
    let scores: Vec<ScoreRow> = rs.iter().flat_map(|r| r.scores.clone()).collect();
    for (table, batch) in [
        (Table::Tasks, arrow::tasks(&tasks).unwrap()),
        (Table::Losses, arrow::losses(&losses).unwrap()),
        (Table::Eigen, arrow::eigen(&eigen).unwrap()),
        (Table::Images, arrow::images(&images).unwrap()),
        (Table::Scores, arrow::scores(&scores).unwrap()),
        (Table::Eigen, arrow::eigen(&[]).unwrap()),
    ] {
        assert_eq!(batch.schema(), table.schema(), "{table}");
    }
}

#[test]
fn bad_schema_files_are_rejected_with_the_reason() {
    let e = parse_schema(
        "x",
        r#"[{"name":"task_id","type":"utf9","nullable":false,"doc":""}]"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown type"), "{e}");
    let e = parse_schema(
        "x",
        r#"[{"name":"task_id","type":"utf8","nullable":false,"doc":""},
            {"name":"task_id","type":"utf8","nullable":false,"doc":""}]"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("twice"), "{e}");
    assert!(parse_schema("x", r#"{"columns":[]}"#).is_err());
    assert_eq!(
        parse_type("list<list<int32>>"),
        Some(DataType::new_list(
            DataType::new_list(DataType::Int32, true),
            true
        ))
    );
}
