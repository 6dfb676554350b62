//! The TUI's state and the only ways it changes: [`AppState::apply`] for worker events and
//! [`AppState::update`] for user actions.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::layout::Rect;

use super::UiExit;
use super::graphics::Slot;
use super::keys::{self, Action};
use super::pictures::Pictures;
use crate::config::{ColormapName, FilterNorm, UiConfig};
use crate::events::{
    BatchMetrics, CheckpointInfo, Command, EpochMetrics, Event, FeatureSnapshot, FilterSnapshot,
    FinishReason, RunState, StartInfo, StopCause,
};
use crate::viz::colormap;
use crate::viz::raster::Grid;

mod complete;
mod input;

/// The tabs, in tab-bar order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Training,
    Model,
    Filters,
    Features,
    Help,
}

impl Tab {
    /// Every tab in order.
    pub const ALL: [Tab; 5] = [
        Tab::Training,
        Tab::Model,
        Tab::Filters,
        Tab::Features,
        Tab::Help,
    ];

    /// Title in the tab bar.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Tab::Training => "Training",
            Tab::Model => "Model",
            Tab::Filters => "Filters",
            Tab::Features => "Feature maps",
            Tab::Help => "Help",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }

    fn offset(self, by: isize) -> Tab {
        let n = Tab::ALL.len() as isize;
        Tab::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }
}

/// Where the run is, as far as the UI knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No event yet.
    Waiting,
    Preparing,
    Tuning,
    Running,
    Paused,
    Stopping,
    /// A viewer saw no event for a while from a live process.
    Stalled,
    /// A viewer found the run's process gone without a final event.
    Interrupted,
    Finished(FinishReason),
    Failed,
}

impl Phase {
    /// Whether the worker is still working (quitting should ask first).
    #[must_use]
    pub fn is_active(self) -> bool {
        !matches!(
            self,
            Phase::Finished(_) | Phase::Failed | Phase::Interrupted
        )
    }
}

/// A question on the status line waiting for y/n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    None,
    ConfirmStop,
    ConfirmQuit,
}

/// Epoch pictures asked for with `[` / `]` that have not arrived yet: further presses count
/// from here, not from the epoch on screen (several presses in one read, as key repeat or
/// typing over SSH sends them, moved one epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochRequest {
    /// A past epoch's checkpoint.
    At(usize),
    /// Follow training again; the newest epoch was this one when asked.
    Newest(usize),
}

/// How colours reach the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    TrueColor,
    Palette256,
}

/// How long a confirmation (an export's files) or an error stays on the status line before a
/// routine message (a checkpoint at an epoch's end) may take its place.
pub const MESSAGE_HOLD: Duration = Duration::from_secs(5);

/// How many batch points the loss chart keeps.
const BATCH_HISTORY: usize = 4000;

/// Everything the screen shows.
#[derive(Debug)]
pub struct AppState {
    pub title: String,
    pub run_dir: PathBuf,
    pub tab: Tab,
    pub size: (u16, u16),
    pub color_depth: ColorDepth,
    /// Pixels a cell holds in the pictures drawn (half blocks: 1 × 2; graphics: the font's).
    pub cell_pixels: (usize, usize),
    /// Which colour depth is in use and why (the Help tab says it).
    pub color_note: String,
    /// Where the depth came from: asking the terminal, which can answer late (a late answer
    /// that shows 24-bit colour still counts), or something final.
    pub color_origin: crate::ui::truecolor::Origin,
    pub start: Option<StartInfo>,
    pub phase: Phase,
    pub error: Option<String>,
    pub batches: Vec<BatchMetrics>,
    pub epochs: Vec<EpochMetrics>,
    pub checkpoint: Option<CheckpointInfo>,
    pub filters: Option<Box<FilterSnapshot>>,
    pub features: Option<Box<FeatureSnapshot>>,
    pub model_row: usize,
    /// Batches done and training seconds at this session's first batch event: the pace for the
    /// ETA is this session's (a resumed run's seconds include earlier sessions).
    session_base: Option<(usize, f64)>,
    /// Training tab: the first epoch row shown; `None` follows the newest epochs.
    pub epoch_scroll: Option<usize>,
    /// Help tab: lines scrolled past.
    pub help_scroll: usize,
    pub filter_layer: usize,
    pub filter: usize,
    pub feature_layer: usize,
    pub channel: usize,
    pub probe: usize,
    /// The epoch asked for with `[` / `]` whose pictures are still on their way.
    pub epoch_request: Option<EpochRequest>,
    pub colormap: ColormapName,
    pub filter_norm: FilterNorm,
    pub prompt: Prompt,
    /// The `o` path line while it is open.
    pub input: Option<String>,
    /// The path line still holds only the folder it was opened with: a path typed from the
    /// root (`/`) or the home folder (`~`) replaces it.
    pub input_prefilled: bool,
    /// What Tab found when several names match the path line.
    pub input_matches: Vec<String>,
    /// The user asked for a checkpoint (`s`): its note is a confirmation, held a while.
    pub checkpoint_asked: bool,
    /// The user chose to stop and quit; waiting for the worker's last event.
    pub quitting: bool,
    pub exit: Option<UiExit>,
    pub message: Option<String>,
    /// Until when `message` is held against routine messages (a confirmation or an error).
    message_held_until: Option<Instant>,
    /// The time as the event loop last saw it (tests set it).
    now: Instant,
    /// Why the run was stopped, when it was and the log says.
    pub stop_cause: Option<StopCause>,
    /// Rasters derived from the snapshots and selections.
    pub pictures: Pictures,
    /// Where graphics images (sixel, kitty, iTerm2) were last drawn, by slot: their size follows
    /// the terminal's pixels, not the half-block layout, so clicks map through these.
    pub shown: Vec<(Slot, Rect)>,
}

impl AppState {
    /// Create the state before any event.
    #[must_use]
    pub fn new(config: &UiConfig, title: String, run_dir: PathBuf) -> Self {
        let mut s = Self {
            title,
            run_dir,
            tab: Tab::Training,
            size: (80, 24),
            color_depth: ColorDepth::TrueColor,
            cell_pixels: (1, 2),
            color_note: String::new(),
            color_origin: crate::ui::truecolor::Origin::Decided,
            start: None,
            phase: Phase::Waiting,
            error: None,
            batches: Vec::new(),
            epochs: Vec::new(),
            checkpoint: None,
            filters: None,
            features: None,
            model_row: 0,
            session_base: None,
            epoch_scroll: None,
            help_scroll: 0,
            filter_layer: 0,
            filter: 0,
            feature_layer: 0,
            channel: 0,
            probe: 0,
            epoch_request: None,
            colormap: config.colormap,
            filter_norm: config.filter_norm,
            prompt: Prompt::None,
            input: None,
            input_prefilled: false,
            input_matches: Vec::new(),
            checkpoint_asked: false,
            quitting: false,
            exit: None,
            message: None,
            message_held_until: None,
            now: Instant::now(),
            stop_cause: None,
            pictures: Pictures::default(),
            shown: Vec::new(),
        };
        s.rebuild_all();
        s
    }

    /// Take in one worker event.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Started(info) => {
                // A new session (the first, or a resume after earlier ones in the log): what
                // the last session ended with, a failure's error too, is over.
                self.phase = Phase::Preparing;
                self.error = None;
                self.start = Some(*info);
                self.session_base = None;
            }
            Event::Batch(b) => {
                if matches!(
                    self.phase,
                    Phase::Waiting | Phase::Preparing | Phase::Tuning
                ) {
                    self.phase = Phase::Running;
                }
                if self.batches.len() >= BATCH_HISTORY {
                    // Keep every other old point: the chart's shape survives, memory stays bounded.
                    let mut i = 0;
                    self.batches.retain(|_| {
                        i += 1;
                        i % 2 == 0
                    });
                }
                self.batches.push(b);
                if self.session_base.is_none()
                    && let Some((done, _)) = self.progress()
                {
                    self.session_base = Some((done, b.elapsed));
                }
            }
            Event::Epoch(e) => {
                self.epochs.retain(|old| old.epoch != e.epoch);
                self.epochs.push(e);
            }
            Event::Checkpoint(c) => {
                // A mid-epoch checkpoint (`s`, a stop) goes when the next one is written: say so
                // rather than let it vanish.
                let mid_epoch = self
                    .start
                    .as_ref()
                    .is_some_and(|s| c.batch < s.batches_per_epoch);
                let text = if mid_epoch {
                    format!(
                        "checkpoint {} written; a mid-epoch checkpoint is temporary: the next \
                         one (at the end of epoch {}) replaces it",
                        c.name, c.epoch
                    )
                } else {
                    format!("checkpoint {} written", c.name)
                };
                if std::mem::take(&mut self.checkpoint_asked) {
                    self.confirm(text);
                } else {
                    self.say(text);
                }
                self.checkpoint = Some(c);
            }
            Event::Status(s) => {
                // A stop the user asked for stays visible until the run ends.
                if !(self.phase == Phase::Stopping && s.state != RunState::Stopping) {
                    self.phase = match s.state {
                        RunState::Preparing => Phase::Preparing,
                        RunState::Tuning => Phase::Tuning,
                        RunState::Running => Phase::Running,
                        RunState::Paused => Phase::Paused,
                        RunState::Stopping => Phase::Stopping,
                        RunState::Stalled => Phase::Stalled,
                        RunState::Interrupted => Phase::Interrupted,
                    };
                }
            }
            Event::Finished(f) => {
                self.phase = Phase::Finished(f.reason);
                self.stop_cause = f.cause;
                self.finish_quit();
            }
            Event::Failed(f) => {
                self.phase = Phase::Failed;
                self.error = Some(f.error);
                self.finish_quit();
            }
            Event::Warning(w) => {
                // A picture request that failed (an epoch whose checkpoint is gone) says so in
                // a warning: the next `[` / `]` counts from what is on screen again.
                self.epoch_request = None;
                self.confirm(w.message);
            }
            // An imported run's origin is in its log; the screen shows its checkpoint.
            Event::Imported(_) => {}
            Event::Filters(f) => {
                self.settle_epoch_message(f.epoch);
                self.filters = Some(f);
                self.clamp_selection();
                self.rebuild_filters();
            }
            Event::FeatureMaps(f) => {
                // The maps of the image being probed have arrived.
                if self
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("probing "))
                {
                    self.message = None;
                }
                self.settle_epoch_message(f.epoch);
                self.features = Some(f);
                self.pictures.invalidate_features();
                self.clamp_selection();
                self.rebuild_features();
            }
        }
    }

    /// The epoch whose pictures are shown, and the newest finished epoch.
    fn shown_and_newest_epoch(&self) -> (Option<usize>, usize) {
        let shown = match self.tab {
            Tab::Features => self.features.as_ref().map(|f| f.epoch),
            _ => self.filters.as_ref().map(|f| f.epoch),
        };
        let newest = self.epochs.iter().map(|e| e.epoch).max().unwrap_or(0);
        (shown, newest)
    }

    /// Ask for the previous or next epoch's pictures; past the newest, follow training again.
    /// Counts from the epoch already asked for when its pictures have not arrived yet.
    fn step_epoch(&mut self, forward: bool) -> Vec<Command> {
        let (shown, newest) = self.shown_and_newest_epoch();
        let from = match self.epoch_request {
            Some(EpochRequest::At(e)) => e,
            Some(EpochRequest::Newest(n)) => n.max(newest),
            None => {
                let Some(shown) = shown else {
                    self.tell("no pictures yet");
                    return Vec::new();
                };
                shown
            }
        };
        let target = if forward {
            from + 1
        } else {
            from.saturating_sub(1)
        };
        if target == 0 {
            self.tell("epoch 1 is the first checkpoint");
            return Vec::new();
        }
        if target >= newest {
            self.tell("following the newest epoch");
            self.epoch_request = Some(EpochRequest::Newest(newest));
            return vec![Command::SelectEpoch { epoch: None }];
        }
        self.tell(format!(
            "loading epoch {target} ( ] steps forward, past {newest} follows training)"
        ));
        self.epoch_request = Some(EpochRequest::At(target));
        vec![Command::SelectEpoch {
            epoch: Some(target),
        }]
    }

    /// Pictures of `epoch` have arrived: the request they answer is done.
    fn settle_epoch_request(&mut self, epoch: usize) {
        let done = match self.epoch_request {
            Some(EpochRequest::At(e)) => e == epoch,
            Some(EpochRequest::Newest(n)) => epoch >= n,
            None => false,
        };
        if done {
            self.epoch_request = None;
        }
    }

    /// The pictures of the epoch being loaded have arrived: say it is shown now.
    fn settle_epoch_message(&mut self, epoch: usize) {
        self.settle_epoch_request(epoch);
        let loading = format!("loading epoch {epoch} ");
        if let Some(m) = &self.message
            && m.starts_with(&loading)
        {
            self.message = Some(m.replacen("loading", "showing", 1));
        }
    }

    /// Tell the state the time (the event loop does, before each event it takes in).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Whether the message on the status line is a confirmation or an error still held.
    #[must_use]
    pub fn message_held(&self) -> bool {
        self.message_held_until.is_some_and(|t| self.now < t)
    }

    /// A routine message: shown unless a confirmation or an error is held.
    fn say(&mut self, text: String) {
        if !self.message_held() {
            self.message = Some(text);
            self.message_held_until = None;
        }
    }

    /// The answer to what the user just did: it replaces any message.
    fn tell(&mut self, text: impl Into<String>) {
        self.message = Some(text.into());
        self.message_held_until = None;
    }

    /// A confirmation or an error: it replaces any message and stays for [`MESSAGE_HOLD`]
    /// whatever routine messages come meanwhile.
    fn confirm(&mut self, text: String) {
        self.message = Some(text);
        self.message_held_until = Some(self.now + MESSAGE_HOLD);
    }

    /// Draw pictures for cells of `cell` pixels (the graphics protocol in use); re-tiles the
    /// grids when it changes.
    pub fn set_cell_pixels(&mut self, cell: (usize, usize)) {
        if self.cell_pixels != cell {
            self.cell_pixels = cell;
            self.rebuild_all();
        }
    }

    /// Use the colour depth `choice` (see [`crate::ui::truecolor::detect`]).
    pub fn set_colors(&mut self, choice: &crate::ui::truecolor::Choice) {
        self.color_depth = choice.depth;
        self.color_note = choice.describe();
        self.color_origin = choice.origin;
    }

    /// The terminal's answer to the colour query came after start-up (a slow link): take it
    /// in if it shows 24-bit colour.
    pub fn late_color_answer(&mut self, dcs: &str) {
        use crate::ui::truecolor::{Answer, dcs as read_dcs, from_answer};
        if self.color_origin != crate::ui::truecolor::Origin::Asked
            || self.color_depth == ColorDepth::TrueColor
        {
            return;
        }
        let mut answer = Answer::default();
        read_dcs(dcs, &mut answer);
        let choice = from_answer(&answer);
        if choice.depth == ColorDepth::TrueColor {
            tracing::info!("late answer to the colour query: {}", choice.describe());
            self.color_depth = choice.depth;
            self.color_note = format!("{} (answered late)", choice.describe());
        }
    }

    /// The worker's channel closed.
    pub fn worker_gone(&mut self) {
        if self.phase.is_active() {
            self.phase = Phase::Failed;
            self.error
                .get_or_insert_with(|| "the training worker ended without a final report".into());
        }
        self.finish_quit();
    }

    fn finish_quit(&mut self) {
        if self.quitting {
            self.exit = Some(UiExit::QuitStopped);
        }
    }

    fn clamp_selection(&mut self) {
        let nf = self.filters.as_ref().map_or(0, |f| f.layers.len());
        self.filter_layer = self.filter_layer.min(nf.saturating_sub(1));
        let fo = self.filter_layer().map_or(0, |l| l.out_channels);
        self.filter = self.filter.min(fo.saturating_sub(1));
        let nm = self.features.as_ref().map_or(0, |f| f.layers.len());
        self.feature_layer = self.feature_layer.min(nm.saturating_sub(1));
        let c = self.feature_layer().map_or(0, |l| l.channels);
        self.channel = self.channel.min(c.saturating_sub(1));
    }

    /// Where the tabs draw, at the terminal's current size.
    #[must_use]
    pub fn body(&self) -> ratatui::layout::Rect {
        super::render::body_area(ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1))
    }

    /// The conv layer shown on the Filters tab.
    #[must_use]
    pub fn filter_layer(&self) -> Option<&crate::events::LayerFilters> {
        self.filters.as_ref()?.layers.get(self.filter_layer)
    }

    /// The layer shown on the Feature maps tab.
    #[must_use]
    pub fn feature_layer(&self) -> Option<&crate::events::LayerMaps> {
        self.features.as_ref()?.layers.get(self.feature_layer)
    }

    fn rebuild_all(&mut self) {
        self.rebuild_filters();
        self.rebuild_features();
    }

    fn rebuild_filters(&mut self) {
        let mut p = std::mem::take(&mut self.pictures);
        p.rebuild_filters(self);
        self.pictures = p;
    }

    fn rebuild_features(&mut self) {
        let mut p = std::mem::take(&mut self.pictures);
        p.rebuild_features(self);
        self.pictures = p;
    }

    /// Where the run is: (epoch, batches done in it), from the newest batch event or
    /// checkpoint, else from where the session started.
    #[must_use]
    pub fn position(&self) -> Option<(usize, usize)> {
        let s = self.start.as_ref()?;
        let batch = self.batches.last().map(|b| (b.epoch, b.batch));
        // Batch events come at most `train.batch_events_per_sec`; a checkpoint (on pause, on
        // `s`) can be at a later batch than the last of them.
        let checkpoint = self.checkpoint.as_ref().map(|c| (c.epoch, c.batch));
        Some(
            batch
                .max(checkpoint)
                .unwrap_or((s.start_epoch, s.start_batch)),
        )
    }

    /// Batches done in the whole run and in total.
    #[must_use]
    pub fn progress(&self) -> Option<(usize, usize)> {
        let s = self.start.as_ref()?;
        let total = s.epochs * s.batches_per_epoch;
        let (epoch, batch) = self.position()?;
        let done = epoch.saturating_sub(1) * s.batches_per_epoch + batch;
        Some((done.min(total), total))
    }

    /// Seconds left at this session's pace.
    #[must_use]
    pub fn eta_seconds(&self) -> Option<f64> {
        let b = self.batches.last()?;
        let (done, total) = self.progress()?;
        let (base_done, base_seconds) = self.session_base?;
        let batches = done.checked_sub(base_done).filter(|&d| d > 0)?;
        let seconds = b.elapsed - base_seconds;
        if seconds <= 0.0 {
            return None;
        }
        Some((total - done) as f64 * seconds / batches as f64)
    }

    /// Index of the epoch with the best validation accuracy.
    #[must_use]
    pub fn best_epoch(&self) -> Option<usize> {
        self.epochs
            .iter()
            .filter_map(|e| e.val_accuracy.map(|a| (e.epoch, a)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(e, _)| e)
    }
}

fn step(i: usize, by: isize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (i as isize + by).clamp(0, n as isize - 1) as usize
}
