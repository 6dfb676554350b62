//! Sixel / kitty / iTerm2 images through `ratatui-image`, encoded before drawing and only when a
//! picture's raster generation or area changed; half blocks need no preparation.

use std::collections::HashMap;
use std::io::Write as _;

use ratatui::layout::{Rect, Size};
use ratatui_image::Resize;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;

use super::state::AppState;
use crate::config::Graphics as GraphicsSetting;

/// The places a picture can appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    FilterGrid,
    FilterRgb,
    FilterZoom,
    Probe,
    FeatureGrid,
    ChannelZoom,
}

struct Entry {
    generation: u64,
    area: Rect,
    protocol: Protocol,
}

/// One picture to encode, off the UI thread.
struct Job {
    slot: Slot,
    generation: u64,
    area: Rect,
    raster: crate::viz::Raster,
    picker: Picker,
}

impl Job {
    fn run(self) -> Encoded {
        let font = self.picker.font_size();
        // Nearest-neighbour to the exact pixel size, so that the protocol never smooths a weight.
        let (pw, ph) = self.raster.fit_size(
            usize::from(self.area.width) * usize::from(font.width),
            usize::from(self.area.height) * usize::from(font.height),
        );
        let resized = self.raster.resized(pw, ph);
        let protocol = if self.picker.protocol_type() == ProtocolType::Sixel {
            let size = Size::new(
                pw.div_ceil(usize::from(font.width).max(1)) as u16,
                ph.div_ceil(usize::from(font.height).max(1)) as u16,
            );
            sixel(&resized, size, self.picker.tmux_detected())
        } else {
            let img = image::DynamicImage::ImageRgb8(resized.to_rgb_image());
            self.picker
                .new_protocol(
                    img,
                    Size::new(self.area.width, self.area.height),
                    Resize::Fit(None),
                )
                .map_err(|e| e.to_string())
        };
        Encoded {
            slot: self.slot,
            generation: self.generation,
            area: self.area,
            protocol,
        }
    }
}

/// Sixel for `raster`, which fills `size` cells, wrapped like ratatui-image does: the cells
/// erased first, and tmux's passthrough when inside tmux.
fn sixel(raster: &crate::viz::Raster, size: Size, tmux: bool) -> Result<Protocol, String> {
    use std::fmt::Write as _;
    let encoded = super::sixel::encode(raster)?;
    let Some(body) = encoded.strip_prefix('\x1b') else {
        return Err("sixel encoding did not start with an escape".into());
    };
    let (start, escape, end) =
        ratatui_image::picker::cap_parser::Parser::tmux_start_escape_end(tmux);
    let mut data = String::with_capacity(body.len() + 16 * usize::from(size.height) + 32);
    data.push_str(start);
    // Erase what was under the picture (ECH + cursor down per row, then back up).
    if size.height <= 1 {
        let _ = write!(data, "{escape}[{}X", size.width);
    } else {
        for _ in 0..size.height {
            let _ = write!(data, "{escape}[{}X{escape}[1B", size.width);
        }
        let _ = write!(data, "{escape}[{}A", size.height);
    }
    data.push_str(escape);
    // Inside tmux's passthrough every escape is doubled, the sixel's own terminator too.
    if tmux {
        data.push_str(&body.replace('\x1b', "\x1b\x1b"));
    } else {
        data.push_str(body);
    }
    data.push_str(end);
    Ok(Protocol::Sixel(ratatui_image::protocol::sixel::Sixel {
        data,
        size,
        is_tmux: tmux,
    }))
}

/// The cells an image of `size` cells takes when centred in `area`, as the half blocks are.
#[must_use]
fn centred(area: Rect, size: Size) -> Rect {
    let (w, h) = (size.width.min(area.width), size.height.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// A finished encoding.
pub struct Encoded {
    slot: Slot,
    generation: u64,
    area: Rect,
    protocol: Result<Protocol, String>,
}

/// Where finished encodings are sent.
pub type EncodedSender = tokio::sync::mpsc::UnboundedSender<Encoded>;

/// Encoded images by slot; empty (all half blocks) without a graphics-capable picker.
#[derive(Default)]
pub struct Graphics {
    picker: Option<Picker>,
    cache: HashMap<Slot, Entry>,
    /// Jobs in flight: slot -> (generation, area).
    pending: HashMap<Slot, (u64, Rect)>,
    done: Option<EncodedSender>,
}

impl std::fmt::Debug for Graphics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graphics")
            .field("protocol", &self.picker.as_ref().map(Picker::protocol_type))
            .field("cached", &self.cache.len())
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Graphics {
    /// Half blocks only.
    #[must_use]
    pub fn halfblocks() -> Self {
        Self::default()
    }

    /// Pick the protocol for `setting`, asking the terminal when needed; finished encodings
    /// will be sent to `done`. Call it in the alternate screen, before reading terminal events.
    #[must_use]
    pub fn detect(setting: GraphicsSetting, done: EncodedSender) -> Self {
        if setting == GraphicsSetting::Halfblocks {
            return Self::halfblocks();
        }
        // tmux passes graphics through only with `allow-passthrough on`, and its answer to the
        // query can leave the query waiting: in tmux, auto means half blocks (force a protocol
        // with --graphics to use passthrough).
        if setting == GraphicsSetting::Auto && std::env::var_os("TMUX").is_some() {
            tracing::info!(
                "inside tmux: half blocks (use --graphics sixel with allow-passthrough on)"
            );
            return Self::halfblocks();
        }
        let picker = query_with_deadline();
        if picker
            .as_ref()
            .map_or(true, |p| p.capabilities().is_empty())
        {
            // The terminal did not answer (e.g. tmux without passthrough). ratatui-image's reader
            // thread is still blocked on stdin and would swallow the first key press: ask for the
            // primary device attributes, which every terminal (and tmux itself) answers, so that
            // the thread reads its end marker and exits. If crossterm sees the answer instead, it
            // discards it as an internal event.
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b[c").and_then(|()| out.flush());
        }
        let mut picker = match picker {
            Ok(p) => p,
            // A forced protocol is honoured even without an answer (font size guessed).
            Err(e) if setting != GraphicsSetting::Auto => {
                tracing::info!("terminal graphics query failed, forcing {setting:?}: {e}");
                Picker::halfblocks()
            }
            Err(e) => {
                tracing::info!("terminal graphics query failed, using half blocks: {e}");
                return Self::halfblocks();
            }
        };
        match setting {
            GraphicsSetting::Sixel => picker.set_protocol_type(ProtocolType::Sixel),
            GraphicsSetting::Kitty => picker.set_protocol_type(ProtocolType::Kitty),
            GraphicsSetting::Iterm2 => picker.set_protocol_type(ProtocolType::Iterm2),
            GraphicsSetting::Auto | GraphicsSetting::Halfblocks => {}
        }
        tracing::info!(
            "terminal graphics: {:?}, font {:?}",
            picker.protocol_type(),
            picker.font_size()
        );
        if picker.protocol_type() == ProtocolType::Halfblocks {
            // Our own half blocks know the 256-colour fallback and the upscaling rules.
            return Self::halfblocks();
        }
        Self::with_picker(picker, done)
    }

    /// Use `picker` as it is (no terminal query); finished encodings go to `done`.
    #[must_use]
    pub fn with_picker(picker: Picker, done: EncodedSender) -> Self {
        Self {
            picker: Some(picker),
            cache: HashMap::new(),
            pending: HashMap::new(),
            done: Some(done),
        }
    }

    /// Whether an encoding is in flight.
    #[must_use]
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The protocol in use, `None` for half blocks.
    #[must_use]
    pub fn protocol(&self) -> Option<ProtocolType> {
        self.picker.as_ref().map(Picker::protocol_type)
    }

    /// Start encoding every picture of the current screen whose raster or area changed, on
    /// tokio's blocking pool; results come back through the channel given to [`Self::detect`]
    /// and are taken in by [`Self::accept`]. Until then the picture is drawn as half blocks.
    /// Without a runtime (tests), encodes inline.
    pub fn prepare(&mut self, state: &AppState, area: Rect) {
        let Some(picker) = self.picker.clone() else {
            return;
        };
        let slots = super::render::picture_slots(state, area);
        self.cache
            .retain(|slot, _| slots.iter().any(|(s, _, _)| s == slot));
        for (slot, rect, pic) in slots {
            let key = (pic.generation, rect);
            let fresh = self
                .cache
                .get(&slot)
                .is_some_and(|e| (e.generation, e.area) == key);
            if fresh || self.pending.get(&slot) == Some(&key) {
                continue;
            }
            if pic.raster.is_empty() || rect.is_empty() {
                continue;
            }
            let job = Job {
                slot,
                generation: pic.generation,
                area: rect,
                raster: pic.raster.clone(),
                picker: picker.clone(),
            };
            if let (Ok(rt), Some(done)) = (tokio::runtime::Handle::try_current(), self.done.clone())
            {
                self.pending.insert(slot, key);
                rt.spawn_blocking(move || {
                    // A closed channel means the UI is gone: nothing to do.
                    let _ = done.send(job.run());
                });
            } else {
                let encoded = job.run();
                self.accept(encoded);
            }
        }
    }

    /// Take in a finished encoding; returns whether it is still wanted (then redraw).
    pub fn accept(&mut self, e: Encoded) -> bool {
        let key = (e.generation, e.area);
        if self.pending.get(&e.slot).is_some_and(|k| *k == key) {
            self.pending.remove(&e.slot);
        }
        match e.protocol {
            Ok(protocol) => {
                self.cache.insert(
                    e.slot,
                    Entry {
                        generation: e.generation,
                        area: e.area,
                        protocol,
                    },
                );
                true
            }
            Err(err) => {
                tracing::warn!("encoding {:?} failed, drawing half blocks: {err}", e.slot);
                false
            }
        }
    }

    /// The previous image of `slot` while its new one is being encoded for the same area: it
    /// stays on screen until then (drawing the same cells again costs no bytes), instead of a
    /// half-block stand-in that the new image overwrites a moment later.
    #[must_use]
    pub fn stale(&self, slot: Slot, area: Rect) -> Option<&Protocol> {
        self.pending
            .get(&slot)
            .filter(|(_, a)| *a == area)
            .and_then(|_| self.cache.get(&slot))
            .filter(|e| e.area == area)
            .map(|e| &e.protocol)
    }

    /// Where `slot`'s graphics image sits on screen when it is drawn into `area` (the image for
    /// this raster, or the previous one while the new one encodes); `None` when half blocks are
    /// drawn there.
    #[must_use]
    pub fn shown_rect(&self, slot: Slot, generation: u64, area: Rect) -> Option<Rect> {
        self.shown(slot, generation, area).map(|(_, r)| r)
    }

    /// The image drawn for `slot` in `area` (the one for this raster, or the previous one while
    /// the new one encodes) and the cells it takes, centred like the half blocks.
    #[must_use]
    pub fn shown(&self, slot: Slot, generation: u64, area: Rect) -> Option<(&Protocol, Rect)> {
        self.get(slot, generation, area)
            .or_else(|| self.stale(slot, area))
            .map(|p| (p, centred(area, p.size())))
    }

    /// The encoded image for `slot`, if it was made for exactly this generation and area.
    #[must_use]
    pub fn get(&self, slot: Slot, generation: u64, area: Rect) -> Option<&Protocol> {
        self.cache
            .get(&slot)
            .filter(|e| e.generation == generation && e.area == area)
            .map(|e| &e.protocol)
    }
}

/// Ask the terminal what it can draw, giving up after a few seconds whatever happens.
///
/// ratatui-image's own timeout restarts on every byte it reads, so a terminal that answers
/// partly (or a stdin that keeps returning) can keep it waiting forever: the query runs on a
/// thread of its own here, and an unanswered one is woken with a status request, which every
/// terminal answers and which ends its read loop.
fn query_with_deadline() -> Result<Picker, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("graphics-query".into())
        .spawn(move || {
            let _ = tx.send(Picker::from_query_stdio().map_err(|e| e.to_string()));
        });
    if let Err(e) = spawned {
        return Err(format!("cannot start the query: {e}"));
    }
    if let Ok(result) = rx.recv_timeout(std::time::Duration::from_secs(3)) {
        return result;
    }
    let mut out = std::io::stdout();
    let _ = out.write_all(b"\x1b[5n").and_then(|()| out.flush());
    Err("the terminal did not answer the graphics query within 3 s".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;
    use crate::ui::fixtures;
    use crate::ui::state::Tab;

    #[tokio::test]
    async fn encodes_off_thread_once_per_raster_and_area() {
        let mut picker = Picker::halfblocks();
        picker.set_protocol_type(ProtocolType::Sixel);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut gfx = Graphics::with_picker(picker, tx);
        let mut s = AppState::new(&crate::config::UiConfig::default(), "t".into(), "r".into());
        s.resize(100, 30);
        s.apply(Event::Filters(Box::new(fixtures::tutorial_filters())));
        s.tab = Tab::Filters;
        let area = Rect::new(0, 0, 100, 30);
        gfx.prepare(&s, area);
        assert!(gfx.busy());
        let slots = crate::ui::render::picture_slots(&s, area);
        assert_eq!(slots.len(), 3);
        for _ in 0..slots.len() {
            let done = rx.recv().await.expect("encoded");
            assert!(gfx.accept(done));
        }
        assert!(!gfx.busy());
        for (slot, rect, pic) in &slots {
            let proto = gfx.get(*slot, pic.generation, *rect);
            assert!(proto.is_some(), "{slot:?}");
            // Clicks map through where the image is drawn: centred in its box, within it.
            let shown = gfx.shown_rect(*slot, pic.generation, *rect).expect("shown");
            assert_eq!(
                shown,
                centred(*rect, proto.map(Protocol::size).unwrap_or_default())
            );
            assert_eq!(shown.intersection(*rect), shown, "{slot:?}");
            assert_eq!(gfx.shown_rect(*slot, pic.generation + 1000, *rect), None);
        }
        // Nothing changed: nothing is encoded again.
        gfx.prepare(&s, area);
        assert!(!gfx.busy());
        // A new selection re-frames the grid: only what changed is encoded.
        s.update(crate::ui::keys::Action::NextItem);
        gfx.prepare(&s, area);
        assert!(gfx.busy());
        assert_eq!(
            gfx.pending.len(),
            3,
            "grid, zoom and RGB patches all show the selection"
        );
    }

    #[test]
    fn sixel_is_wrapped_for_tmux_with_every_escape_doubled() {
        let r = crate::viz::Raster::from_fn(8, 12, |x, y| [(x * 30) as u8, (y * 20) as u8, 9]);
        let plain = sixel(&r, Size::new(2, 1), false).expect("encodes");
        let wrapped = sixel(&r, Size::new(2, 1), true).expect("encodes");
        let (Protocol::Sixel(p), Protocol::Sixel(t)) = (plain, wrapped) else {
            panic!("sixel protocols")
        };
        assert_eq!(p.size, Size::new(2, 1));
        assert!(p.data.starts_with("\x1b[2X\x1bP"), "erase, then the image");
        assert!(t.data.starts_with("\x1bPtmux;\x1b\x1b[2X\x1b\x1bP"));
        assert!(t.data.ends_with("\x1b\x1b\\\x1b\\"));
        let inner = &t.data["\x1bPtmux;".len()..t.data.len() - 2];
        assert_eq!(inner.replace("\x1b\x1b", "\x1b"), p.data);
        assert!(
            !inner.replace("\x1b\x1b", "").contains('\x1b'),
            "no lone escape ends the passthrough"
        );
    }
}
