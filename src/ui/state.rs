//! What the user sees and chose, and the only two ways it changes: [`AppState::apply`] takes in
//! a worker event, [`AppState::update`] a user's message (a key, an action, a click on a tile,
//! an effect's outcome). `update` is pure: what it needs done outside (a command for the
//! worker, an export to write, a folder to list) it returns as [`Effect`]s for `ui::app`.
//!
//! No screen rectangles or derived pictures live here: `ui::layout` and `ui::pictures` compute
//! those from the state.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::complete::Completion;
use super::keys::Action;
use super::status::Note;
use super::truecolor::{self, Choice, Origin};
use super::vocab::{ColorDepth, EpochRequest, Phase, Prompt, Tab, UiExit};
use crate::config::{ColormapName, FilterNorm, UiConfig};
use crate::events::{
    BatchMetrics, CheckpointInfo, Command, EpochMetrics, Event, FeatureSnapshot, FilterSnapshot,
    LayerFilters, LayerMaps, RunState, StartInfo, StopCause,
};

mod input;
mod validation;

pub use validation::{CellList, THUMB_PAGE, ValidationView, cell_items};

/// The Grad-CAM overlay of the Feature maps tab, as the user set it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CamView {
    /// Drawn over the probe image (the worker computes it only while this is on).
    pub on: bool,
    /// The layer and class, as steps from the defaults (the worker resolves them).
    pub request: crate::events::CamRequest,
    pub weight: crate::viz::overlay::ImageWeight,
    pub colormap: crate::viz::overlay::HeatColormap,
}

/// How long a confirmation (an export's files) or an error stays on the status line before a
/// routine message (a checkpoint at an epoch's end) may take its place.
pub const MESSAGE_HOLD: Duration = Duration::from_secs(5);

/// How many batch points the loss chart keeps.
const BATCH_HISTORY: usize = 4000;

/// What comes from the worker, as [`AppState::apply`] takes it.
#[derive(Debug, Clone)]
pub enum Worker {
    /// One of its events.
    Event(Event),
    /// Its channel closed: nothing more will come.
    Gone,
}

impl From<Event> for Worker {
    fn from(event: Event) -> Self {
        Worker::Event(event)
    }
}

/// What the user does, as [`AppState::update`] takes it.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A key press: the path line's editing, a prompt's answer, or a bound [`Action`].
    Key(crossterm::event::KeyEvent),
    /// An action, as a key or a click on the tab bar asks for it.
    Action(Action),
    /// A click on tile `i` of the grid on screen (a filter or a channel).
    Pick(usize),
    /// What Tab completion found for the path line ([`Effect::Complete`]).
    Completed(Completion),
    /// What an export ([`Effect::Export`]) wrote, or why it could not.
    Exported(Result<Vec<PathBuf>, String>),
    /// The colour depth to use (see [`truecolor::detect`]).
    Colors(Choice),
    /// The graphics protocol in use and why (`Graphics::describe`), for the Help tab.
    GraphicsNote(String),
    /// The terminal's answer to the colour query came after start-up (a slow link): the body
    /// of its DCS reply.
    LateColorAnswer(String),
    /// The time as the event loop sees it (tests set it).
    Now(Instant),
    /// A read of the validation record was started ([`AppState::validation_due`]).
    ValidationAsked(super::record::Want),
    /// What a job ([`Effect::Job`], or the read above) found.
    Done(super::record::Done),
    /// Start or cancel the Filters tab's maximisation to follow what it shows
    /// ([`AppState::looks_due`]).
    LooksSync,
    /// What a maximisation job ([`Effect::Looks`]) found.
    Looks(super::looks::Done),
}

/// What an update asks `ui::app` to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send this to the worker.
    Command(Command),
    /// Probe the image at this path as typed (a leading `~` is the home folder).
    ProbePath(String),
    /// Complete the path line as typed; the answer comes back as [`Msg::Completed`].
    Complete(String),
    /// Export what the current tab shows; the outcome comes back as [`Msg::Exported`].
    Export,
    /// Run this off the event loop; the outcome comes back as [`Msg::Done`].
    Job(super::record::Job),
    /// Run this maximisation off the event loop; the outcome comes back as [`Msg::Looks`].
    Looks(super::looks::Job),
}

/// What an update needs to know of the screen as last laid out (scrolling moves by what fits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// Epoch rows the Training tab's table shows at once.
    pub table_rows: usize,
    /// How far the Help tab can scroll.
    pub help_max_scroll: usize,
}

/// Everything the screen shows, and what the user chose to look at.
#[derive(Debug)]
pub struct AppState {
    title: String,
    run_dir: PathBuf,
    tab: Tab,
    color_depth: ColorDepth,
    /// Which colour depth is in use and why (the Help tab says it).
    color_note: String,
    /// The graphics protocol in use and why (`Graphics::describe`), for the Help tab.
    graphics_note: String,
    /// Where an imported run's weights came from (`convscope import`).
    imported: Option<Box<crate::events::ImportInfo>>,
    /// Where the depth came from: asking the terminal, which can answer late (a late answer
    /// that shows 24-bit colour still counts), or something final.
    color_origin: Origin,
    start: Option<StartInfo>,
    phase: Phase,
    error: Option<String>,
    batches: Vec<BatchMetrics>,
    epochs: Vec<EpochMetrics>,
    checkpoint: Option<CheckpointInfo>,
    filters: Option<Box<FilterSnapshot>>,
    features: Option<Box<FeatureSnapshot>>,
    /// Unit health of the newest validated epoch, with the trend of earlier ones.
    health: Option<Box<crate::events::health::HealthSnapshot>>,
    /// Counts the filter and feature snapshots taken in: a new one is new pictures even when
    /// its numbers are the same.
    snapshots: (u64, u64),
    model_row: usize,
    /// Batches done and training seconds at this session's first batch event: the pace for the
    /// ETA is this session's (a resumed run's seconds include earlier sessions).
    session_base: Option<(usize, f64)>,
    /// Training tab: the first epoch row shown; `None` follows the newest epochs.
    epoch_scroll: Option<usize>,
    /// Help tab: lines scrolled past.
    help_scroll: usize,
    filter_layer: usize,
    filter: usize,
    feature_layer: usize,
    channel: usize,
    probe: usize,
    /// The epoch asked for with `[` / `]` whose pictures are still on their way.
    epoch_request: Option<EpochRequest>,
    colormap: ColormapName,
    filter_norm: FilterNorm,
    prompt: Prompt,
    /// The `o` path line while it is open.
    input: Option<String>,
    /// The path line still holds only the folder it was opened with: a path typed from the
    /// root (`/`) or the home folder (`~`) replaces it.
    input_prefilled: bool,
    /// What Tab found when several names match the path line.
    input_matches: Vec<String>,
    /// The user asked for a checkpoint (`s`): its note is a confirmation, held a while.
    checkpoint_asked: bool,
    /// The user chose to stop and quit; waiting for the worker's last event.
    quitting: bool,
    exit: Option<UiExit>,
    note: Option<Note>,
    /// Until when `note` is held against routine messages (a confirmation or an error).
    message_held_until: Option<Instant>,
    /// The time as the event loop last saw it.
    now: Instant,
    /// Why the run was stopped, when it was and the log says.
    stop_cause: Option<StopCause>,
    /// The Validation tab.
    validation: ValidationView,
    cam: CamView,
    /// Filters tab: what each filter looks for (`w`), and its job.
    looks: super::looks::LooksView,
    /// Feature maps: the image the probe (A) is compared with (B), while comparing.
    compare_b: Option<PathBuf>,
    /// Feature maps: the order of the channels while comparing.
    compare_order: crate::viz::compare::Order,
    /// Feature maps: each layer's per-channel scales, pinned at an epoch (`z`).
    pinned_scale: Option<PinnedScale>,
}

/// Each channel's scale of the probe's maps at one epoch, kept while stepping through epochs so
/// that brightness compares across them.
#[derive(Debug, Clone, PartialEq)]
pub struct PinnedScale {
    pub epoch: usize,
    /// The image the maps were of.
    pub image: PathBuf,
    /// Per layer (by name), per channel.
    pub layers: Vec<(String, Vec<crate::viz::compare::Scale>)>,
    /// The maps themselves (`[channels, h, w]` per layer, by name), for the difference pane of
    /// another epoch against this one.
    pub maps: Vec<(String, Vec<f32>)>,
}

impl PinnedScale {
    /// The scales of every channel of `snap`'s layers.
    #[must_use]
    pub fn of(snap: &FeatureSnapshot) -> Self {
        let layers = snap
            .layers
            .iter()
            .map(|l| {
                let per = l.height * l.width;
                let scales = (0..l.channels)
                    .map(|c| {
                        let plane = l.data.get(c * per..(c + 1) * per).unwrap_or(&[]);
                        crate::viz::compare::Scale::over(&[plane])
                    })
                    .collect();
                (l.name.clone(), scales)
            })
            .collect();
        Self {
            epoch: snap.epoch,
            image: snap.image.clone(),
            layers,
            maps: snap
                .layers
                .iter()
                .map(|l| (l.name.clone(), l.data.clone()))
                .collect(),
        }
    }

    /// The maps of layer `name` at the pinned epoch.
    #[must_use]
    pub fn maps(&self, name: &str) -> Option<&[f32]> {
        self.maps
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.as_slice())
    }

    /// The scales of layer `name`.
    #[must_use]
    pub fn layer(&self, name: &str) -> Option<&[crate::viz::compare::Scale]> {
        self.layers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_slice())
    }
}

impl AppState {
    /// Create the state before any event.
    #[must_use]
    pub fn new(config: &UiConfig, title: String, run_dir: PathBuf) -> Self {
        Self {
            title,
            run_dir,
            tab: Tab::Training,
            color_depth: ColorDepth::TrueColor,
            color_note: String::new(),
            graphics_note: String::new(),
            imported: None,
            color_origin: Origin::Decided,
            start: None,
            phase: Phase::Waiting,
            error: None,
            batches: Vec::new(),
            epochs: Vec::new(),
            checkpoint: None,
            filters: None,
            health: None,
            features: None,
            snapshots: (0, 0),
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
            note: None,
            message_held_until: None,
            now: Instant::now(),
            stop_cause: None,
            validation: ValidationView::default(),
            cam: CamView::default(),
            looks: super::looks::LooksView::default(),
            compare_b: None,
            compare_order: crate::viz::compare::Order::default(),
            pinned_scale: None,
        }
    }

    /// Take in one worker event, or the end of the worker's events.
    pub fn apply(&mut self, news: impl Into<Worker>) {
        let event = match news.into() {
            Worker::Event(event) => event,
            Worker::Gone => return self.worker_gone(),
        };
        match event {
            Event::Started(info) => {
                // A new session (the first, or a resume after earlier ones in the log): what
                // the last session ended with, a failure's error too, is over.
                self.phase = Phase::Preparing;
                self.error = None;
                // A training session after an import is training, no longer only an import.
                self.imported = None;
                self.start = Some(*info);
                self.session_base = None;
            }
            Event::Batch(b) => self.take_batch(b),
            Event::Epoch(e) => {
                self.epochs.retain(|old| old.epoch != e.epoch);
                self.epochs.push(e);
            }
            Event::Checkpoint(c) => self.take_checkpoint(c),
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
            // An imported run says where its weights came from instead of its images.
            Event::Imported(info) => self.imported = Some(info),
            Event::Filters(f) => {
                self.settle_epoch_message(f.epoch);
                self.filters = Some(f);
                self.snapshots.0 += 1;
                self.clamp_selection();
            }
            Event::FeatureMaps(f) => {
                // The maps of the image being probed have arrived.
                if matches!(self.note, Some(Note::Probing(_))) {
                    self.note = None;
                }
                self.settle_epoch_message(f.epoch);
                self.features = Some(f);
                self.snapshots.1 += 1;
                self.clamp_selection();
            }
            Event::Health(h) => self.health = Some(h),
        }
    }

    /// The worker's channel closed: a run still going has failed.
    fn worker_gone(&mut self) {
        if self.phase.is_active() {
            self.phase = Phase::Failed;
            self.error
                .get_or_insert_with(|| "the training worker ended without a final report".into());
        }
        self.finish_quit();
    }

    fn take_batch(&mut self, b: BatchMetrics) {
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

    fn take_checkpoint(&mut self, c: CheckpointInfo) {
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
    fn step_epoch(&mut self, forward: bool) -> Vec<Effect> {
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
            return vec![Effect::Command(Command::SelectEpoch { epoch: None })];
        }
        self.tell(Note::Loading {
            epoch: target,
            newest,
        });
        self.epoch_request = Some(EpochRequest::At(target));
        vec![Effect::Command(Command::SelectEpoch {
            epoch: Some(target),
        })]
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
        if let Some(Note::Loading { epoch: e, newest }) = self.note
            && e == epoch
        {
            self.note = Some(Note::Showing { epoch, newest });
        }
    }

    /// Whether the message on the status line is a confirmation or an error still held.
    #[must_use]
    pub fn message_held(&self) -> bool {
        self.message_held_until.is_some_and(|t| self.now < t)
    }

    /// A routine message: shown unless a confirmation or an error is held.
    fn say(&mut self, text: String) {
        if !self.message_held() {
            self.note = Some(Note::Text(text));
            self.message_held_until = None;
        }
    }

    /// The answer to what the user just did: it replaces any message.
    fn tell(&mut self, note: impl Into<Note>) {
        self.note = Some(note.into());
        self.message_held_until = None;
    }

    /// A confirmation or an error: it replaces any message and stays for [`MESSAGE_HOLD`]
    /// whatever routine messages come meanwhile.
    fn confirm(&mut self, text: String) {
        self.note = Some(Note::Text(text));
        self.message_held_until = Some(self.now + MESSAGE_HOLD);
    }

    fn set_colors(&mut self, choice: &Choice) {
        self.color_depth = choice.depth;
        self.color_note = choice.describe();
        self.color_origin = choice.origin;
    }

    /// A late answer to the colour query counts when it shows 24-bit colour.
    fn late_color_answer(&mut self, dcs: &str) {
        if self.color_origin != Origin::Asked || self.color_depth == ColorDepth::TrueColor {
            return;
        }
        let mut answer = truecolor::Answer::default();
        truecolor::dcs(dcs, &mut answer);
        let choice = truecolor::from_answer(&answer);
        if choice.depth == ColorDepth::TrueColor {
            tracing::info!("late answer to the colour query: {}", choice.describe());
            self.color_depth = choice.depth;
            self.color_note = format!("{} (answered late)", choice.describe());
        }
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

    /// The conv layer shown on the Filters tab.
    #[must_use]
    pub fn filter_layer(&self) -> Option<&LayerFilters> {
        self.filters.as_ref()?.layers.get(self.filter_layer)
    }

    /// The layer shown on the Feature maps tab.
    #[must_use]
    pub fn feature_layer(&self) -> Option<&LayerMaps> {
        self.features.as_ref()?.layers.get(self.feature_layer)
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

    /// The first epoch row the table shows, `visible` rows at once: where it was scrolled to,
    /// else the newest rows.
    #[must_use]
    pub fn first_epoch_row(&self, visible: usize) -> usize {
        let last_start = self.epochs.len().saturating_sub(visible);
        self.epoch_scroll.map_or(last_start, |f| f.min(last_start))
    }
}

/// Read access to what the state holds.
impl AppState {
    #[must_use]
    pub fn title(&self) -> &str {
        &self.title
    }
    #[must_use]
    pub fn run_dir(&self) -> &std::path::Path {
        &self.run_dir
    }
    #[must_use]
    pub fn tab(&self) -> Tab {
        self.tab
    }
    #[must_use]
    pub fn color_depth(&self) -> ColorDepth {
        self.color_depth
    }
    #[must_use]
    pub fn color_note(&self) -> &str {
        &self.color_note
    }
    /// Where an imported run's weights came from.
    #[must_use]
    pub fn imported(&self) -> Option<&crate::events::ImportInfo> {
        self.imported.as_deref()
    }
    /// The graphics protocol in use and why.
    #[must_use]
    pub fn graphics_note(&self) -> &str {
        &self.graphics_note
    }

    #[must_use]
    pub fn start(&self) -> Option<&StartInfo> {
        self.start.as_ref()
    }
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    #[must_use]
    pub fn batches(&self) -> &[BatchMetrics] {
        &self.batches
    }
    #[must_use]
    pub fn epochs(&self) -> &[EpochMetrics] {
        &self.epochs
    }
    #[must_use]
    pub fn checkpoint(&self) -> Option<&CheckpointInfo> {
        self.checkpoint.as_ref()
    }
    #[must_use]
    pub fn filters(&self) -> Option<&FilterSnapshot> {
        self.filters.as_deref()
    }
    /// Unit health of the newest validated epoch and the trend before it.
    #[must_use]
    pub fn health(&self) -> Option<&crate::events::health::HealthSnapshot> {
        self.health.as_deref()
    }
    #[must_use]
    pub fn cam(&self) -> CamView {
        self.cam
    }
    /// The Filters tab's "what it looks for" mode and its job.
    #[must_use]
    pub fn looks(&self) -> &super::looks::LooksView {
        &self.looks
    }
    /// The maximisation the Filters tab wants: the shown layer at the shown epoch, in the
    /// tier chosen; `None` while it shows raw weights.
    #[must_use]
    pub fn looks_want(&self) -> Option<super::looks::Want> {
        let tier = self.looks.tier?;
        Some(super::looks::Want {
            epoch: self.filters.as_ref()?.epoch,
            layer: self.filter_layer()?.name.clone(),
            tier,
        })
    }
    /// The optimised images the Filters tab shows now, when they came.
    #[must_use]
    pub fn looks_shown(&self) -> Option<&super::looks::Looks> {
        let want = self.looks_want()?;
        self.looks.answer(&want)?.as_deref().ok()
    }
    /// Whether the maximisation job must start or stop to follow the screen
    /// ([`Msg::LooksSync`]).
    #[must_use]
    pub fn looks_due(&self) -> bool {
        self.looks.due(self.looks_want().as_ref())
    }

    #[must_use]
    pub fn features(&self) -> Option<&FeatureSnapshot> {
        self.features.as_deref()
    }
    /// The image the probe is compared with (B), while comparing.
    #[must_use]
    pub fn compare_image(&self) -> Option<&std::path::Path> {
        self.compare_b.as_deref()
    }
    /// The per-channel scales pinned at an epoch (`z`), if any.
    #[must_use]
    pub fn pinned_scale(&self) -> Option<&PinnedScale> {
        self.pinned_scale.as_ref()
    }
    /// The order of the channels while comparing.
    #[must_use]
    pub fn compare_order(&self) -> crate::viz::compare::Order {
        self.compare_order
    }
    /// The shown layer's maps of A and of B, while comparing and B's have arrived.
    #[must_use]
    pub fn compare_layers(&self) -> Option<(&LayerMaps, &LayerMaps)> {
        self.compare_b.as_ref()?;
        let a = self.feature_layer()?;
        let b = self
            .features
            .as_ref()?
            .compare
            .as_ref()?
            .layers
            .get(self.feature_layer)
            .filter(|b| {
                (b.name.as_str(), b.channels, b.height, b.width)
                    == (a.name.as_str(), a.channels, a.height, a.width)
            })?;
        Some((a, b))
    }
    /// `[class][channel]` mean activations of layer `name` on the validation set, from the
    /// newest unit health (empty when not gathered: a pool layer, an older run).
    #[must_use]
    pub fn class_means(&self, name: &str) -> Option<&[Vec<f64>]> {
        self.health
            .as_ref()?
            .latest()?
            .layer(name)
            .map(|l| l.class_means.as_slice())
            .filter(|m| !m.is_empty())
    }
    /// How many filter and feature snapshots were taken in.
    #[must_use]
    pub fn snapshots(&self) -> (u64, u64) {
        self.snapshots
    }
    #[must_use]
    pub fn model_row(&self) -> usize {
        self.model_row
    }
    #[must_use]
    pub fn epoch_scroll(&self) -> Option<usize> {
        self.epoch_scroll
    }
    #[must_use]
    pub fn help_scroll(&self) -> usize {
        self.help_scroll
    }
    /// Index of the layer shown on the Filters tab.
    #[must_use]
    pub fn filter_layer_index(&self) -> usize {
        self.filter_layer
    }
    /// The selected filter.
    #[must_use]
    pub fn filter(&self) -> usize {
        self.filter
    }
    /// Index of the layer shown on the Feature maps tab.
    #[must_use]
    pub fn feature_layer_index(&self) -> usize {
        self.feature_layer
    }
    /// The selected channel.
    #[must_use]
    pub fn channel(&self) -> usize {
        self.channel
    }
    #[must_use]
    pub fn epoch_request(&self) -> Option<EpochRequest> {
        self.epoch_request
    }
    #[must_use]
    pub fn colormap(&self) -> ColormapName {
        self.colormap
    }
    #[must_use]
    pub fn filter_norm(&self) -> FilterNorm {
        self.filter_norm
    }
    #[must_use]
    pub fn prompt(&self) -> Prompt {
        self.prompt
    }
    /// The `o` path line while it is open.
    #[must_use]
    pub fn input(&self) -> Option<&str> {
        self.input.as_deref()
    }
    #[must_use]
    pub fn input_prefilled(&self) -> bool {
        self.input_prefilled
    }
    #[must_use]
    pub fn input_matches(&self) -> &[String] {
        &self.input_matches
    }
    #[must_use]
    pub fn quitting(&self) -> bool {
        self.quitting
    }
    /// How the TUI is to end, once it is.
    #[must_use]
    pub fn exit(&self) -> Option<UiExit> {
        self.exit
    }
    /// The note on the status line.
    #[must_use]
    pub fn note(&self) -> Option<&Note> {
        self.note.as_ref()
    }
    /// The status line's note as text.
    #[must_use]
    pub fn message(&self) -> Option<String> {
        self.note.as_ref().map(ToString::to_string)
    }
    #[must_use]
    pub fn stop_cause(&self) -> Option<StopCause> {
        self.stop_cause
    }
}

/// Setting up states for tests: what a test arranges directly rather than by keys.
#[cfg(test)]
impl AppState {
    pub(crate) fn set_tab(&mut self, tab: Tab) {
        self.tab = tab;
    }
    pub(crate) fn set_title(&mut self, title: &str) {
        self.title = title.into();
    }
    pub(crate) fn set_run_dir(&mut self, dir: PathBuf) {
        self.run_dir = dir;
    }
    pub(crate) fn set_color_depth(&mut self, depth: ColorDepth) {
        self.color_depth = depth;
    }
    pub(crate) fn set_channel(&mut self, channel: usize) {
        self.channel = channel;
    }
    pub(crate) fn clear_message(&mut self) {
        self.note = None;
    }
    pub(crate) fn epochs_mut(&mut self) -> &mut Vec<EpochMetrics> {
        &mut self.epochs
    }
    pub(crate) fn start_mut(&mut self) -> Option<&mut StartInfo> {
        self.start.as_mut()
    }
}

fn step(i: usize, by: isize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (i as isize + by).clamp(0, n as isize - 1) as usize
}
