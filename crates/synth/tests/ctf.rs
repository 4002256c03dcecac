//! MetamerCTF's schedule on a small three-scale model: switching every `ctf_iters_to_check`
//! iterations when the criterion is None, `together` vs `separate` scale sets, the
//! learning-rate reset at a switch, and stopping only once at `all`.
use synthsweep_testkit_tch::synth as common;

use common::toy::{test_image, ToyPyramid};
use std::ops::ControlFlow;
use synthsweep_models::Model;
use synthsweep_synth::scheduler::{ReduceLrOnPlateauOptions, SchedulerConfig};
use synthsweep_synth::synthesis::penalize_range;
use synthsweep_synth::{CoarseToFine, CtfSynthesizeOptions, MetamerCtf, MetamerOptions};
use tch::Kind;

fn timing(pairs: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    pairs
        .iter()
        .map(|(s, t)| (s.to_string(), t.to_vec()))
        .collect()
}

fn every(c: usize, max_iter: usize) -> CtfSynthesizeOptions {
    CtfSynthesizeOptions {
        max_iter,
        change_scale_criterion: None,
        ctf_iters_to_check: c,
        ..Default::default()
    }
}

#[test]
fn without_criterion_scales_switch_every_ctf_iters_to_check() {
    tch::set_num_threads(1);
    let img = test_image(16);
    let toy = ToyPyramid;
    let options = MetamerOptions {
        seed: Some(1),
        ..Default::default()
    };
    let mut t = MetamerCtf::new(&img, &toy, options.clone(), CoarseToFine::Together).unwrap();
    assert_eq!(t.scales(), ["coarse", "mid", "all"]);
    t.synthesize(&every(4, 12)).unwrap();
    assert_eq!(
        t.scales_timing(),
        timing(&[("coarse", &[0, 3]), ("mid", &[4, 7]), ("all", &[8])])
    );
    assert_eq!(t.scales_finished(), ["coarse", "mid"]);
    assert_eq!(t.scales(), ["all"]);

    let mut s = MetamerCtf::new(&img, &toy, options, CoarseToFine::Separate).unwrap();
    assert_eq!(s.scales(), ["coarse", "mid", "fine", "all"]);
    let x0 = s.metamer().copy();
    s.synthesize(&every(3, 10)).unwrap();
    assert_eq!(
        s.scales_timing(),
        timing(&[
            ("coarse", &[0, 2]),
            ("mid", &[3, 5]),
            ("fine", &[6, 8]),
            ("all", &[9])
        ])
    );
    assert_eq!(s.scales_loss().len(), 10);
    // The first loss is restricted to the coarse scale; `losses` holds the full-model one.
    let coarse = ["coarse".to_string()];
    let restricted = (toy.forward_scales(&x0, &coarse).unwrap()
        - toy.forward_scales(&img, &coarse).unwrap())
    .square()
    .mean(None::<Kind>)
        + penalize_range(&x0, (0.0, 1.0)) * 0.1;
    assert_eq!(s.scales_loss()[0], restricted.double_value(&[]));
    let full = (toy.forward(&x0) - toy.forward(&img))
        .square()
        .mean(None::<Kind>)
        + penalize_range(&x0, (0.0, 1.0)) * 0.1;
    assert_eq!(s.losses()[0], full.double_value(&[]));
    // At `all` the two coincide.
    assert_eq!(s.scales_loss()[9], s.losses()[9]);
}

#[test]
fn a_switch_resets_the_learning_rate() {
    tch::set_num_threads(1);
    let img = test_image(16);
    let toy = ToyPyramid;
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
    // Never "better" (relative threshold 1; even the first step, as inf·0 is NaN in torch
    // too), so the lr halves on every step.
    let halve = ReduceLrOnPlateauOptions {
        patience: 0,
        factor: 0.5,
        threshold: 1.0,
        ..Default::default()
    };
    let opts = CtfSynthesizeOptions {
        scheduler: Some(SchedulerConfig::ReduceLrOnPlateau(halve)),
        ..every(4, 6)
    };
    let mut lrs = Vec::new();
    m.synthesize_with(&opts, &mut |p| {
        lrs.push(p.lr);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(lrs, [0.005, 0.0025, 0.00125, 0.000625, 0.005, 0.0025]);
}

#[test]
fn stops_only_at_all_after_enough_iterations() {
    tch::set_num_threads(1);
    let img = test_image(16);
    let toy = ToyPyramid;
    let mut m = MetamerCtf::new(
        &img,
        &toy,
        MetamerOptions {
            seed: Some(4),
            ..Default::default()
        },
        CoarseToFine::Together,
    )
    .unwrap();
    // A huge stop criterion: the loss rule holds as soon as there are more than 2 losses.
    let opts = CtfSynthesizeOptions {
        stop_criterion: 1e9,
        stop_iters_to_check: 2,
        change_scale_criterion: None,
        ctf_iters_to_check: 3,
        max_iter: 100,
        ..Default::default()
    };
    let out = m.synthesize(&opts).unwrap();
    assert!(out.converged);
    // `all` starts at 6; the stop needs i - 6 > 3.
    assert_eq!(out.iterations, 11);
}
