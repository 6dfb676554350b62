//! Mouse clicks: the tab under a click on the tab bar, or the filter / channel under a click on
//! its grid, found through the same layout and pictures the screen was drawn from.

use ratatui::layout::Rect;

use super::keys::Action;
use super::layout::{self, Layout};
use super::picture::{pixel_at, pixel_in};
use super::pictures::{Pic, Pictures};
use super::state::Msg;
use super::vocab::{Slot, Tab};
use crate::viz::raster::Grid;

/// What a left click at `(col, row)` asks for, if anything. `shown`: where graphics images
/// were drawn (their size follows the terminal's pixels, not the half-block layout).
#[must_use]
pub fn target(
    col: u16,
    row: u16,
    layout: &Layout,
    pictures: &Pictures,
    shown: &[(Slot, Rect)],
) -> Option<Msg> {
    if row == 0 {
        return layout::tab_at(col, layout.tabs_compact)
            .map(|tab| Msg::Action(Action::ShowTab(tab)));
    }
    // The grid tile under the click, if the click is on a grid picture: as a graphics image
    // where one was drawn, else as half blocks.
    let tile = |slot: Slot, geom: Option<Grid>, pic: &Pic, area: Rect| {
        let drawn = shown.iter().find(|(s, _)| *s == slot).map(|(_, r)| *r);
        let (x, y) = match drawn {
            Some(r) => pixel_in(&pic.raster, r, col, row)?,
            None => pixel_at(&pic.raster, area, col, row)?,
        };
        geom?.tile_at(x, y)
    };
    let hit = match layout.tab {
        Tab::Filters => tile(
            Slot::FilterGrid,
            pictures.filter_geom,
            &pictures.filter_grid,
            layout.filters.grid,
        ),
        Tab::Features => tile(
            Slot::FeatureGrid,
            pictures.feature_geom,
            &pictures.feature_grid,
            layout.features.grid,
        ),
        _ => None,
    };
    hit.map(Msg::Pick)
}
