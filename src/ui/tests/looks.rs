//! The Filters tab's "what it looks for" mode through the App, as keys drive it: `w` asks for
//! the shown layer's maximisation, moving to another layer or epoch (or `w` again) cancels the
//! job running, and a cancelled job's late answer is dropped while the current one's is shown.

use std::sync::Arc;

use super::*;
use crate::model::maximize::Tier;
use crate::ui::looks::{Done, FilterLook, Job, Looks};
use crate::ui::state::Msg;
use crate::viz::Raster;

/// The answer `job` would give: `filters` plain images.
fn answer(job: &Job, filters: usize) -> Done {
    Done {
        want: job.want.clone(),
        progress: Arc::clone(&job.progress),
        looks: Ok(Arc::new(Looks {
            checkpoint: format!("epoch-{:04}", job.want.epoch),
            filters: (0..filters)
                .map(|filter| FilterLook {
                    filter,
                    picture: Raster::new(10, 10, [200, 40, 40]),
                    seed_activation: 0.1,
                    activation: 2.5,
                    patches: Vec::new(),
                })
                .collect(),
            cached: false,
            seconds: 1.0,
            cache_note: None,
            patches_note: None,
        })),
    }
}

fn one_job(s: &mut App) -> Job {
    let mut jobs = s.take_looks_jobs();
    assert_eq!(jobs.len(), 1, "one job: {jobs:?}");
    jobs.remove(0)
}

#[test]
fn w_asks_for_the_layer_and_moving_on_cancels_the_job_and_drops_its_answer() {
    let mut s = training_state();
    press(&mut s, "3");
    assert!(
        s.take_looks_jobs().is_empty(),
        "raw weights ask for nothing"
    );
    press(&mut s, "w");
    let first = one_job(&mut s);
    assert_eq!(first.want.layer, "conv2d");
    assert_eq!(first.want.tier, Tier::Quick);
    assert_eq!(
        first.want.epoch,
        s.state().filters().expect("filters").epoch
    );
    let screen = strip_screen(&draw(&s, 100, 30));
    assert!(
        screen.contains("what it looks for · quick") && screen.contains("optimising 16 filters"),
        "{screen}"
    );
    // Another layer: the first job is cancelled and a job for the new layer starts.
    press(&mut s, "l");
    assert!(first.progress.cancelled(), "the first job is cancelled");
    let second = one_job(&mut s);
    assert_eq!(second.want.layer, "conv2d_1");
    assert!(!second.progress.cancelled());
    // The first job's answer comes late: dropped, nothing shown.
    let g = s.pictures().filter_grid.generation;
    s.update(Msg::Looks(answer(&first, 16)));
    assert!(s.state().looks_shown().is_none());
    assert_eq!(s.pictures().filter_grid.generation, g, "no new picture");
    // The second job's answer is shown: the grid is the images, the title says so.
    s.update(Msg::Looks(answer(&second, 32)));
    let shown = s.state().looks_shown().expect("images shown");
    assert_eq!(shown.filters.len(), 32);
    assert!(s.pictures().filter_grid.generation > g);
    let screen = strip_screen(&draw(&s, 100, 30));
    assert!(
        screen.contains("what each filter looks for · quick · 32 filters")
            && screen.contains("quick │ checkpoint epoch-0002"),
        "{screen}"
    );
    // Back to the raw weights: nothing running, nothing asked.
    press(&mut s, "w");
    assert!(s.take_looks_jobs().is_empty());
    assert!(s.state().looks_shown().is_none());
    // The regularised tier asks again, for the same layer.
    press(&mut s, "W");
    let slow = one_job(&mut s);
    assert_eq!(
        (slow.want.layer.as_str(), slow.want.tier),
        ("conv2d_1", Tier::Regularised)
    );
    // Another epoch's filters (training moved on): the job is cancelled, a new one starts.
    s.apply(Event::Filters(Box::new(fixtures::filters(
        &[("conv2d", [16, 3, 3, 3]), ("conv2d_1", [32, 16, 3, 3])],
        3,
    ))));
    assert!(slow.progress.cancelled());
    assert_eq!(one_job(&mut s).want.epoch, 3);
}

/// The screen's text, one line per row.
fn strip_screen(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let w = usize::from(buf.area.width);
    buf.content
        .chunks(w)
        .map(|row| {
            row.iter()
                .map(ratatui::buffer::Cell::symbol)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
