//! Progress bars for the long steps, drawn on stderr only for a person watching a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Creates progress bars; all hidden when `--quiet` is given or stderr is not a terminal, so
/// logs and CI output stay clean.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            visible: !quiet && std::io::stderr().is_terminal(),
        }
    }

    pub fn hidden() -> Progress {
        Progress { visible: false }
    }

    /// A bar counting bytes of a file being read.
    pub fn bytes(&self, label: &str, total: u64) -> ProgressBar {
        self.bar(
            label,
            total,
            "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} ({eta})",
        )
    }

    /// A bar counting items (customers, orders, products).
    pub fn items(&self, label: &str, total: u64) -> ProgressBar {
        self.bar(label, total, "{prefix:>10} [{bar:30}] {pos}/{len} ({eta})")
    }

    /// A spinner for a step whose length is not known in advance (a model fit).
    pub fn spinner(&self, label: &str) -> ProgressBar {
        if !self.visible {
            return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        }
        let bar = ProgressBar::new_spinner().with_prefix(label.to_string());
        if let Ok(style) = ProgressStyle::with_template("{prefix:>10} {spinner} {elapsed}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }

    fn bar(&self, label: &str, total: u64, template: &str) -> ProgressBar {
        if !self.visible {
            return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        }
        let bar = ProgressBar::new(total).with_prefix(label.to_string());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}
