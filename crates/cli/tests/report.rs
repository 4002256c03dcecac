//! `synthsweep report`: small sweeps of every kind into one root, the report written and
//! checked file by file, re-run incrementally, filtered, opened in headless Chromium
//! (Debian's `chromium`, when installed: every page loads with every image, no console
//! error, no request leaving the disk, screenshots not blank), and bad input.
use synthsweep_testkit::cli as common;

use common::*;
use std::path::{Path, PathBuf};

const MAD: &str = r#"
name = "r-mad"
synth = "mad"
[params]
image = "images/a.pgm"
max_iter = 4
initial_noise = 0.1
store_progress = 2
optimizer = { name = "adam", lr = 0.01 }
[grid]
optimized_metric = ["mse", "ssim_distance"]
reference_metric = ["mse", "ssim_distance"]
minmax = ["min", "max"]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
"#;

const EIGEN: &str = r#"
name = "r-eigen"
synth = "eigendistortion"
[params]
image = "images/a.pgm"
model = { name = "gaussian", kernel_size = 5 }
method = "exact"
"#;

const METAMER: &str = r#"
name = "r-metamer"
synth = "metamer"
[params]
image = "images/b.pgm"
max_iter = 5
store_progress = 2
optimizer = { name = "adam", lr = 0.01 }
model = { name = "gaussian", kernel_size = 5 }
"#;

const CTF: &str = r#"
name = "r-ctf"
synth = "metamer_ctf"
[params]
image = "images32/c.pgm"
model = { name = "portilla_simoncelli", n_scales = 2, n_orientations = 2, spatial_corr_width = 3 }
max_iter = 6
change_scale_criterion = 1e9
ctf_iters_to_check = 1
optimizer = { name = "adam", lr = 0.02 }
coarse_to_fine = "together"
"#;

const SIMPLE: &str = r#"
name = "r-simple"
synth = "simple_metamer"
[params]
image = "images/b.pgm"
model = { name = "gaussian", kernel_size = 5 }
max_iter = 3
optimizer = { name = "adam", lr = 0.01 }
"#;

const GEODESIC: &str = r#"
name = "r-geodesic"
synth = "geodesic"
[params]
model = { name = "gaussian", kernel_size = 5 }
n_steps = 4
max_iter = 4
store_progress = 2
optimizer = { name = "adam", lr = 0.001 }
[grid]
pairs = [["images/a.pgm", "images/b.pgm"]]
"#;

const SCORE: &str = r#"
name = "r-score"
synth = "score"
[grid]
image_a = "images/*.pgm"
image_b = "images/*.pgm"
metric = ["mse"]
"#;

fn report(args: &[&str]) -> std::process::Output {
    let mut a = vec!["report"];
    a.extend_from_slice(args);
    synthsweep(&a)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `src="..."` / `href="..."` of an HTML page: none may leave the disk, and each
/// relative one must name a file that exists.
fn check_links(page: &Path) {
    let html = read(page);
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            // minijinja escapes `/` in attributes; the browser decodes it.
            let target = part[..part.find('"').unwrap()]
                .replace("&#x2f;", "/")
                .replace("&amp;", "&");
            let target = target.as_str();
            assert!(
                !target.contains("://") && !target.starts_with("//"),
                "{}: {target} leaves the disk",
                page.display()
            );
            if target.starts_with("data:") || target.starts_with('#') {
                continue;
            }
            let file = page.parent().unwrap().join(target);
            assert!(file.is_file(), "{}: {target} missing", page.display());
        }
    }
}

/// What a page missing a figure needs to be understood: the task's images roles (read
/// before the report) and rows per table (read now), the files of its batch in the root,
/// every manifest entry of the task, the root's files, the report's output.
fn diagnose(
    root: &str,
    out: &Path,
    t: &synthsweep_store::TaskRow,
    d: &synthsweep_store::Dataset,
    report: &std::process::Output,
) -> String {
    let id = &t.task_id;
    let b = &t.batch_id;
    let roles: Vec<&str> = d
        .images
        .iter()
        .filter(|r| r.task_id == *id)
        .map(|r| r.role.as_str())
        .collect();
    let now = read_local(root);
    let rows_now = |what: &str, n: usize| format!("{what}: {n} row(s)");
    let mut s = format!(
        "task {id}, batch {b}\nimages roles read before the report: {roles:?}\nread now: {}, {}, {}\n",
        rows_now("tasks", now.tasks.iter().filter(|r| r.task_id == *id).count()),
        rows_now("images", now.images.iter().filter(|r| r.task_id == *id).count()),
        rows_now("losses", now.losses.iter().filter(|r| r.task_id == *id).count()),
    );
    for table in ["tasks", "losses", "images", "scores", "eigen"] {
        let f = Path::new(root)
            .join(table)
            .join(format!("part-{b}.parquet"));
        s += &format!("{table}/part-{b}.parquet exists: {}\n", f.is_file());
    }
    for e in std::fs::read_dir(out.join("_manifest"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let m = std::fs::read_to_string(e.path()).unwrap_or_default();
        if let Some(at) = m.find(id.as_str()) {
            let end = m[at..].find('}').map_or(m.len(), |i| at + i + 1);
            s += &format!("manifest {:?}: {}\n", e.file_name(), &m[at..end]);
        }
    }
    let files = synthsweep_testkit::files_under(Path::new(root));
    s += &format!("root files:\n{}\n{}", files.join("\n"), text(report));
    s
}

fn task_pages(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out.join("t"))
        .unwrap()
        .map(|e| e.unwrap().path().join("index.html"))
        .collect()
}

#[test]
fn a_report_of_every_kind_is_complete_incremental_filterable_and_loads_in_a_browser() {
    let sb = Sandbox::new().with_images(16);
    sb.write("images32/c.pgm", crop_pgm("reptile_skin_64.pgm", 8, 8, 32));
    let root = sb.root("out");
    let first = [MAD, EIGEN, METAMER, CTF, GEODESIC, SCORE];
    // Separate processes, one root: run side by side, as several writers.
    let outputs: Vec<std::process::Output> = std::thread::scope(|s| {
        let hs: Vec<_> = first
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let spec = sb.write(&format!("s{i}.toml"), spec);
                let root = root.clone();
                s.spawn(move || run(&spec, &root, &["--workers", "1"]))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outputs {
        assert_code(o, 0);
    }
    // Every committed batch keeps its data files: a writer's start-up recovery, listing
    // the tasks files before the leases, once took the batch of a writer that committed
    // and ended meanwhile for an orphan and deleted them (a page without its images).
    let files = synthsweep_testkit::files_under(Path::new(&root));
    for f in files.iter().filter(|f| f.starts_with("tasks/")) {
        for table in ["losses", "images", "scores", "eigen"] {
            let g = f.replacen("tasks", table, 1);
            assert!(
                files.contains(&g),
                "{g} missing beside {f}:\n{}",
                files.join("\n")
            );
        }
    }
    let d = read_local(&root);
    let n = d.tasks.len();
    assert_eq!(n, 4 + 1 + 1 + 1 + 1 + 4);
    python_analysis_example(&root, &d);

    // Pages of 5 rows: 13 tasks on three pages of the task table.
    let o = report(&[&root, "--page-rows", "5"]);
    assert_code(&o, 0);
    let out = sb.path("out/_report");
    assert!(
        stdout(&o).contains(&format!("{n} pages drawn, 0 kept"))
            && stdout(&o).contains(&out.join("index.html").display().to_string()),
        "{}",
        text(&o)
    );
    let index = read(&out.join("index.html"));
    for needle in [
        "mad",
        "eigendistortion",
        "metamer_ctf",
        "geodesic",
        "score",
        "Scores: mse",
        "MAD competitions",
        "Runs (provenance)",
        "r-geodesic",
    ] {
        assert!(index.contains(needle), "index lacks {needle}");
    }
    assert_eq!(task_pages(&out).len(), n);
    for t in &d.tasks {
        let dir = out.join("t").join(&t.task_id);
        // Images are files beside the page; charts are inlined in it (SVG).
        let (files, charts): (&[&str], &[&str]) = match t.synth.as_str() {
            "mad" => (
                &[
                    "target.png",
                    "initial.png",
                    "final.png",
                    "progress.gif",
                    "losses.json",
                ],
                &["Objective", "Pixel values", "(optimized)", "(held)"],
            ),
            "eigendistortion" => (
                &["target.png", "eig0.png", "eig0_plus.png", "eig0_minus.png"],
                &["Eigenvalues"],
            ),
            "metamer" => (
                &[
                    "target.png",
                    "final.png",
                    "difference.png",
                    "progress.gif",
                    "representation_error0.png",
                ],
                &["Loss", "Pixel values", "Representation error"],
            ),
            // Portilla-Simoncelli: a statistics vector, drawn as a line by index.
            "metamer_ctf" => (
                &["target.png", "final.png", "difference.png"],
                &["Loss", "Representation error", "elements in the model"],
            ),
            // store_progress = 2 over 4 iterations: records at iterations 0 and 2, drawn in
            // the representation space as plot_deviation_from_line.
            "geodesic" => (
                &["frame000.png", "frame004.png"],
                &[
                    "Loss (path energy)",
                    "Distance along representation line",
                    "Distance from representation line",
                    "pixel fade (initial, iteration 0)",
                    "geodesic (iteration 2)",
                    "at iterations 0, 2;",
                ],
            ),
            _ => (&[], &[]),
        };
        for f in files {
            assert!(
                dir.join(f).is_file(),
                "{} lacks {f}: {:?}\n{}\n{}",
                t.synth,
                std::fs::read_dir(&dir)
                    .map(|r| r.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
                std::fs::read_to_string(dir.join("index.html")).unwrap_or_default(),
                diagnose(&root, &out, t, &d, &o)
            );
        }
        let page = read(&dir.join("index.html"));
        for c in charts {
            assert!(
                page.contains(c),
                "{} page lacks the chart text {c:?}",
                t.synth
            );
        }
        assert_eq!(
            std::fs::read_dir(&dir)
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "svg"))
                .count(),
            0,
            "{}: charts are inlined, not files",
            t.synth
        );
        check_links(&dir.join("index.html"));
    }
    // plot_representation_error's data: model(metamer) − model(target) at the final
    // metamer. The gaussian model's is an image (1 × 16 × 16); its mean square is the
    // objective at the final metamer less the range penalty (≥ 0).
    for t in d.tasks.iter().filter(|t| t.synth.contains("metamer")) {
        let e = d
            .images
            .iter()
            .find(|i| i.task_id == t.task_id && i.role == "representation_error")
            .unwrap_or_else(|| panic!("{}: no representation_error row", t.synth));
        let px = e.pixels.as_ref().unwrap();
        assert_eq!(px.len(), (e.channels * e.height * e.width) as usize);
        assert!(px.iter().all(|v| v.is_finite()) && px.iter().any(|v| *v != 0.0));
        if t.synth == "metamer" {
            assert_eq!((e.channels, e.height, e.width), (1, 16, 16));
            let ms = px.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / px.len() as f64;
            let loss = t.final_loss.unwrap();
            assert!(
                ms <= loss * (1.0 + 1e-4) + 1e-9,
                "mean square {ms} > objective {loss}"
            );
        } else if t.synth == "metamer_ctf" {
            assert_eq!((e.channels, e.height), (1, 1));
        }
    }
    // The CTF loss curve marks its scale switches at the recorded iterations.
    let ctf = d.tasks.iter().find(|t| t.synth == "metamer_ctf").unwrap();
    let mut switches: Vec<(i64, String)> = Vec::new();
    let mut rows: Vec<_> = d
        .losses
        .iter()
        .filter(|l| l.task_id == ctf.task_id)
        .collect();
    rows.sort_by_key(|l| l.iteration);
    for l in rows {
        let s = l.scale.clone().unwrap();
        if switches.last().map(|x| &x.1) != Some(&s) {
            switches.push((l.iteration, s));
        }
    }
    assert!(
        switches.len() > 1,
        "the CTF task never switched scale: {switches:?}"
    );
    let ctf_page = read(&out.join("t").join(&ctf.task_id).join("index.html"));
    for (i, s) in &switches {
        assert!(
            ctf_page.contains(&format!("{s} from iteration {i}")),
            "{s}@{i}"
        );
    }
    // One MAD page with all four images.
    let mad_pages: Vec<PathBuf> = std::fs::read_dir(out.join("mad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    assert_eq!(mad_pages.len(), 1);
    assert_eq!(read(&mad_pages[0]).matches("final.png").count(), 4);
    for p in [
        out.join("index.html"),
        out.join("tasks.html"),
        out.join("tasks-2.html"),
        out.join("tasks-3.html"),
        mad_pages[0].clone(),
    ] {
        check_links(&p);
    }
    // The pages hold every task once, in order, and link to each other.
    let pages: Vec<String> = ["tasks.html", "tasks-2.html", "tasks-3.html"]
        .iter()
        .map(|p| read(&out.join(p)))
        .collect();
    for t in &d.tasks {
        let link = format!("t&#x2f;{}&#x2f;index.html", t.task_id);
        let link2 = format!("t/{}/index.html", t.task_id);
        assert_eq!(
            pages
                .iter()
                .map(|p| p.matches(&link).count() + p.matches(&link2).count())
                .sum::<usize>(),
            1,
            "task {} on the task pages",
            t.task_id
        );
    }
    assert!(
        pages[1].contains(&format!("Tasks 6–10 of {n}")),
        "{}",
        pages[1]
    );
    assert!(pages[2].contains(&format!("Tasks 11–{n} of {n}")));
    assert!(!out.join("tasks-4.html").exists());

    // Again: nothing new, nothing drawn; one page of the task table now (default 500
    // rows), the others removed. Then a new sweep: only its task is drawn.
    let o = report(&[&root]);
    assert!(
        stdout(&o).contains(&format!("0 pages drawn, {n} kept")),
        "{}",
        text(&o)
    );
    assert!(out.join("tasks.html").is_file() && !out.join("tasks-2.html").exists());
    // The MAD pages kept from the first run still find their charts and images.
    for e in std::fs::read_dir(out.join("mad")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "html") {
            check_links(&p);
        }
    }
    assert_code(
        &run(&sb.write("s9.toml", SIMPLE), &root, &["--workers", "1"]),
        0,
    );
    let o = report(&[&root, "--page-rows", "5"]);
    assert!(
        stdout(&o).contains(&format!("1 pages drawn, {n} kept")),
        "{}",
        text(&o)
    );
    assert_eq!(task_pages(&out).len(), n + 1);

    // Filters.
    let fo = sb.root("mad-only");
    let o = report(&[
        &root,
        "--out",
        &fo,
        "--where",
        "synth=mad",
        "--where",
        "minmax=max",
    ]);
    assert_code(&o, 0);
    assert_eq!(task_pages(Path::new(&fo)).len(), 2);
    assert_bad_input(
        &report(&[&root, "--out", &fo, "--where", "minmax=middle"]),
        &["minmax", "max, min"],
    );
    assert_bad_input(
        &report(&[&root, "--out", &fo, "--where", "colour=red"]),
        &["no task has an axis"],
    );
    assert_bad_input(&report(&[&root, "--where", "minmax"]), &["AXIS=VALUE"]);
    assert_bad_input(
        &report(&[&root, "--page-rows", "0"]),
        &["--page-rows", "at least 1"],
    );
    // A parameter that does not vary is still a filter's axis.
    let o = report(&[
        &root,
        "--out",
        &fo,
        "--where",
        "synth=geodesic",
        "--where",
        "n_steps=4",
    ]);
    assert_code(&o, 0);
    assert_eq!(task_pages(Path::new(&fo)).len(), 1);

    browser_check(&out, &d);
}

/// The `representation_error` rows a metamer run writes (and its page draws as
/// plot_representation_error) equal plenoptic 1.1.0's representation error for the same
/// synthesis (`scripts/gen_representation_error.py`: image, model, seed, iterations,
/// plenoptic's default optimizer), within the fixture's tolerance (allclose with atol and
/// rtol, and the mean absolute difference at most `mean_abs_max`). Two cases: one output
/// channel (24 × 24), and two channels of different widths (16 × 16: the channel order).
#[test]
fn the_representation_error_is_plenoptics() {
    let data =
        synthsweep_testkit::workspace_root().join("crates/cli/tests/data/representation_error");
    let expected = synthsweep_testkit::read_json(&data.join("expected.json"));
    let sb = Sandbox::new();
    let root = sb.root("out");
    let cases = expected["cases"].as_array().unwrap();
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let spec = format!(
            "name = \"re-{id}\"\nsynth = \"metamer\"\n[params]\nimage = {:?}\nmodel = {}\nseed = {}\nmax_iter = {}\noptimizer = {{ name = \"adam\", lr = 0.01 }}\n",
            data.join(case["image"].as_str().unwrap()).display().to_string(),
            toml_inline(&case["model"]),
            case["seed"],
            case["max_iter"],
        );
        assert_code(&run(&sb.write(&format!("{id}.toml"), &spec), &root, &[]), 0);
    }
    let d = read_local(&root);
    assert_code(&report(&[&root]), 0);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let t = d
            .tasks
            .iter()
            .find(|t| t.sweep == format!("re-{id}"))
            .unwrap();
        let e = d
            .images
            .iter()
            .find(|i| i.task_id == t.task_id && i.role == "representation_error")
            .unwrap_or_else(|| panic!("{id}: no representation_error row"));
        let shape: Vec<i64> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(
            vec![
                i64::from(e.channels),
                i64::from(e.height),
                i64::from(e.width)
            ],
            shape,
            "{id}: shape"
        );
        let want: Vec<f64> = case["representation_error"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let got = e.pixels.as_ref().unwrap();
        assert_eq!(got.len(), want.len());
        let tol = &case["tolerance"];
        let (atol, rtol, mean_max) = (
            tol["atol"].as_f64().unwrap(),
            tol["rtol"].as_f64().unwrap(),
            tol["mean_abs_max"].as_f64().unwrap(),
        );
        let mut sum = 0.0;
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let diff = (f64::from(*g) - w).abs();
            assert!(
                diff <= atol + rtol * w.abs(),
                "{id}: element {k}: {g} vs plenoptic's {w} (atol {atol}, rtol {rtol})"
            );
            sum += diff;
        }
        let mean = sum / want.len() as f64;
        assert!(
            mean <= mean_max,
            "{id}: mean |difference| {mean} > {mean_max}"
        );
        println!("{id}: mean |difference| from plenoptic {mean:.3e}");
        // Its page draws it, one image per channel.
        let page = sb.path(&format!("out/_report/t/{}", t.task_id));
        for c in 0..shape[0] {
            assert!(
                page.join(format!("representation_error{c}.png")).is_file(),
                "{id}: channel {c}"
            );
        }
        assert!(read(&page.join("index.html")).contains("Representation error"));
    }
}

/// A JSON object as a TOML inline table (numbers, strings and arrays of numbers).
fn toml_inline(v: &serde_json::Value) -> String {
    let fields: Vec<String> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| format!("{k} = {x}"))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

/// Loads the index and one page per kind in headless Chromium. Skipped, saying so, when
/// Chromium is not installed (scripts/test.sh installs Debian's `chromium` as root).
fn browser_check(out: &Path, d: &synthsweep_store::Dataset) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|b| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!("SKIPPED browser check: no chromium installed (apt-get install chromium)");
        return;
    };
    let mut pages = vec![
        out.join("index.html"),
        out.join("tasks.html"),
        out.join("tasks-3.html"),
        out.join("search.html"),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for t in &d.tasks {
        if kinds.insert(t.synth.clone()) {
            pages.push(out.join("t").join(&t.task_id).join("index.html"));
        }
    }
    // search.html over every page of the table: the MAD tasks by descending duration (the
    // first row shows the longest), and everything.
    let mad_ids: Vec<&synthsweep_store::TaskRow> =
        d.tasks.iter().filter(|t| t.synth == "mad").collect();
    let slowest = mad_ids
        .iter()
        .map(|t| t.duration_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let duration_col = {
        let html = read(&out.join("search.html"));
        let head = &html[html.find("<thead>").unwrap()..html.find("</thead>").unwrap()];
        // Numeric columns are marked for the scripts' numeric sort (minijinja writes a bare
        // boolean as `True`, which the scripts' test never matched: every column sorted as text).
        assert!(
            head.contains(r#"<th data-num="true">seconds</th>"#)
                && head.contains(r#"<th data-num="false">task</th>"#),
            "{head}"
        );
        head.split("<th ")
            .skip(1)
            .position(|th| th.contains(">seconds<"))
            .unwrap()
    };
    // Every task of the report (`d` and the simple_metamer committed after it).
    let total = task_pages(out).len();
    let searches = [
        (
            format!("?q=mad&sort={duration_col}&dir=desc"),
            format!("{} matching task(s) of {total}", mad_ids.len()),
            Some(format!("{slowest:.3}")),
        ),
        (
            String::new(),
            format!("{total} matching task(s) of {total}"),
            None,
        ),
    ];
    let profile = tempfile::tempdir().unwrap();
    let shots = tempfile::tempdir().unwrap();
    // One headless Chromium run with this test's profile: `args`, then `target` as a file URL.
    let headless = |args: &[&str], target: &Path| {
        std::process::Command::new(chromium)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
            .args(args)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("file://{}", target.display()))
            .output()
            .expect("chromium")
    };
    for (i, (search, want, first)) in searches.iter().enumerate() {
        let url = format!("file://{}{search}", out.join("search.html").display());
        let checker = shots.path().join(format!("search{i}.html"));
        std::fs::write(
            &checker,
            format!(
                r#"<!doctype html><html><body><iframe id="f" src="{url}" width="1200" height="900"></iframe>
<pre id="r">pending</pre><script>
function check() {{
  var doc = document.getElementById('f').contentDocument, n = doc && doc.getElementById('n');
  if (!n || !/shown/.test(n.textContent)) return setTimeout(check, 50);
  var first = doc.querySelector('#st tbody tr');
  document.getElementById('r').textContent = 'RESULT ' + n.textContent + ' FIRST ' + (first ? first.cells[{duration_col}].textContent : '-') + ' END';
}}
check();
</script></body></html>"#
            ),
        )
        .unwrap();
        let o = headless(
            &[
                "--allow-file-access-from-files",
                "--virtual-time-budget=5000",
                "--dump-dom",
            ],
            &checker,
        );
        let dom = String::from_utf8_lossy(&o.stdout);
        assert!(
            dom.contains(&format!("RESULT {want}")),
            "search{search}: want {want:?}: {dom}"
        );
        if let Some(secs) = first {
            assert!(
                dom.contains(&format!("FIRST {secs} END")),
                "search{search}: want {secs} first: {dom}"
            );
        }
    }
    for (i, page) in pages.iter().enumerate() {
        // A checker page loads the report's page in an iframe and writes what it found into
        // its own DOM: images that did not load, and whether the page's scripts ran.
        let url = format!("file://{}", page.display());
        let checker = shots.path().join(format!("check{i}.html"));
        std::fs::write(
            &checker,
            format!(
                r#"<!doctype html><html><body><iframe id="f" src="{url}" width="1200" height="900"></iframe>
<pre id="r">pending</pre><script>
document.getElementById('f').addEventListener('load', function() {{
  var doc = this.contentDocument, bad = [];
  var imgs = doc.images;
  for (var i = 0; i < imgs.length; i++) if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad.push(imgs[i].getAttribute('src'));
  var n = doc.getElementById('n');
  document.getElementById('r').textContent = 'IMAGES ' + imgs.length + ' BROKEN [' + bad.join(',') + '] COUNTER ' + (n ? n.textContent : '-');
}});
</script></body></html>"#
            ),
        )
        .unwrap();
        let o = headless(
            &[
                "--allow-file-access-from-files",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=5000",
                "--dump-dom",
            ],
            &checker,
        );
        let dom = String::from_utf8_lossy(&o.stdout);
        let log = String::from_utf8_lossy(&o.stderr);
        assert!(
            dom.contains("IMAGES "),
            "{}: checker did not run\n{log}",
            page.display()
        );
        assert!(dom.contains("BROKEN []"), "{}: {dom}", page.display());
        if page
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("tasks"))
        {
            assert!(
                dom.contains("tasks shown"),
                "tasks.html script did not run: {dom}"
            );
        }
        for line in log.lines().filter(|l| l.contains("CONSOLE")) {
            assert!(
                !line.contains("Uncaught") && !line.contains("ERROR"),
                "{}: console: {line}",
                page.display()
            );
        }
        // A screenshot of the page itself, not blank.
        let shot = shots.path().join(format!("shot{i}.png"));
        let o = headless(
            &[
                "--hide-scrollbars",
                "--window-size=1200,1400",
                &format!("--screenshot={}", shot.display()),
            ],
            page,
        );
        let img = image::open(&shot)
            .unwrap_or_else(|e| panic!("{}: no screenshot ({e}): {}", page.display(), text(&o)))
            .to_luma8();
        let dark = img.pixels().filter(|p| p.0[0] < 128).count();
        assert!(
            dark > 2000,
            "{}: screenshot nearly blank ({dark} dark pixels)",
            page.display()
        );
        if let Ok(dir) = std::env::var("SYNTHSWEEP_REPORT_SHOTS") {
            std::fs::copy(&shot, Path::new(&dir).join(format!("shot{i}.png"))).unwrap();
        }
    }
}

#[test]
fn a_folder_that_is_not_a_root_an_empty_root_and_damaged_files() {
    let sb = Sandbox::new().with_images(16);
    // Not a root: the spec's folder.
    assert_bad_input(&report(&[&sb.root("images")]), &["not an output root"]);
    assert_bad_input(&report(&[&sb.root("nowhere")]), &["no such output root"]);
    // A root being written: a run recorded, nothing committed yet.
    let empty = sb.root("empty");
    let store =
        synthsweep_store::Store::open(&synthsweep_store::OutputRoot::parse(&empty).unwrap())
            .unwrap();
    store
        .write_run(&synthsweep_store::RunInfo::new("r1", "name = 'x'"))
        .unwrap();
    let o = report(&[&empty]);
    assert_bad_input(&o, &["no task committed yet"]);
    assert!(!sb.path("empty/_report").exists(), "nothing written");
    // Damaged files: a data file and a tasks file overwritten with garbage.
    let root = sb.root("out");
    assert_code(&run(&sb.write("m.toml", METAMER), &root, &[]), 0);
    assert_code(&run(&sb.write("s.toml", SCORE), &root, &[]), 0);
    // No scratch space (TMPDIR missing): a storage failure naming TMPDIR, nothing written.
    let o = bin()
        .args(["report", &root])
        .env("TMPDIR", sb.path("no-such-tmp"))
        .output()
        .unwrap();
    assert_code(&o, 74);
    assert!(stderr(&o).contains("(TMPDIR)"), "{}", text(&o));
    assert!(!sb.path("out/_report").exists(), "nothing written");
    let batches = |table: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(sb.path(&format!("out/{table}")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    // --out: a folder of the user's (files, no report) or of the root's tables: exit 2,
    // nothing written or removed.
    let mine = sb.write("u/mad/paper.tex", "x");
    assert_bad_input(
        &report(&[&root, "--out", &sb.root("u")]),
        &["--out", "no report written by synthsweep"],
    );
    assert!(mine.is_file() && !sb.path("u/index.html").exists());
    assert_bad_input(
        &report(&[&root, "--out", &sb.root("out/tasks")]),
        &["out/tasks", "table folder tasks/"],
    );
    assert!(!sb.path("out/tasks/index.html").exists());
    let losses = batches("losses");
    std::fs::write(&losses[0], b"not parquet").unwrap();
    let o = report(&[&root]);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("warning: data files of batch"),
        "{}",
        text(&o)
    );
    let index = read(&sb.path("out/_report/index.html"));
    assert!(index.contains("warning: data files of batch"));
    // The damaged batch is drawn again next time (it was not recorded as drawn).
    let tasks = batches("tasks");
    std::fs::write(&tasks[tasks.len() - 1], b"not parquet").unwrap();
    let o = report(&[&root]);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("unreadable, its tasks are left out"),
        "{}",
        text(&o)
    );
    // --open: an opener that fails is a warning and exit 1, the report written; one that
    // succeeds is given the index.
    let bin_dir = sb.path("opener");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let opener = bin_dir.join(if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    });
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let open = |script: &str| {
        std::fs::write(&opener, script).unwrap();
        std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        bin()
            .args(["report", &root, "--open"])
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let o = open("#!/bin/sh\nexit 3\n");
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("warning: --open: xdg-open failed")
            || stderr(&o).contains("warning: --open: open failed"),
        "{}",
        text(&o)
    );
    assert!(stdout(&o).contains("_report/index.html"), "{}", text(&o));
    let seen = sb.path("opener/seen");
    let o = open(&format!("#!/bin/sh\necho \"$1\" > {}\n", seen.display()));
    assert_code(&o, 0);
    assert!(read(&seen).trim_end().ends_with("_report/index.html"));
    // No opener at all (an empty PATH but for the opener's folder, without it).
    std::fs::remove_file(&opener).unwrap();
    let o = bin()
        .args(["report", &root, "--open"])
        .env("PATH", &bin_dir)
        .output()
        .unwrap();
    assert_code(&o, 1);
    assert!(stderr(&o).contains("cannot start"), "{}", text(&o));
}

/// examples/mad_analysis.py (polars + matplotlib) on the root: one row per MAD task with the
/// values of the tables, and a PNG figure. Skipped, saying so, without matplotlib.
fn python_analysis_example(root: &str, d: &synthsweep_store::Dataset) {
    let py = venv_python();
    let has_mpl = std::process::Command::new(&py)
        .args(["-c", "import matplotlib"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_mpl {
        println!("SKIPPED examples/mad_analysis.py: no matplotlib in .venv (scripts/setup.sh installs it)");
        return;
    }
    let png = Path::new(root).join("mad.png");
    let csv = Path::new(root).join("mad.csv");
    let o = std::process::Command::new(&py)
        .arg(workspace_root().join("examples/mad_analysis.py"))
        .args([root, "--out", png.to_str().unwrap()])
        .args(["--csv", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (id, fin, first) = (
        col("task_id"),
        col("optimized_final"),
        col("optimized_initial"),
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mad: Vec<_> = d.tasks.iter().filter(|t| t.synth == "mad").collect();
    assert_eq!(rows.len(), mad.len(), "{csv}");
    // The first and last optimized metric values are the tables' own.
    for r in &rows {
        let mut l: Vec<_> = d.losses.iter().filter(|l| l.task_id == r[id]).collect();
        l.sort_by_key(|l| l.iteration);
        let value = |s: &str| s.parse::<f64>().unwrap();
        assert_eq!(value(r[first]), l[0].optimized_metric_loss.unwrap());
        assert_eq!(
            value(r[fin]),
            l.last().unwrap().optimized_metric_loss.unwrap()
        );
    }
    let img = image::open(&png).expect("the example's figure is a PNG");
    assert!(img.width() > 300 && img.height() > 200);
}

/// An S3 root (the moto server on loopback): the same pages as a local root, written to a
/// local folder, and incremental there too.
#[test]
fn a_report_of_an_s3_root_is_written_locally_and_incrementally() {
    let sb = Sandbox::new().with_images(16);
    let spec = sb.write("mad.toml", MAD);
    shared_moto().create_bucket("report");
    let root = "s3://report/studies/mad";
    let o = synthsweep_s3(&["run", spec.to_str().unwrap(), "--out", root]);
    assert_code(&o, 0);
    let out = sb.path("s3-report");
    let o = synthsweep_s3(&["report", root, "--out", out.to_str().unwrap()]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("4 pages drawn, 0 kept"), "{}", text(&o));
    let d = read_s3(root);
    assert_eq!(task_pages(&out).len(), d.tasks.len());
    let index = read(&out.join("index.html"));
    assert!(index.contains("MAD competitions"), "{index}");
    check_links(&out.join("index.html"));
    for t in &d.tasks {
        let dir = out.join("t").join(&t.task_id);
        for f in ["target.png", "final.png", "losses.json"] {
            assert!(dir.join(f).is_file(), "{} lacks {f}", dir.display());
        }
        assert!(read(&dir.join("index.html")).contains("<svg"));
    }
    let o = synthsweep_s3(&["report", root, "--out", out.to_str().unwrap()]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("0 pages drawn, 4 kept"), "{}", text(&o));
}
