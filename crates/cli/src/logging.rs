//! Log set-up for the binary: library crates log through `tracing`; this installs the one
//! subscriber, at the level chosen by `-v`/`-q` (or `RUST_LOG`), writing to stderr through
//! the progress bar's [`suspend`](synthsweep_exec::progress::suspend) so that log lines
//! and a live bar do not interleave.
use std::io::{IsTerminal, Write};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The filter for `-v` (`verbose`) / `-q` (`quiet`) counts: synthsweep's own crates at
/// info by default, every other crate at warn.
fn directives(verbose: u8, quiet: u8) -> String {
    let ours = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let others = match (verbose, quiet) {
        (v, _) if v >= 2 => "debug",
        (_, q) if q >= 2 => "error",
        _ => "warn",
    };
    let crates = [
        "synthsweep",
        "synthsweep_models",
        "synthsweep_synth",
        "synthsweep_sweep",
        "synthsweep_store",
        "synthsweep_exec",
        "synthsweep_dist",
    ];
    let mut d = others.to_string();
    for c in crates {
        d.push_str(&format!(",{c}={ours}"));
    }
    d
}

/// Installs the subscriber. `RUST_LOG` (e.g. `RUST_LOG=synthsweep_store=debug`) replaces
/// the levels that `-v`/`-q` choose.
pub fn init(verbose: u8, quiet: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(v.trim())
            .unwrap_or_else(|_| EnvFilter::new(directives(verbose, quiet))),
        _ => EnvFilter::new(directives(verbose, quiet)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrAroundBar)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0)
        .without_time()
        .try_init();
}

/// Writes each formatted event to stderr in one piece, with the progress bar hidden.
#[derive(Clone, Copy)]
struct StderrAroundBar;

/// One event's bytes, written when the formatter is done with it.
struct EventBuffer(Vec<u8>);

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.0);
        synthsweep_exec::progress::suspend(|| {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&bytes);
            let _ = err.flush();
        });
    }
}

impl<'a> MakeWriter<'a> for StderrAroundBar {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn default_is_info_for_ours_and_warn_for_others() {
        let d = directives(0, 0);
        assert!(d.starts_with("warn,"));
        assert!(d.contains("synthsweep_store=info"));
    }

    #[test]
    fn verbose_and_quiet_move_our_level() {
        assert!(directives(1, 0).contains("synthsweep_exec=debug"));
        assert!(directives(2, 0).contains("synthsweep_exec=trace"));
        assert!(directives(0, 1).contains("synthsweep_exec=warn"));
        assert!(directives(0, 2).starts_with("error,"));
        assert!(directives(0, 2).contains("synthsweep_exec=error"));
    }
}
