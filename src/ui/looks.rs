//! What each filter looks for, on the Filters tab: the activation maximisation of the shown conv
//! layer ([`crate::infer::maximize`]) at the checkpoint the tab shows, run as a [`Job`] on
//! tokio's blocking pool (never on the event loop, never on the training thread). [`LooksView`]
//! keeps the one job that answers what the screen wants now: a job for anything else (another
//! layer, another epoch, the mode off) is cancelled through the flag the optimiser checks before
//! every step, and its answer, should it still come, is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crate::infer::{maximize, restore};
use crate::model::maximize::{Settings, Tier};
use crate::run::RunDir;
use crate::viz::Raster;
use crate::viz::pictures::{BACKGROUND, SELECTED};
use crate::viz::raster::{self, Grid};

/// The seed of every random start: `convscope explain --maximize` uses the same by default, so
/// the command line and the screen share the run's cache.
pub const SEED: u64 = 0;

/// What the Filters tab wants maximised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Want {
    /// The epoch of the filters shown: its epoch-end checkpoint is used.
    pub epoch: usize,
    /// The conv layer's Keras name (`conv2d_2`).
    pub layer: String,
    pub tier: Tier,
}

/// A job's progress, and the flag that cancels it; shared by the job and the state.
#[derive(Debug, Default)]
pub struct Progress {
    cancel: AtomicBool,
    done: AtomicUsize,
    steps: AtomicUsize,
}

impl Progress {
    /// Ask the job to stop (it stops before its next step).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Whether the job was asked to stop.
    #[must_use]
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Steps done and steps in all (`(0, 0)` until the optimisation starts).
    #[must_use]
    pub fn steps(&self) -> (usize, usize) {
        (
            self.done.load(Ordering::Relaxed),
            self.steps.load(Ordering::Relaxed),
        )
    }

    fn set(&self, done: usize, steps: usize) {
        self.done.store(done, Ordering::Relaxed);
        self.steps.store(steps, Ordering::Relaxed);
    }
}

/// One maximisation to run off the event loop.
#[derive(Debug, Clone)]
pub struct Job {
    pub run: PathBuf,
    pub want: Want,
    pub progress: Arc<Progress>,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.run == other.run
            && self.want == other.want
            && Arc::ptr_eq(&self.progress, &other.progress)
    }
}

/// One filter's optimised image.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterLook {
    pub filter: usize,
    pub picture: Raster,
    /// The filter's mean activation on the random start image.
    pub seed_activation: f32,
    /// The same on the optimised image.
    pub activation: f32,
    /// Its strongest validation activations' patches (the receptive field around each, cut
    /// from the image as the network saw it), strongest first; empty when the epoch's unit
    /// health has none.
    pub patches: Vec<Raster>,
}

/// A layer's optimised images.
#[derive(Debug, Clone, PartialEq)]
pub struct Looks {
    /// The checkpoint used (`epoch-0003`).
    pub checkpoint: String,
    /// One per filter, in filter order.
    pub filters: Vec<FilterLook>,
    /// Every image came from the run's cache.
    pub cached: bool,
    /// Seconds the job took (reading the checkpoint included).
    pub seconds: f64,
    /// Why the new images could not be cached, when they could not.
    pub cache_note: Option<String>,
    /// Why there are no validation patches, when there are none.
    pub patches_note: Option<String>,
}

/// What a [`Job`] found.
#[derive(Debug, Clone)]
pub struct Done {
    pub want: Want,
    pub looks: Result<Arc<Looks>, String>,
    /// The job's progress: tells this job's answer from an earlier job's for the same want.
    pub progress: Arc<Progress>,
}

impl Job {
    /// Restore the checkpoint and optimise (or read the cache): seconds to minutes of CPU, so
    /// on the blocking pool only.
    #[must_use]
    pub fn run(self) -> Done {
        let looks = compute(&self.run, &self.want, &self.progress).map(Arc::new);
        Done {
            want: self.want,
            looks,
            progress: self.progress,
        }
    }
}

fn compute(run: &Path, want: &Want, progress: &Progress) -> Result<Looks, String> {
    let start = Instant::now();
    let dir = RunDir::open(run).map_err(|e| e.to_string())?;
    let restored = restore::load(&dir, Some(want.epoch)).map_err(|e| e.to_string())?;
    let settings = Settings::new(want.tier, SEED);
    let outcome = maximize::explain(
        &dir,
        &restored,
        &want.layer,
        None,
        &settings,
        &progress.cancel,
        &mut |done, steps| progress.set(done, steps),
    )
    .map_err(|e| e.to_string())?;
    let (mut patches, patches_note) = match top_patches(run, &restored, want) {
        Ok(p) => (p, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    Ok(Looks {
        checkpoint: restored.checkpoint.name.clone(),
        cached: outcome.images.iter().all(|i| i.cached),
        filters: outcome
            .images
            .into_iter()
            .map(|i| FilterLook {
                filter: i.filter,
                picture: i.picture,
                seed_activation: i.seed_activation,
                activation: i.activation,
                patches: patches
                    .get_mut(i.filter)
                    .map(std::mem::take)
                    .unwrap_or_default(),
            })
            .collect(),
        seconds: start.elapsed().as_secs_f64(),
        cache_note: outcome.cache_note,
        patches_note,
    })
}

/// Per filter of `want`'s layer, the patches of its strongest validation activations (stored
/// with the epoch's unit health): the receptive field around each, clamped at the borders,
/// cut from the validation image as the network saw it (decoded and resized to its input).
fn top_patches(
    run: &Path,
    restored: &restore::Restored,
    want: &Want,
) -> Result<Vec<Vec<Raster>>, String> {
    use crate::run::{health, validation};
    let h = health::read(run, want.epoch).map_err(|e| e.to_string())?;
    let layer = h
        .layer(&want.layer)
        .filter(|l| !l.top.is_empty())
        .ok_or_else(|| {
            format!(
                "no top-9 patches: epoch {}'s unit health has none (a run trained before they \
                 were gathered)",
                want.epoch
            )
        })?;
    let convs = maximize::conv_layers(restored).map_err(|e| e.to_string())?;
    let step = convs
        .iter()
        .find(|(name, ..)| *name == want.layer)
        .map(|(_, step, _)| *step)
        .ok_or_else(|| format!("no conv layer {}", want.layer))?;
    let [fy, fx] = maximize::receptive_field(&restored.net, step)
        .ok_or_else(|| format!("{} has no receptive field", want.layer))?;
    let record = validation::read_epoch(run, want.epoch).map_err(|e| e.to_string())?;
    let list = validation::read_list(run, record.list_id).map_err(|e| e.to_string())?;
    let mut decoded: std::collections::HashMap<u32, Option<crate::data::Decoded>> =
        std::collections::HashMap::new();
    let mut out = Vec::with_capacity(layer.top.len());
    for top in &layer.top {
        let mut patches = Vec::with_capacity(top.len());
        for t in top {
            let image = decoded.entry(t.image).or_insert_with(|| {
                let path = &list.images.get(t.image as usize)?.path;
                crate::data::decode_resized(Path::new(path), &restored.cfg).ok()
            });
            let Some(d) = image.as_ref() else {
                continue;
            };
            patches.push(field_patch(d, [fy, fx], t.y as usize, t.x as usize));
        }
        out.push(patches);
    }
    Ok(out)
}

/// The receptive field `[rows, columns]` of the unit at (`y`, `x`), clamped at the borders, cut
/// from `d` (a grey image drawn grey).
fn field_patch(
    d: &crate::data::Decoded,
    [fy, fx]: [maximize::Field; 2],
    y: usize,
    x: usize,
) -> Raster {
    let rows = fy.span(y, d.height);
    let cols = fx.span(x, d.width);
    let c = d.channels.max(1);
    Raster::from_fn(cols.len(), rows.len(), |px, py| {
        let at = ((rows.start + py) * d.width + cols.start + px) * c;
        let ch = |k: usize| d.pixels.get(at + k.min(c - 1)).copied().unwrap_or(0);
        [ch(0), ch(1), ch(2)]
    })
}

/// The Filters tab's "what it looks for" mode: the tier shown (none: raw weights), the job
/// running and the answer shown.
#[derive(Debug, Default)]
pub struct LooksView {
    /// The tier shown; `None`: the raw weights.
    pub tier: Option<Tier>,
    running: Option<(Want, Arc<Progress>)>,
    shown: Option<Done>,
    /// Counts the answers taken in (pictures are rebuilt when it changes).
    generation: u64,
}

impl Drop for LooksView {
    /// A job still running stops: nobody will look at its answer.
    fn drop(&mut self) {
        if let Some((_, p)) = &self.running {
            p.cancel();
        }
    }
}

impl LooksView {
    /// Raw weights → quick tier → raw weights (`w`).
    pub fn toggle(&mut self) {
        self.tier = match self.tier {
            None => Some(Tier::Quick),
            Some(_) => None,
        };
    }

    /// The regularised tier, or back to the quick one (`W`).
    pub fn toggle_regularised(&mut self) {
        self.tier = Some(match self.tier {
            Some(Tier::Regularised) => Tier::Quick,
            _ => Tier::Regularised,
        });
    }

    /// Whether [`LooksView::sync`] has something to do for `want` (what the screen wants now).
    #[must_use]
    pub fn due(&self, want: Option<&Want>) -> bool {
        let running = self.running.as_ref().map(|(w, _)| w);
        match want {
            None => running.is_some(),
            Some(w) => running != Some(w) && self.shown.as_ref().map(|d| &d.want) != Some(w),
        }
    }

    /// Follow `want`: a job for anything else is cancelled; a job for `want` is returned when
    /// it is neither running nor answered.
    pub fn sync(&mut self, want: Option<Want>, run: &Path) -> Option<Job> {
        if self.running.as_ref().map(|(w, _)| w) != want.as_ref()
            && let Some((_, old)) = self.running.take()
        {
            old.cancel();
        }
        let want = want?;
        if self.running.is_some() || self.shown.as_ref().is_some_and(|d| d.want == want) {
            return None;
        }
        let progress = Arc::new(Progress::default());
        self.running = Some((want.clone(), Arc::clone(&progress)));
        Some(Job {
            run: run.to_path_buf(),
            want,
            progress,
        })
    }

    /// Take in a job's answer; one that no longer answers the job running (a stale one) is
    /// dropped: returns whether it was taken.
    pub fn take(&mut self, done: Done) -> bool {
        let current = self
            .running
            .as_ref()
            .is_some_and(|(w, p)| w == &done.want && Arc::ptr_eq(p, &done.progress));
        if !current {
            return false;
        }
        self.running = None;
        self.shown = Some(done);
        self.generation += 1;
        true
    }

    /// The job running: what it makes and how far it is.
    #[must_use]
    pub fn running(&self) -> Option<(&Want, &Progress)> {
        self.running.as_ref().map(|(w, p)| (w, p.as_ref()))
    }

    /// The answer for `want`, when it came.
    #[must_use]
    pub fn answer(&self, want: &Want) -> Option<&Result<Arc<Looks>, String>> {
        self.shown
            .as_ref()
            .filter(|d| &d.want == want)
            .map(|d| &d.looks)
    }

    /// Counts the answers taken in.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// The gap between tiles of the grid, in pixels.
const GAP: usize = 2;
/// The smallest tile side the grid shrinks images to before it pages them.
const MIN_TILE: usize = 8;

/// How the optimised images of `looks` tile a `fit` pixel box (a page of them where they do
/// not all fit), the page holding `selected`.
#[must_use]
pub fn grid_geometry(looks: &Looks, fit: (usize, usize), selected: usize) -> Grid {
    let (w, h) = looks
        .filters
        .first()
        .map_or((1, 1), |f| (f.picture.width(), f.picture.height()));
    raster::layout(
        looks.filters.len(),
        w,
        h,
        GAP,
        fit,
        selected,
        Some(MIN_TILE),
    )
}

/// The optimised images tiled to fill `fit`, the selected filter framed.
#[must_use]
pub fn grid(looks: &Looks, fit: (usize, usize), selected: usize) -> Raster {
    let g = grid_geometry(looks, fit, selected);
    let tiles: Vec<Raster> = looks.filters[g.first..g.first + g.count]
        .iter()
        .map(|f| f.picture.resized(g.tile_w, g.tile_h))
        .collect();
    raster::tile(&tiles, g.columns, g.gap, BACKGROUND, |i| {
        (g.first + i == selected).then_some(SELECTED)
    })
}

/// The selected filter's image as large as `fit` allows, beside its validation patches in a
/// 3 × 3 grid (strongest first) when it has them.
#[must_use]
pub fn zoom(looks: &Looks, fit: (usize, usize), selected: usize) -> Raster {
    let Some(f) = looks.filters.get(selected) else {
        return Raster::default();
    };
    let image_fit = if f.patches.is_empty() {
        fit
    } else {
        (fit.0.saturating_sub(GAP) / 2, fit.1)
    };
    let (w, h) = f.picture.fit_size(image_fit.0, image_fit.1);
    if w == 0 || h == 0 {
        return Raster::default();
    }
    let image = f.picture.resized(w, h);
    if f.patches.is_empty() {
        return image;
    }
    let room = (fit.0.saturating_sub(w + GAP), fit.1);
    let side = ((room.0.saturating_sub(4 * GAP)) / 3)
        .min(room.1.saturating_sub(4 * GAP) / 3)
        .max(2);
    let tiles: Vec<Raster> = f
        .patches
        .iter()
        .map(|p| {
            let mut tile = Raster::new(side, side, BACKGROUND);
            let (pw, ph) = raster::fit_size(p.width(), p.height(), side, side);
            if pw > 0 && ph > 0 {
                tile.blit(&p.resized(pw, ph), (side - pw) / 2, (side - ph) / 2);
            }
            tile
        })
        .collect();
    let sheet = raster::tile(&tiles, 3, GAP, BACKGROUND, |_| None);
    let mut out = Raster::new(w + GAP + sheet.width(), h.max(sheet.height()), BACKGROUND);
    out.blit(&image, 0, 0);
    out.blit(&sheet, w + GAP, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(layer: &str, epoch: usize) -> Want {
        Want {
            epoch,
            layer: layer.into(),
            tier: Tier::Quick,
        }
    }

    fn answer(job: &Job, filters: usize) -> Done {
        let want = &job.want;
        Done {
            want: want.clone(),
            progress: Arc::clone(&job.progress),
            looks: Ok(Arc::new(Looks {
                checkpoint: format!("epoch-{:04}", want.epoch),
                filters: (0..filters)
                    .map(|filter| FilterLook {
                        filter,
                        picture: Raster::new(6, 6, [filter as u8, 0, 0]),
                        seed_activation: 0.0,
                        activation: 1.0,
                        patches: if filter == 3 {
                            vec![Raster::new(4, 5, [9, 9, 9]); 9]
                        } else {
                            Vec::new()
                        },
                    })
                    .collect(),
                cached: false,
                seconds: 0.0,
                cache_note: None,
                patches_note: None,
            })),
        }
    }

    #[test]
    fn a_new_layer_cancels_the_running_job_and_its_late_answer_is_dropped() {
        let run = Path::new("/nowhere");
        let mut view = LooksView::default();
        let a = want("conv2d", 3);
        let b = want("conv2d_1", 3);
        assert!(view.due(Some(&a)));
        let job_a = view.sync(Some(a.clone()), run).expect("a job for conv2d");
        assert!(!job_a.progress.cancelled());
        // Asking again for the same layer starts nothing.
        assert!(!view.due(Some(&a)));
        assert!(view.sync(Some(a.clone()), run).is_none());
        // Another layer: the first job is cancelled, a second one starts.
        let job_b = view.sync(Some(b.clone()), run).expect("a job for conv2d_1");
        assert!(job_a.progress.cancelled());
        assert!(!job_b.progress.cancelled());
        // The first job's answer comes late: dropped.
        assert!(!view.take(answer(&job_a, 4)));
        assert!(view.answer(&a).is_none());
        assert_eq!(view.generation(), 0);
        // The second one's is taken.
        assert!(view.take(answer(&job_b, 8)));
        let shown = view
            .answer(&b)
            .expect("an answer")
            .as_ref()
            .expect("images");
        assert_eq!(shown.filters.len(), 8);
        assert_eq!(view.generation(), 1);
        assert!(view.running().is_none());
        // Back to the first layer asks again; back to the second one is the answer shown.
        assert!(view.due(Some(&a)));
    }

    #[test]
    fn another_epoch_and_the_mode_off_cancel_too() {
        let run = Path::new("/nowhere");
        let mut view = LooksView::default();
        let job = view.sync(Some(want("conv2d", 3)), run).expect("a job");
        let next = view.sync(Some(want("conv2d", 4)), run).expect("a job");
        assert!(job.progress.cancelled());
        assert!(view.due(None));
        assert!(view.sync(None, run).is_none());
        assert!(next.progress.cancelled());
        assert!(view.running().is_none());
        assert!(!view.due(None));
        // On again for epoch 4: a new job; the cancelled one's answer for the same epoch
        // comes first and is dropped, the new one's is taken.
        let again = view.sync(Some(want("conv2d", 4)), run).expect("a job");
        assert!(!view.take(answer(&next, 2)));
        assert!(view.take(answer(&again, 2)));
    }

    #[test]
    fn dropping_the_view_cancels_its_job() {
        let mut view = LooksView::default();
        let job = view
            .sync(Some(want("conv2d", 1)), Path::new("/nowhere"))
            .expect("a job");
        drop(view);
        assert!(job.progress.cancelled());
    }

    #[test]
    fn the_grid_frames_the_selected_filter_and_pages_what_does_not_fit() {
        let job = LooksView::default()
            .sync(Some(want("conv2d", 1)), Path::new("/nowhere"))
            .expect("a job");
        let Ok(looks) = answer(&job, 32).looks else {
            panic!("images");
        };
        // Room for all 32 at their own size: one page.
        let big = grid_geometry(&looks, (400, 400), 5);
        assert_eq!((big.first, big.count, big.tile_w), (0, 32, 6));
        let pic = grid(&looks, (400, 400), 5);
        assert_eq!((pic.width(), pic.height()), big.size());
        // Room for a few only: the page holds the selected filter.
        let small = grid_geometry(&looks, (40, 20), 30);
        assert!(small.paged());
        assert!((small.first..small.first + small.count).contains(&30));
        let z = zoom(&looks, (30, 20), 2);
        assert_eq!((z.width(), z.height()), (18, 18));
        // Filter 3 has patches: its image on the left half, 3 × 3 patches on the right.
        let z = zoom(&looks, (80, 40), 3);
        // The image 36 × 36 (6 px × 6); patches in tiles of 10 (the height's room: 40 less
        // 4 gaps, over 3), 2 px gaps.
        assert_eq!((z.width(), z.height()), (36 + 2 + 2 + 3 * 12, 38));
    }

    #[test]
    fn a_patch_is_the_unit_s_receptive_field_clamped_at_the_borders() {
        // A 20 × 12 RGB image whose pixel (x, y) is (x, y, 7).
        let (w, h) = (20, 12);
        let d = crate::data::Decoded {
            pixels: (0..h)
                .flat_map(|y| (0..w).flat_map(move |x| [x as u8, y as u8, 7]))
                .collect(),
            height: h,
            width: w,
            channels: 3,
        };
        // conv2d_1's field in the tutorial net: 8 px, stride 2, offset -3.
        let f = maximize::Field {
            size: 8,
            stride: 2,
            offset: -3,
        };
        let p = field_patch(&d, [f, f], 3, 4);
        // Rows 3..11, columns 5..13.
        assert_eq!((p.width(), p.height()), (8, 8));
        assert_eq!(p.pixel(0, 0), [5, 3, 7]);
        assert_eq!(p.pixel(7, 7), [12, 10, 7]);
        // At the top-left corner the field starts before the image: cut at 0.
        let p = field_patch(&d, [f, f], 0, 0);
        assert_eq!((p.width(), p.height()), (5, 5));
        assert_eq!(p.pixel(0, 0), [0, 0, 7]);
        // At the bottom-right it ends past it.
        let p = field_patch(&d, [f, f], 5, 9);
        assert_eq!((p.width(), p.height()), (5, 5));
        assert_eq!(p.pixel(4, 4), [19, 11, 7]);
        // A grey image is drawn grey.
        let g = crate::data::Decoded {
            pixels: vec![40; w * h],
            channels: 1,
            ..d
        };
        assert_eq!(field_patch(&g, [f, f], 3, 4).pixel(2, 2), [40, 40, 40]);
    }
}
