//! The table: each figure of this run beside Svix OSS's reference figure and the target.

use std::time::Duration;

/// Which way a figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub measure: String,
    /// `None` when the run could not measure it (the note says why).
    pub ours: Option<f64>,
    pub unit: &'static str,
    pub decimals: usize,
    pub better: Better,
    /// Svix OSS's figure as (lowest, highest) of its runs.
    pub svix: Option<(f64, f64)>,
    pub svix_note: &'static str,
    pub target: Option<f64>,
    pub note: String,
}

impl Row {
    pub fn new(measure: impl Into<String>, ours: Option<f64>, unit: &'static str) -> Self {
        Self {
            measure: measure.into(),
            ours,
            unit,
            decimals: 0,
            better: Better::Higher,
            svix: None,
            svix_note: "",
            target: None,
            note: String::new(),
        }
    }

    pub fn decimals(mut self, decimals: usize) -> Self {
        self.decimals = decimals;
        self
    }

    pub fn lower_is_better(mut self) -> Self {
        self.better = Better::Lower;
        self
    }

    pub fn svix(mut self, low: f64, high: f64) -> Self {
        self.svix = Some((low, high));
        self
    }

    pub fn svix_note(mut self, note: &'static str) -> Self {
        self.svix_note = note;
        self
    }

    pub fn target(mut self, target: f64) -> Self {
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    fn number(&self, value: f64) -> String {
        format!("{value:.*}", self.decimals)
    }

    fn ours_text(&self) -> String {
        match self.ours {
            Some(value) => format!("{} {}", self.number(value), self.unit),
            None => "n/a".into(),
        }
    }

    fn svix_text(&self) -> String {
        match self.svix {
            None => "-".into(),
            Some((low, high)) if low == high => {
                format!("{} {}{}", self.number(low), self.unit, self.svix_note)
            }
            Some((low, high)) => format!(
                "{}-{} {}{}",
                self.number(low),
                self.number(high),
                self.unit,
                self.svix_note
            ),
        }
    }

    /// How many times better than Svix's best run: ours ÷ Svix for rates, Svix ÷ ours for
    /// times, costs and sizes, so above 1 always means ahead.
    fn versus_svix(&self) -> String {
        let (Some(ours), Some((low, high))) = (self.ours, self.svix) else {
            return "-".into();
        };
        let factor = match self.better {
            Better::Higher => ours / high,
            Better::Lower => low / ours,
        };
        if factor.is_finite() {
            format!("{factor:.2}x")
        } else {
            "-".into()
        }
    }

    fn target_text(&self) -> String {
        match (self.target, self.better) {
            (None, _) => "-".into(),
            (Some(t), Better::Higher) => format!(">= {} {}", self.number(t), self.unit),
            (Some(t), Better::Lower) => format!("<= {} {}", self.number(t), self.unit),
        }
    }

    fn verdict(&self) -> &'static str {
        match (self.target, self.ours) {
            (None, _) => "",
            (Some(_), None) => "missed",
            (Some(t), Some(v)) => {
                let met = match self.better {
                    Better::Higher => v >= t,
                    Better::Lower => v <= t,
                };
                if met {
                    "met"
                } else {
                    "missed"
                }
            }
        }
    }
}

pub fn print(rows: &[Row]) {
    let header = [
        "measure",
        "Hookline, this run",
        "Svix OSS (reference)",
        "vs Svix",
        "target",
        "met?",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.measure.clone(),
                r.ours_text(),
                r.svix_text(),
                r.versus_svix(),
                r.target_text(),
                r.verdict().to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| match i {
                0 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&header.map(str::to_owned));
    line(&widths.map(|w| "-".repeat(w)));
    for row in &cells {
        line(row);
    }
    let notes: Vec<&Row> = rows.iter().filter(|r| !r.note.is_empty()).collect();
    if !notes.is_empty() {
        println!();
        for row in notes {
            println!("{}: {}", row.measure, row.note);
        }
    }
    println!();
    println!(
        "Svix OSS 1.x (server built from source, Postgres 15, in-memory queue): reference \
         figures, measured by the same method on this machine, not in this run."
    );
    println!(
        "vs Svix: this run's figure against Svix's best run, ours / Svix for rates and Svix / \
         ours for times, costs and sizes; above 1.00x is ahead. Targets are issue 11's."
    );
}

/// Nearest-rank percentile `p` (0..=1) of `values`; zero when there are none.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
