//! Printing to stdout that ends the command quietly when the reader has gone away
//! (`synthsweep plan SPEC | head -2`): exit 141 (128 + SIGPIPE, what a shell reports for
//! `yes | head`), no message, instead of an "internal failure" line.
use crate::Exit;
use std::io::Write;

/// Exit code when stdout's reader closed the pipe (128 + SIGPIPE, as shells report it).
pub(crate) const EXIT_CLOSED_PIPE: u8 = 141;

/// Writes formatted text to stdout and flushes it. A closed pipe becomes [`Exit`] with
/// [`EXIT_CLOSED_PIPE`] (the command stops, nothing more is printed); any other failure
/// is an error naming stdout.
///
/// # Errors
///
/// `Exit(141)` for a closed pipe; an error for any other write failure.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Exit(EXIT_CLOSED_PIPE).into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// `print!` that returns a `Result` (see [`write_stdout`]); use with `?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns a `Result` (see [`write_stdout`]); use with `?`.
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

/// For lines printed after work is done (a run's summary): a closed pipe is ignored, so
/// the exit code stays the work's own (tasks failed, preempted), not 141.
///
/// # Errors
///
/// Any write failure other than a closed pipe.
pub(crate) fn unless_closed(r: anyhow::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e)
            if e.downcast_ref::<Exit>()
                .is_some_and(|x| x.0 == EXIT_CLOSED_PIPE) =>
        {
            Ok(())
        }
        other => other,
    }
}
