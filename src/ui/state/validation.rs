//! The Validation tab's part of the state: the epoch of the record shown (or the newest), the
//! cursor on the confusion matrix, a cell's list of images and their thumbnails. The record is
//! read off the event loop: [`AppState::validation_due`] says which epoch to read, `ui::app`
//! runs the read as a job and hands back its outcome as [`Msg::Done`](super::Msg::Done).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::{AppState, Command, Effect, Note, Tab};
use crate::analysis;
use crate::ui::record::{Done, Job, Loaded, Want};
use crate::ui::vocab::ListMode;
use crate::viz::Raster;

/// Thumbnails asked for at once: a page of the list around the selected image.
pub const THUMB_PAGE: usize = 24;
/// Thumbnails kept before they are dropped and read again as needed.
const THUMBS_KEPT: usize = 256;

/// A confusion cell's images as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct CellList {
    /// Actual class, predicted class.
    pub cell: (usize, usize),
    pub mode: ListMode,
    /// Positions in the loaded record's rows, in list order.
    pub items: Vec<usize>,
    pub selected: usize,
}

impl CellList {
    /// The first item of the page of thumbnails the selected image is on.
    #[must_use]
    pub fn page_start(&self) -> usize {
        self.selected / THUMB_PAGE * THUMB_PAGE
    }
}

/// What the Validation tab shows and what the user chose on it.
#[derive(Debug, Default)]
pub struct ValidationView {
    /// The epoch chosen with `[` / `]`; `None` follows the newest.
    chosen: Option<usize>,
    /// The last read asked for (not asked twice).
    asked: Option<Want>,
    loaded: Option<Box<Loaded>>,
    /// Why the last read failed.
    error: Option<String>,
    /// Actual class (row), predicted class (column).
    cursor: (usize, usize),
    percent: bool,
    list: Option<CellList>,
    /// Thumbnails by image index; `None` where the file could not be read.
    thumbs: HashMap<u32, Option<Raster>>,
    thumbs_asked: HashSet<u32>,
    /// Counts changes of the thumbnails and of the list, for the pictures built from them.
    generation: u64,
}

impl ValidationView {
    /// The analysed record on screen.
    #[must_use]
    pub fn loaded(&self) -> Option<&Loaded> {
        self.loaded.as_deref()
    }
    /// Why the record could not be read.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    /// Whether a read is on its way.
    #[must_use]
    pub fn loading(&self) -> bool {
        self.asked.is_some() && self.loaded.is_none() && self.error.is_none()
    }
    /// The epoch chosen with `[` / `]` (`None`: the newest).
    #[must_use]
    pub fn chosen(&self) -> Option<usize> {
        self.chosen
    }
    /// The matrix cell under the cursor: (actual, predicted).
    #[must_use]
    pub fn cursor(&self) -> (usize, usize) {
        self.cursor
    }
    /// Whether cells show row percentages instead of counts.
    #[must_use]
    pub fn percent(&self) -> bool {
        self.percent
    }
    /// The open cell's images.
    #[must_use]
    pub fn list(&self) -> Option<&CellList> {
        self.list.as_ref()
    }
    /// The thumbnail of image `index`, once read.
    #[must_use]
    pub fn thumb(&self, index: u32) -> Option<&Raster> {
        self.thumbs.get(&index)?.as_ref()
    }
    /// Changes whenever the list or its thumbnails do.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// The row of the record selected in the list.
    #[must_use]
    pub fn selected_row(&self) -> Option<&crate::run::validation::Row> {
        let list = self.list.as_ref()?;
        let at = *list.items.get(list.selected)?;
        self.loaded.as_ref()?.rows.get(at)
    }
}

/// The rows of `data` in cell `cell`, listed as `mode` says (positions in `data.rows`).
#[must_use]
pub fn cell_items(data: &Loaded, cell: (usize, usize), mode: ListMode) -> Vec<usize> {
    let mut items: Vec<usize> = data
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| usize::from(r.label) == cell.0 && usize::from(r.predicted) == cell.1)
        .map(|(i, _)| i)
        .collect();
    let rows = &data.rows;
    let by_loss = |a: &usize, b: &usize| {
        rows[*b]
            .loss
            .total_cmp(&rows[*a].loss)
            .then(rows[*a].index.cmp(&rows[*b].index))
    };
    match mode {
        ListMode::Wrong => items.sort_by(by_loss),
        ListMode::Ambiguous => items.sort_by(|a, b| {
            analysis::margin(&rows[*a])
                .total_cmp(&analysis::margin(&rows[*b]))
                .then(rows[*a].index.cmp(&rows[*b].index))
        }),
        ListMode::Flipped => {
            let f = &data.flipped;
            items.retain(|&i| {
                let index = rows[i].index;
                f.right_to_wrong.binary_search(&index).is_ok()
                    || f.wrong_to_right.binary_search(&index).is_ok()
            });
            items.sort_by(by_loss);
        }
        ListMode::Noise => {
            let streak: HashMap<u32, usize> =
                data.noise.iter().map(|n| (n.index, n.epochs)).collect();
            items.retain(|&i| streak.contains_key(&rows[i].index));
            items.sort_by(|a, b| {
                streak[&rows[*b].index]
                    .cmp(&streak[&rows[*a].index])
                    .then(by_loss(a, b))
            });
        }
    }
    items
}

impl AppState {
    /// The Validation tab's state.
    #[must_use]
    pub fn validation(&self) -> &ValidationView {
        &self.validation
    }

    /// The record's epoch to read now, if the Validation tab is shown and it was not asked for
    /// yet: the chosen epoch, or the newest (asked again when a new epoch ends).
    #[must_use]
    pub fn validation_due(&self) -> Option<Want> {
        if self.tab != Tab::Validation {
            return None;
        }
        let newest_known = self.epochs.iter().map(|e| e.epoch).max().unwrap_or(0);
        let want = Want {
            epoch: self.validation.chosen,
            newest_known,
        };
        (self.validation.asked != Some(want)).then_some(want)
    }

    /// A read of the record was started.
    pub(super) fn validation_asked(&mut self, want: Want) -> Vec<Effect> {
        self.validation.asked = Some(want);
        Vec::new()
    }

    /// A job's outcome: the record read, or thumbnails.
    pub(super) fn job_done(&mut self, done: Done) -> Vec<Effect> {
        match done {
            Done::Record { want, loaded } => {
                if self.validation.asked != Some(want) {
                    // An answer to an older request: a newer one is on its way.
                    return Vec::new();
                }
                match loaded {
                    Ok(data) => self.take_record(data),
                    Err(e) => {
                        self.validation.error = Some(e);
                        Vec::new()
                    }
                }
            }
            Done::Thumbs(thumbs) => {
                let v = &mut self.validation;
                for (i, t) in thumbs {
                    v.thumbs.insert(i, t);
                }
                v.generation += 1;
                Vec::new()
            }
        }
    }

    fn take_record(&mut self, data: Box<Loaded>) -> Vec<Effect> {
        let v = &mut self.validation;
        let n = data.classes.len();
        v.cursor = (
            v.cursor.0.min(n.saturating_sub(1)),
            v.cursor.1.min(n.saturating_sub(1)),
        );
        if v.loaded.as_ref().is_some_and(|old| old.paths != data.paths) {
            v.thumbs.clear();
            v.thumbs_asked.clear();
        }
        v.error = None;
        let list = v.list.take();
        v.loaded = Some(data);
        match list {
            Some(old) => {
                // The same cell and order in the new epoch, at the same place where it can be.
                let selected = old.selected;
                self.open_list(old.cell, old.mode, selected)
            }
            None => Vec::new(),
        }
    }

    /// List the images of `cell` as `mode` says, `selected` (clamped) selected.
    fn open_list(&mut self, cell: (usize, usize), mode: ListMode, selected: usize) -> Vec<Effect> {
        let Some(data) = self.validation.loaded.as_deref() else {
            self.tell("the validation record is not read yet");
            return Vec::new();
        };
        let items = cell_items(data, cell, mode);
        let selected = selected.min(items.len().saturating_sub(1));
        self.validation.list = Some(CellList {
            cell,
            mode,
            items,
            selected,
        });
        self.validation.generation += 1;
        self.thumbs_wanted()
    }

    /// Ask for the thumbnails of the selected image's page that are not read yet.
    fn thumbs_wanted(&mut self) -> Vec<Effect> {
        let v = &mut self.validation;
        let (Some(list), Some(data)) = (v.list.as_ref(), v.loaded.as_deref()) else {
            return Vec::new();
        };
        if v.thumbs.len() > THUMBS_KEPT {
            v.thumbs.clear();
            v.thumbs_asked.clear();
        }
        let start = list.page_start();
        let images: Vec<(u32, String)> = list
            .items
            .iter()
            .skip(start)
            .take(THUMB_PAGE)
            .filter_map(|&at| {
                let index = data.rows.get(at)?.index;
                Some((index, data.path(index)?.to_string()))
            })
            .filter(|(i, _)| !v.thumbs_asked.contains(i))
            .collect();
        if images.is_empty() {
            return Vec::new();
        }
        v.thumbs_asked.extend(images.iter().map(|(i, _)| *i));
        vec![Effect::Job(Job::Thumbs { images })]
    }

    /// Arrows: the cursor over the matrix, or the selection in a cell's list.
    pub(super) fn validation_move(&mut self, rows: i8, cols: i8) -> Vec<Effect> {
        let v = &mut self.validation;
        if let Some(list) = v.list.as_mut() {
            let n = list.items.len();
            list.selected = super::step(list.selected, isize::from(rows), n);
            v.generation += 1;
            return self.thumbs_wanted();
        }
        let n = v.loaded.as_ref().map_or(0, |l| l.classes.len());
        v.cursor = (
            super::step(v.cursor.0, isize::from(rows), n),
            super::step(v.cursor.1, isize::from(cols), n),
        );
        Vec::new()
    }

    /// Enter: list the cursor cell's images; on an image, probe it on the Feature maps tab.
    pub(super) fn validation_open(&mut self) -> Vec<Effect> {
        if self.validation.list.is_none() {
            let cell = self.validation.cursor;
            return self.open_list(cell, ListMode::Wrong, 0);
        }
        let path = self
            .validation
            .selected_row()
            .and_then(|r| self.validation.loaded.as_ref()?.path(r.index))
            .map(str::to_string);
        let Some(path) = path else {
            self.tell("no image in this list");
            return Vec::new();
        };
        self.tab = Tab::Features;
        self.tell(Note::Probing(path.clone()));
        vec![Effect::Command(Command::Probe {
            image: PathBuf::from(path),
        })]
    }

    /// b: on an image of a cell's list, compare the probe with it on the Feature maps tab.
    pub(super) fn validation_compare(&mut self) -> Vec<Effect> {
        let path = self
            .validation
            .list
            .as_ref()
            .and(self.validation.selected_row())
            .and_then(|r| self.validation.loaded.as_ref()?.path(r.index))
            .map(str::to_string);
        let Some(path) = path else {
            self.tell("b compares with an image: Enter lists a cell's images first");
            return Vec::new();
        };
        self.tab = Tab::Features;
        self.compare_with(PathBuf::from(path))
    }

    /// Esc: from a cell's images back to the matrix.
    pub(super) fn validation_back(&mut self) {
        if self.validation.list.take().is_some() {
            self.validation.generation += 1;
        }
    }

    /// a / f / n: list the cell's images that way; the same key again: highest loss first.
    pub(super) fn validation_list_mode(&mut self, mode: ListMode) -> Vec<Effect> {
        let (cell, mode) = match self.validation.list.as_ref() {
            Some(l) if l.mode == mode => (l.cell, ListMode::Wrong),
            Some(l) => (l.cell, mode),
            None => (self.validation.cursor, mode),
        };
        let effects = self.open_list(cell, mode, 0);
        if let Some(data) = self.validation.loaded.as_deref()
            && mode == ListMode::Flipped
            && data.previous.is_none()
        {
            let epoch = data.epoch;
            self.tell(format!(
                "no flips to show: epoch {epoch} has no previous epoch's record to compare with"
            ));
        }
        effects
    }

    pub(super) fn validation_toggle_percent(&mut self) {
        self.validation.percent = !self.validation.percent;
    }

    /// `[` / `]`: the previous or next recorded epoch; past the newest, follow training.
    pub(super) fn validation_step_epoch(&mut self, forward: bool) {
        let Some(data) = self.validation.loaded.as_deref() else {
            self.tell("the validation record is not read yet");
            return;
        };
        let from = self.validation.chosen.unwrap_or(data.epoch);
        let newest = data.recorded.last().copied().unwrap_or(data.epoch);
        let target = if forward {
            data.recorded.iter().copied().find(|&e| e > from)
        } else {
            data.recorded.iter().copied().rev().find(|&e| e < from)
        };
        match target {
            None if !forward => self.tell(format!("epoch {from} is the first recorded")),
            Some(e) if e < newest => {
                self.validation.chosen = Some(e);
                self.tell(format!(
                    "validation record of epoch {e} ( ] steps forward, past {newest} follows training)"
                ));
            }
            _ => {
                self.validation.chosen = None;
                self.tell("following the newest epoch");
            }
        }
    }
}
