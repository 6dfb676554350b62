//! The event loop: terminal input, worker events and a frame tick under one `select!`; draws
//! right after input, otherwise at most once per tick and only when something changed.

use std::io::{Stdout, Write, stdout};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::compact::Compact;
use anyhow::Context as _;
use crossterm::event::DisableMouseCapture;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::layout::Rect;

use super::graphics::{Graphics, Slot};
use super::pacing::Pacer;
use super::state::{AppState, Tab};
use super::truecolor::LateAnswer;
use super::{UiExit, UiOptions, render};
use crate::events::{Command, EventReceiver};

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
    let mut gfx = Graphics::detect(options.config.graphics, encoded_tx)
        .with_sixel_max_kb(options.config.sixel_max_kb);
    tracing::info!(?gfx, "ui started");
    let mut terminal = Terminal::new(Compact::new(out)).context("cannot start the terminal UI")?;
    // No `terminal.clear()`: it asks the terminal for the cursor position, which can time out
    // (slow links, tmux); the alternate screen starts blank and the first draw paints it all.
    terminal.hide_cursor()?;

    let mut state = AppState::new(
        &options.config,
        options.title.clone(),
        options.run_dir.clone(),
    );
    tracing::info!("colours: {}", colors.describe());
    state.set_colors(&colors);
    state.graphics_note = gfx.describe().to_string();
    // Sixel through tmux's passthrough is gone after tmux redraws: tmux says when.
    let tmux_redraws = gfx
        .sixel_through_tmux()
        .then(super::graphics::redraw::TmuxRedraws::start)
        .flatten();
    for ev in options.history {
        state.apply(ev);
    }
    let mut drawn = terminal.size()?;
    state.resize(drawn.width, drawn.height);

    let fps = options.config.fps.clamp(1, 240);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(fps)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut input = Input::spawn()?;
    let mut late = LateAnswer::default();
    let mut worker_open = true;
    let mut dirty = true;
    let mut pacer = Pacer::new(options.config.refresh_kb_per_sec, Instant::now());

    loop {
        // Input is answered at once; everything else waits for the next tick (the frame cap),
        // so that a burst of training events makes one frame.
        let mut key = false;
        tokio::select! {
            ev = input.events.recv() => match ev {
                Some(Ok(ev)) => {
                    state.set_now(Instant::now());
                    let cmds = take_input(&mut state, &mut late, &ev);
                    send(&commands, cmds);
                    // A paste or a held key: take in what has arrived, then draw once.
                    while let Ok(ev) = input.events.try_recv() {
                        let ev = ev.context("reading terminal input")?;
                        let cmds = take_input(&mut state, &mut late, &ev);
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
                state.set_now(Instant::now());
                if let Some(ev) = ev {
                    // Drain what is already queued before the next draw.
                    for ev in std::iter::once(ev).chain(std::iter::from_fn(|| events.try_recv())) {
                        let at_once = !pictures_on_screen(&state);
                        if let Some(ev) = pacer.admit(ev, Instant::now(), at_once) {
                            state.apply(ev);
                        }
                    }
                } else {
                    worker_open = false;
                    state.worker_gone();
                }
                dirty = true;
            },
            Some(done) = encoded.recv() => {
                dirty |= gfx.accept(done);
            },
            _ = tick.tick() => {
                if options.shutdown.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst)) {
                    tracing::info!("ui quits on a signal");
                    return Ok(UiExit::QuitStopped);
                }
                if tmux_redraws.as_ref().is_some_and(super::graphics::redraw::TmuxRedraws::take) {
                    // The next draw writes every cell, the pictures too.
                    terminal.clear()?;
                    dirty = true;
                }
                if gfx.poll_late() {
                    state.graphics_note = gfx.describe().to_string();
                    dirty = true;
                }
                state.set_now(Instant::now());
                if pacer.holds() {
                    let at_once = !pictures_on_screen(&state) || !worker_open;
                    for ev in pacer.due(Instant::now(), at_once) {
                        state.apply(ev);
                        dirty = true;
                    }
                }
                // The size is looked at every tick too: a resize event can be held up behind
                // input that makes no event (see `Input`), and an ioctl is cheap.
                dirty |= terminal.size()? != drawn;
                if dirty {
                    drawn = draw(&mut terminal, &mut state, &mut gfx, &mut pacer)?;
                    dirty = false;
                }
            },
        }
        if let Some(exit) = state.exit {
            tracing::info!(?exit, "ui quits");
            return Ok(exit);
        }
        if key && dirty {
            drawn = draw(&mut terminal, &mut state, &mut gfx, &mut pacer)?;
            dirty = false;
        }
    }
    Ok(if state.phase.is_active() {
        UiExit::QuitWhileRunning
    } else {
        UiExit::Finished
    })
}

/// Take in one terminal event, keeping a late answer to the colour query out of the keys.
fn take_input(
    state: &mut AppState,
    late: &mut LateAnswer,
    ev: &crossterm::event::Event,
) -> Vec<crate::events::Command> {
    let crossterm::event::Event::Key(key) = ev else {
        return state.handle_terminal(ev);
    };
    let mut answer = None;
    let key = late.filter(*key, |body| answer = Some(body.to_string()));
    if let Some(body) = answer {
        state.late_color_answer(&body);
    }
    key.map_or_else(Vec::new, |k| {
        state.handle_terminal(&crossterm::event::Event::Key(k))
    })
}

/// Draw the whole screen at the terminal's current size, telling `pacer` the bytes it took;
/// returns that size.
fn draw(
    terminal: &mut Terminal<Compact<Stdout>>,
    state: &mut AppState,
    gfx: &mut Graphics,
    pacer: &mut Pacer,
) -> anyhow::Result<ratatui::layout::Size> {
    let s = terminal.size()?;
    state.resize(s.width, s.height);
    state.set_cell_pixels(gfx.cell_pixels());
    let screen = Rect::new(0, 0, s.width, s.height);
    gfx.prepare(state, screen);
    let before = terminal.backend().written();
    terminal.draw(|f| render::render(state, gfx, f))?;
    pacer.wrote(terminal.backend().written() - before, Instant::now());
    state.shown = shown_images(state, gfx, screen);
    Ok(s)
}

/// Whether the screen shows pictures that an epoch end changes: the Filters or Feature maps
/// tab of a run that is still going (after it, nothing more comes to hold back).
fn pictures_on_screen(state: &AppState) -> bool {
    matches!(state.tab, Tab::Filters | Tab::Features) && state.phase.is_active()
}

/// Where this screen's graphics images were drawn, for mapping clicks.
fn shown_images(state: &AppState, gfx: &Graphics, screen: Rect) -> Vec<(Slot, Rect)> {
    render::picture_slots(state, screen)
        .into_iter()
        .filter_map(|(slot, area, pic)| Some((slot, gfx.shown_rect(slot, pic.generation, area)?)))
        .collect()
}
