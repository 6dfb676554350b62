//! An explanation map over its image: bilinear upsampling to the image, a heat colormap (jet,
//! turbo, magma) and a blend with the image at a chosen weight (pure pictures).

use super::colormap::{self, Rgb};
use super::raster::Raster;
use crate::model::explain::Heat;

/// The colormap of an explanation's heat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeatColormap {
    /// pytorch-grad-cam's and most papers' choice.
    #[default]
    Jet,
    Turbo,
    Magma,
}

impl HeatColormap {
    /// Every heat colormap, in the order a key cycles them.
    pub const ALL: [HeatColormap; 3] =
        [HeatColormap::Jet, HeatColormap::Turbo, HeatColormap::Magma];

    /// The colour of `t` in 0..1.
    #[must_use]
    pub fn color(self, t: f32) -> Rgb {
        match self {
            HeatColormap::Jet => colormap::from_table(&colormap::JET, t),
            HeatColormap::Turbo => colormap::from_table(&colormap::TURBO, t),
            HeatColormap::Magma => colormap::from_table(&colormap::MAGMA, t),
        }
    }

    /// The next one in the key's cycle.
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            HeatColormap::Jet => HeatColormap::Turbo,
            HeatColormap::Turbo => HeatColormap::Magma,
            HeatColormap::Magma => HeatColormap::Jet,
        }
    }

    /// Lowercase name, as on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            HeatColormap::Jet => "jet",
            HeatColormap::Turbo => "turbo",
            HeatColormap::Magma => "magma",
        }
    }
}

/// How much of the image shows through the heat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageWeight {
    Light,
    /// Half image, half heat.
    #[default]
    Half,
    Strong,
    /// The heat alone.
    HeatOnly,
}

impl ImageWeight {
    /// Every weight, in the order a key cycles them.
    pub const ALL: [ImageWeight; 4] = [
        ImageWeight::Light,
        ImageWeight::Half,
        ImageWeight::Strong,
        ImageWeight::HeatOnly,
    ];

    /// The image's share of each pixel.
    #[must_use]
    pub fn image_share(self) -> f32 {
        match self {
            ImageWeight::Light => 0.3,
            ImageWeight::Half => 0.5,
            ImageWeight::Strong => 0.7,
            ImageWeight::HeatOnly => 0.0,
        }
    }

    /// The next one in the key's cycle.
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            ImageWeight::Light => ImageWeight::Half,
            ImageWeight::Half => ImageWeight::Strong,
            ImageWeight::Strong => ImageWeight::HeatOnly,
            ImageWeight::HeatOnly => ImageWeight::Light,
        }
    }

    /// How the weight reads on screen and on the command line: `0.3`, `0.5`, `0.7`, `heat`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ImageWeight::Light => "0.3",
            ImageWeight::Half => "0.5",
            ImageWeight::Strong => "0.7",
            ImageWeight::HeatOnly => "heat",
        }
    }
}

/// A normalised map (`0..=1`) upsampled to `width` x `height` (bilinear).
#[must_use]
pub fn upsample(map: &Heat, width: usize, height: usize) -> Heat {
    map.resized(width, height)
}

/// The image with the map over it: the map upsampled to the image's size, coloured with
/// `colormap`, and blended as `share · image + (1 - share) · heat`.
#[must_use]
pub fn overlay(image: &Raster, map: &Heat, weight: ImageWeight, colormap: HeatColormap) -> Raster {
    let (w, h) = (image.width(), image.height());
    let heat = upsample(map, w, h);
    let share = weight.image_share();
    Raster::from_fn(w, h, |x, y| {
        let c = colormap.color(heat.values[y * w + x]);
        let p = image.pixel(x, y);
        std::array::from_fn(|k| {
            (share * f32::from(p[k]) + (1.0 - share) * f32::from(c[k]))
                .round()
                .clamp(0.0, 255.0) as u8
        })
    })
}

/// An image from planar pixels (`[channels, height, width]`, one or three channels) scaled by
/// `rescale` (the network's input: `value / rescale` is back in 0..=255).
#[must_use]
pub fn image_from_planar(
    pixels: &[f32],
    channels: usize,
    width: usize,
    height: usize,
    rescale: f32,
) -> Raster {
    let plane = width * height;
    let scale = if rescale > 0.0 { 1.0 / rescale } else { 1.0 };
    let level = |v: f32| (v * scale).round().clamp(0.0, 255.0) as u8;
    Raster::from_fn(width, height, |x, y| {
        let i = y * width + x;
        if channels >= 3 {
            [
                level(pixels[i]),
                level(pixels[plane + i]),
                level(pixels[2 * plane + i]),
            ]
        } else {
            [level(pixels.get(i).copied().unwrap_or(0.0)); 3]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heat(width: usize, height: usize, values: Vec<f32>) -> Heat {
        Heat {
            width,
            height,
            values,
        }
    }

    #[test]
    fn weights_blend_image_and_heat() {
        let image = Raster::new(2, 2, [200, 100, 0]);
        let map = heat(1, 1, vec![1.0]);
        let hot = HeatColormap::Jet.color(1.0);
        let only = overlay(&image, &map, ImageWeight::HeatOnly, HeatColormap::Jet);
        assert!(only.pixels().iter().all(|&p| p == hot));
        let half = overlay(&image, &map, ImageWeight::Half, HeatColormap::Jet);
        assert_eq!(half.pixel(1, 1), [164, 50, 0]);
        let strong = overlay(&image, &map, ImageWeight::Strong, HeatColormap::Jet);
        // 0.7 * 200 + 0.3 * 128
        assert_eq!(strong.pixel(0, 0)[0], 178);
        let light = overlay(&image, &map, ImageWeight::Light, HeatColormap::Jet);
        assert_eq!(light.pixel(0, 0)[0], 150);
    }

    #[test]
    fn map_is_upsampled_to_the_image() {
        let image = Raster::new(4, 2, [0, 0, 0]);
        let map = heat(2, 1, vec![0.0, 1.0]);
        let out = overlay(&image, &map, ImageWeight::HeatOnly, HeatColormap::Magma);
        assert_eq!((out.width(), out.height()), (4, 2));
        assert_eq!(out.pixel(0, 0), HeatColormap::Magma.color(0.0));
        assert_eq!(out.pixel(3, 1), HeatColormap::Magma.color(1.0));
        assert_eq!(out.pixel(1, 0), HeatColormap::Magma.color(0.25));
    }

    #[test]
    fn cycles_visit_every_choice() {
        let mut m = HeatColormap::Jet;
        for want in HeatColormap::ALL.iter().cycle().skip(1).take(3) {
            m = m.next();
            assert_eq!(m, *want);
        }
        let mut w = ImageWeight::Light;
        for want in ImageWeight::ALL.iter().cycle().skip(1).take(4) {
            w = w.next();
            assert_eq!(w, *want);
        }
        assert_eq!(ImageWeight::default().name(), "0.5");
        assert_eq!(HeatColormap::Turbo.name(), "turbo");
    }

    #[test]
    fn planar_pixels_back_to_an_image() {
        let r = 1.0 / 255.0;
        let px = [1.0, 0.0, 0.4, 0.25, 0.0, 1.0];
        let img = image_from_planar(&px, 3, 2, 1, r);
        assert_eq!(img.pixel(0, 0), [255, 102, 0]);
        assert_eq!(img.pixel(1, 0), [0, 64, 255]);
        let gray = image_from_planar(&[0.5, 1.0], 1, 2, 1, r);
        assert_eq!(gray.pixel(1, 0), [255, 255, 255]);
    }
}
