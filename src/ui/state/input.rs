//! How the user changes the state: [`AppState::update`] takes keys (the path line, answers to
//! prompts, bound actions), clicks on tiles and the outcomes of effects.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{
    Action, AppState, Command, Effect, FilterNorm, Msg, Note, Phase, Prompt, Tab, UiExit, View,
    step,
};
use crate::model::summary::LayerKind;
use crate::ui::keys;
use crate::viz::colormap;

impl AppState {
    /// Take in what the user did; returns what is to be done outside the state. `view` is the
    /// screen as laid out for this state (scrolling moves by what fits).
    pub fn update(&mut self, msg: Msg, view: &View) -> Vec<Effect> {
        match msg {
            Msg::Key(key) if key.kind != KeyEventKind::Release => self.key(key, view),
            Msg::Key(_) => Vec::new(),
            Msg::Action(action) => self.act(action, view),
            Msg::Pick(i) => {
                match self.tab {
                    Tab::Filters => self.filter = i,
                    Tab::Features => self.channel = i,
                    _ => {}
                }
                Vec::new()
            }
            Msg::Completed(done) => {
                if let Some(line) = self.input.as_mut() {
                    *line = done.line;
                    self.input_prefilled = false;
                    self.input_matches = done.matches;
                }
                Vec::new()
            }
            Msg::Exported(files) => {
                let said = match files {
                    Ok(files) => exported(&files, &self.run_dir),
                    Err(e) => e,
                };
                self.confirm(said);
                Vec::new()
            }
            Msg::Colors(choice) => {
                self.set_colors(&choice);
                Vec::new()
            }
            Msg::GraphicsNote(note) => {
                self.graphics_note = note;
                Vec::new()
            }
            Msg::LateColorAnswer(dcs) => {
                self.late_color_answer(&dcs);
                Vec::new()
            }
            Msg::Now(now) => {
                self.now = now;
                Vec::new()
            }
            Msg::ValidationAsked(want) => self.validation_asked(want),
            Msg::Done(done) => self.job_done(done),
            Msg::LooksSync => {
                let want = self.looks_want();
                self.looks
                    .sync(want, &self.run_dir)
                    .map(Effect::Looks)
                    .into_iter()
                    .collect()
            }
            Msg::Looks(done) => {
                self.looks.take(done);
                Vec::new()
            }
        }
    }

    /// One key press: the path line's editing while it is open, a prompt's answer while one
    /// is asked, else the action bound to it.
    fn key(&mut self, key: KeyEvent, view: &View) -> Vec<Effect> {
        if let Some(line) = self.input.as_mut() {
            match key.code {
                KeyCode::Esc => self.input = None,
                KeyCode::Enter => {
                    let path = line.trim().to_string();
                    self.input = None;
                    if !path.is_empty() {
                        self.tell(Note::Probing(path.clone()));
                        return vec![Effect::ProbePath(path)];
                    }
                }
                KeyCode::Backspace => {
                    line.pop();
                }
                KeyCode::Tab => return vec![Effect::Complete(line.clone())],
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    line.clear();
                }
                KeyCode::Char(c) => {
                    if self.input_prefilled && matches!(c, '/' | '~') {
                        line.clear();
                    }
                    line.push(c);
                }
                _ => {}
            }
            self.input_prefilled = false;
            self.input_matches.clear();
            return Vec::new();
        }
        if self.prompt != Prompt::None {
            return self.answer(key, view);
        }
        match keys::lookup(key, self.tab) {
            Some(action) => self.act(action, view),
            None => Vec::new(),
        }
    }

    fn answer(&mut self, key: KeyEvent, view: &View) -> Vec<Effect> {
        let prompt = self.prompt;
        self.prompt = Prompt::None;
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        match (prompt, key.code) {
            (Prompt::ConfirmStop, KeyCode::Char('y' | 'Y')) => self.stop(),
            (Prompt::ConfirmQuit, KeyCode::Char('y' | 'Y')) => {
                self.quitting = true;
                self.stop()
            }
            (Prompt::ConfirmQuit, KeyCode::Char('d' | 'D')) => {
                self.exit = Some(UiExit::QuitWhileRunning);
                Vec::new()
            }
            _ if ctrl_c => self.act(Action::Interrupt, view),
            _ => {
                self.tell("cancelled");
                Vec::new()
            }
        }
    }

    fn stop(&mut self) -> Vec<Effect> {
        if !self.phase.is_active() {
            return Vec::new();
        }
        self.phase = Phase::Stopping;
        self.tell("stopping, writing checkpoint…");
        vec![Effect::Command(Command::Stop)]
    }

    /// Apply one user action.
    fn act(&mut self, action: Action, view: &View) -> Vec<Effect> {
        if !self.message_held() {
            self.note = None;
        }
        match action {
            Action::ShowTab(t) => self.tab = t,
            Action::NextTab => self.tab = self.tab.offset(1),
            Action::PrevTab => self.tab = self.tab.offset(-1),
            Action::Quit | Action::Interrupt => self.quit(action == Action::Interrupt),
            Action::TogglePause => return self.toggle_pause(),
            Action::CheckpointNow => {
                if self.phase.is_active() {
                    self.tell("checkpoint requested");
                    self.checkpoint_asked = true;
                    return vec![Effect::Command(Command::CheckpointNow)];
                }
                self.tell(self.not_running("checkpoint"));
            }
            Action::Stop => {
                if self.phase == Phase::Stopping {
                    self.tell("the run is stopping already");
                } else if self.phase.is_active() {
                    self.prompt = Prompt::ConfirmStop;
                } else {
                    self.tell(self.not_running("stop"));
                }
            }
            Action::Scroll(n) if self.tab == Tab::Training => {
                let visible = view.table_rows;
                let first = self.first_epoch_row(visible);
                self.scroll_epochs_to(first.saturating_add_signed(isize::from(n)), visible);
            }
            Action::Scroll(n) => {
                self.help_scroll = self
                    .help_scroll
                    .saturating_add_signed(isize::from(n))
                    .min(view.help_max_scroll);
            }
            Action::ScrollHome => self.scroll_epochs_to(0, view.table_rows),
            Action::ScrollEnd => self.epoch_scroll = None,
            Action::ShowBest => self.show_best_epoch(view.table_rows),
            Action::RowUp => self.model_row = self.model_row.saturating_sub(1),
            Action::RowDown => {
                let n = self.start.as_ref().map_or(0, |s| s.summary.len());
                self.model_row = (self.model_row + 1).min(n.saturating_sub(1));
            }
            Action::OpenLayer | Action::OpenMaps => self.open_layer(action == Action::OpenMaps),
            Action::PrevLayer => self.step_layer(-1),
            Action::NextLayer => self.step_layer(1),
            Action::PrevItem => self.step_item(-1),
            Action::NextItem => self.step_item(1),
            Action::PrevItemRow => self.step_item(-8),
            Action::NextItemRow => self.step_item(8),
            Action::ToggleFilterNorm => {
                self.filter_norm = match self.filter_norm {
                    FilterNorm::Layer => FilterNorm::Filter,
                    FilterNorm::Filter => FilterNorm::Layer,
                };
            }
            Action::Export => return vec![Effect::Export],
            Action::PrevEpoch | Action::NextEpoch if self.tab == Tab::Validation => {
                self.validation_step_epoch(action == Action::NextEpoch);
            }
            Action::PrevEpoch | Action::NextEpoch => {
                return self.step_epoch(action == Action::NextEpoch);
            }
            Action::CellMove(rows, cols) => return self.validation_move(rows, cols),
            Action::Open => return self.validation_open(),
            Action::Back => self.validation_back(),
            Action::ListImages(mode) => return self.validation_list_mode(mode),
            Action::TogglePercent => self.validation_toggle_percent(),
            Action::RefreshFilters => {
                self.tell("filters requested");
                return vec![Effect::Command(Command::RefreshFilters)];
            }
            Action::ToggleLooks => self.looks.toggle(),
            Action::ToggleLooksRegularised => self.looks.toggle_regularised(),
            Action::CycleColormap => self.colormap = colormap::next(self.colormap),
            Action::ToggleCam | Action::NextCamLayer | Action::NextCamClass => {
                return self.step_cam(action);
            }
            Action::CompareWithProbe | Action::CompareOff | Action::CycleCompareOrder => {
                return self.step_compare(action);
            }
            Action::CompareWithImage => return self.validation_compare(),
            Action::PinScale => self.pin_scale(),
            Action::CycleCamWeight => self.cam.weight = self.cam.weight.next(),
            Action::CycleCamColormap => self.cam.colormap = self.cam.colormap.next(),
            Action::NextProbe | Action::PrevProbe => {
                return self.step_probe(action == Action::NextProbe);
            }
            Action::OpenProbe => self.open_probe_prompt(),
        }
        Vec::new()
    }

    /// The prompt for an image's path, started in the shown image's folder (Tab then goes
    /// through its neighbours).
    fn open_probe_prompt(&mut self) {
        let folder = self
            .features
            .as_ref()
            .and_then(|f| f.image.parent().map(|p| p.display().to_string()))
            .filter(|p| !p.is_empty());
        self.input_prefilled = folder.is_some();
        self.input = Some(folder.map_or_else(String::new, |p| format!("{p}/")));
        self.input_matches.clear();
    }

    /// Grad-CAM on or off, or the next layer or class (which turn it on): the worker is asked
    /// for the probe's map again.
    fn step_cam(&mut self, action: Action) -> Vec<Effect> {
        let cam = &mut self.cam;
        match action {
            Action::NextCamLayer => cam.request.layer = cam.request.layer.wrapping_add(1),
            Action::NextCamClass => cam.request.class = cam.request.class.wrapping_add(1),
            _ => {}
        }
        cam.on = action != Action::ToggleCam || !cam.on;
        vec![Effect::Command(Command::Explain {
            cam: cam.on.then_some(cam.request),
        })]
    }

    /// Compare with the probe shown (it becomes B), stop comparing, or order the channels the
    /// next way.
    fn step_compare(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::CompareWithProbe => {
                let Some(image) = self.features.as_ref().map(|f| f.image.clone()) else {
                    self.tell("no probe image yet to compare with");
                    return Vec::new();
                };
                self.compare_with(image)
            }
            Action::CompareOff => {
                if self.compare_b.take().is_none() {
                    self.tell("not comparing: b makes the probe shown B");
                    return Vec::new();
                }
                self.tell("compare off");
                vec![Effect::Command(Command::Compare { image: None })]
            }
            _ => {
                self.compare_order = self.compare_order.next();
                self.channel = 0;
                self.tell(format!(
                    "compare: channels by {}",
                    self.compare_order.name()
                ));
                Vec::new()
            }
        }
    }

    /// Pin each channel's scale to the maps shown (again: unpin).
    fn pin_scale(&mut self) {
        if self.pinned_scale.take().is_some() {
            self.tell("scale: each snapshot's own again");
            return;
        }
        let Some(snap) = self.features.as_deref() else {
            self.tell("no feature maps yet to pin the scale to");
            return;
        };
        let pinned = super::PinnedScale::of(snap);
        self.tell(format!(
            "scale pinned to epoch {}: [ ] step through epochs on it (the zoom: pinned | shown | shown − pinned), z unpins",
            pinned.epoch
        ));
        self.pinned_scale = Some(pinned);
    }

    /// Compare the probe (A) with `image` (B) on the Feature maps tab.
    pub(super) fn compare_with(&mut self, image: PathBuf) -> Vec<Effect> {
        self.tell(format!(
            "B = {}: n/p/o pick A, r orders the channels, B stops",
            image.display()
        ));
        self.compare_b = Some(image.clone());
        vec![Effect::Command(Command::Compare { image: Some(image) })]
    }

    /// `q` or Ctrl-C (`interrupt`): ask while the run is going; a second Ctrl-C while it
    /// stops leaves at once.
    fn quit(&mut self, interrupt: bool) {
        if self.quitting {
            if interrupt {
                self.exit = Some(UiExit::QuitWhileRunning);
            }
        } else if self.phase.is_active() {
            self.prompt = Prompt::ConfirmQuit;
        } else {
            self.exit = Some(UiExit::Finished);
        }
    }

    fn toggle_pause(&mut self) -> Vec<Effect> {
        match self.phase {
            Phase::Paused => {
                self.tell("resuming…");
                return vec![Effect::Command(Command::Resume)];
            }
            Phase::Running | Phase::Preparing | Phase::Tuning => {
                self.tell("pausing after this batch…");
                return vec![Effect::Command(Command::Pause)];
            }
            Phase::Waiting => {
                self.tell("nothing to pause yet: the run has not started");
            }
            Phase::Stalled => {
                self.tell("the run has sent nothing for a while; pausing waits for it");
                return vec![Effect::Command(Command::Pause)];
            }
            Phase::Stopping => self.tell("the run is stopping already"),
            Phase::Finished(_) | Phase::Failed | Phase::Interrupted => {
                self.tell(self.not_running("pause"));
            }
        }
        Vec::new()
    }

    fn step_probe(&mut self, forward: bool) -> Vec<Effect> {
        let Some(images) = self.start.as_ref().map(|s| &s.probe_images) else {
            return Vec::new();
        };
        if images.is_empty() {
            self.tell("no probe images: press o to open one");
            return Vec::new();
        }
        let n = images.len();
        self.probe = if forward {
            (self.probe + 1) % n
        } else {
            (self.probe + n - 1) % n
        };
        let image = images[self.probe].clone();
        self.tell(Note::Probing(image.display().to_string()));
        vec![Effect::Command(Command::Probe { image })]
    }

    /// Show the epoch table from row `first`; at the newest rows it follows new epochs again.
    fn scroll_epochs_to(&mut self, first: usize, visible: usize) {
        let last_start = self.epochs.len().saturating_sub(visible);
        self.epoch_scroll = (first < last_start).then_some(first);
    }

    /// Scroll the epoch table (`visible` rows at once) so that the best epoch's row is in view
    /// (in the middle where it can be).
    fn show_best_epoch(&mut self, visible: usize) {
        let Some(best) = self.best_epoch() else {
            self.tell("no best epoch yet: it needs validation accuracy");
            return;
        };
        let Some(row) = self.epochs.iter().position(|e| e.epoch == best) else {
            return;
        };
        let visible = visible.max(1);
        let first = self.first_epoch_row(visible);
        if !(first..first + visible).contains(&row) {
            self.scroll_epochs_to(row.saturating_sub(visible / 2), visible);
        }
        let acc = self.epochs[row].val_accuracy.unwrap_or(0.0);
        self.tell(format!("best val accuracy: epoch {best} ({acc:.3})"));
    }

    /// Why `what` (pause, checkpoint, stop) does nothing on a run that has ended, and how to
    /// go on with it.
    fn not_running(&self, what: &str) -> String {
        let why = match self.phase {
            Phase::Finished(crate::events::FinishReason::Completed) => "the run has finished",
            Phase::Finished(crate::events::FinishReason::Stopped) => "the run was stopped",
            Phase::Failed => "the run failed",
            _ => "the run is not running",
        };
        let more = match self.phase {
            Phase::Finished(crate::events::FinishReason::Completed) => " --epochs N",
            _ => "",
        };
        format!(
            "nothing to {what}: {why}; continue it with `convscope resume {}{more}`",
            self.run_dir.display()
        )
    }

    /// Open the pictures of the Model tab's selected layer: a conv layer's filters (unless
    /// `maps`), else its feature maps. Snapshots hold the conv layers (filters) and the conv
    /// and pooling layers (maps) in the model's order: the row's place among them is its index.
    fn open_layer(&mut self, maps: bool) {
        let Some(summary) = self.start.as_ref().map(|s| &s.summary) else {
            return;
        };
        let Some(row) = summary.get(self.model_row) else {
            return;
        };
        let name = row.name.clone();
        let kind = LayerKind::of(&row.kind);
        let before = &summary[..self.model_row];
        let count =
            |f: fn(LayerKind) -> bool| before.iter().filter(|r| f(LayerKind::of(&r.kind))).count();
        let (filter_index, map_index) = (count(LayerKind::has_filters), count(LayerKind::has_maps));
        let filter_layers = self.filters.as_ref().map_or(0, |f| f.layers.len());
        if kind.has_filters() && !maps && filter_index < filter_layers {
            self.filter_layer = filter_index;
            self.filter = 0;
            self.tab = Tab::Filters;
            return;
        }
        let map_layers = self.features.as_ref().map_or(0, |f| f.layers.len());
        if kind.has_maps() && map_index < map_layers {
            self.feature_layer = map_index;
            self.channel = 0;
            self.tab = Tab::Features;
            return;
        }
        self.tell(if kind.has_maps() {
            format!("no pictures of {name} yet: they come with the next snapshot")
        } else {
            format!("{name} has no pictures: only conv and pooling layers do")
        });
    }

    fn step_layer(&mut self, by: isize) {
        match self.tab {
            Tab::Filters => {
                let n = self.filters.as_ref().map_or(0, |f| f.layers.len());
                self.filter_layer = step(self.filter_layer, by, n);
                self.filter = 0;
            }
            Tab::Features => {
                let n = self.features.as_ref().map_or(0, |f| f.layers.len());
                self.feature_layer = step(self.feature_layer, by, n);
                self.channel = 0;
            }
            _ => {}
        }
    }

    fn step_item(&mut self, by: isize) {
        match self.tab {
            Tab::Filters => {
                let n = self.filter_layer().map_or(0, |l| l.out_channels);
                self.filter = step(self.filter, by, n);
            }
            Tab::Features => {
                let n = self.feature_layer().map_or(0, |l| l.channels);
                self.channel = step(self.channel, by, n);
            }
            _ => {}
        }
    }
}

/// The note after an export: how many files, where, and their names.
fn exported(files: &[PathBuf], run_dir: &std::path::Path) -> String {
    format!(
        "exported {} file{} to {}: {}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        files
            .first()
            .and_then(|f| f.parent())
            .unwrap_or(&run_dir.join("export"))
            .display(),
        files
            .iter()
            .filter_map(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
