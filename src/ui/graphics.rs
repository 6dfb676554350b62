//! Sixel / kitty / iTerm2 images through `ratatui-image`, encoded before drawing and only when a
//! picture's raster generation or area changed; half blocks need no preparation.

pub mod detect;
pub mod redraw;

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, TryRecvError};

use ratatui::layout::{Rect, Size};
use ratatui_image::protocol::Protocol;

pub use self::detect::Encoder;
use super::layout::Layout;
use super::pictures::Pictures;
use super::vocab::Slot;
use crate::config::Graphics as GraphicsSetting;

/// Why a picture could not be encoded (it is drawn as half blocks then).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("sixel encoding: {0}")]
    Sixel(String),
    #[error(transparent)]
    Picker(#[from] ratatui_image::errors::Errors),
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
    encoder: Encoder,
    /// Most bytes a sixel picture may take (0: no limit).
    max_bytes: usize,
    /// Which encoder this is ([`Graphics::encoder_epoch`]).
    epoch: u64,
}

impl Job {
    fn run(self) -> Encoded {
        let protocol = self.encoder.encode(&self.raster, self.area, self.max_bytes);
        Encoded {
            slot: self.slot,
            generation: self.generation,
            area: self.area,
            epoch: self.epoch,
            protocol,
        }
    }
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
    epoch: u64,
    protocol: Result<Protocol, EncodeError>,
}

/// Where finished encodings are sent.
pub type EncodedSender = tokio::sync::mpsc::UnboundedSender<Encoded>;

/// Encoded images by slot; empty (all half blocks) without a graphics encoder.
#[derive(Default)]
pub struct Graphics {
    encoder: Option<Encoder>,
    /// Counts encoder changes, so that an encoding made with an earlier one is dropped.
    encoder_epoch: u64,
    /// The terminal's answer, when it did not come before the first frame.
    late: Option<Receiver<detect::Decision>>,
    /// The protocol in use and why, for the Help tab.
    note: String,
    cache: HashMap<Slot, Entry>,
    /// Most bytes one sixel picture may take (0: no limit).
    sixel_max_bytes: usize,
    /// Jobs in flight: slot -> (generation, area).
    pending: HashMap<Slot, (u64, Rect)>,
    done: Option<EncodedSender>,
}

impl std::fmt::Debug for Graphics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graphics")
            .field("encoder", &self.encoder)
            .field("waiting", &self.late.is_some())
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

    /// Pick the protocol for `setting`, asking the terminal when needed (waiting at most
    /// [`detect::DEADLINE`]); finished encodings will be sent to `done`. Call it in the alternate
    /// screen, before reading terminal events.
    #[must_use]
    pub fn detect(setting: GraphicsSetting, done: EncodedSender) -> Self {
        let found = detect::start(setting);
        Self {
            note: found.now.describe(),
            encoder: found.now.encoder,
            late: found.late,
            done: Some(done),
            ..Self::default()
        }
    }

    /// Use `encoder` as it is (no terminal query); finished encodings go to `done`.
    #[must_use]
    pub fn with_encoder(encoder: Encoder, done: EncodedSender) -> Self {
        Self {
            encoder: Some(encoder),
            done: Some(done),
            ..Self::default()
        }
    }

    /// Limit each sixel picture to `kb` kilobytes (0: no limit).
    #[must_use]
    pub fn with_sixel_max_kb(mut self, kb: u32) -> Self {
        self.sixel_max_bytes = usize::try_from(kb)
            .unwrap_or(usize::MAX)
            .saturating_mul(1000);
        self
    }

    /// Take in the terminal's late answer, if it came; returns whether the encoder changed
    /// (then redraw: every picture is encoded again).
    pub fn poll_late(&mut self) -> bool {
        let Some(rx) = &self.late else {
            return false;
        };
        let decision = match rx.try_recv() {
            Ok(decision) => decision,
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => {
                self.late = None;
                return false;
            }
        };
        self.late = None;
        tracing::info!(
            "the terminal graphics query finished late: {}",
            decision.describe()
        );
        // A query that failed late keeps the stand-in (a forced sixel); an answer replaces it.
        let note = decision.describe();
        let Some(encoder) = decision.encoder else {
            return false;
        };
        self.note = note;
        self.encoder = Some(encoder);
        self.encoder_epoch += 1;
        self.cache.clear();
        self.pending.clear();
        true
    }

    /// Whether an encoding is in flight.
    #[must_use]
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Pixels a cell holds in the pictures drawn: the font's size for a graphics protocol,
    /// one column by two rows for half blocks.
    #[must_use]
    pub fn cell_pixels(&self) -> (usize, usize) {
        self.encoder.as_ref().map_or((1, 2), |e| {
            let f = e.font();
            (usize::from(f.width).max(1), usize::from(f.height).max(1))
        })
    }

    /// The protocol in use and why (`sixel through tmux passthrough (...)`), for the Help tab;
    /// empty when it was not detected.
    #[must_use]
    pub fn describe(&self) -> &str {
        &self.note
    }

    /// Whether pictures are sixel through tmux's passthrough, which tmux does not keep: they
    /// must be drawn again whenever tmux redraws ([`redraw::TmuxRedraws`]).
    #[must_use]
    pub fn sixel_through_tmux(&self) -> bool {
        matches!(self.encoder, Some(Encoder::Sixel { tmux: true, .. }))
    }

    /// Start encoding every picture of the current screen whose raster or area changed, on
    /// tokio's blocking pool; results come back through the channel given to [`Self::detect`]
    /// and are taken in by [`Self::accept`]. Until then the picture is drawn as half blocks.
    /// Without a runtime (tests), encodes inline.
    pub fn prepare(&mut self, layout: &Layout, pictures: &Pictures) {
        let Some(encoder) = self.encoder.clone() else {
            return;
        };
        self.cache
            .retain(|slot, _| layout.slots.iter().any(|(s, _)| s == slot));
        for (slot, rect, pic) in pictures.placed(layout) {
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
                encoder: encoder.clone(),
                max_bytes: self.sixel_max_bytes,
                epoch: self.encoder_epoch,
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
        if e.epoch != self.encoder_epoch {
            return false;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;
    use crate::ui::bench_data;
    use crate::ui::keys::Action;
    use crate::ui::layout;
    use crate::ui::state::{AppState, Msg, View};
    use crate::ui::vocab::Tab;

    /// Sixel graphics with cells of `w`x`h` pixels, and where its encodings arrive.
    fn sixel_graphics(w: u16, h: u16) -> (Graphics, tokio::sync::mpsc::UnboundedReceiver<Encoded>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let encoder = Encoder::Sixel {
            font: ratatui_image::FontSize::new(w, h),
            tmux: false,
        };
        (Graphics::with_encoder(encoder, tx), rx)
    }

    /// The Filters tab of the tutorial network at 100x30, its layout and its pictures.
    fn filters_screen() -> (AppState, Layout, Pictures) {
        let mut s = AppState::new(&crate::config::UiConfig::default(), "t".into(), "r".into());
        s.apply(Event::Filters(Box::new(bench_data::tutorial_filters())));
        s.set_tab(Tab::Filters);
        let l = layout::compute((100, 30), &s);
        let p = Pictures::new(&s, &l, (1, 2));
        (s, l, p)
    }

    fn slots<'a>(
        l: &'a Layout,
        p: &'a Pictures,
    ) -> Vec<(Slot, Rect, &'a crate::ui::pictures::Pic)> {
        p.placed(l).collect()
    }

    #[tokio::test]
    async fn encodes_off_thread_once_per_raster_and_area() {
        let (mut gfx, mut rx) = sixel_graphics(10, 20);
        let (mut s, l, mut p) = filters_screen();
        gfx.prepare(&l, &p);
        assert!(gfx.busy());
        let slots = slots(&l, &p);
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
        gfx.prepare(&l, &p);
        assert!(!gfx.busy());
        // A new selection re-frames the grid: only what changed is encoded.
        s.update(Msg::Action(Action::NextItem), &View::default());
        let l = layout::compute((100, 30), &s);
        p.sync(&s, &l, (1, 2));
        gfx.prepare(&l, &p);
        assert!(gfx.busy());
        assert_eq!(
            gfx.pending.len(),
            3,
            "grid, zoom and RGB patches all show the selection"
        );
    }

    #[tokio::test]
    async fn a_late_answer_replaces_the_stand_in_and_drops_its_encodings() {
        let (mut gfx, mut rx) = sixel_graphics(10, 20);
        let (late_tx, late_rx) = std::sync::mpsc::channel();
        gfx.late = Some(late_rx);
        assert!(!gfx.poll_late(), "no answer yet");
        let (_s, l, p) = filters_screen();
        gfx.prepare(&l, &p);
        let jobs = gfx.pending.len();
        assert!(jobs > 0);
        // The terminal answers: cells of 8x16 pixels.
        late_tx
            .send(detect::Decision {
                encoder: Some(Encoder::Sixel {
                    font: ratatui_image::FontSize::new(8, 16),
                    tmux: false,
                }),
                why: "answered".into(),
            })
            .expect("send");
        assert!(gfx.poll_late(), "the answer is taken in");
        assert!(gfx.late.is_none());
        assert!(!gfx.busy());
        // What the stand-in encoded is not shown.
        for _ in 0..jobs {
            let done = rx.recv().await.expect("encoded");
            assert!(!gfx.accept(done));
        }
        assert!(gfx.cache.is_empty());
        // Everything is encoded again with the answer's cell size.
        gfx.prepare(&l, &p);
        assert_eq!(gfx.pending.len(), jobs);
        for _ in 0..jobs {
            let done = rx.recv().await.expect("encoded");
            assert!(gfx.accept(done));
        }
        let (slot, rect, pic) = &slots(&l, &p)[0];
        let proto = gfx.get(*slot, pic.generation, *rect).expect("encoded");
        let Protocol::Sixel(sx) = proto else {
            panic!("sixel")
        };
        // The image has the pixel size of its box in 8x16-pixel cells.
        let img = icy_sixel::SixelImage::decode(
            &sx.data.as_bytes()[sx.data.find("\x1bP").expect("sixel start")..],
        )
        .expect("decodes");
        let want = pic
            .raster
            .fit_size(usize::from(rect.width) * 8, usize::from(rect.height) * 16);
        assert_eq!((img.width, img.height), want);
    }
}
