//! Grad-CAM looks where the evidence is: images whose class is decided only by the colour of
//! a disc drawn at a random place on a grey textured background; after a short training, most
//! of the map's mass (upsampled to the image) falls inside the disc's box for most images. A
//! uniform or misplaced map fails (the box is a quarter of the image).

mod common;

use std::path::Path;

use convscope::model::explain::Heat;
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;

const SIZE: u32 = 48;
const RADIUS: i32 = 7;
/// The classes and their disc colours.
const CLASSES: [(&str, [u8; 3]); 3] = [
    ("red", [220, 40, 40]),
    ("green", [40, 200, 60]),
    ("blue", [50, 70, 230]),
];

/// The disc's bounding box, `(x0, y0, x1, y1)` inclusive.
type BoxPx = (i32, i32, i32, i32);

/// One image: grey noise and stripes, and a disc of `colour` at a random place; returns its box.
fn draw(path: &Path, colour: [u8; 3], rng: &mut rand_chacha::ChaCha8Rng) -> BoxPx {
    let n = SIZE as i32;
    let (cx, cy) = (
        rng.random_range(RADIUS..n - RADIUS),
        rng.random_range(RADIUS..n - RADIUS),
    );
    let period = rng.random_range(4..9);
    let mut img = image::RgbImage::new(SIZE, SIZE);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (x, y) = (x as i32, y as i32);
        if (x - cx).pow(2) + (y - cy).pow(2) <= RADIUS * RADIUS {
            *p = image::Rgb(colour);
        } else {
            let stripe = if (x + y) / period % 2 == 0 { 30 } else { 0 };
            let g = rng.random_range(70u8..150).saturating_add(stripe);
            *p = image::Rgb([g, g, g]);
        }
    }
    img.save(path).expect("write image");
    (cx - RADIUS, cy - RADIUS, cx + RADIUS, cy + RADIUS)
}

/// The fraction of the map's mass inside `b` grown by `margin` pixels, the map bilinearly
/// upsampled to the image.
fn mass_inside(map: &Heat, b: BoxPx, margin: i32) -> f64 {
    let up = map.resized(SIZE as usize, SIZE as usize);
    let (mut inside, mut total) = (0.0f64, 0.0f64);
    for (i, &v) in up.values.iter().enumerate() {
        let (x, y) = ((i % SIZE as usize) as i32, (i / SIZE as usize) as i32);
        total += f64::from(v);
        if x >= b.0 - margin && x <= b.2 + margin && y >= b.1 - margin && y <= b.3 + margin {
            inside += f64::from(v);
        }
    }
    if total > 0.0 { inside / total } else { 0.0 }
}

#[test]
fn grad_cam_mass_falls_on_the_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for (name, colour) in CLASSES {
        std::fs::create_dir_all(data.join(name)).expect("class folder");
        for i in 0..40 {
            draw(
                &data.join(name).join(format!("{i:03}.png")),
                colour,
                &mut rng,
            );
        }
    }
    let run = dir.path().join("run");
    common::train(&data, &run)
        .size(SIZE)
        .batch(16)
        .epochs(6)
        .success();

    // New images, each explained for its own class.
    let tests = dir.path().join("tests");
    std::fs::create_dir_all(&tests).expect("tests folder");
    let mut cases = Vec::new();
    for k in 0..12 {
        let (name, colour) = CLASSES[k % CLASSES.len()];
        let path = tests.join(format!("{name}-{k}.png"));
        let b = draw(&path, colour, &mut rng);
        cases.push((path, name, b));
    }
    let out_dir = dir.path().join("out");
    let mut fractions = Vec::new();
    let mut correct = 0;
    for (path, name, b) in &cases {
        let out = common::run(&[
            "explain",
            run.to_str().expect("utf8"),
            path.to_str().expect("utf8"),
            "--class",
            name,
            "--out",
            out_dir.to_str().expect("utf8"),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        let e = &v[0];
        assert_eq!(e["layer"], "conv2d_2");
        if e["predicted"] == *name {
            correct += 1;
        }
        let fraction = match e["map"].as_array() {
            None => 0.0,
            Some(rows) => {
                let values: Vec<f32> = rows
                    .iter()
                    .flat_map(|r| r.as_array().expect("row").iter())
                    .map(|x| x.as_f64().expect("number") as f32)
                    .collect();
                let map = Heat {
                    width: e["width"].as_u64().expect("w") as usize,
                    height: e["height"].as_u64().expect("h") as usize,
                    values,
                };
                // One 4-pixel cell of the 12x12 map around the 15-pixel box: 23x23 of 48x48.
                mass_inside(&map, *b, 4)
            }
        };
        fractions.push(fraction);
    }
    assert!(
        correct >= 9,
        "the network learned too little to explain ({correct} of 12 right)"
    );
    let on_object = fractions.iter().filter(|&&f| f >= 0.5).count();
    assert!(
        on_object >= 9,
        "mass inside the object's box per image: {fractions:.2?} (a uniform map gives 0.23)"
    );
}
