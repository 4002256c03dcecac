//! The README's Rust API tour, compiled (and runnable: `cargo run --release -p synthsweep-synth --example readme`).
use serde_json::json;
use synthsweep_models::{build_metric, build_model, image_io::load_image};
use synthsweep_synth::*;

fn main() -> Result<()> {
    let img = load_image("sweeps/images/einstein_64.pgm".as_ref())?;
    let model = build_model(&json!({"name": "luminance_gain_control", "pretrained": true}))?;

    let mut m = Metamer::new(
        &img,
        model.as_ref(),
        MetamerOptions {
            seed: Some(0),
            ..Default::default()
        },
    )?;
    m.synthesize(&SynthesizeOptions {
        max_iter: 200,
        store_progress: StoreProgress::Every(10),
        ..Default::default()
    })?;
    let state = std::env::temp_dir().join("metamer.safetensors");
    m.save(&state)?;
    println!("metamer: last loss {:?}", m.losses().last());

    let (mse, ssim) = (
        build_metric(&json!({"name": "mse"}))?,
        build_metric(&json!({"name": "ssim_distance"}))?,
    );
    let mut mad = MadCompetition::new(
        &img,
        mse.as_ref(),
        ssim.as_ref(),
        MinMax::Max,
        MadOptions {
            seed: Some(0),
            ..Default::default()
        },
    )?;
    mad.synthesize(&SynthesizeOptions::default())?;
    println!(
        "mad: optimized metric {:?}",
        mad.optimized_metric_loss().last()
    );
    let four = MadCompetition::full_set(
        &img,
        mse.as_ref(),
        ssim.as_ref(),
        &MadOptions::default(),
        [1, 2, 3, 4],
    )?;
    println!("full set: {} syntheses", four.len());

    let mut e = eigendistortion::Eigendistortion::with_seed(&img, model.as_ref(), 0)?;
    e.synthesize(eigendistortion::Method::Power {
        k: 1,
        max_iter: 1000,
        stop_criterion: 1e-7,
    })?;
    println!(
        "eigenvalues: {:?}",
        e.eigenvalues()
            .map(|t| Vec::<f32>::try_from(t.reshape([-1])).unwrap_or_default())
    );

    let other = load_image("sweeps/images/curie_64.pgm".as_ref())?;
    let mut g = Geodesic::new(
        &img,
        &other,
        model.as_ref(),
        GeodesicOptions {
            n_steps: 10,
            ..Default::default()
        },
    )?;
    g.synthesize(&GeodesicSynthesizeOptions {
        max_iter: 100,
        ..Default::default()
    })?;
    let jerk = g.calculate_jerkiness(None)?;
    println!(
        "geodesic: {} frames, jerkiness {:?}",
        g.geodesic().size()[0],
        jerk.size()
    );
    Ok(())
}
