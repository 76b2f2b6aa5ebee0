//! Standard output that does not panic when its reader goes away.
//!
//! `println!` panics when a write fails, and a write fails as soon as the reader of a pipe has
//! closed it (`marginwise apply ... | head -1`: Rust ignores SIGPIPE, so the write returns
//! `BrokenPipe`). The commands print through [`say!`] instead, which returns the failure as
//! [`StdoutError::Closed`]; the binary treats it as a clean stop (exit status 0, nothing on
//! stderr), as ripgrep does. Only a failed write to standard output is that error: a `BrokenPipe`
//! from a socket (the Admin API) stays an ordinary error.

use std::fmt;
use std::io::Write as _;

#[derive(Debug, thiserror::Error)]
pub enum StdoutError {
    #[error("standard output was closed by its reader")]
    Closed,
    #[error("cannot write to standard output: {0}")]
    Io(#[source] std::io::Error),
}

/// Writes `args` to standard output and flushes it.
pub fn write(args: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::BrokenPipe => StdoutError::Closed,
            _ => StdoutError::Io(error),
        })
}

/// Whether `error` (or any error it was caused by) is a closed standard output.
pub fn is_closed(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(StdoutError::Closed)))
}

/// `println!` that returns `Result<(), StdoutError>` instead of panicking; `say!()` prints an
/// empty line.
#[macro_export]
macro_rules! say {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
