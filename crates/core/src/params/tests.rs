//! Unit tests of the typed parameters: field tables, spellings of one value, checks.
use super::*;
use serde_json::json;

fn parse(kind: SynthKind, v: Value) -> Result<MethodParams, ParamError> {
    let m = v.as_object().unwrap().clone();
    let pairs: Vec<(String, Value)> = m.into_iter().collect();
    MethodParams::from_values(kind, pairs.iter().map(|(k, v)| (k.as_str(), v)))
}

fn canon(kind: SynthKind, v: Value) -> String {
    parse(kind, v).unwrap().canonical_json()
}

fn keys<T: Serialize>(t: &T) -> Vec<String> {
    let mut k: Vec<String> = serde_json::to_value(t)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn sorted(s: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = s.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn field_tables_are_the_structs_fields() {
    assert_eq!(keys(&MadOptions::default()), sorted(MAD));
    assert_eq!(keys(&MetamerOptions::default()), sorted(METAMER));
    assert_eq!(keys(&SynthesizeOptions::default()), sorted(SYNTHESIZE));
    assert_eq!(
        keys(&CtfSynthesizeOptions::default()),
        sorted(CTF_SYNTHESIZE)
    );
    assert_eq!(keys(&GeodesicOptions::default()), sorted(GEODESIC));
    assert_eq!(
        keys(&GeodesicSynthesizeOptions::default()),
        sorted(GEODESIC_SYNTHESIZE)
    );
    // Every kind's JSON holds every name it accepts (eigendistortion: those its method reads).
    for kind in SynthKind::ALL {
        let json = MethodParams::defaults(kind).to_json();
        let mut got: Vec<&str> = json.keys().map(String::as_str).collect();
        got.sort_unstable();
        let mut want = MethodParams::names(kind);
        if kind == SynthKind::Eigendistortion {
            want.retain(|k| !["p", "q"].contains(k));
        }
        assert_eq!(got, want, "{kind}");
        assert_eq!(
            parse(kind, json!({})).unwrap(),
            MethodParams::defaults(kind)
        );
    }
}

#[test]
fn two_spellings_of_one_value_are_one_value() {
    use SynthKind::*;
    let same = [
        (
            Metamer,
            json!({"store_progress": true}),
            json!({"store_progress": 1}),
        ),
        (Metamer, json!({"store_progress": false}), json!({})),
        (Metamer, json!({"store_progress": 0}), json!({})),
        (
            Mad,
            json!({"store_progress": 2.0}),
            json!({"store_progress": 2}),
        ),
        (
            Geodesic,
            json!({"store_progress": true}),
            json!({"store_progress": 1}),
        ),
        (
            Mad,
            json!({"optimizer": {"name": "adam", "lr": 1}}),
            json!({"optimizer": {"name": "adam", "lr": 1.0}}),
        ),
        (Mad, json!({"max_iter": 100}), json!({})),
        (Mad, json!({"max_iter": 100.0}), json!({})),
        (
            Mad,
            json!({"optimizer": {"name": "lbfgs", "max_iter": 20.0}}),
            json!({"optimizer": {"name": "lbfgs"}}),
        ),
        (
            Geodesic,
            json!({"n_steps": 10.0, "stop_criterion": 1}),
            json!({"stop_criterion": 1.0}),
        ),
        (
            Mad,
            json!({"initial_noise": 0.1, "range_penalty_lambda": 0.1}),
            json!({}),
        ),
        (
            Mad,
            json!({"allowed_range": [0, 1]}),
            json!({"allowed_range": [0.0, 1.0]}),
        ),
        (
            Mad,
            json!({"metric_tradeoff_lambda": 1}),
            json!({"metric_tradeoff_lambda": 1.0}),
        ),
        (Metamer, json!({"optimizer": {"name": "adam"}}), json!({})),
        (
            Metamer,
            json!({"optimizer": {"name": "adam", "lr": 0.01, "amsgrad": true}}),
            json!({}),
        ),
        (
            MetamerCtf,
            json!({"optimizer": {"name": "adam"}}),
            json!({}),
        ),
        (
            SimpleMetamer,
            json!({"optimizer": {"name": "adam", "lr": 0.01}}),
            json!({}),
        ),
        (
            Geodesic,
            json!({"optimizer": {"name": "adam", "lr": 0.001}}),
            json!({}),
        ),
        (
            Mad,
            json!({"optimizer": {"name": "lbfgs"}}),
            json!({"optimizer": {"name": "lbfgs", "max_eval": 25}}),
        ),
        (
            Metamer,
            json!({"loss_function": "l2"}),
            json!({"loss_function": "l2_norm"}),
        ),
        (
            Metamer,
            json!({"loss_function": "relative_mse"}),
            json!({"loss_function": "relative_sse"}),
        ),
        (
            Eigendistortion,
            json!({"method": "exact", "k": 3, "max_iter": 5}),
            json!({"method": "exact"}),
        ),
        (
            Eigendistortion,
            json!({"method": "power", "p": 9, "q": 9}),
            json!({}),
        ),
        (
            Eigendistortion,
            json!({"method": "randomized_svd", "max_iter": 3, "stop_criterion": 1}),
            json!({"method": "randomized_svd"}),
        ),
        (
            MetamerCtf,
            json!({"coarse_to_fine": "together", "change_scale_criterion": 0.01}),
            json!({}),
        ),
    ];
    for (kind, a, b) in same {
        assert_eq!(
            canon(kind, a.clone()),
            canon(kind, b.clone()),
            "{kind}: {a} vs {b}"
        );
        assert_eq!(
            parse(kind, a.clone()).unwrap(),
            parse(kind, b).unwrap(),
            "{kind}: {a}"
        );
    }
    // ... while different computations stay different.
    let differ = [
        (
            Metamer,
            json!({"store_progress": 2}),
            json!({"store_progress": 1}),
        ),
        (
            Geodesic,
            json!({"optimizer": {"name": "adam", "lr": 0.01}}),
            json!({}),
        ),
        (
            Eigendistortion,
            json!({"method": "power", "k": 2}),
            json!({}),
        ),
        (
            MetamerCtf,
            json!({"change_scale_criterion": 0.5}),
            json!({}),
        ),
    ];
    for (kind, a, b) in differ {
        assert_ne!(canon(kind, a.clone()), canon(kind, b), "{kind}: {a}");
    }
}

#[test]
fn canonical_text_is_pinned() {
    // If this fails, task ids change for every user: bump the task schema on purpose.
    assert_eq!(
        canon(SynthKind::Metamer, json!({"max_iter": 10})),
        r#"{"allowed_range":[0,1],"loss_function":"mse","max_iter":10,"optimizer":{"amsgrad":true,"betas":[0.9,0.999],"eps":1e-8,"lr":0.01,"name":"adam","weight_decay":0},"range_penalty_lambda":0.1,"scheduler":null,"stop_criterion":0.0001,"stop_iters_to_check":50,"store_progress":0}"#
    );
    assert_eq!(
        canon(
            SynthKind::Eigendistortion,
            json!({"method": "exact", "k": 4})
        ),
        r#"{"method":"exact"}"#
    );
    assert_eq!(canon(SynthKind::Score, json!({})), "{}");
}

#[test]
fn every_range_is_checked() {
    use SynthKind::*;
    let bad = [
        (
            Mad,
            json!({"optimizer": {"name": "adam", "lr": -0.01}}),
            "optimizer.lr",
            "positive",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "adam", "lr": 0}}),
            "optimizer.lr",
            "positive",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "sgd", "lr": 0.0}}),
            "optimizer.lr",
            "positive",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "lbfgs", "lr": 0.0}}),
            "optimizer.lr",
            "positive",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "adam", "betas": [0.9, 1.0]}}),
            "optimizer.betas[1]",
            "[0, 1)",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "adam", "eps": -1}}),
            "optimizer.eps",
            "non-negative",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "adam", "weight_decay": -1}}),
            "optimizer.weight_decay",
            "non-negative",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "sgd", "momentum": -0.5}}),
            "optimizer.momentum",
            "non-negative",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "sgd", "nesterov": true}}),
            "optimizer.nesterov",
            "momentum > 0",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "lbfgs", "max_iter": 0}}),
            "optimizer.max_iter",
            "at least 1",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "lbfgs", "max_eval": 0}}),
            "optimizer.max_eval",
            "at least 1",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "lbfgs", "history_size": 0}}),
            "optimizer.history_size",
            "at least 1",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "lbfgs", "tolerance_grad": -1}}),
            "optimizer.tolerance_grad",
            "non-negative",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "adam", "lrr": 0.1}}),
            "optimizer.lrr",
            "unknown field `lrr`",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "adamw"}}),
            "optimizer",
            "unknown variant `adamw`",
        ),
        (
            Mad,
            json!({"scheduler": {"name": "reduce_lr_on_plateau", "factor": 1.0}}),
            "scheduler.factor",
            "(0, 1)",
        ),
        (
            Mad,
            json!({"scheduler": {"name": "reduce_lr_on_plateau", "factor": 0.0}}),
            "scheduler.factor",
            "(0, 1)",
        ),
        (
            Mad,
            json!({"scheduler": {"name": "reduce_lr_on_plateau", "threshold": -1}}),
            "scheduler.threshold",
            "non-negative",
        ),
        (
            Mad,
            json!({"scheduler": {"name": "reduce_lr_on_plateau", "min_lr": -1}}),
            "scheduler.min_lr",
            "non-negative",
        ),
        (
            Mad,
            json!({"initial_noise": -0.1}),
            "initial_noise",
            "non-negative",
        ),
        (
            Mad,
            json!({"metric_tradeoff_lambda": 0}),
            "metric_tradeoff_lambda",
            "> 0",
        ),
        (
            Mad,
            json!({"metric_tradeoff_lambda": -2}),
            "metric_tradeoff_lambda",
            "> 0",
        ),
        (
            Mad,
            json!({"initial_noise": 0}),
            "metric_tradeoff_lambda",
            "initial_noise = 0",
        ),
        (
            Mad,
            json!({"range_penalty_lambda": -1}),
            "range_penalty_lambda",
            "non-negative",
        ),
        (
            Mad,
            json!({"allowed_range": [1, 0]}),
            "allowed_range",
            "strictly less",
        ),
        (
            Mad,
            json!({"allowed_range": [0.5, 0.5]}),
            "allowed_range",
            "strictly less",
        ),
        (
            Mad,
            json!({"allowed_range": [0, 1, 2]}),
            "allowed_range",
            "invalid length 3",
        ),
        (
            Mad,
            json!({"stop_iters_to_check": 0}),
            "stop_iters_to_check",
            "at least 1",
        ),
        (
            Mad,
            json!({"stop_criterion": -1e-4}),
            "stop_criterion",
            ">= 0",
        ),
        (Mad, json!({"max_iter": -1}), "max_iter", "invalid value"),
        (Mad, json!({"max_iter": 2.5}), "max_iter", "invalid type"),
        (
            Mad,
            json!({"store_progress": -1}),
            "store_progress",
            "non-negative integer",
        ),
        (
            Mad,
            json!({"store_progress": 1.5}),
            "store_progress",
            "non-negative integer",
        ),
        (
            Mad,
            json!({"store_progress": "yes"}),
            "store_progress",
            "non-negative integer",
        ),
        (
            Mad,
            json!({"max_iters": 3}),
            "max_iters",
            "unknown parameter for synth `mad`",
        ),
        // Type errors in a spec's words, at the field to blame.
        (
            Mad,
            json!({"max_iter": -5}),
            "max_iter",
            "integer `-5`, expected a whole number >= 0",
        ),
        (
            Mad,
            json!({"max_iter": 2.5}),
            "max_iter",
            "floating point `2.5`, expected a whole number >= 0",
        ),
        (
            Mad,
            json!({"optimizer": {"name": "adam", "lr": "fast"}}),
            "optimizer.lr",
            "string \"fast\", expected a number",
        ),
        (
            Metamer,
            json!({"optimizer": {"name": "sgd", "lr": 0.1, "nesterov": "yes"}}),
            "optimizer.nesterov",
            "expected a boolean",
        ),
        (
            Metamer,
            json!({"loss_function": "l1"}),
            "loss_function",
            "unknown variant `l1`",
        ),
        (
            Metamer,
            json!({"range_penalty_lambda": -0.1}),
            "range_penalty_lambda",
            "non-negative",
        ),
        (
            MetamerCtf,
            json!({"ctf_iters_to_check": 0}),
            "ctf_iters_to_check",
            "at least 1",
        ),
        (
            MetamerCtf,
            json!({"change_scale_criterion": -1}),
            "change_scale_criterion",
            "non-negative",
        ),
        (
            MetamerCtf,
            json!({"stop_criterion": 0.1, "change_scale_criterion": 0.01}),
            "stop_criterion",
            "strictly less than change_scale_criterion",
        ),
        (
            MetamerCtf,
            json!({"coarse_to_fine": "both"}),
            "coarse_to_fine",
            "unknown variant",
        ),
        (
            SimpleMetamer,
            json!({"optimizer": {"name": "sgd", "lr": -1}}),
            "optimizer.lr",
            "positive",
        ),
        (
            SimpleMetamer,
            json!({"store_progress": 1}),
            "store_progress",
            "unknown parameter",
        ),
        (Eigendistortion, json!({"k": 0}), "k", "at least 1"),
        (
            Eigendistortion,
            json!({"method": "randomized_svd", "k": 0}),
            "k",
            "at least 1",
        ),
        (
            Eigendistortion,
            json!({"max_iter": 0}),
            "max_iter",
            "at least 1",
        ),
        (
            Eigendistortion,
            json!({"stop_criterion": -1}),
            "stop_criterion",
            "non-negative",
        ),
        (
            Eigendistortion,
            json!({"method": "lanczos"}),
            "method",
            "unknown variant `lanczos`",
        ),
        (Geodesic, json!({"n_steps": 1}), "n_steps", "at least 2"),
        (
            Geodesic,
            json!({"initial_sequence": "curved"}),
            "initial_sequence",
            "unknown variant",
        ),
        (
            Geodesic,
            json!({"stop_criterion": -1}),
            "stop_criterion",
            "non-negative",
        ),
        (
            Geodesic,
            json!({"stop_iters_to_check": 0}),
            "stop_iters_to_check",
            "at least 1",
        ),
        (
            Geodesic,
            json!({"scheduler": {"name": "reduce_lr_on_plateau"}}),
            "scheduler",
            "unknown parameter",
        ),
        (
            Score,
            json!({"max_iter": 1}),
            "max_iter",
            "valid parameters: (none)",
        ),
    ];
    for (kind, v, param, text) in bad {
        let e = parse(kind, v.clone()).expect_err(&v.to_string());
        assert_eq!(e.param, param, "{kind} {v}: {e}");
        assert!(e.message.contains(text), "{kind} {v}: `{e}` lacks `{text}`");
    }
    // In range, including the edges.
    let good = [
        (
            Mad,
            json!({"initial_noise": 0, "metric_tradeoff_lambda": 1}),
        ),
        (
            Mad,
            json!({"range_penalty_lambda": 0, "stop_criterion": 0, "max_iter": 0}),
        ),
        (
            Mad,
            json!({"optimizer": {"name": "sgd", "nesterov": true, "momentum": 0.9}}),
        ),
        (
            MetamerCtf,
            json!({"stop_criterion": 1, "change_scale_criterion": null}),
        ),
        (Geodesic, json!({"n_steps": 2, "stop_criterion": 0})),
        (Eigendistortion, json!({"method": "exact", "k": 0})),
    ];
    for (kind, v) in good {
        parse(kind, v.clone()).unwrap_or_else(|e| panic!("{kind} {v}: {e}"));
    }
}

#[test]
fn the_images_decide_pair_shapes_and_eigendistortion_sizes() {
    let s = |c, h, w| ImageShape {
        channels: c,
        height: h,
        width: w,
    };
    let geo = MethodParams::defaults(SynthKind::Geodesic);
    geo.check_images(&[s(1, 16, 16), s(1, 16, 16)]).unwrap();
    let e = geo.check_images(&[s(1, 16, 16), s(1, 16, 32)]).unwrap_err();
    assert_eq!(e.param, "image_b");
    assert!(e.message.contains("1x16x32"), "{e}");
    let e = MethodParams::defaults(SynthKind::Score)
        .check_images(&[s(3, 8, 8), s(1, 8, 8)])
        .unwrap_err();
    assert!(e.message.contains("one shape"), "{e}");

    let k7 = parse(SynthKind::Eigendistortion, json!({"k": 7})).unwrap();
    let e = k7.check_images(&[s(1, 2, 3)]).unwrap_err();
    assert_eq!(e.param, "k");
    assert!(e.message.contains("n = C·H·W = 6"), "{e}");
    k7.check_images(&[s(3, 2, 3)]).unwrap();
    let exact = parse(SynthKind::Eigendistortion, json!({"method": "exact"})).unwrap();
    exact.check_images(&[s(1, 64, 64)]).unwrap();
    let e = exact.check_images(&[s(1, 64, 65)]).unwrap_err();
    assert_eq!(e.param, "method");
}

#[test]
fn max_iter_can_be_shortened_for_calibration() {
    let p = parse(SynthKind::Mad, json!({"max_iter": 500})).unwrap();
    assert_eq!(p.max_iter(), Some(500));
    assert_eq!(p.with_max_iter(5).max_iter(), Some(5));
    let e = MethodParams::defaults(SynthKind::Eigendistortion);
    assert_eq!(e.with_max_iter(5).max_iter(), Some(5));
    assert_eq!(MethodParams::defaults(SynthKind::Score).max_iter(), None);
}
