//! The event loop: terminal input, worker events and a frame tick under one `select!`; draws
//! right after input, otherwise at most once per tick and only when something changed.

use std::io::{Stdout, Write, stdout};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::event::{DisableMouseCapture, Event as TermEvent, MouseButton, MouseEventKind};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::layout::Rect;
use ratatui::{Frame, Terminal};

use super::compact::Compact;
use super::complete::{complete, expand_home};
use super::graphics::Graphics;
use super::layout::{self, Layout};
use super::pacing::Pacer;
use super::pictures::Pictures;
use super::record::{Done, Job};
use super::state::{AppState, Effect, Msg, Worker};
use super::tabs::Scene;
use super::truecolor::{Choice, LateAnswer};
use super::vocab::{Slot, Tab, UiExit};
use super::{UiOptions, clicks, export, render};
use crate::config::UiConfig;
use crate::events::{Command, Event, EventReceiver};

/// Ask the terminal for mouse clicks only: press and release (1000) in SGR coordinates (1006).
///
/// crossterm's `EnableMouseCapture` also turns on any-motion tracking (1003): every move of the
/// mouse over the window is then sent up the link, and selecting text needs Shift. The TUI uses
/// clicks alone. (`DisableMouseCapture` turns every mode off, these included.)
struct EnableClicks;

/// The bytes that [`EnableClicks`] writes.
pub const ENABLE_CLICKS: &str = "\x1b[?1000h\x1b[?1006h";

impl crossterm::Command for EnableClicks {
    fn write_ansi(&self, f: &mut impl std::fmt::Write) -> std::fmt::Result {
        f.write_str(ENABLE_CLICKS)
    }
}

/// Leave raw mode and the alternate screen; safe to call more than once.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut out = stdout();
    let _ = execute!(
        out,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Restores the terminal when dropped, on every exit path including `?` and unwinding.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

type PanicHook = Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync>;

/// Puts the previous panic hook back when dropped.
struct HookGuard(Option<PanicHook>);

impl Drop for HookGuard {
    fn drop(&mut self) {
        // Changing the hook while unwinding panics (and aborts); ours stays, which is harmless.
        if std::thread::panicking() {
            return;
        }
        if let Some(prev) = self.0.take() {
            std::panic::set_hook(Box::new(move |info| prev(info)));
        }
    }
}

/// Restore the terminal before a panic on the UI thread is reported. A panic on another thread
/// (the worker) goes to the log only: printing it would scribble over the TUI, and the worker's
/// channel closing already shows the run as failed.
fn install_panic_hook() -> HookGuard {
    let prev: PanicHook = Arc::from(std::panic::take_hook());
    let chained = Arc::clone(&prev);
    let ui_thread = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            restore_terminal();
            chained(info);
        } else {
            let name = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_string();
            tracing::error!("panic in thread {name}: {info}");
        }
    }));
    HookGuard(Some(prev))
}

/// Terminal input as it arrives, read on a thread of its own.
///
/// crossterm's reader reads until it has an event, on a blocking descriptor: a late answer to
/// the graphics query (or any bytes that make no event) is read, and the next read then waits
/// for a key. On the UI's thread that stopped the drawing too (seen in tmux: a blank screen until
/// a key was pressed). Here it only holds up input, which has nothing to deliver anyway. The
/// thread ends within [`INPUT_POLL`] of `stop` being set, or when the receiver is gone.
struct Input {
    events: tokio::sync::mpsc::UnboundedReceiver<std::io::Result<crossterm::event::Event>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// How often the input thread looks at its stop flag.
const INPUT_POLL: Duration = Duration::from_millis(100);

impl Input {
    fn spawn() -> anyhow::Result<Self> {
        use std::sync::atomic::Ordering;
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("input".into())
            .spawn(move || {
                while !stopped.load(Ordering::SeqCst) {
                    let ev = match crossterm::event::poll(INPUT_POLL) {
                        Ok(false) => continue,
                        Ok(true) => crossterm::event::read(),
                        Err(e) => Err(e),
                    };
                    let failed = ev.is_err();
                    if tx.send(ev).is_err() || failed {
                        break;
                    }
                }
            })
            .context("cannot start the terminal input thread")?;
        Ok(Self { events, stop })
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        // Stop reading the terminal: after the UI it belongs to the shell again.
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The TUI's parts: the state the user sees, the pictures derived from it, their graphics
/// encodings, the pacing of pictures, and the screen's layout. Every change to the state
/// goes through here, so that the layout and the pictures follow it.
#[derive(Debug)]
pub struct App {
    state: AppState,
    pictures: Pictures,
    graphics: Graphics,
    pacer: Pacer,
    /// The terminal's size in cells.
    size: (u16, u16),
    /// Pixels a cell holds in the pictures drawn (half blocks: 1 × 2; graphics: the font's).
    cell: (usize, usize),
    /// The screen laid out for `state` at `size`.
    layout: Layout,
    /// Where graphics images (sixel, kitty, iTerm2) were last drawn, by slot: their size follows
    /// the terminal's pixels, not the half-block layout, so clicks map through these.
    shown: Vec<(Slot, Rect)>,
    /// File reads the state asked for, to run off the event loop ([`App::take_jobs`]).
    jobs: Vec<Job>,
    /// Maximisations the Filters tab asked for ([`App::take_looks_jobs`]).
    looks_jobs: Vec<super::looks::Job>,
    /// The maximisation's progress as last drawn.
    looks_drawn: (usize, usize),
}

impl App {
    /// The TUI before any event, in an 80×24 terminal, drawing half blocks.
    #[must_use]
    pub fn new(config: &UiConfig, title: String, run_dir: std::path::PathBuf) -> Self {
        let state = AppState::new(config, title, run_dir);
        let (size, cell) = ((80, 24), (1, 2));
        let layout = layout::compute(size, &state);
        let pictures = Pictures::new(&state, &layout, cell);
        Self {
            state,
            pictures,
            graphics: Graphics::halfblocks(),
            pacer: Pacer::new(config.refresh_kb_per_sec, Instant::now()),
            size,
            cell,
            layout,
            shown: Vec::new(),
            jobs: Vec::new(),
            looks_jobs: Vec::new(),
            looks_drawn: (0, 0),
        }
    }

    /// Draw pictures with `graphics` (a protocol the terminal speaks).
    #[must_use]
    pub fn with_graphics(mut self, graphics: Graphics) -> Self {
        self.graphics = graphics;
        self
    }

    /// What the user sees and chose.
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The rasters derived from the state.
    #[must_use]
    pub fn pictures(&self) -> &Pictures {
        &self.pictures
    }

    /// The screen as laid out for the state at the terminal's size.
    #[must_use]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Lay out the screen again and bring the pictures up to date: after every change. A read
    /// of the validation record that the state now wants is queued as a job.
    fn refresh(&mut self) {
        if let Some(want) = self.state.validation_due() {
            let effects = self
                .state
                .update(Msg::ValidationAsked(want), &self.layout.view());
            debug_assert!(effects.is_empty());
            self.jobs.push(Job::Record {
                run: self.state.run_dir().to_path_buf(),
                want,
            });
        }
        if self.state.looks_due() {
            for effect in self.state.update(Msg::LooksSync, &self.layout.view()) {
                if let Effect::Looks(job) = effect {
                    self.looks_jobs.push(job);
                }
            }
        }
        self.layout = layout::compute(self.size, &self.state);
        self.pictures.sync(&self.state, &self.layout, self.cell);
    }

    /// The maximisations asked for since the last call, to run off the event loop; each
    /// one's outcome goes to [`App::update`] as [`Msg::Looks`].
    pub fn take_looks_jobs(&mut self) -> Vec<super::looks::Job> {
        std::mem::take(&mut self.looks_jobs)
    }

    /// Whether the running maximisation moved on since this was last asked (a redraw shows it).
    fn looks_moved(&mut self) -> bool {
        let now = self
            .state
            .looks()
            .running()
            .map_or((0, 0), |(_, p)| p.steps());
        std::mem::replace(&mut self.looks_drawn, now) != now
    }

    /// The file reads asked for since the last call, to run off the event loop; each one's
    /// outcome goes to [`App::job_done`].
    pub fn take_jobs(&mut self) -> Vec<Job> {
        std::mem::take(&mut self.jobs)
    }

    /// Take in what a job found; returns the commands for the worker.
    pub fn job_done(&mut self, done: Done) -> Vec<Command> {
        self.update(Msg::Done(done))
    }

    /// Take in one worker event.
    pub fn apply(&mut self, event: Event) {
        self.state.apply(event);
        self.refresh();
    }

    /// The worker's channel closed.
    pub fn worker_gone(&mut self) {
        self.state.apply(Worker::Gone);
        self.refresh();
    }

    /// Record the terminal's size; the layout and the pictures follow it.
    pub fn resize(&mut self, w: u16, h: u16) {
        if self.size != (w, h) {
            self.size = (w, h);
            self.refresh();
        }
    }

    /// Draw pictures for cells of `cell` pixels (the graphics protocol in use); re-tiles the
    /// grids when it changes.
    pub fn set_cell_pixels(&mut self, cell: (usize, usize)) {
        if self.cell != cell {
            self.cell = cell;
            self.refresh();
        }
    }

    /// Tell the state the time (the event loop does, before each event it takes in).
    pub fn set_now(&mut self, now: Instant) {
        // The time decides only how long a note is held: nothing to lay out again.
        let effects = self.state.update(Msg::Now(now), &self.layout.view());
        debug_assert!(effects.is_empty());
    }

    /// Use the colour depth `choice` (see [`super::truecolor::detect`]).
    pub fn set_colors(&mut self, choice: Choice) {
        self.update(Msg::Colors(choice));
    }

    /// Say on the Help tab which graphics protocol is in use and why.
    fn note_graphics(&mut self) {
        let note = self.graphics.describe().to_string();
        self.update(Msg::GraphicsNote(note));
    }

    /// Take in what the user did and carry out what it asks for: completions and exports are
    /// done here, their outcomes taken in; the commands for the worker are returned.
    pub fn update(&mut self, msg: Msg) -> Vec<Command> {
        let mut commands = Vec::new();
        let mut effects =
            std::collections::VecDeque::from(self.state.update(msg, &self.layout.view()));
        while let Some(effect) = effects.pop_front() {
            let answer = match effect {
                Effect::Command(c) => {
                    commands.push(c);
                    continue;
                }
                Effect::ProbePath(path) => {
                    commands.push(Command::Probe {
                        image: expand_home(&path, std::env::var_os("HOME")),
                    });
                    continue;
                }
                Effect::Job(job) => {
                    self.jobs.push(job);
                    continue;
                }
                Effect::Looks(job) => {
                    self.looks_jobs.push(job);
                    continue;
                }
                Effect::Complete(line) => Msg::Completed(complete(&line, std::env::var_os("HOME"))),
                Effect::Export => Msg::Exported(
                    export::export_tab(&self.state, &self.pictures).map_err(|e| e.to_string()),
                ),
            };
            effects.extend(self.state.update(answer, &self.layout.view()));
        }
        self.refresh();
        commands
    }

    /// Take in one key press; returns the commands for the worker.
    pub fn handle_key(&mut self, key: crossterm::event::KeyEvent) -> Vec<Command> {
        self.update(Msg::Key(key))
    }

    /// Take in one terminal event (a key, a resize, a click); returns the commands for the
    /// worker.
    pub fn handle_terminal(&mut self, event: &TermEvent) -> Vec<Command> {
        match event {
            TermEvent::Key(k) => self.handle_key(*k),
            TermEvent::Resize(w, h) => {
                self.resize(*w, *h);
                Vec::new()
            }
            TermEvent::Mouse(m) if m.kind == MouseEventKind::Down(MouseButton::Left) => {
                match clicks::target(m.column, m.row, &self.layout, &self.pictures, &self.shown) {
                    Some(msg) => self.update(msg),
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Draw the screen into `frame`. A frame of another size than the terminal's (a test's)
    /// is laid out for itself, with the pictures as they are.
    pub fn render(&self, frame: &mut Frame) {
        let area = frame.area();
        let other;
        let layout = if area == self.layout.screen {
            &self.layout
        } else {
            other = layout::compute((area.width, area.height), &self.state);
            &other
        };
        render::render(
            Scene {
                state: &self.state,
                pictures: &self.pictures,
                gfx: &self.graphics,
                layout,
            },
            frame,
        );
    }

    /// Whether the screen shows pictures that an epoch end changes: the Filters or Feature maps
    /// tab of a run that is still going (after it, nothing more comes to hold back).
    fn pictures_on_screen(&self) -> bool {
        matches!(self.state.tab(), Tab::Filters | Tab::Features) && self.state.phase().is_active()
    }

    /// Where this screen's graphics images were drawn, for mapping clicks.
    fn shown_images(&self) -> Vec<(Slot, Rect)> {
        self.pictures
            .placed(&self.layout)
            .filter_map(|(slot, area, pic)| {
                Some((slot, self.graphics.shown_rect(slot, pic.generation, area)?))
            })
            .collect()
    }
}

/// Arranging an [`App`] for tests.
#[cfg(test)]
impl App {
    /// Change the state directly (what a test sets up rather than types), then follow it.
    pub(crate) fn arrange(&mut self, f: impl FnOnce(&mut AppState)) {
        f(&mut self.state);
        self.refresh();
    }

    /// Say where graphics images were drawn.
    pub(crate) fn set_shown(&mut self, shown: Vec<(Slot, Rect)>) {
        self.shown = shown;
    }

    /// Run the queued jobs here and now, and those their outcomes ask for, until none is left.
    pub(crate) fn run_jobs(&mut self) {
        loop {
            let jobs = self.take_jobs();
            let looks = self.take_looks_jobs();
            if jobs.is_empty() && looks.is_empty() {
                return;
            }
            for job in jobs {
                let _ = self.job_done(job.run());
            }
            for job in looks {
                let _ = self.update(Msg::Looks(job.run()));
            }
        }
    }
}

/// Run `jobs` on tokio's blocking pool; each outcome is sent on `done`.
fn spawn_jobs(jobs: Vec<Job>, done: &tokio::sync::mpsc::UnboundedSender<Done>) {
    for job in jobs {
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            // The UI has gone when nobody receives: nothing to do with the outcome.
            let _ = done.send(job.run());
        });
    }
}

/// Run maximisation `jobs` on tokio's blocking pool; each outcome is sent on `done`.
fn spawn_looks(
    jobs: Vec<super::looks::Job>,
    done: &tokio::sync::mpsc::UnboundedSender<super::looks::Done>,
) {
    for job in jobs {
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let _ = done.send(job.run());
        });
    }
}

fn send(commands: &Sender<Command>, cmds: Vec<Command>) {
    for c in cmds {
        tracing::debug!(?c, "command");
        if commands.send(c).is_err() {
            // The worker is gone; its final event (or the closed channel) tells the state.
            tracing::warn!("worker command channel closed");
        }
    }
}

/// Run the TUI (see [`super::run`]).
#[expect(
    clippy::too_many_lines,
    reason = "the terminal's setup and the one select! over input, worker events, encodings and \
              the frame tick: split, the order of what happens in a frame is no longer in sight"
)]
pub async fn run(
    options: UiOptions,
    mut events: EventReceiver,
    commands: Sender<Command>,
) -> anyhow::Result<UiExit> {
    let _hook = install_panic_hook();
    enable_raw_mode().context("cannot put the terminal in raw mode")?;
    let _guard = TerminalGuard;
    let mut out: Stdout = stdout();
    execute!(out, EnterAlternateScreen, EnableClicks)
        .context("cannot enter the alternate screen")?;
    // The queries write to and read from the terminal once, before the event stream starts:
    // the colour depth first (it reads only until the terminal's answer ends), then graphics.
    let colors = super::truecolor::detect(options.config.color);
    let (encoded_tx, mut encoded) = tokio::sync::mpsc::unbounded_channel();
    let gfx = Graphics::detect(options.config.graphics, encoded_tx)
        .with_sixel_max_kb(options.config.sixel_max_kb);
    tracing::info!(?gfx, "ui started");
    let mut terminal = Terminal::new(Compact::new(out)).context("cannot start the terminal UI")?;
    // No `terminal.clear()`: it asks the terminal for the cursor position, which can time out
    // (slow links, tmux); the alternate screen starts blank and the first draw paints it all.
    terminal.hide_cursor()?;

    let mut app = App::new(
        &options.config,
        options.title.clone(),
        options.run_dir.clone(),
    )
    .with_graphics(gfx);
    tracing::info!("colours: {}", colors.describe());
    app.set_colors(colors);
    app.note_graphics();
    // Sixel through tmux's passthrough is gone after tmux redraws: tmux says when.
    let tmux_redraws = app
        .graphics
        .sixel_through_tmux()
        .then(super::graphics::redraw::TmuxRedraws::start)
        .flatten();
    for ev in options.history {
        app.apply(ev);
    }
    let mut drawn = terminal.size()?;
    app.resize(drawn.width, drawn.height);

    let fps = options.config.fps.clamp(1, 240);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(fps)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut input = Input::spawn()?;
    let mut late = LateAnswer::default();
    let mut worker_open = true;
    let mut dirty = true;
    let (jobs_tx, mut jobs_done) = tokio::sync::mpsc::unbounded_channel();
    let (looks_tx, mut looks_done) = tokio::sync::mpsc::unbounded_channel();

    loop {
        // Input is answered at once; everything else waits for the next tick (the frame cap),
        // so that a burst of training events makes one frame.
        let mut key = false;
        tokio::select! {
            ev = input.events.recv() => match ev {
                Some(Ok(ev)) => {
                    app.set_now(Instant::now());
                    let cmds = take_input(&mut app, &mut late, &ev);
                    send(&commands, cmds);
                    // A paste or a held key: take in what has arrived, then draw once.
                    while let Ok(ev) = input.events.try_recv() {
                        let ev = ev.context("reading terminal input")?;
                        let cmds = take_input(&mut app, &mut late, &ev);
                        send(&commands, cmds);
                    }
                    dirty = true;
                    key = true;
                }
                Some(Err(e)) => return Err(e).context("reading terminal input"),
                None => {
                    tracing::warn!("terminal input closed");
                    break;
                }
            },
            ev = events.recv(), if worker_open => {
                app.set_now(Instant::now());
                if let Some(ev) = ev {
                    // Drain what is already queued before the next draw.
                    for ev in std::iter::once(ev).chain(std::iter::from_fn(|| events.try_recv())) {
                        let at_once = !app.pictures_on_screen();
                        if let Some(ev) = app.pacer.admit(ev, Instant::now(), at_once) {
                            app.apply(ev);
                        }
                    }
                } else {
                    worker_open = false;
                    app.worker_gone();
                }
                dirty = true;
            },
            Some(done) = encoded.recv() => {
                dirty |= app.graphics.accept(done);
            },
            Some(done) = jobs_done.recv() => {
                let cmds = app.job_done(done);
                send(&commands, cmds);
                dirty = true;
            },
            Some(done) = looks_done.recv() => {
                let cmds = app.update(Msg::Looks(done));
                send(&commands, cmds);
                dirty = true;
            },
            _ = tick.tick() => {
                if options.shutdown.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst)) {
                    tracing::info!("ui quits on a signal");
                    return Ok(UiExit::QuitStopped);
                }
                if tmux_redraws
                    .as_ref()
                    .is_some_and(super::graphics::redraw::TmuxRedraws::take)
                {
                    // The next draw writes every cell, the pictures too.
                    terminal.clear()?;
                    dirty = true;
                }
                if app.graphics.poll_late() {
                    app.note_graphics();
                    dirty = true;
                }
                app.set_now(Instant::now());
                if app.pacer.holds() {
                    let at_once = !app.pictures_on_screen() || !worker_open;
                    for ev in app.pacer.due(Instant::now(), at_once) {
                        app.apply(ev);
                        dirty = true;
                    }
                }
                // The size is looked at every tick too: a resize event can be held up behind
                // input that makes no event (see `Input`), and an ioctl is cheap.
                dirty |= terminal.size()? != drawn;
                dirty |= app.looks_moved();
                if dirty {
                    drawn = draw(&mut terminal, &mut app)?;
                    dirty = false;
                }
            },
        }
        spawn_jobs(app.take_jobs(), &jobs_tx);
        spawn_looks(app.take_looks_jobs(), &looks_tx);
        if let Some(exit) = app.state.exit() {
            tracing::info!(?exit, "ui quits");
            return Ok(exit);
        }
        if key && dirty {
            drawn = draw(&mut terminal, &mut app)?;
            dirty = false;
        }
    }
    Ok(if app.state.phase().is_active() {
        UiExit::QuitWhileRunning
    } else {
        UiExit::Finished
    })
}

/// Take in one terminal event, keeping a late answer to the colour query out of the keys.
fn take_input(app: &mut App, late: &mut LateAnswer, ev: &TermEvent) -> Vec<Command> {
    let TermEvent::Key(key) = ev else {
        return app.handle_terminal(ev);
    };
    let mut answer = None;
    let key = late.filter(*key, |body| answer = Some(body.to_string()));
    if let Some(body) = answer {
        app.update(Msg::LateColorAnswer(body));
    }
    key.map_or_else(Vec::new, |k| app.handle_terminal(&TermEvent::Key(k)))
}

/// Draw the whole screen at the terminal's current size, telling the pacer the bytes it took;
/// returns that size.
fn draw(
    terminal: &mut Terminal<Compact<Stdout>>,
    app: &mut App,
) -> anyhow::Result<ratatui::layout::Size> {
    let s = terminal.size()?;
    app.resize(s.width, s.height);
    app.set_cell_pixels(app.graphics.cell_pixels());
    app.graphics.prepare(&app.layout, &app.pictures);
    let before = terminal.backend().written();
    terminal.draw(|f| app.render(f))?;
    app.pacer
        .wrote(terminal.backend().written() - before, Instant::now());
    app.shown = app.shown_images();
    Ok(s)
}
