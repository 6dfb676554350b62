//! A real xterm on a virtual X display (Xvfb), driven with xdotool and photographed with
//! ImageMagick's `import`: what a person at an xterm sees, sixel pictures included.
//!
//! Tests that use it call [`Xterm::missing`] first and return early, saying what to install,
//! when any of the programs is absent (CI installs them: `.ci/run`).

#![allow(dead_code)]

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The programs the harness runs, and the Debian package of each.
const PROGRAMS: [(&str, &str); 4] = [
    ("Xvfb", "xvfb"),
    ("xterm", "xterm"),
    ("xdotool", "xdotool"),
    ("import", "imagemagick"),
];

/// A screenshot: RGB pixels, row by row.
#[derive(Clone, PartialEq, Eq)]
pub struct Shot {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Shot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shot {}x{}", self.width, self.height)
    }
}

impl Shot {
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// How many distinct colours the picture has.
    pub fn colours(&self) -> usize {
        let mut set: Vec<[u8; 3]> = self.rgb.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        set.sort_unstable();
        set.dedup();
        set.len()
    }

    /// The pixels that differ from `other`'s, and the box around them (x0, y0, x1, y1).
    pub fn differences(&self, other: &Shot) -> (usize, Option<(usize, usize, usize, usize)>) {
        assert_eq!((self.width, self.height), (other.width, other.height));
        let mut n = 0;
        let mut bbox: Option<(usize, usize, usize, usize)> = None;
        for y in 0..self.height {
            for x in 0..self.width {
                if self.pixel(x, y) != other.pixel(x, y) {
                    n += 1;
                    bbox = Some(bbox.map_or((x, y, x, y), |(a, b, c, d)| {
                        (a.min(x), b.min(y), c.max(x), d.max(y))
                    }));
                }
            }
        }
        (n, bbox)
    }
}

/// An xterm (`-ti vt340`: sixel) of `columns`×`rows` running one command on its own Xvfb.
pub struct Xterm {
    xvfb: Child,
    terminal: Child,
    display: String,
    window: String,
    dir: PathBuf,
    shots: usize,
}

impl Xterm {
    /// What is missing to run a real xterm here (`None` when all is there).
    pub fn missing() -> Option<String> {
        let absent: Vec<String> = PROGRAMS
            .iter()
            .filter(|(p, _)| {
                !Command::new("sh")
                    .args(["-c", &format!("command -v {p}")])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .map(|(p, pkg)| format!("{p} (apt-get install {pkg})"))
            .collect();
        (!absent.is_empty()).then(|| absent.join(", "))
    }

    /// Start Xvfb and an xterm in VT340 mode running `command` (`sh -c`), with
    /// `LANG=C.UTF-8` and `-u8`; screenshots go to `dir`.
    pub fn start(command: &str, columns: u16, rows: u16, dir: &Path) -> Self {
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1600x1000x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let mut line = String::new();
        std::io::BufReader::new(xvfb.stdout.take().expect("Xvfb's stdout"))
            .read_line(&mut line)
            .expect("Xvfb says its display");
        let display = format!(":{}", line.trim());
        let terminal = Command::new("xterm")
            .args([
                "-u8",
                "-ti",
                "vt340",
                "-geometry",
                &format!("{columns}x{rows}+0+0"),
                "-e",
                "sh",
                "-c",
                command,
            ])
            .env("DISPLAY", &display)
            .env("LANG", "C.UTF-8")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm starts");
        let mut t = Self {
            xvfb,
            terminal,
            display,
            window: String::new(),
            dir: dir.to_path_buf(),
            shots: 0,
        };
        let start = Instant::now();
        loop {
            let out = t.xdotool(&["search", "--class", "xterm"]);
            if let Some(id) = out.lines().next().filter(|l| !l.trim().is_empty()) {
                t.window = id.trim().to_string();
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the xterm window did not appear"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // No window manager: give the window the keyboard focus ourselves.
        t.xdotool(&["windowfocus", "--sync", &t.window.clone()]);
        t
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("xdotool runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Type `text` into the xterm (real key events through XTEST).
    pub fn keys(&self, text: &str) {
        self.xdotool(&["windowfocus", "--sync", &self.window]);
        self.xdotool(&["type", "--delay", "20", text]);
    }

    /// A screenshot of the xterm's window, also kept as `NAME.png` in the folder.
    pub fn shot(&mut self, name: &str) -> Shot {
        self.shots += 1;
        let png = self.dir.join(format!("{:02}-{name}.png", self.shots));
        let ok = Command::new("import")
            .args(["-window", &self.window, png.to_str().expect("utf8")])
            .env("DISPLAY", &self.display)
            .status()
            .expect("import runs");
        assert!(ok.success(), "import failed");
        let img = image::open(&png).expect("a PNG").to_rgb8();
        Shot {
            width: img.width() as usize,
            height: img.height() as usize,
            rgb: img.into_raw(),
        }
    }

    /// Screenshots until `cond` holds for one and the screen has then stopped changing (two in
    /// a row the same, 300 ms apart): the drawing it waits for is over.
    pub fn settled(&mut self, what: &str, timeout: Duration, cond: impl Fn(&Shot) -> bool) -> Shot {
        let start = Instant::now();
        let mut last: Option<Shot> = None;
        loop {
            let shot = self.shot(what);
            if cond(&shot) && last.as_ref() == Some(&shot) {
                return shot;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what} (screenshots in {})",
                self.dir.display()
            );
            last = Some(shot);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Xterm {
    fn drop(&mut self) {
        let _ = self.terminal.kill();
        let _ = self.terminal.wait();
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}
