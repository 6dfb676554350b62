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

/// Encoded images by slot; empty (all half blocks) without a graphics-capable picker.
#[derive(Default)]
pub struct Graphics {
    picker: Option<Picker>,
    cache: HashMap<Slot, Entry>,
}

impl std::fmt::Debug for Graphics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graphics")
            .field("protocol", &self.picker.as_ref().map(Picker::protocol_type))
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl Graphics {
    /// Half blocks only.
    #[must_use]
    pub fn halfblocks() -> Self {
        Self::default()
    }

    /// Pick the protocol for `setting`, asking the terminal when needed. Call it in the
    /// alternate screen, before reading terminal events.
    #[must_use]
    pub fn detect(setting: GraphicsSetting) -> Self {
        if setting == GraphicsSetting::Halfblocks {
            return Self::halfblocks();
        }
        let picker = Picker::from_query_stdio();
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
        let picker = match picker {
            Ok(p) => p,
            Err(e) => {
                tracing::info!("terminal graphics query failed, using half blocks: {e}");
                return Self::halfblocks();
            }
        };
        let mut picker = picker;
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
        Self {
            picker: Some(picker),
            cache: HashMap::new(),
        }
    }

    /// The protocol in use, `None` for half blocks.
    #[must_use]
    pub fn protocol(&self) -> Option<ProtocolType> {
        self.picker.as_ref().map(Picker::protocol_type)
    }

    /// Encode every picture of the current screen whose raster or area changed.
    pub fn prepare(&mut self, state: &AppState, area: Rect) {
        let Some(picker) = self.picker.as_ref() else {
            return;
        };
        let slots = super::render::picture_slots(state, area);
        self.cache
            .retain(|slot, _| slots.iter().any(|(s, _, _)| s == slot));
        for (slot, rect, pic) in slots {
            let fresh = self
                .cache
                .get(&slot)
                .is_some_and(|e| e.generation == pic.generation && e.area == rect);
            if fresh || pic.raster.is_empty() || rect.is_empty() {
                continue;
            }
            let font = picker.font_size();
            let (pw, ph) = pic.raster.fit_size(
                usize::from(rect.width) * usize::from(font.width),
                usize::from(rect.height) * usize::from(font.height),
            );
            let img = image::DynamicImage::ImageRgb8(pic.raster.resized(pw, ph).to_rgb_image());
            match picker.new_protocol(img, Size::new(rect.width, rect.height), Resize::Fit(None)) {
                Ok(protocol) => {
                    self.cache.insert(
                        slot,
                        Entry {
                            generation: pic.generation,
                            area: rect,
                            protocol,
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!("encoding {slot:?} failed, drawing half blocks: {e}");
                    self.cache.remove(&slot);
                }
            }
        }
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
