//! The figures of a run: rows for the table `rill bench` prints, and the fields of the
//! JSON object `rill bench --json` prints.

use std::fmt;

use serde_json::{Map, Value};

/// Everything a run measured.
///
/// [`Display`](fmt::Display) renders the table (one line per row, each compared with its
/// baseline and target); [`Report::json`] is one JSON object with every figure,
/// including each run behind a median.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
    fields: Map<String, Value>,
}

impl Report {
    /// Every figure as one JSON object (the fields are listed in the README).
    pub fn json(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    pub(crate) fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub(crate) fn field(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.fields.insert(name.into(), value.into());
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<36} {:>12} {:<8} {:>18} {:>14}",
            "measure", "value", "unit", "ratio to baseline", "target"
        )?;
        for row in &self.rows {
            let ratio = row
                .baseline
                .as_ref()
                .map(|b| {
                    let ratio = if b.lower_is_better { b.value / row.value } else { row.value / b.value };
                    format!("{ratio:.2}× {}", b.name)
                })
                .unwrap_or_default();
            writeln!(
                f,
                "{:<36} {:>12.2} {:<8} {:>18} {:>14}",
                row.name,
                row.value,
                row.unit,
                ratio,
                row.target.as_deref().unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    baseline: Option<Baseline>,
    target: Option<String>,
}

impl Row {
    pub(crate) fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row { name: name.into(), value, unit, baseline: None, target: None }
    }

    /// Shown as how many times the baseline `value` this row's value is.
    pub(crate) fn vs(mut self, name: &'static str, value: f64) -> Row {
        self.baseline = Some(Baseline { name, value, lower_is_better: false });
        self
    }

    /// For times: shown as how many times faster than the baseline `value` this row is.
    pub(crate) fn faster_than(mut self, name: &'static str, value: f64) -> Row {
        self.baseline = Some(Baseline { name, value, lower_is_better: true });
        self
    }

    /// What rill aims for, as shown in the table.
    pub(crate) fn target(mut self, target: impl Into<String>) -> Row {
        self.target = Some(target.into());
        self
    }
}

/// What a row is compared with, measured in the same run.
#[derive(Debug)]
struct Baseline {
    name: &'static str,
    value: f64,
    /// For times: the ratio shown is how many times faster than the baseline.
    lower_is_better: bool,
}
