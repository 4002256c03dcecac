//! Portilla-Simoncelli where the coarsest reconstructed lowpass is odd in width: synthsweep
//! keeps the true circular autocorrelation, where plenoptic's (`irfft2` without the output
//! size) drops a column. Against plenoptic 1.1.0 (scripts/gen_ps_odd.py, tests/data/ps_odd):
//! every size matches plenoptic with the true autocorrelation; sizes whose coarsest width is
//! even match plenoptic as it is; the odd ones differ from it exactly in the statistics the
//! warning and the README name, and the warning is logged once per size, only for those.
//! Where the coarsest width equals spatial_corr_width (36x36, 40x36: 9), plenoptic fails
//! (`plenoptic_error`): synthsweep computes the true values and its warning says plenoptic
//! has none to compare with.
use synthsweep_testkit_tch::models as common;

use common::{allclose, capture_logs};
use serde_json::json;
use std::path::{Path, PathBuf};
use synthsweep_models::build_model;
use synthsweep_models::image_io::load_image;
use synthsweep_models::portilla_simoncelli::PortillaSimoncelli;
use tch::Kind;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ps_odd")
}

#[test]
fn odd_coarsest_widths_keep_the_true_autocorrelation_and_say_so() {
    tch::set_num_threads(1);
    let (meta, arrays) = common::expected_data(&data_dir());
    let img = load_image(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps/images/einstein_64.pgm"),
    )
    .unwrap();
    let named = [
        "auto_correlation_reconstructed",
        "std_reconstructed",
        "skew_reconstructed",
        "kurtosis_reconstructed",
    ];
    let mut failures = Vec::new();
    for (size, entry) in meta["sizes"].as_object().unwrap() {
        let (h, w) = size.split_once('x').unwrap();
        let (h, w): (i64, i64) = (h.parse().unwrap(), w.parse().unwrap());
        let x = img.narrow(2, 0, h).narrow(3, 0, w);
        let model = build_model(&json!({"name": "portilla_simoncelli", "n_scales": 2})).unwrap();
        let (got, logs) = capture_logs(|| {
            let first = tch::no_grad(|| model.forward(&x));
            // Again, as every iteration of a synthesis calls it: no second warning.
            let again = tch::no_grad(|| model.forward(&x));
            assert!(first.equal(&again));
            first
        });
        let odd = (w / 4) % 2 == 1;
        let warned = logs
            .matches(&format!("portilla_simoncelli on {h}x{w} images"))
            .count();
        assert_eq!(warned, usize::from(odd), "{size}: {logs}");
        let plenoptic_fails = entry.get("plenoptic_error").is_some();
        assert_eq!(
            logs.contains("plenoptic fails on this size"),
            plenoptic_fails,
            "{size}: {logs}"
        );
        if odd && !plenoptic_fails {
            for stat in named {
                assert!(
                    logs.contains(stat),
                    "{size}: the warning names {stat}: {logs}"
                );
            }
        }
        if let Err(e) = allclose(&got, &arrays[&format!("{size}__true")], 1e-5, 1e-4) {
            failures.push(format!("{size} vs the true autocorrelation: {e}"));
        }
        if plenoptic_fails {
            assert!(odd, "{size}");
            continue;
        }
        let plenoptic = &arrays[&format!("{size}__plenoptic")];
        let differing = entry["differing"].as_object().unwrap();
        if !odd {
            assert!(differing.is_empty(), "{size}: {differing:?}");
            if let Err(e) = allclose(&got, plenoptic, 1e-5, 1e-4) {
                failures.push(format!("{size} vs plenoptic: {e}"));
            }
            continue;
        }
        // Odd: plenoptic's values differ in the named statistics only (at the coarsest scale).
        let mut names: Vec<&str> = differing.keys().map(String::as_str).collect();
        names.sort();
        let mut want = named.to_vec();
        want.sort();
        assert_eq!(names, want, "{size}");
        let ps = PortillaSimoncelli::new(Some((h, w)), 2, 4, 9).unwrap();
        let far = (&got - plenoptic).abs().gt(1e-4).to_kind(Kind::Float);
        for (stat, part) in ps.convert_to_dict(&far).unwrap() {
            let n = part.eq(1.0).sum(Kind::Int64).int64_value(&[]);
            let want = differing.get(&stat).map_or(0, |v| v.as_i64().unwrap());
            if n != want {
                failures.push(format!(
                    "{size}: {stat} differs from plenoptic in {n} values, expected {want}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The warning is once per size *and* configuration: on one size (60x60, coarsest 15x15
/// with 2 scales), `spatial_corr_width` 15 (plenoptic fails: its autocorrelation is 14
/// wide) and then 9 (statistics differ) each warn, with their own message; the second
/// call of either does not. (A size of its own: the warnings are once per process.)
#[test]
fn the_odd_size_warning_is_once_per_configuration_not_per_size() {
    tch::set_num_threads(1);
    let img = load_image(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps/images/einstein_64.pgm"),
    )
    .unwrap();
    let x = img.narrow(2, 0, 60).narrow(3, 0, 60);
    let run = |width: i64| {
        let spec =
            json!({"name": "portilla_simoncelli", "n_scales": 2, "spatial_corr_width": width});
        let model = build_model(&spec).unwrap();
        capture_logs(|| {
            let _ = tch::no_grad(|| model.forward(&x));
            let _ = tch::no_grad(|| model.forward(&x));
        })
        .1
    };
    let wide = run(15);
    assert_eq!(
        wide.matches("portilla_simoncelli on 60x60 images").count(),
        1,
        "{wide}"
    );
    assert!(wide.contains("plenoptic fails on this size"), "{wide}");
    let narrow = run(9);
    assert_eq!(
        narrow
            .matches("portilla_simoncelli on 60x60 images")
            .count(),
        1,
        "{narrow}"
    );
    assert!(narrow.contains("kurtosis_reconstructed"), "{narrow}");
    assert!(run(15).is_empty() && run(9).is_empty());
}
