//! The UI's public surface as the CLI uses it: the entry point, the sample photos, the bench.

use convscope::ui;

#[test]
fn sample_photos_are_a_cat_and_a_dog() {
    let names: Vec<&str> = convscope::viz::SAMPLE_PHOTOS.iter().map(|p| p.0).collect();
    assert_eq!(names, ["cat.jpg", "dog.jpg"]);
}

#[test]
fn bench_render_times_every_tab() {
    let timings = ui::bench_render(2);
    for tab in ["Training", "Model", "Filters", "Feature maps", "Help"] {
        assert!(
            timings.iter().any(|t| t.name == format!("draw {tab}")),
            "{tab}: {timings:?}"
        );
    }
}
