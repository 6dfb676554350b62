//! Decode like PIL + Keras `load_img`: any supported file to 8-bit RGB or L, NEAREST resize.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::DataError;
use crate::config::{ColorMode, Config};

/// A decoded, resized image: interleaved `[height, width, channels]` u8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub pixels: Vec<u8>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// Decode a file to an image, refusing anything above `max_pixels` before allocating it.
///
/// The error is a short reason (the caller adds the file name).
pub(crate) fn decode_file(path: &Path, max_pixels: u64) -> Result<DynamicImage, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.is_empty() {
        return Err("empty file (0 bytes)".into());
    }
    let reader = |limits: Limits| -> Result<ImageReader<Cursor<&[u8]>>, String> {
        let mut r = ImageReader::new(Cursor::new(bytes.as_slice()))
            .with_guessed_format()
            .map_err(|e| format!("cannot read the file: {e}"))?;
        if r.format().is_none() {
            match ImageFormat::from_path(path) {
                Ok(f) => r.set_format(f),
                Err(_) => return Err("not a recognised image format".into()),
            }
        }
        r.limits(limits);
        Ok(r)
    };
    let format = reader(Limits::no_limits())?.format();
    let what = format.map_or_else(|| "image".to_string(), |f| format!("{f:?}"));
    if format == Some(ImageFormat::Jpeg) && !jpeg_is_complete(&bytes) {
        // zune-jpeg pads a cut-off file with grey; PIL refuses it ("image file is truncated").
        return Err("truncated Jpeg file (no end-of-image marker after the last scan)".into());
    }
    // The header alone: cheap, and it lets a decompression bomb be refused by its claimed size.
    let (w, h) = reader(Limits::no_limits())?
        .into_dimensions()
        .map_err(|e| format!("not a valid {what} file: {e}"))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(format!(
            "{w}x{h} pixels is above data.max_pixels = {max_pixels}; shrink the image or raise data.max_pixels"
        ));
    }
    if pixels == 0 {
        return Err(format!("{what} header says {w}x{h} pixels"));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // 16-bit RGBA is 8 bytes a pixel; the decoder may not allocate more than that plus slack.
    limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(16 << 20));
    let decoder = reader(limits)?
        .into_decoder()
        .map_err(|e| format!("not a valid {what} file: {e}"))?;
    DynamicImage::from_decoder(decoder).map_err(|e| format!("corrupt {what} data: {e}"))
}

// The entropy-coded data of a scan never contains a marker, so a complete file has an EOI
// (FF D9) after its last SOS (FF DA); an EXIF thumbnail's own EOI comes before the main scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        (Some(_), None) => false,
        (None, _) => true, // no scan at all: the decoder will say what is wrong
    }
}

/// PIL `convert('L')`: L = (R*299 + G*587 + B*114)/1000, in PIL's own 16-bit fixed point.
#[must_use]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// Convert to interleaved 8-bit pixels: RGB with alpha dropped (PIL `convert('RGB')`) or L.
pub(crate) fn to_pixels(img: &DynamicImage, mode: ColorMode) -> (Vec<u8>, usize, usize) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let rgb = img.to_rgb8().into_raw();
    match mode {
        ColorMode::Rgb => (rgb, h, w),
        ColorMode::Grayscale => {
            let l = rgb
                .chunks_exact(3)
                .map(|p| luma(p[0], p[1], p[2]))
                .collect();
            (l, h, w)
        }
    }
}

// PIL's ImagingScaleAffine index table: start at scale/2, step by scale, truncate. This is
// floor((i + 0.5) * src / dst) up to PIL's own cumulative rounding, which we copy.
fn nearest_table(src: usize, dst: usize) -> Vec<usize> {
    let scale = src as f64 / dst as f64;
    let mut pos = scale * 0.5;
    (0..dst)
        .map(|_| {
            let i = (pos as usize).min(src - 1);
            pos += scale;
            i
        })
        .collect()
}

/// Resize interleaved pixels with PIL's NEAREST (as Keras `load_img` does by default).
#[must_use]
pub fn resize_nearest(
    src: &[u8],
    (sh, sw): (usize, usize),
    channels: usize,
    (dh, dw): (usize, usize),
) -> Vec<u8> {
    if (sh, sw) == (dh, dw) {
        return src.to_vec();
    }
    let rows = nearest_table(sh, dh);
    let cols = nearest_table(sw, dw);
    let mut out = Vec::with_capacity(dh * dw * channels);
    for &r in &rows {
        let row = &src[r * sw * channels..(r + 1) * sw * channels];
        for &c in &cols {
            out.extend_from_slice(&row[c * channels..(c + 1) * channels]);
        }
    }
    out
}

/// Decode a file and resize it to the configured input size, as 8-bit interleaved pixels.
pub fn decode_resized(path: &Path, cfg: &Config) -> Result<Decoded, DataError> {
    decode_resized_reason(path, cfg).map_err(|reason| DataError::Image {
        path: path.to_path_buf(),
        reason,
    })
}

pub(crate) fn decode_resized_reason(path: &Path, cfg: &Config) -> Result<Decoded, String> {
    // Decoder messages can end in a newline, which would split the one-line warning.
    let img = decode_file(path, cfg.data.max_pixels).map_err(|r| r.trim_end().to_string())?;
    let (pixels, sh, sw) = to_pixels(&img, cfg.data.color_mode);
    drop(img);
    let channels = cfg.data.color_mode.channels();
    let [h, w] = cfg.data.image_size.map(|v| v as usize);
    Ok(Decoded {
        pixels: resize_nearest(&pixels, (sh, sw), channels, (h, w)),
        height: h,
        width: w,
        channels,
    })
}

/// Write interleaved u8 pixels as planar `[c, h, w]` f32 times `rescale`.
pub(crate) fn to_planar(src: &[u8], channels: usize, rescale: f32, out: &mut [f32]) {
    let plane = src.len() / channels;
    for (i, px) in src.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            out[c * plane + i] = f32::from(v) * rescale;
        }
    }
}

/// Load one image exactly as the network sees it at validation time (no augmentation): [c, h, w] f32 * rescale.
pub fn load_image(path: &Path, cfg: &Config) -> Result<Vec<f32>, DataError> {
    let d = decode_resized(path, cfg)?;
    let mut out = vec![0.0; d.pixels.len()];
    to_planar(&d.pixels, d.channels, cfg.data.rescale, &mut out);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn nearest_matches_pil_centres() {
        // PIL: 4 -> 2 picks source 1 and 3 (centres 1.0 and 3.0), not 0 and 2.
        assert_eq!(nearest_table(4, 2), vec![1, 3]);
        // 500 -> 150 and 375 -> 150, spot values from floor((i + 0.5) * s / d).
        let t = nearest_table(500, 150);
        assert_eq!((t[0], t[1], t[149]), (1, 5, 498));
        let t = nearest_table(375, 150);
        assert_eq!((t[0], t[1], t[149]), (1, 3, 373));
        // Upscale 2 -> 5: 0,0,1,1,1 (centres 0.2, 0.6, 1.0, 1.4, 1.8).
        assert_eq!(nearest_table(2, 5), vec![0, 0, 1, 1, 1]);
    }

    #[test]
    fn resize_moves_whole_pixels() {
        let src: Vec<u8> = (0..16).collect(); // 4x4 gray
        let out = resize_nearest(&src, (4, 4), 1, (2, 2));
        assert_eq!(out, vec![5, 7, 13, 15]);
    }

    #[test]
    fn luma_matches_pil() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(77, 77, 77), 77);
        // PIL: Image.new('RGB', (1, 1), (255, 0, 0)).convert('L') -> 76; green 150; blue 29.
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
    }

    #[test]
    fn planar_layout() {
        let src = [1u8, 2, 3, 4, 5, 6]; // two RGB pixels
        let mut out = [0.0f32; 6];
        to_planar(&src, 3, 1.0, &mut out);
        assert_eq!(out, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
