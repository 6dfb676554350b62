//! The Validation tab: a real record of 10 classes over 4 epochs written into a run directory,
//! read through the App's jobs as the TUI reads it; keys over the matrix and the lists; screens.

use std::path::{Path, PathBuf};

use super::*;
use crate::analysis;
use crate::run::validation::{self, EpochRecord, ImageList, ListedImage, Row};
use crate::ui::record::{Done, Want};
use crate::ui::vocab::{ListMode, Slot};

const CLASSES: [&str; 10] = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
];
const PER_CLASS: usize = 20;
const EPOCHS: usize = 4;

/// A deterministic hash of an image and an epoch.
fn mix(i: usize, e: usize) -> u64 {
    let mut h = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (e as u64 + 7);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// One row: image `i` of class `label` predicted `predicted` with probability `p`; the label
/// gets most of the rest when it is not the prediction.
fn row(i: usize, label: usize, predicted: usize, p: f32) -> Row {
    let mut probs = vec![0.0_f32; CLASSES.len()];
    probs[predicted] = p;
    let rest = 1.0 - p;
    if label == predicted {
        for (c, q) in probs.iter_mut().enumerate() {
            if c != predicted {
                *q = rest / 9.0;
            }
        }
    } else {
        probs[label] = rest * 0.8;
        for (c, q) in probs.iter_mut().enumerate() {
            if c != predicted && c != label {
                *q = rest * 0.2 / 8.0;
            }
        }
    }
    Row {
        index: i as u32,
        label: label as u16,
        predicted: predicted as u16,
        loss: -probs[label].ln(),
        probs,
    }
}

/// The rows of epoch `e`: Shirts 0, 40, 80… are called T-shirts at 0.95 every epoch (label
/// noise); about one image in six is wrong as the next class, differently each epoch (flips).
fn epoch_rows(e: usize) -> Vec<Row> {
    (0..CLASSES.len() * PER_CLASS)
        .map(|i| {
            let label = i % CLASSES.len();
            let h = mix(i, e);
            let p = 0.5 + (h % 49) as f32 / 100.0;
            if label == 6 && (i / 10) % 4 == 0 {
                row(i, label, 0, 0.95)
            } else if h.is_multiple_of(6) {
                row(i, label, (label + 1) % CLASSES.len(), p.min(0.85))
            } else {
                row(i, label, label, p)
            }
        })
        .collect()
}

/// A run directory with the record of [`EPOCHS`] epochs and the images it lists (8×8 PNGs).
fn recorded_run(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    let data = dir.join("data");
    let mut images = Vec::new();
    for i in 0..CLASSES.len() * PER_CLASS {
        let label = i % CLASSES.len();
        let folder = data.join(CLASSES[label]);
        std::fs::create_dir_all(&folder).expect("class folder");
        let path = folder.join(format!("img_{i:03}.png"));
        let v = (i * 37 % 256) as u8;
        image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([v, (x * 30) as u8, (y * 30) as u8]))
            .save(&path)
            .expect("png");
        images.push(ListedImage {
            path: path.to_string_lossy().into_owned(),
            label,
        });
    }
    let list = ImageList {
        classes: CLASSES.map(String::from).to_vec(),
        images,
    };
    let list_id = validation::write_list(&run, &list).expect("list");
    for e in 1..=EPOCHS {
        let record = EpochRecord {
            epoch: e as u32,
            classes: CLASSES.len() as u16,
            list_id,
            rows: epoch_rows(e),
        };
        validation::write_epoch(&run, &record).expect("epoch");
    }
    run
}

fn app_for(run: &Path, w: u16, h: u16) -> App {
    let mut s = App::new(&UiConfig::default(), "fixture".into(), run.to_path_buf());
    s.resize(w, h);
    s
}

/// The App on the Validation tab with the record read.
fn on_the_tab(run: &Path, w: u16, h: u16) -> App {
    let mut s = app_for(run, w, h);
    press(&mut s, "5");
    assert_eq!(s.state().tab(), Tab::Validation);
    s.run_jobs();
    s
}

fn listed_indices(s: &App) -> Vec<u32> {
    let v = s.state().validation();
    let (data, list) = (v.loaded().expect("loaded"), v.list().expect("a list"));
    list.items.iter().map(|&at| data.rows[at].index).collect()
}

#[test]
fn the_tab_reads_the_newest_epoch_off_the_event_loop_and_shows_its_analysis() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = recorded_run(tmp.path());
    let mut s = app_for(&run, 100, 30);
    // Nothing is read before the tab is shown.
    assert!(s.take_jobs().is_empty());
    press(&mut s, "5");
    let jobs = s.take_jobs();
    assert_eq!(
        jobs,
        vec![crate::ui::record::Job::Record {
            run: run.clone(),
            want: Want {
                epoch: None,
                newest_known: 0
            }
        }]
    );
    // Before the answer the tab says it is reading; asked once only.
    assert!(s.state().validation().loading());
    press(&mut s, "hjkl");
    assert!(s.take_jobs().is_empty());
    let text = format!("{}", draw(&s, 100, 30).backend());
    assert!(text.contains("Reading the validation record"), "{text}");
    for job in jobs {
        s.job_done(job.run());
    }
    let v = s.state().validation();
    let data = v.loaded().expect("read");
    assert_eq!((data.epoch, data.recorded.clone()), (4, vec![1, 2, 3, 4]));
    let rows = epoch_rows(4);
    assert_eq!(data.confusion, analysis::confusion(&rows, 10));
    assert!((data.accuracy - analysis::accuracy(&rows)).abs() < 1e-12);
    assert_eq!(data.previous, Some(3));
    assert_eq!(data.flipped, analysis::flipped(&epoch_rows(3), &rows));
    assert!(!data.flipped.right_to_wrong.is_empty() && !data.flipped.wrong_to_right.is_empty());
    // Shirts 6, 46, 86, 126, 166 are confidently wrong in all four epochs.
    let noise: Vec<(u32, usize)> = data.noise.iter().map(|n| (n.index, n.epochs)).collect();
    assert_eq!(noise, [(6, 4), (46, 4), (86, 4), (126, 4), (166, 4)]);
    let text = format!("{}", draw(&s, 100, 30).backend());
    let acc = format!("accuracy {:.1}%", analysis::accuracy(&rows) * 100.0);
    assert!(text.contains(&acc), "{text}");
}

#[test]
fn a_run_without_a_record_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = on_the_tab(tmp.path(), 100, 30);
    let text = format!("{}", draw(&s, 100, 30).backend());
    assert!(text.contains("no validation record yet"), "{text}");
}

#[test]
fn the_cursor_opens_a_cell_s_images_most_confidently_wrong_first_and_probes_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = recorded_run(tmp.path());
    let mut s = on_the_tab(&run, 100, 30);
    // From (0, 0) to actual Shirt (6), predicted T-shirt (0); the cursor stops at the edges.
    press(&mut s, "hkjjjjjj");
    s.handle_key(code(KeyCode::Left));
    assert_eq!(s.state().validation().cursor(), (6, 0));
    s.handle_key(code(KeyCode::Enter));
    let listed = listed_indices(&s);
    let rows = epoch_rows(4);
    let mut expected: Vec<&Row> = rows
        .iter()
        .filter(|r| (r.label, r.predicted) == (6, 0))
        .collect();
    expected.sort_by(|a, b| b.loss.total_cmp(&a.loss).then(a.index.cmp(&b.index)));
    let expected: Vec<u32> = expected.iter().map(|r| r.index).collect();
    assert_eq!(listed, expected);
    assert!(listed.len() >= 5, "{listed:?}");
    // The page's thumbnails are read as a job; the selected one is then shown.
    s.run_jobs();
    assert!(s.state().validation().thumb(listed[0]).is_some());
    assert!(!s.pictures().val_image.raster.is_empty());
    assert!(!s.pictures().val_thumbs.raster.is_empty());
    let slots: Vec<Slot> = s.layout().slots.iter().map(|&(slot, _)| slot).collect();
    assert_eq!(slots, [Slot::ValImage, Slot::ValThumbs]);
    // Down to the second image, Enter: it is the probe on the Feature maps tab.
    press(&mut s, "j");
    let cmds = s.handle_key(code(KeyCode::Enter));
    let data = s.state().validation().loaded().expect("loaded");
    let path = PathBuf::from(data.path(listed[1]).expect("path"));
    assert_eq!(cmds, vec![Command::Probe { image: path }]);
    assert_eq!(s.state().tab(), Tab::Features);
    // Back on the tab the list is still open; Esc goes back to the matrix.
    press(&mut s, "5");
    assert!(s.state().validation().list().is_some());
    s.handle_key(code(KeyCode::Esc));
    assert!(s.state().validation().list().is_none());
    assert!(s.layout().slots.is_empty());
}

#[test]
fn toggles_list_the_ambiguous_the_flipped_and_label_noise() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = recorded_run(tmp.path());
    let mut s = on_the_tab(&run, 100, 30);
    let rows = epoch_rows(4);
    let in_cell = |cell: (u16, u16)| -> Vec<&Row> {
        rows.iter()
            .filter(|r| (r.label, r.predicted) == cell)
            .collect()
    };
    // On the diagonal cell of Trouser: `a` lists it nearest the boundary first.
    press(&mut s, "jl");
    press(&mut s, "a");
    let list = s.state().validation().list().expect("list").clone();
    assert_eq!((list.cell, list.mode), ((1, 1), ListMode::Ambiguous));
    let margins: Vec<f32> = listed_indices(&s)
        .iter()
        .map(|&i| analysis::margin(&rows[i as usize]))
        .collect();
    assert!(margins.windows(2).all(|w| w[0] <= w[1]), "{margins:?}");
    assert_eq!(margins.len(), in_cell((1, 1)).len());
    // `a` again: back to highest loss first.
    press(&mut s, "a");
    assert_eq!(
        s.state().validation().list().expect("list").mode,
        ListMode::Wrong
    );
    // `f`: only the cell's images whose verdict changed since epoch 3 (here wrong -> right).
    press(&mut s, "f");
    let flipped = analysis::flipped(&epoch_rows(3), &rows);
    let mut listed = listed_indices(&s);
    listed.sort_unstable();
    let expected: Vec<u32> = flipped
        .wrong_to_right
        .iter()
        .copied()
        .filter(|&i| rows[i as usize].label == 1)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(listed, expected);
    // `n` on the Shirt → T-shirt cell: the five mislabelled-looking shirts.
    s.handle_key(code(KeyCode::Esc));
    press(&mut s, "jjjjjhn");
    assert_eq!(s.state().validation().cursor(), (6, 0));
    let mut listed = listed_indices(&s);
    listed.sort_unstable();
    assert_eq!(listed, [6, 46, 86, 126, 166]);
    // An empty list says so and probes nothing.
    s.handle_key(code(KeyCode::Esc));
    press(&mut s, "kn");
    assert!(listed_indices(&s).is_empty());
    assert!(s.handle_key(code(KeyCode::Enter)).is_empty());
    let text = format!("{}", draw(&s, 100, 30).backend());
    assert!(
        text.contains("No image of this cell is probable label noise"),
        "{text}"
    );
}

#[test]
fn brackets_step_through_recorded_epochs_and_a_new_epoch_is_read_when_following() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = recorded_run(tmp.path());
    let mut s = on_the_tab(&run, 100, 30);
    press(&mut s, "[[");
    s.run_jobs();
    let v = s.state().validation();
    assert_eq!(
        (v.chosen(), v.loaded().map(|d| d.epoch)),
        (Some(2), Some(2))
    );
    assert_eq!(v.loaded().and_then(|d| d.previous), Some(1));
    press(&mut s, "[[");
    s.run_jobs();
    assert_eq!(
        s.state()
            .validation()
            .loaded()
            .map(|d| (d.epoch, d.previous)),
        Some((1, None))
    );
    assert!(s.state().message().is_some_and(|m| m.contains("first")));
    press(&mut s, "]]]");
    s.run_jobs();
    let v = s.state().validation();
    assert_eq!((v.chosen(), v.loaded().map(|d| d.epoch)), (None, Some(4)));
    // An epoch's end, while following: the newest is read again, once.
    let mut five = epoch_rows(5);
    five[0] = row(0, 0, 1, 0.99);
    let list_id = validation::read_epoch(&run, 4).expect("epoch 4").list_id;
    validation::write_epoch(
        &run,
        &EpochRecord {
            epoch: 5,
            classes: 10,
            list_id,
            rows: five,
        },
    )
    .expect("epoch 5");
    let mut metrics = crate::ui::bench_data::history()
        .into_iter()
        .find_map(|e| match e {
            Event::Epoch(m) => Some(m),
            _ => None,
        })
        .expect("an epoch event");
    metrics.epoch = 5;
    s.apply(Event::Epoch(metrics));
    s.run_jobs();
    assert_eq!(s.state().validation().loaded().map(|d| d.epoch), Some(5));
    s.apply(Event::Epoch(metrics));
    assert!(s.take_jobs().is_empty());
}

#[test]
fn an_answer_to_an_older_request_is_dropped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = recorded_run(tmp.path());
    let mut s = on_the_tab(&run, 100, 30);
    let old = Want {
        epoch: Some(2),
        newest_known: 0,
    };
    let stale = Done::Record {
        want: old,
        loaded: crate::ui::record::load(&run, old).map(Box::new),
    };
    s.job_done(stale);
    assert_eq!(s.state().validation().loaded().map(|d| d.epoch), Some(4));
}

#[test]
fn snapshots_validation_at_80x24_and_at_a_normal_size() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = recorded_run(tmp.path());
    let mut s = on_the_tab(&run, 80, 24);
    // The cursor on Shirt → T-shirt.
    press(&mut s, "jjjjjj");
    insta::assert_snapshot!("validation_80x24_matrix", draw(&s, 80, 24).backend());
    press(&mut s, "%");
    insta::assert_snapshot!("validation_80x24_percent", draw(&s, 80, 24).backend());
    s.handle_key(code(KeyCode::Enter));
    s.run_jobs();
    insta::assert_snapshot!("validation_80x24_list", draw(&s, 80, 24).backend());
    let mut s = on_the_tab(&run, 120, 40);
    press(&mut s, "jl");
    insta::assert_snapshot!("validation_120x40_matrix", draw(&s, 120, 40).backend());
    press(&mut s, "f");
    s.run_jobs();
    insta::assert_snapshot!("validation_120x40_flipped", draw(&s, 120, 40).backend());
}

#[test]
fn cells_are_shaded_by_the_row_s_share() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = recorded_run(tmp.path());
    let s = on_the_tab(&run, 100, 30);
    let t = draw(&s, 100, 30);
    let buf = t.backend().buffer();
    // Under the tab bar, the header line, the block's border and the column row: Trouser.
    let trouser_row = 5;
    let bgs: HashSet<Color> = (0..100)
        .map(|x| buf[(x, trouser_row)].bg)
        .filter(|c| matches!(c, Color::Rgb(..)))
        .collect();
    // The diagonal and an off-diagonal cell, at least.
    assert!(bgs.len() >= 2, "{bgs:?}");
}
