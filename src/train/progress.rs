//! Progress display: a bar (indicatif) with step, epoch, losses, images/s and ETA on a terminal;
//! plain log lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows a run's progress.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress over `total` iterations, `done` of them already run.
    pub fn new(total: u64, done: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total).with_position(done);
            let style = ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress { bar }
    }

    /// Reports the losses of a logged iteration: on the bar's message, or as a log line.
    pub fn log(
        &self,
        done: u64,
        epoch: f64,
        losses: &[(String, Vec<(String, f32)>)],
        rate: f64,
        log: &mut dyn FnMut(&str),
    ) {
        let parts: Vec<String> =
            losses.iter().flat_map(|(_, ls)| ls.iter().map(|(n, v)| format!("{n} {v:.4}"))).collect();
        let line = format!("step {done} epoch {epoch:.2} | {} | {rate:.0} img/s", parts.join(" "));
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => log(&line),
        }
    }

    /// Moves the bar to `done`.
    pub fn tick(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Ends the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
