//! Pure raster math: normalisations, colormaps, grids -> RGB images; and the exported
//! pictures and tables composed from them. No burn, no UI, no I/O.

pub mod colormap;
pub mod compare;
pub mod export;
pub mod norm;
pub mod overlay;
pub mod pictures;
pub mod plot;
pub mod raster;
pub mod sheets;
pub mod table;
pub mod text;

pub use colormap::Rgb;
pub use raster::Raster;

/// The bundled sample photos (file name, JPEG bytes), offered as default feature-map probes.
pub const SAMPLE_PHOTOS: &[(&str, &[u8])] = &[
    ("cat.jpg", include_bytes!("../data/samples/cat.jpg")),
    ("dog.jpg", include_bytes!("../data/samples/dog.jpg")),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_photos_decode_and_are_small() {
        assert_eq!(SAMPLE_PHOTOS.len(), 2);
        for (name, bytes) in SAMPLE_PHOTOS {
            let img = image::load_from_memory(bytes).expect(name);
            assert!(img.width().max(img.height()) <= 400, "{name}");
            assert!(img.width().min(img.height()) >= 100, "{name}");
        }
    }
}
