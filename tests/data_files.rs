//! Folder scan and decode against a fixture of good, odd and broken files, written at test time.

#![allow(clippy::float_cmp)] // decoded pixel values are exact integers in f32

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use convscope::config::{ColorMode, Config};
use convscope::data::{Dataset, load_image, scan};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn rgb(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        Rgb([(x * 20) as u8, (y * 30) as u8, 200])
    }))
}

// A valid 1x1 PNG whose header is then patched to claim `w` x `h` (with a correct CRC).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = encode(&rgb(1, 1), ImageFormat::Png);
    assert_eq!(&bytes[12..16], b"IHDR");
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn palette_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 2, 2);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![255, 0, 0, 0, 255, 0, 0, 0, 255]);
        let mut w = enc.write_header().expect("header");
        w.write_image_data(&[0, 1, 2, 0]).expect("data");
    }
    out
}

fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::GifEncoder;
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        for colour in [[255u8, 0, 0, 255], [0, 0, 255, 255]] {
            let frame = image::Frame::new(ImageBuffer::from_pixel(4, 4, Rgba(colour)));
            enc.encode_frame(frame).expect("frame");
        }
    }
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    good: Vec<PathBuf>,
    bad: Vec<(PathBuf, &'static str)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let a = root.join("a_odd");
    let b = root.join("b_plain");
    fs::create_dir_all(a.join("nested")).expect("mkdir");
    fs::create_dir_all(&b).expect("mkdir");
    let mut good = Vec::new();
    let put = |path: PathBuf, bytes: &[u8]| {
        fs::write(&path, bytes).expect("write");
        path
    };
    let jpeg = encode(&rgb(40, 30), ImageFormat::Jpeg);
    good.push(put(a.join("photo.JPG"), &jpeg));
    good.push(put(
        a.join("rgb.png"),
        &encode(&rgb(8, 6), ImageFormat::Png),
    ));
    let gray = DynamicImage::ImageLuma8(ImageBuffer::from_fn(5, 5, |x, _| Luma([x as u8 * 50])));
    good.push(put(a.join("gray.png"), &encode(&gray, ImageFormat::Png)));
    let ga =
        DynamicImage::ImageLumaA8(ImageBuffer::from_fn(5, 5, |x, _| LumaA([x as u8 * 50, 10])));
    good.push(put(
        a.join("gray_alpha.png"),
        &encode(&ga, ImageFormat::Png),
    ));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(3, 3, Rgba([10, 20, 30, 0])));
    good.push(put(a.join("rgba.png"), &encode(&rgba, ImageFormat::Png)));
    let deep = DynamicImage::ImageRgb16(ImageBuffer::from_pixel(3, 3, Rgb([65535u16, 32896, 0])));
    good.push(put(
        a.join("nested/deep16.png"),
        &encode(&deep, ImageFormat::Png),
    ));
    good.push(put(a.join("palette.png"), &palette_png()));
    good.push(put(a.join("anim.gif"), &animated_gif()));
    good.push(put(
        a.join("bitmap.bmp"),
        &encode(&rgb(4, 4), ImageFormat::Bmp),
    ));
    good.push(put(
        a.join("lossless.webp"),
        &encode(&rgb(4, 4), ImageFormat::WebP),
    ));
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9-latin1.png");
        good.push(put(a.join(name), &encode(&rgb(4, 4), ImageFormat::Png)));
    }
    good.push(put(
        b.join("one.png"),
        &encode(&rgb(6, 6), ImageFormat::Png),
    ));
    good.push(put(b.join("two.jpeg"), &jpeg));

    let mut bad = Vec::new();
    let mut put_bad = |name: &str, bytes: &[u8], why: &'static str| {
        let path = a.join(name);
        fs::write(&path, bytes).expect("write");
        bad.push((path, why));
    };
    put_bad("truncated.jpg", &jpeg[..jpeg.len() / 2], "truncated");
    put_bad(
        "garbage.png",
        &[0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8],
        "",
    );
    put_bad("empty.jpg", &[], "empty");
    put_bad("notes-really.jpg", b"this is a text file, not a JPEG\n", "");
    put_bad("bomb.png", &png_claiming(20_000, 20_000), "20000x20000");

    // Ignored quietly: hidden, other extensions, symlinked folders (a loop), a dangling link.
    fs::write(a.join(".hidden.png"), encode(&rgb(2, 2), ImageFormat::Png)).expect("write");
    fs::write(a.join("readme.txt"), b"hi").expect("write");
    std::os::unix::fs::symlink(&a, a.join("nested/loop")).expect("symlink");
    std::os::unix::fs::symlink(a.join("missing.png"), a.join("dangling.png")).expect("symlink");
    Fixture {
        _dir: dir,
        root,
        good,
        bad,
    }
}

fn small_cfg() -> Config {
    let mut cfg = Config::default();
    cfg.data.image_size = [8, 8];
    cfg.data.val_split = 0.0;
    cfg
}

#[test]
fn good_files_load_bad_files_are_skipped_with_reasons() {
    let f = fixture();
    let s = scan(&f.root).expect("scan");
    assert_eq!(s.classes, vec!["a_odd", "b_plain"]);
    // good + bad all have image extensions; .hidden.png, readme.txt, loop, dangling are ignored.
    assert_eq!(s.samples.len(), f.good.len() + f.bad.len());
    assert_eq!(s.ignored, 4);

    let ds = Dataset::open(&f.root, None, &small_cfg()).expect("open");
    let mut loaded: Vec<_> = ds.train.iter().map(|s| s.path.clone()).collect();
    loaded.sort();
    let mut want = f.good.clone();
    want.sort();
    assert_eq!(loaded, want);
    assert_eq!(ds.skipped.len(), f.bad.len(), "{:#?}", ds.skipped);
    assert_eq!(ds.skipped_count(), f.bad.len());
    for (path, why) in &f.bad {
        let s = ds
            .skipped
            .iter()
            .find(|s| &s.path == path)
            .unwrap_or_else(|| panic!("{} not skipped: {:#?}", path.display(), ds.skipped));
        assert!(s.reason.contains(why), "{}: {}", path.display(), s.reason);
        assert!(!s.reason.is_empty());
    }
    for s in &ds.skipped {
        eprintln!("skipped {}: {}", s.path.display(), s.reason);
    }
    let bomb = ds
        .skipped
        .iter()
        .find(|s| s.path.ends_with("bomb.png"))
        .expect("bomb");
    assert!(bomb.reason.contains("max_pixels"), "{}", bomb.reason);
    // A load error names the file.
    let err = load_image(&f.bad[0].0, &small_cfg())
        .expect_err("bad")
        .to_string();
    assert!(err.contains("truncated.jpg"), "{err}");
    // Skipped serialises even with a non-UTF-8 name.
    let json = serde_json::to_string(&ds.skipped).expect("json");
    assert!(json.contains("truncated.jpg"));
}

#[test]
fn unreadable_file_is_skipped() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let path = f.root.join("b_plain/locked.png");
    fs::write(&path, encode(&rgb(2, 2), ImageFormat::Png)).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read(&path).is_ok() {
        return; // running as root: permissions do not apply
    }
    let ds = Dataset::open(&f.root, None, &small_cfg()).expect("open");
    let s = ds
        .skipped
        .iter()
        .find(|s| s.path == path)
        .expect("locked skipped");
    assert!(s.reason.contains("ermission"), "{}", s.reason);
}

fn pixel(path: &Path, cfg: &Config) -> Vec<f32> {
    load_image(path, cfg).expect("load")
}

#[test]
fn every_pixel_format_becomes_rgb8_like_pil() {
    let f = fixture();
    let mut cfg = small_cfg();
    cfg.data.rescale = 1.0;
    cfg.data.image_size = [2, 2];
    let find = |name: &str| {
        f.good
            .iter()
            .find(|p| p.ends_with(name))
            .expect(name)
            .clone()
    };
    // [c, h, w]: first value of each channel plane (4 pixels per plane).
    let first = |v: &[f32]| [v[0], v[4], v[8]];
    // RGBA: alpha dropped, colour kept even at alpha 0 (PIL convert('RGB')).
    assert_eq!(first(&pixel(&find("rgba.png"), &cfg)), [10.0, 20.0, 30.0]);
    // 16-bit: scaled to 8 bits.
    assert_eq!(
        first(&pixel(&find("deep16.png"), &cfg)),
        [255.0, 128.0, 0.0]
    );
    // Palette: expanded through the palette; 2x2 stays 2x2: red, green / blue, red.
    let p = pixel(&find("palette.png"), &cfg);
    assert_eq!(&p[0..4], &[255.0, 0.0, 0.0, 255.0]);
    assert_eq!(&p[4..8], &[0.0, 255.0, 0.0, 0.0]);
    // Animated GIF: the first frame (red).
    assert_eq!(first(&pixel(&find("anim.gif"), &cfg)), [255.0, 0.0, 0.0]);
    // Gray and gray+alpha: replicated to three equal channels. 5 -> 2 samples columns 1 and 3.
    for name in ["gray.png", "gray_alpha.png"] {
        let v = pixel(&find(name), &cfg);
        assert_eq!(first(&v), [50.0, 50.0, 50.0], "{name}");
        assert_eq!(v[1], 150.0, "{name}");
    }
    // Grayscale mode: one channel, PIL's L of (10, 20, 30) = 18.
    cfg.data.color_mode = ColorMode::Grayscale;
    let v = pixel(&find("rgba.png"), &cfg);
    assert_eq!(v.len(), 4);
    assert_eq!(v[0], 18.0);
}

#[test]
fn class_with_only_bad_files_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    fs::create_dir_all(r.join("cats")).expect("mkdir");
    fs::create_dir_all(r.join("dogs")).expect("mkdir");
    fs::write(r.join("cats/a.png"), encode(&rgb(4, 4), ImageFormat::Png)).expect("write");
    fs::write(r.join("dogs/a.jpg"), b"not a jpeg").expect("write");
    let err = Dataset::open(r, None, &small_cfg())
        .expect_err("no dog")
        .to_string();
    assert!(err.contains(&r.join("dogs").display().to_string()), "{err}");
    assert!(err.contains("no readable image"), "{err}");
    assert!(err.contains("a.jpg"), "{err}");
}
