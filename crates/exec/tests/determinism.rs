//! A task's random draws do not depend on what other threads do at the same moment: models
//! built on one thread (which draw from libtorch's generator at construction, as plenoptic's
//! do) while another thread seeds and constructs syntheses leave the syntheses' initial
//! states exactly those of a single-threaded run.
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use synthsweep_models::build_model;
use synthsweep_synth::{MadCompetition, MadOptions, Metamer, MetamerOptions, MinMax};
use tch::{Device, Kind, Tensor};

fn image() -> Tensor {
    (Tensor::arange(256, (Kind::Float, Device::Cpu)).reshape([1, 1, 16, 16]) / 255.0)
        .sin()
        .abs()
}

/// Metamer and MAD initial images for seeds 0..4, built on this thread.
fn initial_states(model: &dyn synthsweep_models::Model) -> Vec<Tensor> {
    let img = image();
    let mse = synthsweep_models::build_metric(&json!({"name": "mse"})).unwrap();
    let mut out = Vec::new();
    for seed in 0..4 {
        let m = Metamer::new(
            &img,
            model,
            MetamerOptions {
                seed: Some(seed),
                ..Default::default()
            },
        )
        .unwrap();
        out.push(m.metamer().copy());
        let opts = MadOptions {
            seed: Some(seed),
            ..Default::default()
        };
        let mad = MadCompetition::new(&img, mse.as_ref(), mse.as_ref(), MinMax::Max, opts).unwrap();
        out.push(mad.mad_image().copy());
    }
    out
}

#[test]
fn model_construction_on_another_thread_does_not_shift_seeded_draws() {
    let spec = json!({"name": "luminance_gain_control", "kernel_size": 7});
    let model = build_model(&spec).unwrap();
    let reference = initial_states(model.as_ref());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let builder = s.spawn(|| {
            let mut built = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // Non-pretrained: draws its gain-control scalars at construction.
                let _ = build_model(&spec).unwrap();
                built += 1;
            }
            built
        });
        // Stops the builder even when an assertion below fails.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let guard = StopOnDrop(&stop);
        for round in 0..6 {
            let got = initial_states(model.as_ref());
            for (k, (g, r)) in got.iter().zip(&reference).enumerate() {
                assert!(
                    g.equal(r),
                    "round {round}, state {k}: draws shifted by a model built on another thread"
                );
            }
        }
        drop(guard);
        assert!(builder.join().unwrap() > 0);
    });
}
