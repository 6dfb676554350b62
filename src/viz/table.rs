//! Text tables: the Keras-style model summary.

use std::fmt::Write as _;

use crate::events::{SummaryRow, group_digits, keras_shape};
use crate::model::summary::total_params;

/// Render the summary as a Keras-style text table.
#[must_use]
pub fn summary(rows: &[SummaryRow]) -> String {
    let headers = ["Layer (type)", "Output Shape", "Param #"];
    let cells: Vec<[String; 3]> = rows
        .iter()
        .map(|r| {
            [
                format!("{} ({})", r.name, r.kind),
                keras_shape(&r.output_shape),
                group_digits(r.params),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let total_width = widths.iter().sum::<usize>() + 6;
    let mut out = String::new();
    let _ = writeln!(out, "Model: \"sequential\"");
    let _ = writeln!(out, "{}", "━".repeat(total_width));
    let _ = writeln!(
        out,
        "{:<w0$}   {:<w1$}   {:>w2$}",
        headers[0],
        headers[1],
        headers[2],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    let _ = writeln!(out, "{}", "━".repeat(total_width));
    for c in &cells {
        let _ = writeln!(
            out,
            "{:<w0$}   {:<w1$}   {:>w2$}",
            c[0],
            c[1],
            c[2],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    let _ = writeln!(out, "{}", "━".repeat(total_width));
    let total = total_params(rows);
    let _ = writeln!(out, " Total params: {}", group_digits(total));
    let _ = writeln!(out, " Trainable params: {}", group_digits(total));
    let _ = writeln!(out, " Non-trainable params: 0");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::summary::summarize;

    #[test]
    fn table_prints_total() {
        let rows = summarize(&Config::default(), 2).expect("valid");
        let t = summary(&rows);
        assert!(t.contains("Total params: 10,641,441"), "{t}");
        assert!(t.contains("conv2d_2 (Conv2D)"), "{t}");
    }
}
