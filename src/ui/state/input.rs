//! How the user changes the state: keys, mouse clicks, answers to prompts and resizes, each
//! turned into [`Action`]s and commands for the worker.

use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};

use super::complete::{complete, expand_home};

use super::{
    Action, AppState, Command, FilterNorm, Grid, Phase, Prompt, Slot, Tab, UiExit, colormap, keys,
    step,
};

impl AppState {
    /// Take in one terminal event; returns the commands for the worker.
    pub fn handle_terminal(&mut self, event: &TermEvent) -> Vec<Command> {
        match event {
            TermEvent::Key(k) if k.kind != KeyEventKind::Release => self.handle_key(*k),
            TermEvent::Resize(w, h) => {
                self.resize(*w, *h);
                Vec::new()
            }
            TermEvent::Mouse(m) => {
                if let MouseEventKind::Down(MouseButton::Left) = m.kind {
                    self.click(m.column, m.row)
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    /// A left click: a tab in the tab bar, or a filter / channel in its grid.
    fn click(&mut self, col: u16, row: u16) -> Vec<Command> {
        if row == 0 {
            return match crate::ui::render::tab_at(col) {
                Some(tab) => self.update(Action::ShowTab(tab)),
                None => Vec::new(),
            };
        }
        let body = self.body();
        // The grid tile under the click, if the click is on a grid picture: as a graphics image
        // where one was drawn, else as half blocks.
        let shown = |slot: Slot| self.shown.iter().find(|(s, _)| *s == slot).map(|(_, r)| *r);
        let tile = |slot: Slot, geom: Option<Grid>, pic: &crate::ui::pictures::Pic, area| {
            let (x, y) = match shown(slot) {
                Some(r) => crate::ui::picture::pixel_in(&pic.raster, r, col, row)?,
                None => crate::ui::picture::pixel_at(&pic.raster, area, col, row)?,
            };
            geom?.tile_at(x, y)
        };
        match self.tab {
            Tab::Filters => {
                let area = crate::ui::tabs::filters::areas(self, body).grid;
                let hit = tile(
                    Slot::FilterGrid,
                    self.pictures.filter_geom,
                    &self.pictures.filter_grid,
                    area,
                );
                if let Some(i) = hit {
                    self.filter = i;
                    self.rebuild_filters();
                }
            }
            Tab::Features => {
                let area = crate::ui::tabs::features::areas(self, body).grid;
                let hit = tile(
                    Slot::FeatureGrid,
                    self.pictures.feature_geom,
                    &self.pictures.feature_grid,
                    area,
                );
                if let Some(i) = hit {
                    self.channel = i;
                    self.rebuild_features();
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// Take in one key press; returns the commands for the worker.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if let Some(line) = self.input.as_mut() {
            match key.code {
                KeyCode::Esc => self.input = None,
                KeyCode::Enter => {
                    let path = line.trim().to_string();
                    self.input = None;
                    if !path.is_empty() {
                        self.tell(format!("probing {path}"));
                        return vec![Command::Probe {
                            image: expand_home(&path, std::env::var_os("HOME")),
                        }];
                    }
                }
                KeyCode::Backspace => {
                    line.pop();
                }
                KeyCode::Tab => {
                    let done = complete(line, std::env::var_os("HOME"));
                    *line = done.line;
                    self.input_prefilled = false;
                    self.input_matches = done.matches;
                    return Vec::new();
                }
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
            return self.answer(key);
        }
        match keys::lookup(key, self.tab) {
            Some(action) => self.update(action),
            None => Vec::new(),
        }
    }

    fn answer(&mut self, key: KeyEvent) -> Vec<Command> {
        let prompt = self.prompt;
        self.prompt = Prompt::None;
        let ctrl_c = key.code == KeyCode::Char('c')
            && key
                .modifiers
                .contains(crossterm::event::KeyModifiers::CONTROL);
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
            _ if ctrl_c => self.update(Action::Interrupt),
            _ => {
                self.tell("cancelled");
                Vec::new()
            }
        }
    }

    fn stop(&mut self) -> Vec<Command> {
        if !self.phase.is_active() {
            return Vec::new();
        }
        self.phase = Phase::Stopping;
        self.tell("stopping, writing checkpoint…");
        vec![Command::Stop]
    }

    /// Record the terminal size and re-tile the grids for it.
    pub fn resize(&mut self, w: u16, h: u16) {
        if self.size != (w, h) {
            self.size = (w, h);
            self.rebuild_all();
        }
    }

    /// Apply one user action; returns the commands for the worker.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        if !self.message_held() {
            self.message = None;
        }
        match action {
            Action::ShowTab(t) => self.tab = t,
            Action::NextTab => self.tab = self.tab.offset(1),
            Action::PrevTab => self.tab = self.tab.offset(-1),
            Action::Quit | Action::Interrupt => {
                if self.quitting {
                    if action == Action::Interrupt {
                        self.exit = Some(UiExit::QuitWhileRunning);
                    }
                } else if self.phase.is_active() {
                    self.prompt = Prompt::ConfirmQuit;
                } else {
                    self.exit = Some(UiExit::Finished);
                }
            }
            Action::TogglePause => match self.phase {
                Phase::Paused => {
                    self.tell("resuming…");
                    return vec![Command::Resume];
                }
                Phase::Running | Phase::Preparing | Phase::Tuning => {
                    self.tell("pausing after this batch…");
                    return vec![Command::Pause];
                }
                Phase::Waiting => {
                    self.tell("nothing to pause yet: the run has not started");
                }
                Phase::Stalled => {
                    self.tell("the run has sent nothing for a while; pausing waits for it");
                    return vec![Command::Pause];
                }
                Phase::Stopping => self.tell("the run is stopping already"),
                Phase::Finished(_) | Phase::Failed | Phase::Interrupted => {
                    self.tell(self.not_running("pause"));
                }
            },
            Action::CheckpointNow => {
                if self.phase.is_active() {
                    self.tell("checkpoint requested");
                    self.checkpoint_asked = true;
                    return vec![Command::CheckpointNow];
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
                let visible = crate::ui::tabs::training::table_rows(self, self.body());
                let first = crate::ui::tabs::training::first_row(self, visible);
                self.scroll_epochs_to(first.saturating_add_signed(isize::from(n)), visible);
            }
            Action::Scroll(n) => {
                let max = crate::ui::tabs::help::max_scroll(self, self.body());
                self.help_scroll = self
                    .help_scroll
                    .saturating_add_signed(isize::from(n))
                    .min(max);
            }
            Action::ScrollHome => {
                let visible = crate::ui::tabs::training::table_rows(self, self.body());
                self.scroll_epochs_to(0, visible);
            }
            Action::ScrollEnd => self.epoch_scroll = None,
            Action::ShowBest => self.show_best_epoch(),
            Action::RowUp => self.model_row = self.model_row.saturating_sub(1),
            Action::RowDown => {
                let n = self.start.as_ref().map_or(0, |s| s.summary.len());
                self.model_row = (self.model_row + 1).min(n.saturating_sub(1));
            }
            Action::OpenLayer | Action::OpenMaps => self.open_layer(action == Action::OpenMaps),
            Action::PrevLayer | Action::NextLayer => {
                let by = if action == Action::NextLayer { 1 } else { -1 };
                self.step_layer(by);
            }
            Action::PrevItem => self.step_item(-1),
            Action::NextItem => self.step_item(1),
            Action::PrevItemRow => self.step_item(-8),
            Action::NextItemRow => self.step_item(8),
            Action::ToggleFilterNorm => {
                self.filter_norm = match self.filter_norm {
                    FilterNorm::Layer => FilterNorm::Filter,
                    FilterNorm::Filter => FilterNorm::Layer,
                };
                self.rebuild_filters();
            }
            Action::Export => {
                let said = match crate::ui::export::export_tab(self) {
                    Ok(files) => format!(
                        "exported {} file{} to {}: {}",
                        files.len(),
                        if files.len() == 1 { "" } else { "s" },
                        files
                            .first()
                            .and_then(|f| f.parent())
                            .unwrap_or(&self.run_dir.join("export"))
                            .display(),
                        files
                            .iter()
                            .filter_map(|f| f.file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Err(e) => e.to_string(),
                };
                self.confirm(said);
            }
            Action::PrevEpoch | Action::NextEpoch => {
                return self.step_epoch(action == Action::NextEpoch);
            }
            Action::RefreshFilters => {
                self.tell("filters requested");
                return vec![Command::RefreshFilters];
            }
            Action::CycleColormap => {
                self.colormap = colormap::next(self.colormap);
                self.rebuild_all();
            }
            Action::NextProbe | Action::PrevProbe => {
                let Some(images) = self.start.as_ref().map(|s| &s.probe_images) else {
                    return Vec::new();
                };
                if images.is_empty() {
                    self.tell("no probe images: press o to open one");
                    return Vec::new();
                }
                let n = images.len();
                self.probe = if action == Action::NextProbe {
                    (self.probe + 1) % n
                } else {
                    (self.probe + n - 1) % n
                };
                let image = images[self.probe].clone();
                self.tell(format!("probing {}", image.display()));
                return vec![Command::Probe { image }];
            }
            Action::OpenProbe => {
                // Start in the shown image's folder: Tab goes through its neighbours.
                let folder = self
                    .features
                    .as_ref()
                    .and_then(|f| f.image.parent().map(|p| p.display().to_string()))
                    .filter(|p| !p.is_empty());
                self.input_prefilled = folder.is_some();
                self.input = Some(folder.map_or_else(String::new, |p| format!("{p}/")));
                self.input_matches.clear();
            }
        }
        Vec::new()
    }

    /// Show the epoch table from row `first`; at the newest rows it follows new epochs again.
    fn scroll_epochs_to(&mut self, first: usize, visible: usize) {
        let last_start = self.epochs.len().saturating_sub(visible);
        self.epoch_scroll = (first < last_start).then_some(first);
    }

    /// Scroll the epoch table so that the best epoch's row is in view (in the middle where
    /// it can be).
    fn show_best_epoch(&mut self) {
        let Some(best) = self.best_epoch() else {
            self.tell("no best epoch yet: it needs validation accuracy");
            return;
        };
        let Some(row) = self.epochs.iter().position(|e| e.epoch == best) else {
            return;
        };
        let visible = crate::ui::tabs::training::table_rows(self, self.body()).max(1);
        let first = crate::ui::tabs::training::first_row(self, visible);
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

    fn open_layer(&mut self, maps: bool) {
        let Some(row) = self
            .start
            .as_ref()
            .and_then(|s| s.summary.get(self.model_row))
        else {
            return;
        };
        let row = row.clone();
        let name = row.name.clone();
        let is_conv = row.kind.contains("Conv");
        if is_conv
            && !maps
            && let Some(i) = self
                .filters
                .as_ref()
                .and_then(|f| f.layers.iter().position(|l| l.name == name))
        {
            self.filter_layer = i;
            self.filter = 0;
            self.tab = Tab::Filters;
            self.rebuild_filters();
            return;
        }
        if let Some(i) = self
            .features
            .as_ref()
            .and_then(|f| f.layers.iter().position(|l| l.name == name))
        {
            self.feature_layer = i;
            self.channel = 0;
            self.tab = Tab::Features;
            self.rebuild_features();
            return;
        }
        let pictured = is_conv || row.kind.contains("Pool");
        self.tell(if pictured {
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
                self.rebuild_filters();
            }
            Tab::Features => {
                let n = self.features.as_ref().map_or(0, |f| f.layers.len());
                self.feature_layer = step(self.feature_layer, by, n);
                self.channel = 0;
                self.rebuild_features();
            }
            _ => {}
        }
    }

    fn step_item(&mut self, by: isize) {
        match self.tab {
            Tab::Filters => {
                let n = self.filter_layer().map_or(0, |l| l.out_channels);
                self.filter = step(self.filter, by, n);
                self.rebuild_filters();
            }
            Tab::Features => {
                let n = self.feature_layer().map_or(0, |l| l.channels);
                self.channel = step(self.channel, by, n);
                self.rebuild_features();
            }
            _ => {}
        }
    }
}
