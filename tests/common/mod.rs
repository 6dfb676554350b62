//! Helpers shared by the end-to-end tests: the real binary, generated data, run inspection.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use convscope::events::Event;

pub mod ops;

/// The convscope binary built by cargo for these tests.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_convscope"));
    c.env_remove("RUST_LOG").env("TERM", "dumb");
    c
}

/// `convscope train DATA --run RUN --headless` at test sizes: 16 px, batch 4, seed 1, one
/// epoch. Most end-to-end tests start from this run; its setters change one flag each.
pub struct Train {
    data: PathBuf,
    run: PathBuf,
    size: u32,
    batch: u32,
    epochs: u64,
    seed: Option<u64>,
    slow_batch_ms: Option<u32>,
    extra: Vec<std::ffi::OsString>,
}

/// A tiny headless training of `data` into `run` (see [`Train`]).
pub fn train(data: &Path, run: &Path) -> Train {
    Train {
        data: data.to_owned(),
        run: run.to_owned(),
        size: 16,
        batch: 4,
        epochs: 1,
        seed: Some(1),
        slow_batch_ms: None,
        extra: Vec::new(),
    }
}

impl Train {
    pub fn size(mut self, px: u32) -> Self {
        self.size = px;
        self
    }
    pub fn batch(mut self, n: u32) -> Self {
        self.batch = n;
        self
    }
    pub fn epochs(mut self, n: u64) -> Self {
        self.epochs = n;
        self
    }
    /// No `--seed` flag: the run's own default seed.
    pub fn no_seed(mut self) -> Self {
        self.seed = None;
        self
    }
    /// Every batch slowed down by `ms` (a live run for tests that watch or steer it).
    pub fn slow(mut self, ms: u32) -> Self {
        self.slow_batch_ms = Some(ms);
        self
    }
    /// More flags, after the standard ones.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.extra
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    /// The command, not yet started.
    pub fn command(self) -> Command {
        let mut c = bin();
        c.arg("train")
            .arg(&self.data)
            .arg("--run")
            .arg(&self.run)
            .arg("--headless")
            .args(["--image-size", &self.size.to_string()])
            .args(["--batch-size", &self.batch.to_string()])
            .args(["--epochs", &self.epochs.to_string()]);
        if let Some(seed) = self.seed {
            c.args(["--seed", &seed.to_string()]);
        }
        if let Some(ms) = self.slow_batch_ms {
            c.env("CONVSCOPE_SLOW_BATCH_MS", ms.to_string());
        }
        c.args(&self.extra);
        c
    }
    /// Run it to the end.
    pub fn output(self) -> Output {
        self.command().output().expect("convscope runs")
    }
    /// Run it to the end; it must succeed (its stderr is the failure message).
    pub fn success(self) -> Output {
        let out = self.output();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
    /// Start it with its output thrown away (stderr as given).
    pub fn spawn(self, stderr: std::process::Stdio) -> std::process::Child {
        self.command()
            .stderr(stderr)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("convscope starts")
    }
}

/// A headless training of `data` into `run` that stays live for a while (16 px images, every
/// batch slowed down), for tests that watch or steer a running training.
pub fn live_trainer(data: &Path, run: &Path, stderr: std::process::Stdio) -> std::process::Child {
    train(data, run)
        .no_seed()
        .epochs(200)
        .slow(20)
        .spawn(stderr)
}

/// The JSON a successful run printed on stdout (its stderr in the failure message otherwise).
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Run the binary to completion.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("convscope runs")
}

/// A small synthetic two-class dataset (the demo's generator), `per_class` images of `size` px.
pub fn synthetic(dir: &Path, per_class: usize, size: u32) -> PathBuf {
    let data = dir.join("data");
    convscope::data::write_synthetic(&data, per_class, size, 7).expect("synthetic data");
    data
}

/// A finished run of the headless demo (`epochs` at `size` px, `per_class` images a class).
pub fn demo_run(dir: &Path, epochs: u32, size: u32, per_class: u32) -> PathBuf {
    let run_dir = dir.join("run");
    let (epochs, size, per_class) = (epochs.to_string(), size.to_string(), per_class.to_string());
    let out = run(&[
        "demo",
        "--headless",
        "--epochs",
        &epochs,
        "--image-size",
        &size,
        "--per-class",
        &per_class,
        "--run",
        run_dir.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_dir
}

/// Every event the run logged.
pub fn events(run: &Path) -> Vec<Event> {
    convscope::run::event_log::read_all(&run.join("events.jsonl"))
        .expect("events.jsonl")
        .0
}

/// Wait (polling, bounded) until `cond` holds.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The conv and dense weights of a checkpoint, flattened in parameter order.
pub fn checkpoint_weights(run: &Path, name: &str) -> Vec<Vec<f32>> {
    use burn::module::Module as _;
    let run_dir = convscope::run::RunDir::open(run).expect("run dir");
    let cfg = run_dir.read_config().expect("config");
    let classes = run_dir.read_classes().expect("classes").classes.len();
    let device = burn::tensor::Device::flex();
    let net = convscope::model::Net::new(&cfg, classes, 0, &device).expect("net");
    let record =
        burn::store::ModuleRecord::load(run.join("checkpoints").join(name).join("model.bpk"))
            .expect("model.bpk loads");
    let net = net.try_load_record(record).expect("record applies");
    let mut out = Vec::new();
    for c in &net.convs {
        out.push(c.weight.val().into_data().try_to_vec::<f32>().expect("f32"));
        out.push(c.bias.val().into_data().try_to_vec::<f32>().expect("f32"));
    }
    for d in &net.denses {
        out.push(d.weight.val().into_data().try_to_vec::<f32>().expect("f32"));
        out.push(d.bias.val().into_data().try_to_vec::<f32>().expect("f32"));
    }
    out
}

/// Largest absolute difference between two weight sets of the same shapes.
pub fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

/// A detached tmux session running one command, on a tmux server of its own (tests run in
/// parallel; a shared server exits when its last session ends, under another test's feet).
pub struct Tmux {
    session: String,
}

impl Tmux {
    /// `convscope view RUN` in a session named `name` and this process's id (suites in other
    /// checkouts run at the same time), kept open 30 s after the viewer quits.
    pub fn view(name: &str, run: &Path) -> Self {
        Self::start(
            &format!("{name}-{}", std::process::id()),
            &format!(
                "{} view {}; sleep 30",
                env!("CARGO_BIN_EXE_convscope"),
                run.display()
            ),
        )
    }

    /// A two-epoch run on 20 synthetic 16 px images per class, viewed in tmux from its Feature
    /// maps tab once the first probe's maps are drawn: the viewer and that screen, stripped.
    pub fn on_feature_maps(name: &str, tmp: &Path) -> (Self, String) {
        let data = synthetic(tmp, 20, 16);
        let run = tmp.join("run");
        train(&data, &run).epochs(2).success();
        let view = Self::view(name, &run);
        view.wait_text("● finished");
        view.keys("4");
        let maps = strip(&view.wait_text("std·64+128"));
        (view, maps)
    }

    pub fn start(session: &str, command: &str) -> Self {
        let _ = Command::new("tmux")
            .args(["-L", session, "kill-server"])
            .status();
        let ok = Command::new("tmux")
            .args([
                "-L",
                session,
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "200",
                "-y",
                "60",
                command,
            ])
            .env("COLORTERM", "truecolor")
            .status()
            .expect("tmux is installed (apt-get install -y tmux)");
        assert!(ok.success());
        Self {
            session: session.to_string(),
        }
    }

    /// Like [`Self::start`], but as over SSH: no `COLORTERM` in the tmux server's (and so the
    /// program's) environment, and no tmux.conf; `options` are tmux server options set before
    /// the command may go on (e.g. `["terminal-features", ",xterm*:RGB"]` appended). The
    /// command should wait for a file the test creates once a client is attached
    /// ([`Self::attach`]).
    pub fn start_over_ssh(session: &str, command: &str, options: &[[&str; 2]]) -> Self {
        let _ = Command::new("tmux")
            .args(["-L", session, "kill-server"])
            .status();
        let ok = Command::new("tmux")
            .args([
                "-L",
                session,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "200",
                "-y",
                "60",
                command,
            ])
            .env_remove("COLORTERM")
            .status()
            .expect("tmux is installed (apt-get install -y tmux)");
        assert!(ok.success());
        let t = Self {
            session: session.to_string(),
        };
        for [name, value] in options {
            let ok = Command::new("tmux")
                .args(["-L", session, "set", "-as", name, value])
                .status()
                .expect("tmux set");
            assert!(ok.success());
        }
        t
    }

    /// Attach a tmux client in a terminal of its own (a pty made by `script`) whose `TERM` is
    /// `term`, as a user's terminal attaches; the session keeps 200×60. The client goes with
    /// the session.
    pub fn attach(&self, term: &str) -> std::process::Child {
        let child = Command::new("script")
            .args([
                "-q",
                "-c",
                &format!(
                    "stty cols 200 rows 60; exec tmux -L {0} attach -t {0}",
                    self.session
                ),
                "/dev/null",
            ])
            .env("TERM", term)
            .env_remove("COLORTERM")
            .env_remove("TMUX")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("script is installed (util-linux)");
        wait_for("the tmux client to attach", Duration::from_secs(30), || {
            Command::new("tmux")
                .args(["-L", &self.session, "list-clients"])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
        });
        child
    }

    pub fn keys(&self, keys: &str) {
        let ok = Command::new("tmux")
            .args(["-L", &self.session, "send-keys", "-t", &self.session, keys])
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }

    /// Bytes arriving on the program's input as if the terminal sent them (`send-keys -H`).
    pub fn send_bytes(&self, bytes: &[u8]) {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let ok = Command::new("tmux")
            .args(["-L", &self.session, "send-keys", "-t", &self.session, "-H"])
            .args(&hex)
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }

    pub fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.session,
                "capture-pane",
                "-p",
                "-e",
                "-t",
                &self.session,
            ])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn wait_text(&self, what: &str) -> String {
        self.wait_text_noting(what, None)
    }

    /// [`Self::wait_text`], and on a time-out also show the log file `log` (the program's own
    /// account of what it was doing).
    pub fn wait_text_noting(&self, what: &str, log: Option<&Path>) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if strip(&screen).contains(what) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_mins(2),
                "timed out waiting for {what:?} on screen:\n{}\n{}",
                strip(&screen),
                log.map(|p| format!(
                    "{}:\n{}",
                    p.display(),
                    std::fs::read_to_string(p).unwrap_or_default()
                ))
                .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Tmux {
    /// Append everything the program writes to its terminal to `log` (`tmux pipe-pane`).
    pub fn pipe_to(&self, log: &Path) {
        let ok = Command::new("tmux")
            .args([
                "-L",
                &self.session,
                "pipe-pane",
                "-o",
                "-t",
                &self.session,
                &format!("cat >> '{}'", log.display()),
            ])
            .status()
            .expect("pipe-pane");
        assert!(ok.success());
    }

    /// Resize the terminal window.
    pub fn resize(&self, w: u16, h: u16) {
        let ok = Command::new("tmux")
            .args([
                "-L",
                &self.session,
                "resize-window",
                "-t",
                &self.session,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
            ])
            .status()
            .expect("resize-window");
        assert!(ok.success());
    }

    /// Kill the session (as a dropped SSH connection would: SIGHUP to what runs in it).
    pub fn kill(&self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.session, "kill-server"])
            .status();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.session, "kill-server"])
            .status();
    }
}

/// The screen text without escape sequences.
pub fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Distinct 256-colour palette indices (foreground or background) on the screen.
pub fn palette_colors(s: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    for part in s.split('\u{1b}').skip(1) {
        let Some(body) = part.strip_prefix('[') else {
            continue;
        };
        let Some(end) = body.find('m') else { continue };
        let params: Vec<&str> = body[..end].split(';').collect();
        let mut i = 0;
        while i < params.len() {
            if (params[i] == "38" || params[i] == "48") && params.get(i + 1) == Some(&"5") {
                if let Some(v) = params.get(i + 2) {
                    set.insert((*v).to_string());
                }
                i += 3;
            } else {
                i += 1;
            }
        }
    }
    set
}

/// Distinct 24-bit colours (foreground or background) on the screen.
pub fn truecolors(s: &str) -> HashSet<String> {
    let mut set = HashSet::new();
    for part in s.split('\u{1b}').skip(1) {
        let Some(body) = part.strip_prefix('[') else {
            continue;
        };
        let Some(end) = body.find('m') else { continue };
        let params: Vec<&str> = body[..end].split(';').collect();
        let mut i = 0;
        while i < params.len() {
            if (params[i] == "38" || params[i] == "48")
                && params.get(i + 1) == Some(&"2")
                && i + 4 < params.len()
            {
                set.insert(params[i + 2..=i + 4].join(","));
                i += 5;
            } else {
                i += 1;
            }
        }
    }
    set
}
