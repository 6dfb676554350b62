//! Render timing of every tab on a `TestBackend`, for `convscope bench --ui-only`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::App;
use super::bench_data;
use super::keys::Action;
use super::state::Msg;
use super::vocab::Tab;
use crate::config::UiConfig;
use crate::events::Event;

/// Median and 99th-percentile time of one measured step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabTiming {
    /// The tab drawn, or the snapshot taken in (`apply filters`, `apply feature maps`).
    pub name: String,
    pub p50: Duration,
    pub p99: Duration,
    pub samples: usize,
}

fn percentiles(name: String, mut samples: Vec<Duration>) -> TabTiming {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    TabTiming {
        name,
        p50: at(0.50),
        p99: at(0.99),
        samples: samples.len(),
    }
}

/// Time drawing each tab at 200×60 with the tutorial network's filters and maps (conv1
/// 16×150×150 … pool3 64×18×18), a 50-epoch history, `iterations` frames per tab, half blocks,
/// truecolor; and the time to take in each snapshot (normalise, colour, tile: the largest filter
/// layer and the largest map layer), which happens in `apply`, never while drawing.
#[must_use]
pub fn bench_render(iterations: usize) -> Vec<TabTiming> {
    let (w, h) = (200, 60);
    let mut app = App::new(
        &UiConfig::default(),
        "bench".into(),
        PathBuf::from("runs/bench"),
    );
    app.resize(w, h);
    for e in bench_data::history() {
        app.apply(e);
    }
    // A long run's worth of curves: 50 epochs, 4000 batch points.
    for epoch in 3..=50 {
        for batch in 1..=84 {
            app.apply(Event::Batch(crate::events::BatchMetrics {
                epoch,
                batch,
                batches: 84,
                loss: 1.0 / (epoch as f32 + batch as f32 / 84.0),
                accuracy: 0.9,
                images_per_sec: 900.0,
                elapsed: (epoch * 84 + batch) as f64 * 0.1,
            }));
        }
        app.apply(Event::Epoch(crate::events::EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f32,
            train_accuracy: 0.9,
            val_loss: Some(1.0 / epoch as f32),
            val_accuracy: Some(0.8),
            seconds: 8.4,
            images_per_sec: 900.0,
        }));
    }
    let n = iterations.max(1);
    let filters = Box::new(bench_data::tutorial_filters());
    let features = Box::new(bench_data::tutorial_features());
    let mut results = Vec::new();
    let mut apply_f = Vec::with_capacity(n);
    let mut apply_m = Vec::with_capacity(n.min(50));
    // The biggest layer, conv2d_2 (64×32×3×3), is the one that costs.
    app.apply(Event::Filters(filters.clone()));
    app.update(Msg::Action(Action::ShowTab(Tab::Filters)));
    app.update(Msg::Action(Action::NextLayer));
    app.update(Msg::Action(Action::NextLayer));
    for i in 0..n {
        let t = Instant::now();
        app.apply(Event::Filters(filters.clone()));
        apply_f.push(t.elapsed());
        if i < 50 {
            let t = Instant::now();
            app.apply(Event::FeatureMaps(features.clone()));
            apply_m.push(t.elapsed());
        }
    }
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap_or_else(|e| match e {});
    for tab in Tab::ALL {
        app.update(Msg::Action(Action::ShowTab(tab)));
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            if terminal.draw(|f| app.render(f)).is_err() {
                break;
            }
            samples.push(t.elapsed());
        }
        results.push(percentiles(format!("draw {}", tab.title()), samples));
    }
    results.push(percentiles("apply filters (conv2d_2)".into(), apply_f));
    results.push(percentiles("apply feature maps (conv2d)".into(), apply_m));
    results
}
