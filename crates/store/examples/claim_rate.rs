//! How fast a root takes claims, with nothing else running: the bookkeeping of a sweep of
//! small tasks alone (PROTOCOL.md, "Claims"). Starts a writer session on ROOT, claims N
//! fresh task ids in groups of G (each group's requests in flight together, as the binary's
//! task source does), then ends the session (which deletes the claims: nothing was
//! committed, so they are released as unrun). Prints claims per second and the time of the
//! end. The S3 settings come from the environment (AWS_ENDPOINT_URL, ...), as for the binary.
//!
//! usage: cargo run -p synthsweep-store --example claim_rate -- ROOT [N=3200] [G=256]
//! e.g.   AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ACCESS_KEY_ID=test \
//!        AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
//!        cargo run -p synthsweep-store --example claim_rate -- s3://bench/rate1

use std::time::Instant;

use synthsweep_store::{LeaseOptions, OutputRoot, Store, WriterIdentity};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first() else {
        eprintln!("usage: claim_rate ROOT [N=3200] [G=256]");
        std::process::exit(2);
    };
    let n: usize = args.get(1).map_or(Ok(3200), |s| s.parse())?;
    let group: usize = args.get(2).map_or(Ok(256), |s| s.parse())?.max(1);
    let store = Store::open(&OutputRoot::parse(root)?)?;
    let run_id = synthsweep_store::new_run_id();
    store.start_session(
        WriterIdentity {
            run_id,
            tag: "p0".into(),
            role: "claim_rate".into(),
        },
        LeaseOptions::default(),
    )?;
    let ids: Vec<String> = (0..n).map(|i| format!("rate-{i:06}")).collect();
    let t = Instant::now();
    for chunk in ids.chunks(group) {
        let claims = store.claim(chunk)?;
        assert!(
            claims.iter().all(|c| *c == synthsweep_store::Claim::Ours),
            "a fresh id was not ours: is the root shared?"
        );
    }
    let claimed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let end = store.finish_session()?;
    let ended = t.elapsed().as_secs_f64();
    println!(
        "{n} claims in groups of {group}: {claimed:.2} s ({:.0} claims/s); session end \
         (releasing {} claims) {ended:.2} s",
        n as f64 / claimed,
        end.released
    );
    Ok(())
}
