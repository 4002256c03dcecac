//! Prints a spec's plan and its tasks (with the no-op resolver):
//! `cargo run -p synthsweep-sweep --example plan -- sweeps/quickstart.toml [--json]`.
use synthsweep_sweep::{NoopResolver, SweepSpec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: plan SPEC.toml [--json]");
        std::process::exit(2);
    };
    let plan = match SweepSpec::from_path(path).and_then(|s| s.plan(NoopResolver)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    print!("{}", plan.summary());
    for task in plan.iter() {
        match task {
            Ok(t) if args.iter().any(|a| a == "--json") => println!("{}", t.to_json()),
            Ok(t) => println!("{:>6} {} {}", t.index, t.short_id(), t.label()),
            Err(e) => eprintln!("error: {e}"),
        }
    }
}
