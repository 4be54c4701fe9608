//! Messages on the console. `/init` inherits the kernel's `/dev/console` as stdout and stderr;
//! everything it says starts with `snpkit-init:` so it stands out among the kernel's lines.

use std::io::Write;

/// Prints one `snpkit-init: …` line on the console (stderr, unbuffered).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

pub fn line(args: std::fmt::Arguments<'_>) {
    // Nowhere to report a console that cannot be written to.
    let _ = writeln!(std::io::stderr().lock(), "snpkit-init: {args}");
}
