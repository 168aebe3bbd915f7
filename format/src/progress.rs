//! Progress bars for long work, for a person watching: drawn on stderr only when
//! stderr is a terminal (`TERM` not `dumb`), never with `--json` or `-q`, and only
//! once the work has lasted [`SHOW_AFTER`], so quick runs, pipes, logs, systemd
//! journals and CI never see one. Plain characters, no colour, cleared when done.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Work shorter than this shows no bar at all.
pub const SHOW_AFTER: Duration = Duration::from_millis(300);

/// True when a bar may be drawn for this process: stderr is a terminal that can
/// redraw a line.
pub fn terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").is_ok_and(|t| t != "dumb")
}

/// A bar over `len` steps, or nothing; cheap to update from several threads.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    shown: AtomicBool,
}

impl Progress {
    /// A bar for `len` steps of `what` (e.g. "verifying documents"), drawn only if
    /// `enabled` (the caller's "a person reads this": not `--json`, not `-q`) and
    /// [`terminal`].
    pub fn new(enabled: bool, len: u64, what: &'static str) -> Progress {
        let bar = (enabled && terminal()).then(|| {
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
                .with_style(style)
                .with_prefix(what)
        });
        Progress {
            bar,
            started: Instant::now(),
            shown: AtomicBool::new(false),
        }
    }

    /// A bar that never draws.
    pub fn hidden() -> Progress {
        Progress::new(false, 0, "")
    }

    /// One more step done.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// `n` more steps done.
    pub fn inc_by(&self, n: usize) {
        let Some(bar) = &self.bar else { return };
        bar.inc(n as u64);
        if !self.shown.load(Ordering::Relaxed)
            && self.started.elapsed() >= SHOW_AFTER
            && !self.shown.swap(true, Ordering::Relaxed)
        {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
        }
    }

    /// Sets the number of steps, once it is known.
    pub fn set_len(&self, len: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(len as u64);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_bars_do_nothing() {
        let p = Progress::new(false, 10, "x");
        assert!(p.bar.is_none());
        p.inc();
        p.set_len(20);
        assert!(p.bar.is_none());
    }

    #[test]
    fn a_bar_stays_hidden_before_show_after() {
        let p = Progress {
            bar: Some(ProgressBar::with_draw_target(
                Some(3),
                ProgressDrawTarget::hidden(),
            )),
            started: Instant::now(),
            shown: AtomicBool::new(false),
        };
        p.inc();
        assert!(!p.shown.load(Ordering::Relaxed));
        assert_eq!(p.bar.as_ref().map(|b| b.position()), Some(1));
    }
}
