//! A target whose representation already holds NaN fails before any iteration, saying so and
//! naming the statistics, for every method with a target: metamer, metamer_ctf,
//! simple_metamer, eigendistortion, geodesic (either end) and MAD (a metric that is NaN at the
//! start). The case: Portilla-Simoncelli (2 scales) on 64x64 vertical bars 16 px wide, whose
//! bands have zero variance; which statistics are NaN, and how many values of each, come from
//! plenoptic 1.1.0 (scripts/gen_nan_target.py, tests/data/nan_target.json).
use synthsweep_testkit_tch::synth as common;

use common::toy::test_image;
use serde_json::{json, Value};
use synthsweep_models::{build_metric, build_model, Metric, Model};
use synthsweep_synth::{
    CoarseToFine, Eigendistortion, Geodesic, GeodesicOptions, MadCompetition, MadOptions, Metamer,
    MetamerCtf, MetamerOptions, MinMax, SimpleMetamer, SynthError,
};
use tch::{Device, Kind, Tensor};

fn bars() -> Tensor {
    let on = (Tensor::arange(64, (Kind::Int64, Device::Cpu)) / 16)
        .remainder(2)
        .eq(0);
    on.to_kind(Kind::Float)
        .view([1, 1, 1, 64])
        .expand([1, 1, 64, 64], false)
        .contiguous()
}

/// `mean((m(a) - m(b))²)` per batch element, shape (N, 1).
struct StatsDistance(Box<dyn Model>);

impl Metric for StatsDistance {
    fn name(&self) -> &str {
        "stats_distance"
    }
    fn forward(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let d = (self.0.forward(a) - self.0.forward(b)).square();
        d.flatten(1, -1)
            .mean_dim([1i64].as_slice(), true, None::<Kind>)
    }
    fn to(&mut self, _: Device, _: Kind) {}
}

fn expected() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nan_target.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The error is NonFiniteTarget, says what holds NaN, and names exactly plenoptic's NaN
/// statistics with their counts.
#[track_caller]
fn assert_names_the_statistics<T>(r: Result<T, SynthError>, what: &str) {
    let Err(e) = r else {
        panic!("expected an error for {what}")
    };
    assert!(matches!(e, SynthError::NonFiniteTarget { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "`portilla_simoncelli`'s representation of {what} contains NaN before any iteration"
        )),
        "{msg}"
    );
    assert!(msg.contains("no learning rate"), "{msg}");
    assert!(!msg.contains("diverged"), "{msg}");
    let want = expected()["nan_statistics"].as_object().unwrap().clone();
    let SynthError::NonFiniteTarget { detail, .. } = e else {
        unreachable!()
    };
    let named: Vec<(String, u64)> = detail
        .trim_start_matches("in the statistics ")
        .split("), ")
        .map(|s| {
            let (name, count) = s.split_once(" (").unwrap();
            (
                name.to_string(),
                count.split(' ').next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = want
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let sorted = |mut v: Vec<(String, u64)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(named), sorted(want), "{detail}");
}

#[test]
fn every_method_with_a_target_says_its_representation_holds_nan() {
    tch::set_num_threads(1);
    let ps = build_model(&json!({"name": "portilla_simoncelli", "n_scales": 2})).unwrap();
    let ps: &dyn Model = ps.as_ref();
    let target = bars();
    let smooth = test_image(64);
    // The statistics of a smooth image are finite: the check lets it through.
    assert!(Metamer::new(&smooth, ps, MetamerOptions::default()).is_ok());

    assert_names_the_statistics(
        Metamer::new(&target, ps, MetamerOptions::default()),
        "the target image",
    );
    assert_names_the_statistics(
        MetamerCtf::new(
            &target,
            ps,
            MetamerOptions::default(),
            CoarseToFine::Together,
        ),
        "the target image",
    );
    assert_names_the_statistics(SimpleMetamer::new(&target, ps, Some(0)), "the target image");
    assert_names_the_statistics(Eigendistortion::new(&target, ps), "the image");
    let options = GeodesicOptions {
        n_steps: 3,
        ..Default::default()
    };
    assert_names_the_statistics(
        Geodesic::new(&smooth, &target, ps, options.clone()),
        "image_b",
    );
    assert_names_the_statistics(Geodesic::new(&target, &smooth, ps, options), "image_a");

    // MAD has metrics, not a model: a distance between the images' statistics (plenoptic's
    // model_metric_factory without its 1e-10, which MAD's metric check refuses) is NaN at the
    // start.
    let distance =
        StatsDistance(build_model(&json!({"name": "portilla_simoncelli", "n_scales": 2})).unwrap());
    let mse = build_metric(&json!({"name": "mse"})).unwrap();
    let options = MadOptions {
        seed: Some(0),
        ..Default::default()
    };
    for (optimized, reference, role) in [
        (&distance as &dyn Metric, mse.as_ref(), "optimized_metric"),
        (mse.as_ref(), &distance as &dyn Metric, "reference_metric"),
    ] {
        let e = MadCompetition::new(&target, optimized, reference, MinMax::Min, options.clone())
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SynthError::NonFiniteTarget { .. }), "{msg}");
        assert!(
            msg.contains(&format!(
                "{role} `stats_distance` between the image and the initial image contains NaN"
            )),
            "{msg}"
        );
    }
}
