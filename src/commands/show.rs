//! `convscope show RUN [--layer NAME] [--image IMG]... [--epoch N] [filters|maps|curves|confusion]`:
//! the labelled pictures that `export` writes, printed inline in the terminal, and the printer
//! that `predict --show` uses.
//!
//! The protocol is chosen as the TUI chooses it ([`crate::ui::graphics::detect::decide`]): sixel
//! with our own encoder (exact palettes; through tmux's passthrough where tmux cannot draw it);
//! kitty graphics and iTerm2 images through `viuer` outside tmux; kitty Unicode placeholders
//! printed as text inside tmux (tmux keeps them like any text, scrollback included); half
//! blocks through `viuer` elsewhere (24-bit colour with `COLORTERM`, else the 256-colour
//! palette, as over SSH). Pictures go to stdout only when it is a terminal: otherwise nothing is
//! printed there and the command says why on stderr and exits with [`NOT_A_TERMINAL`].

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use burn::module::Module as _;
use burn::tensor::{Tensor, TensorData};

use super::export;
use crate::cli::{ShowArgs, ShowWhat};
use crate::config::Graphics as GraphicsSetting;
use crate::infer::restore::{self, Restored};
use crate::run::{RunDir, event_log};
use crate::ui::graphics::detect::{self, Decision, Encoder, Env};
use crate::viz::colormap::{self, Rgb};
use crate::viz::raster::Raster;
use crate::viz::text;

/// Exit status of `show` when stdout is not a terminal (nothing was shown).
pub const NOT_A_TERMINAL: i32 = 2;

/// The message when stdout is not a terminal.
pub const NOT_A_TERMINAL_MESSAGE: &str = "stdout is not a terminal, so no picture is printed \
     (pictures are escape sequences that only a terminal draws); run it in a terminal, or write \
     PNG files with `convscope export RUN --out DIR`";

/// Run the command.
pub fn run(args: &ShowArgs) -> Result<i32> {
    let mut stderr = std::io::stderr();
    if !std::io::stdout().is_terminal() {
        let _ = writeln!(stderr, "convscope show: {NOT_A_TERMINAL_MESSAGE}");
        return Ok(NOT_A_TERMINAL);
    }
    let run = RunDir::open(&args.run)?;
    let restored = restore::load(&run, args.epoch)?;
    if let Some(note) = &restored.note {
        let _ = writeln!(stderr, "convscope: {note}");
    }
    for image in &args.images {
        if !image.is_file() {
            bail!(
                "image {} does not exist or is not a file; pass --image with a JPEG, PNG, WebP, BMP or GIF file",
                image.display()
            );
        }
    }
    let setting = args.graphics.map_or(restored.cfg.ui.graphics, Into::into);
    let wants = |w: ShowWhat| args.what.is_none_or(|a| a == w);
    let style = export::style(&restored, &run);
    let source = style.source.clone();
    let layer = args.layer.as_deref();

    // Everything is computed before anything is printed: no half output on an error.
    let mut pictures: Vec<(String, Raster)> = Vec::new();
    let mut layers_seen: Vec<String> = Vec::new();
    if wants(ShowWhat::Filters) {
        pictures.extend(rasters(export::filter_files(&restored, &style, layer)?));
        layers_seen.extend(filter_layer_names(&restored));
    }
    if wants(ShowWhat::Maps) {
        let (events, _) = event_log::read_all(&run.events_path())?;
        let bundled = export::TempSamples::new();
        let images = if args.images.is_empty() {
            export::default_images(&run, &events, &bundled)?
        } else {
            args.images.clone()
        };
        let probes = export::probe_all(&restored, &images)?;
        layers_seen.extend(
            probes
                .iter()
                .flat_map(|(_, s)| s.layers.iter().map(|l| l.name.clone())),
        );
        pictures.extend(rasters(export::feature_files(
            &restored, &probes, &style, layer,
        )));
    }
    if let Some(name) = layer
        && pictures.is_empty()
        && matches!(args.what, None | Some(ShowWhat::Filters | ShowWhat::Maps))
    {
        layers_seen.dedup();
        let mut names = layers_seen.clone();
        names.sort();
        names.dedup();
        bail!(
            "no layer named {name:?} has {}; layers: {}",
            match args.what {
                Some(ShowWhat::Filters) => "filters (only conv layers do)",
                Some(ShowWhat::Maps) => "feature maps",
                _ => "filters or feature maps",
            },
            names.join(", ")
        );
    }
    if wants(ShowWhat::Curves) {
        let (events, _) = event_log::read_all(&run.events_path())?;
        pictures.push((
            "curves".into(),
            crate::viz::export::curves(&crate::viz::export::epoch_metrics(&events)),
        ));
    }
    if args.what == Some(ShowWhat::Confusion) {
        let (matrix, images) = validation_confusion(&run, &restored)?;
        pictures.push((
            "confusion".into(),
            confusion_picture(&matrix, &restored.classes, images, &source),
        ));
    }

    let printer = Printer::new(setting);
    let _ = writeln!(stderr, "convscope: pictures as {}", printer.describe());
    let mut out = std::io::stdout().lock();
    for (name, pic) in &pictures {
        let _ = writeln!(out, "{name}");
        printer.print(&mut out, pic, None)?;
    }
    let _ = writeln!(
        stderr,
        "convscope: {} picture(s) from checkpoint {} of {}",
        pictures.len(),
        restored.checkpoint.name,
        run.path.display()
    );
    Ok(0)
}

/// The pictures among `files`, named by their file names without the extension.
fn rasters(files: Vec<crate::viz::export::ExportFile>) -> Vec<(String, Raster)> {
    files
        .into_iter()
        .filter_map(|f| match f.content {
            crate::viz::export::Content::Picture(r) => {
                Some((f.name.strip_suffix(".png").unwrap_or(&f.name).to_owned(), r))
            }
            crate::viz::export::Content::Text(_) => None,
        })
        .collect()
}

/// The conv layers' names (the layers that have filters).
fn filter_layer_names(restored: &Restored) -> Vec<String> {
    match crate::infer::probe::filters(&restored.net, restored.checkpoint.state.epoch) {
        Ok(crate::events::Event::Filters(snap)) => {
            snap.layers.into_iter().map(|l| l.name).collect()
        }
        _ => Vec::new(),
    }
}

/// Prints pictures inline with the protocol chosen once, at its construction.
pub struct Printer {
    decision: Decision,
    columns: u16,
}

impl Printer {
    /// Choose the protocol for `setting`, asking tmux or the terminal as the TUI does.
    #[must_use]
    pub fn new(setting: GraphicsSetting) -> Self {
        let env = Env::current();
        let decision = if setting == GraphicsSetting::Halfblocks {
            detect::decide(setting, &env, None, None, None)
        } else if env.tmux {
            let answers = detect::ask_tmux();
            let d = detect::decide(
                setting,
                &env,
                None,
                Some(&answers),
                detect::font_from_kernel(),
            );
            if d.encoder.as_ref().is_some_and(Encoder::passthrough) {
                detect::allow_passthrough();
            }
            d
        } else {
            let replies = detect::ask_terminal();
            detect::decide(
                setting,
                &env,
                replies.as_ref(),
                None,
                detect::font_from_kernel(),
            )
        };
        tracing::info!("show: pictures as {}", decision.describe());
        Self {
            decision,
            columns: crossterm::terminal::size().map_or(80, |(c, _)| c.max(1)),
        }
    }

    /// The protocol and why.
    #[must_use]
    pub fn describe(&self) -> String {
        self.decision.describe()
    }

    /// Print `pic` at the cursor, at most `max_columns` (default: the terminal's width) wide and
    /// never enlarged, then move to the line under it.
    pub fn print(
        &self,
        out: &mut impl std::io::Write,
        pic: &Raster,
        max_columns: Option<u16>,
    ) -> Result<()> {
        if pic.is_empty() {
            return Ok(());
        }
        let columns = max_columns.map_or(self.columns, |m| m.min(self.columns));
        let io = |e: std::io::Error| anyhow::anyhow!("cannot write to the terminal: {e}");
        match &self.decision.encoder {
            Some(Encoder::Sixel { font, tmux }) => {
                let fitted = fit_width(pic, usize::from(columns) * usize::from(font.width));
                let body = crate::ui::sixel::encode(&fitted).map_err(|e| anyhow::anyhow!(e))?;
                out.write_all(passthrough(&body, *tmux).as_bytes())
                    .and_then(|()| writeln!(out))
                    .and_then(|()| out.flush())
                    .map_err(io)
            }
            Some(enc @ Encoder::Kitty { tmux: true, .. }) => {
                let fitted = fit_width(pic, usize::from(columns) * usize::from(enc.font().width));
                out.write_all(placeholder_text(enc, &fitted, columns)?.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(io)
            }
            Some(Encoder::Kitty { .. } | Encoder::Iterm2 { .. }) | None => {
                out.flush().map_err(io)?;
                let (kitty, iterm) = match &self.decision.encoder {
                    Some(Encoder::Kitty { .. }) => (true, false),
                    Some(Encoder::Iterm2 { .. }) => (false, true),
                    _ => (false, false),
                };
                let img = image::DynamicImage::ImageRgb8(pic.to_rgb_image());
                let config = viuer::Config {
                    absolute_offset: false,
                    width: Some(u32::from(columns).min(pic.width() as u32)),
                    use_kitty: kitty,
                    use_iterm: iterm,
                    ..viuer::Config::default()
                };
                viuer::print(&img, &config)
                    .map(|_| ())
                    .context("cannot print the picture with viuer")
            }
        }
    }
}

/// `pic` shrunk to at most `max_w` pixels wide (never enlarged).
fn fit_width(pic: &Raster, max_w: usize) -> Raster {
    if pic.width() <= max_w.max(1) {
        return pic.clone();
    }
    let h = (pic.height() * max_w / pic.width()).max(1);
    pic.shrunk(max_w.max(1), h)
}

/// A sixel sequence as written: as it is, or inside tmux's passthrough (escapes doubled).
fn passthrough(sixel: &str, tmux: bool) -> String {
    if tmux {
        format!("\x1bPtmux;{}\x1b\\", sixel.replace('\x1b', "\x1b\x1b"))
    } else {
        sixel.to_string()
    }
}

/// A kitty picture as lines of text: the image transmitted once (inside the first cell), then
/// rows of placeholder cells in the image id's colour.
fn placeholder_text(enc: &Encoder, pic: &Raster, columns: u16) -> Result<String> {
    let font = enc.font();
    let rows = pic
        .height()
        .div_ceil(usize::from(font.height).max(1))
        .clamp(1, 290) as u16;
    let area = ratatui::layout::Rect::new(0, 0, columns, rows);
    let proto = enc.encode(pic, area, 0).map_err(|e| anyhow::anyhow!(e))?;
    let mut buf = ratatui::buffer::Buffer::empty(area);
    ratatui::widgets::Widget::render(ratatui_image::Image::new(&proto), area, &mut buf);
    let size = proto.size();
    let mut text = String::new();
    for y in 0..size.height {
        for x in 0..size.width {
            let cell = &buf[(x, y)];
            if let ratatui::style::Color::Rgb(r, g, b) = cell.fg {
                let _ = write!(text, "\x1b[38;2;{r};{g};{b}m");
            }
            text.push_str(cell.symbol());
        }
        text.push_str("\x1b[39m\n");
    }
    Ok(text)
}

/// The confusion matrix of the checkpoint on the run's validation images (`[true][predicted]`)
/// and how many images it counts.
fn validation_confusion(run: &RunDir, restored: &Restored) -> Result<(Vec<Vec<usize>>, usize)> {
    let source = crate::run::RunSource::read(run).with_context(|| {
        format!(
            "{} has no run.json saying where its data is, so its validation images are unknown",
            run.path.display()
        )
    })?;
    if !source.data_dir.is_dir() {
        bail!(
            "the run's data folder {} is gone, so its validation images cannot be classified",
            source.data_dir.display()
        );
    }
    let dataset =
        crate::data::Dataset::open(&source.data_dir, source.val_dir.as_deref(), &restored.cfg)
            .with_context(|| {
                format!(
                    "cannot read the run's data in {}",
                    source.data_dir.display()
                )
            })?;
    if dataset.val.is_empty() {
        bail!(
            "the run has no validation images (data.val_split = 0 and no --val folder), so there is no confusion matrix"
        );
    }
    let n = restored.classes.len().max(1);
    let mut matrix = vec![vec![0_usize; n]; n];
    let eval = restored.net.valid();
    let shape = restored.cfg.input_shape();
    let device = burn::tensor::Device::flex();
    let per = shape.iter().product::<usize>();
    let mut counted = 0;
    for chunk in dataset.val.chunks(64) {
        let mut pixels = Vec::with_capacity(chunk.len() * per);
        let mut labels = Vec::with_capacity(chunk.len());
        for s in chunk {
            if let Ok(p) = crate::data::load_image(&s.path, &restored.cfg) {
                pixels.extend(p);
                labels.push(s.label);
            }
        }
        if labels.is_empty() {
            continue;
        }
        let x = Tensor::<4>::from_data(
            TensorData::new(pixels, [labels.len(), shape[0], shape[1], shape[2]]),
            &device,
        );
        let logits = eval.forward(x, false, false).logits;
        let outputs = logits.dims()[1];
        let values: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap_or_default();
        for (label, predicted) in labels
            .iter()
            .zip(crate::model::predictions(&values, outputs))
        {
            if *label < n && predicted < n {
                matrix[*label][predicted] += 1;
                counted += 1;
            }
        }
    }
    Ok((matrix, counted))
}

/// Pixels a side of one matrix cell.
const CELL: usize = 48;

/// The confusion matrix as a labelled picture: rows the true class, columns the predicted one,
/// each cell coloured by its share of its row (viridis) and numbered with its count.
pub(crate) fn confusion_picture(
    matrix: &[Vec<usize>],
    classes: &[String],
    images: usize,
    source: &crate::viz::sheets::Source,
) -> Raster {
    let n = matrix.len();
    let name = |i: usize| -> String {
        let s = classes.get(i).map_or_else(|| i.to_string(), Clone::clone);
        s.chars().take(12).collect()
    };
    let label_w = (0..n).map(|i| text::width(&name(i), 1)).max().unwrap_or(0) + 8;
    let top = text::GLYPH + 8;
    let mut body = Raster::new(
        label_w + n * CELL,
        top + n * CELL,
        crate::viz::pictures::BACKGROUND,
    );
    for (i, row) in matrix.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1);
        text::draw(
            &mut body,
            0,
            top + i * CELL + (CELL - text::GLYPH) / 2,
            &name(i),
            1,
            text::INK,
        );
        for (j, &count) in row.iter().enumerate() {
            let share = count as f32 / total as f32;
            let c = colormap::color(crate::config::ColormapName::Viridis, share);
            let (x0, y0) = (label_w + j * CELL, top + i * CELL);
            for y in y0 + 1..y0 + CELL - 1 {
                for x in x0 + 1..x0 + CELL - 1 {
                    body.set(x, y, c);
                }
            }
            let label = count.to_string();
            let ink: Rgb = if share > 0.6 { [0, 0, 0] } else { text::INK };
            text::draw(
                &mut body,
                x0 + (CELL.saturating_sub(text::width(&label, 1))) / 2,
                y0 + (CELL - text::GLYPH) / 2,
                &label,
                1,
                ink,
            );
        }
    }
    for j in 0..n {
        let label: String = name(j).chars().take(CELL / text::GLYPH).collect();
        text::draw(&mut body, label_w + j * CELL + 2, 2, &label, 1, text::DIM);
    }
    let correct: usize = (0..n).map(|i| matrix[i][i]).sum();
    let accuracy = if images == 0 {
        0.0
    } else {
        correct as f32 / images as f32
    };
    text::titled(
        &body,
        "confusion matrix",
        &[
            &format!("{} · {}", source.run, source.epoch),
            &format!(
                "{images} validation images, accuracy {accuracy:.3}; rows: true class, columns: predicted"
            ),
        ],
        crate::viz::pictures::BACKGROUND,
    )
}

/// The images `predict --show` prints: each decoded (as the file is, not as the network sees it).
pub fn show_predictions(
    printer: &Printer,
    rows: &[(PathBuf, String, f32)],
    out: &mut impl std::io::Write,
) -> Result<()> {
    for (image, class, probability) in rows {
        match image::open(image) {
            Ok(img) => {
                let rgb = img.to_rgb8();
                let raster =
                    Raster::from_fn(rgb.width() as usize, rgb.height() as usize, |x, y| {
                        rgb.get_pixel(x as u32, y as u32).0
                    });
                printer.print(out, &raster, Some(40))?;
            }
            Err(e) => {
                let _ = writeln!(out, "({} cannot be drawn: {e})", image.display());
            }
        }
        let _ = writeln!(out, "{}  {class}  {probability:.4}", image.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixel_for_tmux_is_wrapped_with_every_escape_doubled() {
        let s = "\x1bPq#0;2;0;0;0#0~~\x1b\\";
        assert_eq!(passthrough(s, false), s);
        let t = passthrough(s, true);
        assert!(t.starts_with("\x1bPtmux;\x1b\x1bPq"));
        assert!(t.ends_with("\x1b\x1b\\\x1b\\"));
    }

    #[test]
    fn wide_pictures_are_shrunk_to_the_terminal_never_enlarged() {
        let r = Raster::new(1000, 500, [1, 2, 3]);
        let f = fit_width(&r, 400);
        assert_eq!((f.width(), f.height()), (400, 200));
        let small = Raster::new(100, 50, [1, 2, 3]);
        assert_eq!(fit_width(&small, 400).width(), 100);
    }

    #[test]
    fn the_confusion_picture_counts_every_cell() {
        let source = crate::viz::sheets::Source {
            run: "r".into(),
            epoch: "epoch 2".into(),
        };
        let m = vec![vec![8, 2], vec![1, 9]];
        let pic = confusion_picture(&m, &["cats".into(), "dogs".into()], 20, &source);
        // The diagonal's large shares are bright (viridis' upper end), the rest dark.
        let bright = colormap::color(crate::config::ColormapName::Viridis, 0.9);
        assert!(pic.pixels().contains(&bright));
        assert!(pic.width() > 2 * CELL && pic.height() > 2 * CELL);
    }

    #[test]
    fn kitty_placeholders_print_as_text_rows() {
        let enc = Encoder::Kitty {
            font: ratatui_image::FontSize::new(10, 20),
            tmux: true,
        };
        let pic = Raster::new(100, 60, [9, 9, 9]);
        let text = placeholder_text(&enc, &pic, 80).expect("encodes");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "60 pixels in 20-pixel rows");
        assert!(lines[0].contains("\x1bPtmux;"), "the image, once");
        assert!(!lines[1].contains("\x1bPtmux;"));
        assert_eq!(lines[1].matches('\u{10EEEE}').count(), 10);
    }
}
