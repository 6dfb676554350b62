//! Text about the run that more than one part of the screen shows: its phase as a coloured
//! word (tab bar, Training header) and the Training tab's header lines, whose wrapped height
//! the layout needs.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::state::AppState;
use super::vocab::Phase;
use crate::events::FinishReason;

/// Format seconds as `1h02m03s` / `2m03s` / `3s`.
#[must_use]
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The run phase as a coloured word; `full` adds what to do about it where there is room
/// (an interrupted run's resume command, with its path to copy).
#[must_use]
pub fn phase_span(state: &AppState, full: bool) -> Span<'static> {
    let phase = state.phase();
    if phase == Phase::Interrupted && full {
        return Span::styled(
            format!(
                "● interrupted: resume with `convscope resume {}`",
                crate::run::shell_quote(state.run_dir())
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        );
    }
    if phase == Phase::Finished(FinishReason::Stopped) && full {
        let why = state
            .stop_cause()
            .map_or_else(String::new, |c| format!(" by {}", c.describe()));
        return Span::styled(
            format!(
                "● stopped{why}: resume with `convscope resume {}`",
                crate::run::shell_quote(state.run_dir())
            ),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        );
    }
    let (text, color) = match phase {
        Phase::Waiting => ("waiting", Color::Gray),
        Phase::Preparing => ("preparing", Color::Yellow),
        Phase::Tuning => ("tuning GPU kernels", Color::Yellow),
        Phase::Running => ("running", Color::Green),
        Phase::Paused => ("paused", Color::Yellow),
        Phase::Stopping => ("stopping, writing checkpoint", Color::Magenta),
        Phase::Finished(FinishReason::Completed) => ("finished", Color::Cyan),
        Phase::Finished(FinishReason::Stopped) => ("stopped", Color::Cyan),
        Phase::Failed => ("failed", Color::Red),
        Phase::Stalled => ("stalled: no event for a minute", Color::Yellow),
        Phase::Interrupted => ("interrupted", Color::Red),
    };
    Span::styled(
        format!("● {text}"),
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    )
}

/// The Training tab's header lines: the run's facts, then its progress figures.
#[must_use]
pub fn head_lines(state: &AppState) -> [Line<'static>; 2] {
    let dim = Style::new().fg(Color::DarkGray);
    let mut l1 = vec![phase_span(state, true), Span::raw("  ")];
    let mut l2 = Vec::new();
    let last = state.batches().last();
    if let (Some(s), Some(i)) = (state.start(), state.imported()) {
        // An imported model: no training of its own yet, only where it came from.
        let file = i.source.file_name().map_or_else(
            || i.source.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        l1.push(Span::raw(format!(
            "imported from {file} ({}, {} tensors)",
            i.format, i.tensors
        )));
        l1.push(Span::styled(
            format!(
                "  {} classes  sha256 {}",
                s.classes.len(),
                i.sha256.get(..12).unwrap_or(&i.sha256)
            ),
            dim,
        ));
    } else if let Some(s) = state.start() {
        let (epoch, batch) = state.position().unwrap_or((s.start_epoch, s.start_batch));
        l1.push(Span::raw(format!(
            "epoch {epoch}/{}  batch {batch}/{}",
            s.epochs, s.batches_per_epoch
        )));
        l1.push(Span::styled(format!("  device {}", s.device), dim));
        l1.push(Span::styled(
            format!(
                "  {} train / {} val images, {} classes",
                s.train_images,
                s.val_images,
                s.classes.len()
            ),
            dim,
        ));
        if s.skipped_images > 0 {
            // Unreadable images are left out, never silently: the list and the reasons are in
            // the run's classes.json.
            l1.push(Span::styled(
                format!(
                    "  {} unreadable image{} skipped (classes.json)",
                    s.skipped_images,
                    if s.skipped_images == 1 { "" } else { "s" }
                ),
                Style::new().fg(Color::Yellow),
            ));
        }
    } else {
        l1.push(Span::styled("waiting for the trainer…", dim));
    }
    if let Some(b) = last {
        let eta = state
            .eta_seconds()
            .filter(|_| state.phase().is_active())
            .map_or_else(|| "–".to_string(), duration);
        l2.push(Span::raw(format!(
            "ETA {eta}  {:.0} img/s  elapsed {}  loss {:.4}  acc {:.3}",
            b.images_per_sec,
            duration(b.elapsed),
            b.loss,
            b.accuracy
        )));
    }
    if let Some(c) = state.checkpoint() {
        l2.push(Span::styled(format!("  last checkpoint {}", c.name), dim));
    }
    [Line::from(l1), Line::from(l2)]
}

/// Rows the header's lines take wrapped at `width` (a word that does not fit whole moves to
/// the next row, so a row is counted for every 90 % of the width, and one more).
#[must_use]
pub fn head_text_rows(lines: &[Line<'static>; 2], width: u16) -> usize {
    let usable = (usize::from(width) * 9 / 10).max(1);
    lines
        .iter()
        .map(|l| {
            if l.width() <= usize::from(width) {
                1
            } else {
                l.width().div_ceil(usable)
            }
        })
        .sum()
}

/// The Help tab's lines about the screen above the keys, wrapped to `width`: the colour depth
/// in use and why, then the picture protocol in use and why (at most 3 rows each).
#[must_use]
pub fn screen_lines(state: &AppState, width: u16) -> Vec<String> {
    let width = usize::from(width.max(1));
    let mut lines = Vec::new();
    for (label, note) in [
        ("Colours", state.color_note()),
        ("Pictures", state.graphics_note()),
    ] {
        if !note.is_empty() {
            let mut wrapped = super::keys::wrap(&format!(" {label}: {note}"), width);
            wrapped.truncate(3);
            lines.extend(wrapped);
        }
    }
    lines
}
