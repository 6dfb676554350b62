//! The validation record as the Validation tab shows it: one epoch read from the run directory
//! and analysed ([`Loaded`]), and thumbnails of its images. Both read files, so `ui::app` runs
//! them as [`Job`]s on tokio's blocking pool, never on the event loop; their outcomes come back
//! as [`Done`] and go into the state as a message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::analysis::{self, ClassMetrics, Flipped, Noisy};
use crate::run::validation::{self, EpochRecord, ImageList, Row};
use crate::viz::Raster;

/// How long a load of the newest epoch waits for its file: the record is written off the
/// training thread and can land a little after the epoch's event.
const NEWEST_WAIT: Duration = Duration::from_secs(3);
/// How often that wait looks.
const NEWEST_POLL: Duration = Duration::from_millis(100);
/// The longest side of a thumbnail, in pixels.
pub const THUMB_PX: u32 = 96;

/// Which epoch's record to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Want {
    /// An epoch, or the newest recorded.
    pub epoch: Option<usize>,
    /// The newest epoch the screen knows of (its event came): the newest file waits for it a
    /// little. Also tells requests apart, so a new epoch asks again.
    pub newest_known: usize,
}

/// One epoch of the record, analysed.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub epoch: usize,
    /// Every epoch with a record, in order.
    pub recorded: Vec<usize>,
    pub classes: Vec<String>,
    /// The image paths, by the rows' `index`.
    pub paths: Vec<String>,
    pub rows: Vec<Row>,
    /// Actual (row) × predicted (column) counts.
    pub confusion: Vec<Vec<u64>>,
    pub percent: Vec<Vec<f64>>,
    pub metrics: Vec<ClassMetrics>,
    pub accuracy: f64,
    /// The epoch compared for flips, when its record could be read.
    pub previous: Option<usize>,
    pub flipped: Flipped,
    pub noise: Vec<Noisy>,
}

impl Loaded {
    /// The analysis of `rows` over `list` (the epoch's own list); `history` holds the earlier
    /// epochs, oldest first, re-indexed onto `list` (the previous epoch last).
    #[must_use]
    pub fn analyse(
        epoch: usize,
        recorded: Vec<usize>,
        list: &ImageList,
        rows: Vec<Row>,
        history: &[(usize, Vec<Row>)],
    ) -> Self {
        let n = list.classes.len();
        let confusion = analysis::confusion(&rows, n);
        let percent = analysis::row_percentages(&confusion);
        let metrics = analysis::metrics(&confusion);
        let accuracy = analysis::accuracy(&rows);
        let previous = history.last().filter(|(e, _)| e + 1 == epoch);
        let flipped =
            previous.map_or_else(Flipped::default, |(_, prev)| analysis::flipped(prev, &rows));
        let mut streak: Vec<&[Row]> = history.iter().map(|(_, r)| r.as_slice()).collect();
        streak.push(&rows);
        let noise = analysis::label_noise(&streak);
        Self {
            epoch,
            recorded,
            classes: list.classes.clone(),
            paths: list.images.iter().map(|i| i.path.clone()).collect(),
            confusion,
            percent,
            metrics,
            accuracy,
            previous: previous.map(|(e, _)| *e),
            flipped,
            noise,
            rows,
        }
    }

    /// The name of class `c` (its number when the list has no name for it).
    #[must_use]
    pub fn class(&self, c: usize) -> String {
        self.classes
            .get(c)
            .cloned()
            .unwrap_or_else(|| format!("class {c}"))
    }

    /// The path of image `index`.
    #[must_use]
    pub fn path(&self, index: u32) -> Option<&str> {
        self.paths.get(index as usize).map(String::as_str)
    }
}

/// Work for the blocking pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Read and analyse an epoch of the record of the run in `run`.
    Record { run: PathBuf, want: Want },
    /// Decode thumbnails of these images (image index, path).
    Thumbs { images: Vec<(u32, String)> },
}

/// What a [`Job`] found.
#[derive(Debug, Clone)]
pub enum Done {
    Record {
        want: Want,
        loaded: Result<Box<Loaded>, String>,
    },
    /// A thumbnail per image; `None` where the file could not be read.
    Thumbs(Vec<(u32, Option<Raster>)>),
}

impl Job {
    /// Do the work (reads files: off the event loop).
    #[must_use]
    pub fn run(self) -> Done {
        match self {
            Job::Record { run, want } => Done::Record {
                want,
                loaded: load(&run, want).map(Box::new),
            },
            Job::Thumbs { images } => Done::Thumbs(
                images
                    .into_iter()
                    .map(|(i, path)| (i, thumbnail(Path::new(&path))))
                    .collect(),
            ),
        }
    }
}

/// Rows of `record` (indexing `own`) re-indexed onto `list` by path.
fn onto(
    record: EpochRecord,
    own: &ImageList,
    list: &ImageList,
    at: &HashMap<&str, u32>,
) -> Vec<Row> {
    if own == list {
        return record.rows;
    }
    record
        .rows
        .into_iter()
        .filter_map(|r| {
            let path = own.images.get(r.index as usize)?.path.as_str();
            Some(Row {
                index: *at.get(path)?,
                ..r
            })
        })
        .collect()
}

/// Read the record's epoch `want` (or the newest) and analyse it, with the previous epochs
/// that flips and label noise need.
pub fn load(run: &Path, want: Want) -> Result<Loaded, String> {
    let mut recorded = validation::epochs(run);
    if want.epoch.is_none() && want.newest_known > 0 {
        let start = Instant::now();
        while !recorded.contains(&want.newest_known) && start.elapsed() < NEWEST_WAIT {
            std::thread::sleep(NEWEST_POLL);
            recorded = validation::epochs(run);
        }
    }
    let Some(&newest) = recorded.last() else {
        return Err(format!(
            "no validation record yet in {}: it is written at the end of each epoch",
            validation::dir(run).display()
        ));
    };
    let epoch = want.epoch.map_or(newest, |e| e.clamp(recorded[0], newest));
    let record = validation::read_epoch(run, epoch).map_err(|e| e.to_string())?;
    let list = validation::read_list(run, record.list_id).map_err(|e| e.to_string())?;
    let at: HashMap<&str, u32> = list
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.path.as_str(), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let is_candidate = |r: &Row| !r.correct() && r.confidence() >= analysis::NOISE_PROBABILITY;
    // Earlier epochs, newest first while read: always the previous one (flips), then back for
    // as long as some image may still be in a streak of confidently wrong epochs.
    let mut candidates: Vec<u32> = record
        .rows
        .iter()
        .filter(|r| is_candidate(r))
        .map(|r| r.index)
        .collect();
    let mut lists: HashMap<u64, ImageList> = HashMap::new();
    let mut history: Vec<(usize, Vec<Row>)> = Vec::new();
    for e in (1..epoch).rev() {
        if !history.is_empty() && candidates.is_empty() {
            break;
        }
        let Ok(older) = validation::read_epoch(run, e) else {
            break;
        };
        let own = if older.list_id == record.list_id {
            &list
        } else {
            match lists.entry(older.list_id) {
                std::collections::hash_map::Entry::Occupied(o) => &*o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let Ok(l) = validation::read_list(run, older.list_id) else {
                        break;
                    };
                    &*v.insert(l)
                }
            }
        };
        let rows = onto(older, own, &list, &at);
        let wrong: std::collections::HashSet<u32> = rows
            .iter()
            .filter(|r| is_candidate(r))
            .map(|r| r.index)
            .collect();
        candidates.retain(|i| wrong.contains(i));
        history.push((e, rows));
    }
    history.reverse();
    Ok(Loaded::analyse(
        epoch,
        recorded,
        &list,
        record.rows,
        &history,
    ))
}

/// A thumbnail of the image at `path`, its longer side at most [`THUMB_PX`].
#[must_use]
pub fn thumbnail(path: &Path) -> Option<Raster> {
    let img = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .decode()
        .ok()?;
    let small = img.thumbnail(THUMB_PX, THUMB_PX).to_rgb8();
    let (w, h) = (small.width() as usize, small.height() as usize);
    Some(Raster::from_fn(w, h, |x, y| {
        small.get_pixel(x as u32, y as u32).0
    }))
}

/// Gaps between thumbnails, and behind missing ones.
const SHEET_BACKGROUND: crate::viz::Rgb = [16, 16, 16];
/// A thumbnail that could not be read (or is not read yet).
const MISSING: crate::viz::Rgb = [60, 60, 60];
/// The frame of the selected thumbnail.
const SELECTED: crate::viz::Rgb = [255, 255, 255];

/// Thumbnails in a grid that fills `fit` (pixels) best, each fitted into a square tile, the
/// `selected` one framed.
#[must_use]
pub fn thumbnail_sheet(thumbs: &[Option<&Raster>], selected: usize, fit: (usize, usize)) -> Raster {
    let n = thumbs.len();
    if n == 0 || fit.0 < 4 || fit.1 < 4 {
        return Raster::default();
    }
    let gap = 1;
    // The biggest square tile that fits n of them.
    let (columns, side) = (1..=n)
        .map(|c| {
            let rows = n.div_ceil(c);
            let side = ((fit.0 - gap) / c)
                .min((fit.1 - gap) / rows)
                .saturating_sub(gap);
            (c, side)
        })
        .max_by_key(|&(c, side)| (side, std::cmp::Reverse(c)))
        .unwrap_or((1, 1));
    let side = side.clamp(2, THUMB_PX as usize);
    let tiles: Vec<Raster> = thumbs
        .iter()
        .map(|t| {
            let mut tile = Raster::new(side, side, SHEET_BACKGROUND);
            match t {
                Some(t) if !t.is_empty() => {
                    let (w, h) = crate::viz::raster::fit_size(t.width(), t.height(), side, side);
                    let small = t.resized(w, h);
                    tile.blit(&small, (side - w) / 2, (side - h) / 2);
                }
                _ => tile = Raster::new(side, side, MISSING),
            }
            tile
        })
        .collect();
    crate::viz::raster::tile(&tiles, columns, gap, SHEET_BACKGROUND, |i| {
        (i == selected).then_some(SELECTED)
    })
}
