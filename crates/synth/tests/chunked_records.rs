//! Records are read from the device once per chunk of iterations (`synthsweep_synth::host`):
//! stop iterations, records, snapshots and final images do not depend on the chunk, also
//! when a run stops, is cancelled or diverges in the middle of one and is then continued;
//! and each synthesis kind reads once per chunk.
//!
//! Reads per iteration before chunking (one `.item()` per value): metamer and geodesic 3,
//! metamer_ctf 4, MAD 5, simple_metamer 1, power eigendistortion 2 per phase.
use synthsweep_testkit_tch::synth as common;

use common::toy::{test_image, ToyPyramid};
use serde_json::json;
use std::ops::ControlFlow;
use synthsweep_models::{build_metric, build_model, Model};
use synthsweep_synth::eigendistortion::{Method, PowerIterations};
use synthsweep_synth::optim::SgdOptions;
use synthsweep_synth::{
    host_reads, set_record_chunk, CoarseToFine, CtfSynthesizeOptions, Eigendistortion, Geodesic,
    GeodesicOptions, GeodesicSynthesizeOptions, MadCompetition, MadOptions, Metamer, MetamerCtf,
    MetamerOptions, MinMax, OptimizerConfig, SimpleMetamer, StoreProgress, SynthesizeOptions,
};
use tch::Tensor;

fn gaussian() -> Box<dyn Model> {
    build_model(&json!({"name": "gaussian", "kernel_size": 5, "std": 1.5})).unwrap()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn same(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.size(), b.size(), "{what}: shapes");
    assert!(a.equal(b), "{what}: values differ");
}

/// Runs `f` with records read every `chunk` iterations on this thread.
fn with_chunk<T>(chunk: usize, f: impl FnOnce() -> T) -> T {
    set_record_chunk(chunk);
    let out = f();
    set_record_chunk(synthsweep_synth::host::DEFAULT_RECORD_CHUNK);
    out
}

/// What a metamer run leaves: (outcome or error, losses, ‖∇‖, ‖Δx‖, saved, image, callback
/// images), after a stop in mid-chunk, a cancel in mid-chunk and a continuation.
/// (outcome, losses, ‖∇‖, ‖Δx‖, saved snapshots, metamer) as bits and tensors.
type Snapshot = (String, Vec<u64>, Vec<u64>, Vec<u64>, Tensor, Tensor);

fn metamer_run(chunk: usize) -> Vec<Snapshot> {
    with_chunk(chunk, || {
        let model = gaussian();
        let img = test_image(16);
        let mut m = Metamer::new(
            &img,
            model.as_ref(),
            MetamerOptions {
                seed: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        let mut out = Vec::new();
        let mut record = |m: &Metamer, r: String| {
            out.push((
                r,
                bits(m.losses()),
                bits(m.gradient_norm()),
                bits(m.pixel_change_norm()),
                m.saved_metamer(),
                m.metamer().copy(),
            ))
        };
        // A criterion that always holds: the rule stops after stop_iters_to_check + 1 = 8.
        let stop = SynthesizeOptions {
            max_iter: 30,
            stop_criterion: 1e9,
            stop_iters_to_check: 7,
            store_progress: StoreProgress::Every(3),
            ..Default::default()
        };
        let r = m.synthesize(&stop);
        record(&m, format!("{r:?}"));
        let go_on = SynthesizeOptions {
            max_iter: 12,
            store_progress: StoreProgress::Every(3),
            ..Default::default()
        };
        let mut images = Vec::new();
        let r = m.synthesize_with(&go_on, &mut |p| {
            images.push(p.image.copy());
            if p.iteration == 13 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        record(&m, format!("{r:?}"));
        let r = m.synthesize(&go_on);
        record(&m, format!("{r:?}"));
        out.push((
            String::new(),
            vec![],
            vec![],
            vec![],
            Tensor::stack(&images, 0),
            Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu)),
        ));
        out
    })
}

#[test]
fn metamer_records_and_stops_do_not_depend_on_the_chunk() {
    tch::set_num_threads(1);
    let one = metamer_run(1);
    assert_eq!(one[0].0, "Ok(Outcome { iterations: 8, converged: true })");
    assert_eq!(one[1].0, "Err(Cancelled { iteration: 13 })");
    assert_eq!(one[0].4.size()[0], 3, "snapshots at 0, 3, 6");
    for chunk in [5, 16] {
        let other = metamer_run(chunk);
        for (k, (a, b)) in one.iter().zip(&other).enumerate() {
            assert_eq!((&a.0, &a.1, &a.2, &a.3), (&b.0, &b.1, &b.2, &b.3), "{k}");
            same(
                &a.4,
                &b.4,
                &format!("chunk {chunk}, step {k}: saved / images"),
            );
            same(&a.5, &b.5, &format!("chunk {chunk}, step {k}: metamer"));
        }
    }
}

fn mad_run(chunk: usize) -> (String, Vec<u64>, Vec<u64>, Vec<u64>, Tensor) {
    with_chunk(chunk, || {
        let mse = build_metric(&json!({"name": "mse"})).unwrap();
        let ssim = build_metric(&json!({"name": "ssim_distance"})).unwrap();
        let img = test_image(16);
        let mut m = MadCompetition::new(
            &img,
            mse.as_ref(),
            ssim.as_ref(),
            MinMax::Max,
            MadOptions {
                seed: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        let opts = SynthesizeOptions {
            max_iter: 20,
            stop_criterion: 1e9,
            stop_iters_to_check: 6,
            ..Default::default()
        };
        let r = m.synthesize(&opts);
        let again = m.synthesize(&SynthesizeOptions {
            max_iter: 3,
            ..Default::default()
        });
        (
            format!("{r:?} {again:?}"),
            bits(m.losses()),
            bits(m.optimized_metric_loss()),
            bits(m.reference_metric_loss()),
            m.mad_image().copy(),
        )
    })
}

#[test]
fn mad_ctf_geodesic_simple_and_power_do_not_depend_on_the_chunk() {
    tch::set_num_threads(1);
    let a = mad_run(1);
    assert!(
        a.0.starts_with("Ok(Outcome { iterations: 7, converged: true })"),
        "{}",
        a.0
    );
    let b = mad_run(4);
    assert_eq!((&a.0, &a.1, &a.2, &a.3), (&b.0, &b.1, &b.2, &b.3));
    same(&a.4, &b.4, "MAD image");

    // Coarse to fine, scales switched by the data (a criterion) and by counts.
    let ctf = |chunk: usize, criterion: Option<f64>| {
        with_chunk(chunk, || {
            let toy = ToyPyramid;
            let img = test_image(16);
            let mut m = MetamerCtf::new(
                &img,
                &toy,
                MetamerOptions {
                    seed: Some(2),
                    ..Default::default()
                },
                CoarseToFine::Together,
            )
            .unwrap();
            let r = m.synthesize(&CtfSynthesizeOptions {
                max_iter: 25,
                change_scale_criterion: criterion,
                ctf_iters_to_check: 4,
                stop_criterion: 1e9,
                stop_iters_to_check: 3,
                ..Default::default()
            });
            (
                format!("{r:?} {:?}", m.scales_timing()),
                bits(m.losses()),
                bits(m.scales_loss()),
                m.metamer().copy(),
            )
        })
    };
    for criterion in [None, Some(1e9), Some(1e-3)] {
        let a = ctf(1, criterion);
        let b = ctf(5, criterion);
        assert_eq!((&a.0, &a.1, &a.2), (&b.0, &b.1, &b.2), "{criterion:?}");
        same(&a.3, &b.3, "CTF metamer");
    }

    // Geodesic: pixel-change rule, records at the start of every 2nd iteration.
    let geodesic = |chunk: usize| {
        with_chunk(chunk, || {
            let model = gaussian();
            let a = test_image(16);
            let b = a.flip([3]);
            let mut g = Geodesic::new(
                &a,
                &b,
                model.as_ref(),
                GeodesicOptions {
                    n_steps: 4,
                    seed: Some(0),
                    ..Default::default()
                },
            )
            .unwrap();
            let r = g.synthesize(&GeodesicSynthesizeOptions {
                max_iter: 20,
                stop_criterion: Some(1e9),
                stop_iters_to_check: 6,
                store_progress: StoreProgress::Every(2),
                ..Default::default()
            });
            (
                format!("{r:?}"),
                bits(g.losses()),
                bits(g.pixel_change_norm()),
                g.geodesic(),
                g.step_energy(),
                g.dev_from_line(),
            )
        })
    };
    let a = geodesic(1);
    assert_eq!(a.0, "Ok(Outcome { iterations: 7, converged: true })");
    let b = geodesic(5);
    assert_eq!((&a.0, &a.1, &a.2), (&b.0, &b.1, &b.2));
    same(&a.3, &b.3, "geodesic");
    same(&a.4, &b.4, "step energy");
    same(&a.5, &b.5, "deviation from the line");

    // SimpleMetamer diverging in mid-chunk (SGD with a huge step on the identity model).
    let simple = |chunk: usize| {
        with_chunk(chunk, || {
            let identity = build_model(&json!({"name": "identity"})).unwrap();
            let img = test_image(16);
            let mut m = SimpleMetamer::new(&img, identity.as_ref(), Some(0)).unwrap();
            m.synthesize(6, None).unwrap();
            let sgd = OptimizerConfig::Sgd(SgdOptions {
                lr: 1e30,
                ..Default::default()
            });
            let r = m.synthesize(10, Some(&sgd)).map(|_| ());
            (format!("{r:?}"), bits(m.losses()), m.metamer().copy())
        })
    };
    let a = simple(1);
    assert!(a.0.starts_with("Err(NonFinite { iteration: 7"), "{}", a.0);
    let b = simple(4);
    assert_eq!((&a.0, &a.1), (&b.0, &b.1));
    same(&a.2, &b.2, "simple metamer");

    // Power method stopping in mid-chunk.
    let power = |chunk: usize| {
        with_chunk(chunk, || {
            let model =
                build_model(&json!({"name": "gaussian", "kernel_size": 3, "std": 0.6})).unwrap();
            let img = test_image(8);
            let mut e = Eigendistortion::with_seed(&img, model.as_ref(), 0).unwrap();
            e.synthesize(Method::Power {
                k: 2,
                max_iter: 40,
                stop_criterion: 1e-2,
            })
            .unwrap();
            (
                e.iterations(),
                e.eigenvalues().unwrap().copy(),
                e.eigendistortions().unwrap().copy(),
            )
        })
    };
    let a = power(1);
    let it = a.0.unwrap();
    assert!(
        it.top < 40 && it.bottom < 40 && it.top % 8 != 0,
        "the rule stops the run in mid-chunk: {it:?}"
    );
    let b = power(8);
    assert_eq!(a.0, b.0);
    same(&a.1, &b.1, "eigenvalues");
    same(&a.2, &b.2, "eigendistortions");
}

/// Host reads during `f`.
fn reads(f: impl FnOnce()) -> u64 {
    let before = host_reads();
    f();
    host_reads() - before
}

#[test]
fn each_kind_reads_once_per_chunk() {
    let model = gaussian();
    let img = test_image(16);
    let no_stop = SynthesizeOptions {
        max_iter: 10,
        stop_criterion: 0.0,
        ..Default::default()
    };
    tch::set_num_threads(1);
    for (chunk, expected) in [(1, 10), (4, 3)] {
        set_record_chunk(chunk);
        let mut m = Metamer::new(&img, model.as_ref(), MetamerOptions::default()).unwrap();
        assert_eq!(
            reads(|| {
                m.synthesize(&no_stop).unwrap();
            }),
            expected
        );
        assert_eq!(m.losses().len(), 10);

        let mse = build_metric(&json!({"name": "mse"})).unwrap();
        let ssim = build_metric(&json!({"name": "ssim_distance"})).unwrap();
        let mut mad = MadCompetition::new(
            &img,
            mse.as_ref(),
            ssim.as_ref(),
            MinMax::Min,
            MadOptions::default(),
        )
        .unwrap();
        assert_eq!(
            reads(|| {
                mad.synthesize(&no_stop).unwrap();
            }),
            expected,
            "MAD"
        );

        let toy = ToyPyramid;
        let mut ctf = MetamerCtf::new(
            &img,
            &toy,
            MetamerOptions::default(),
            CoarseToFine::Together,
        )
        .unwrap();
        // Without a criterion the scale switches (at 4 and 8) are known ahead: each runs
        // alone, in a chunk of its own (chunks 0-3, 4, 5-7, 8, 9).
        let ctf_opts = CtfSynthesizeOptions {
            max_iter: 10,
            stop_criterion: 0.0,
            change_scale_criterion: None,
            ctf_iters_to_check: 4,
            ..Default::default()
        };
        let ctf_expected = if chunk == 1 { 10 } else { 5 };
        assert_eq!(
            reads(|| {
                ctf.synthesize(&ctf_opts).unwrap();
            }),
            ctf_expected,
            "CTF"
        );

        let b = img.flip([3]);
        let mut g = Geodesic::new(
            &img,
            &b,
            model.as_ref(),
            GeodesicOptions {
                n_steps: 4,
                ..Default::default()
            },
        )
        .unwrap();
        let g_opts = GeodesicSynthesizeOptions {
            max_iter: 10,
            stop_criterion: Some(0.0),
            ..Default::default()
        };
        assert_eq!(
            reads(|| {
                g.synthesize(&g_opts).unwrap();
            }),
            expected,
            "geodesic"
        );

        let mut s = SimpleMetamer::new(&img, model.as_ref(), Some(0)).unwrap();
        assert_eq!(
            reads(|| {
                s.synthesize(10, None).unwrap();
            }),
            expected,
            "simple_metamer"
        );

        // Power: the reads of 8 more iterations per phase (the set-up reads aside).
        let small =
            build_model(&json!({"name": "gaussian", "kernel_size": 3, "std": 0.6})).unwrap();
        let img8 = test_image(8);
        let power = |max_iter| {
            let mut e = Eigendistortion::with_seed(&img8, small.as_ref(), 0).unwrap();
            let n = reads(|| {
                e.synthesize(Method::Power {
                    k: 2,
                    max_iter,
                    stop_criterion: 0.0,
                })
                .unwrap()
            });
            let it = e.iterations().unwrap();
            assert_eq!(
                it,
                PowerIterations {
                    top: max_iter,
                    bottom: max_iter
                }
            );
            n
        };
        let per_phase = if chunk == 1 { 8 } else { 2 };
        assert_eq!(power(12) - power(4), 2 * per_phase, "power");
    }
    set_record_chunk(synthsweep_synth::host::DEFAULT_RECORD_CHUNK);
}
