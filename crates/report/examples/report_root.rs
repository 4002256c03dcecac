//! `synthsweep report` without the CLI (and without libtorch, which the `synthsweep` binary
//! loads and which costs it about 500 MiB of resident memory before any work): the report
//! benchmark's memory figure of the report itself (`scripts/bench_report.sh`).
//! Usage: `report_root ROOT OUT`.
use synthsweep_report::{write_report, ReportOptions};
use synthsweep_store::{OutputRoot, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, out] = args.as_slice() else {
        eprintln!("usage: report_root ROOT OUT");
        std::process::exit(2);
    };
    let store = Store::open(&OutputRoot::parse(root)?)?;
    let o = write_report(
        &store,
        &ReportOptions {
            out: out.into(),
            filters: Vec::new(),
            page_rows: synthsweep_report::PAGE_ROWS,
        },
    )?;
    println!(
        "report: {} tasks ({} pages drawn, {} kept from before): {}",
        o.tasks,
        o.drawn,
        o.kept,
        o.index.display()
    );
    Ok(())
}
