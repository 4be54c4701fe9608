//! Progress for people: indicatif bars on a terminal, nothing otherwise (and nothing with --json).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// One long step's progress, shown as a bar once it knows its total, as a spinner before.
pub struct Step {
    bar: ProgressBar,
}

impl Step {
    /// A step that shows itself only when stderr is a terminal and `quiet` is false.
    pub fn new(message: &str, quiet: bool) -> Step {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
        } else {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner:.green} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.to_owned());
        Step { bar }
    }

    pub fn finish(&self, message: &str) {
        self.bar.set_style(
            ProgressStyle::with_template("  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.finish_with_message(message.to_owned());
    }
}

impl snpkit_inputs::Progress for Step {
    fn set_message(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }

    fn set_total(&self, total: u64) {
        self.bar.set_length(total);
        self.bar.set_style(
            ProgressStyle::with_template(
                "{spinner:.green} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
    }

    fn set_position(&self, done: u64) {
        self.bar.set_position(done);
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}
