//! Decode like PIL + Keras `load_img`: any supported file to 8-bit RGB or L, NEAREST resize.

use std::fs::{self, File};
use std::io::{BufReader, Cursor, Read, Seek as _, SeekFrom};
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use super::DataError;
use crate::config::{ColorMode, Config};

/// Why an image file could not be decoded: a short reason (the caller adds the file name).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "{format} images are not read by convscope; convert the file to PNG or JPEG (e.g. `convert FILE out.png` with ImageMagick)"
    )]
    Unread { format: String },
    #[error("cannot read the file: {0}")]
    Read(std::io::Error),
    #[error("{what}, not an image file; only regular files are read")]
    NotAFile { what: &'static str },
    #[error(
        "the file is {len} bytes, more than any image within data.max_pixels = {max_pixels} takes ({cap} bytes at most); shrink the image or raise data.max_pixels"
    )]
    FileTooLarge { len: u64, cap: u64, max_pixels: u64 },
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("not a recognised image format")]
    UnknownFormat,
    #[error(
        "the file is {len} bytes, far more than a {w}x{h} Jpeg takes; it is not a plain image file"
    )]
    JpegTooLarge { len: u64, w: u32, h: u32 },
    #[error(
        "{w}x{h} pixels is above data.max_pixels = {max_pixels}; shrink the image or raise data.max_pixels"
    )]
    TooManyPixels { w: u32, h: u32, max_pixels: u64 },
    // Decoder messages can end in a newline, which would split the one-line warning.
    #[error("not a valid {format} file: {}", trimmed(.error))]
    Invalid {
        format: String,
        error: image::ImageError,
    },
    #[error("{format} header says {w}x{h} pixels")]
    NoPixels { format: String, w: u32, h: u32 },
    #[error("truncated Jpeg file (no end-of-image marker after the last scan)")]
    TruncatedJpeg,
    #[error("corrupt {format} data: {}", trimmed(.error))]
    Corrupt {
        format: String,
        error: image::ImageError,
    },
}

/// An error's message without the line break a decoder may end it with.
fn trimmed(e: &impl std::fmt::Display) -> String {
    e.to_string().trim_end().to_string()
}

/// A decoded, resized image: interleaved `[height, width, channels]` u8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub pixels: Vec<u8>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// Open an image file for reading: only a regular file, at most `cap` bytes. The open does not
/// wait (`O_NONBLOCK`: a FIFO with no writer would block it, and with it the training thread
/// that asked for a probe), and the checks are made on the open file.
fn open_image(path: &Path, cap: u64, max_pixels: u64) -> Result<(File, u64), ImageError> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(ImageError::Read)?;
    let meta = file.metadata().map_err(ImageError::Read)?;
    if !meta.is_file() {
        let t = meta.file_type();
        let what = if t.is_dir() {
            "a folder"
        } else if t.is_fifo() {
            "a FIFO (named pipe)"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(ImageError::NotAFile { what });
    }
    if meta.len() > cap {
        return Err(ImageError::FileTooLarge {
            len: meta.len(),
            cap,
            max_pixels,
        });
    }
    Ok((file, meta.len()))
}

/// The largest image file read for `max_pixels`: 16-bit RGBA stored uncompressed is 8 bytes a
/// pixel, plus room for metadata and other frames.
fn max_file_bytes(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(8).saturating_add(64 << 20)
}

/// Decode a file to an image, refusing anything above `max_pixels` before allocating it.
///
/// The file is read as a stream: its header gives the size, which is checked before any pixel
/// is decoded, and a file that is not what its header says fails where it stops making sense,
/// not after being read whole. The error is a short reason (the caller adds the file name).
pub(crate) fn decode_file(path: &Path, max_pixels: u64) -> Result<DynamicImage, ImageError> {
    if let Some(format) = super::scan::unread_format(path) {
        return Err(ImageError::Unread { format });
    }
    let (file, len) = open_image(path, max_file_bytes(max_pixels), max_pixels)?;
    if len == 0 {
        return Err(ImageError::Empty);
    }
    let stream = || -> Result<BufReader<&File>, ImageError> {
        let mut f = &file;
        f.seek(SeekFrom::Start(0)).map_err(ImageError::Read)?;
        Ok(BufReader::with_capacity(64 << 10, f))
    };
    let format = match ImageReader::new(stream()?)
        .with_guessed_format()
        .map_err(ImageError::Read)?
        .format()
    {
        Some(f) => f,
        None => ImageFormat::from_path(path).map_err(|_| ImageError::UnknownFormat)?,
    };
    if format == ImageFormat::Jpeg {
        // Its decoder takes the file whole: hand it no more than the frame it declares can
        // take, and only a prefix when it declares none (garbage: the decoder says what is
        // wrong from its first bytes).
        let bound = match jpeg_frame_size(stream()?) {
            Some((w, h)) => {
                let pixels = u64::from(w) * u64::from(h);
                check_pixels(w, h, max_pixels)?;
                let bound = pixels.saturating_mul(8).saturating_add(16 << 20);
                if len > bound {
                    return Err(ImageError::JpegTooLarge { len, w, h });
                }
                bound
            }
            None => 1 << 20,
        };
        let mut bytes = Vec::with_capacity(len.min(bound) as usize);
        stream()?
            .take(bound)
            .read_to_end(&mut bytes)
            .map_err(ImageError::Read)?;
        decode_with(
            || Ok(Cursor::new(bytes.as_slice())),
            format,
            max_pixels,
            Some(&bytes),
        )
    } else {
        decode_with(stream, format, max_pixels, None)
    }
}

/// Refuse an image above `max_pixels` (or of no pixels) by the size its header gives.
fn check_pixels(w: u32, h: u32, max_pixels: u64) -> Result<(), ImageError> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(ImageError::TooManyPixels { w, h, max_pixels });
    }
    Ok(())
}

/// Decode what `open` reads (from its start each time it is called) as `format`; `jpeg` is the
/// whole file when it is a Jpeg, to check that it is complete.
fn decode_with<R: std::io::BufRead + std::io::Seek>(
    open: impl Fn() -> Result<R, ImageError>,
    format: ImageFormat,
    max_pixels: u64,
    jpeg: Option<&[u8]>,
) -> Result<DynamicImage, ImageError> {
    let what = || format!("{format:?}");
    let reader = |limits: Limits| -> Result<ImageReader<R>, ImageError> {
        let mut r = ImageReader::with_format(open()?, format);
        r.limits(limits);
        Ok(r)
    };
    // The header alone: cheap, and it lets a decompression bomb be refused by its claimed size.
    let (w, h) = reader(Limits::no_limits())?
        .into_dimensions()
        .map_err(|error| ImageError::Invalid {
            format: what(),
            error,
        })?;
    check_pixels(w, h, max_pixels)?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(ImageError::NoPixels {
            format: what(),
            w,
            h,
        });
    }
    if jpeg.is_some_and(|bytes| !jpeg_is_complete(bytes)) {
        // zune-jpeg pads a cut-off file with grey; PIL refuses it ("image file is truncated").
        return Err(ImageError::TruncatedJpeg);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // 16-bit RGBA is 8 bytes a pixel; the decoder may not allocate more than that plus slack.
    limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(16 << 20));
    let decoder = reader(limits)?
        .into_decoder()
        .map_err(|error| ImageError::Invalid {
            format: what(),
            error,
        })?;
    DynamicImage::from_decoder(decoder).map_err(|error| ImageError::Corrupt {
        format: what(),
        error,
    })
}

/// The width and height a Jpeg's frame header (SOFn) declares, read from its first segments;
/// `None` when the file does not start like a Jpeg or has no frame header before its scan.
fn jpeg_frame_size(r: impl Read) -> Option<(u32, u32)> {
    let mut r = r;
    let mut byte = || -> Option<u8> {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).ok().map(|()| b[0])
    };
    if (byte()?, byte()?) != (0xFF, 0xD8) {
        return None;
    }
    loop {
        if byte()? != 0xFF {
            return None;
        }
        let mut marker = byte()?;
        while marker == 0xFF {
            marker = byte()?; // fill bytes
        }
        match marker {
            0x01 | 0xD0..=0xD8 => {}    // no length
            0xD9 | 0xDA => return None, // end, or a scan before any frame header
            _ => {
                let len = u16::from_be_bytes([byte()?, byte()?]);
                if len < 2 {
                    return None;
                }
                if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                    let _precision = byte()?;
                    let h = u16::from_be_bytes([byte()?, byte()?]);
                    let w = u16::from_be_bytes([byte()?, byte()?]);
                    return Some((u32::from(w), u32::from(h)));
                }
                for _ in 2..len {
                    byte()?;
                }
            }
        }
    }
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

pub(crate) fn decode_resized_reason(path: &Path, cfg: &Config) -> Result<Decoded, ImageError> {
    let img = decode_file(path, cfg.data.max_pixels)?;
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
