//! The config parser and validation never panic, and every error names a key or a line.

use convscope::config::{
    Activation, ClassesMarker, Config, ConfigError, DEFAULT_TOML, LayerSpec, Padding, Units,
};
use proptest::prelude::*;

/// Parse and validate; panics (the property) only through the code under test.
fn check(text: &str) -> Result<(), TestCaseError> {
    match Config::from_toml(text, "fuzz.toml") {
        Ok(cfg) => check_valid(&cfg),
        Err(ConfigError::Parse { path, message }) => {
            prop_assert_eq!(path, "fuzz.toml");
            prop_assert!(
                message.contains("line "),
                "a parse error names a line: {}",
                message
            );
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!("unexpected error kind: {e}"))),
    }
}

fn check_valid(cfg: &Config) -> Result<(), TestCaseError> {
    match cfg.validate() {
        Ok(()) => Ok(()),
        Err(ConfigError::Invalid { key, reason, .. }) => {
            prop_assert!(
                key.starts_with("data.")
                    || key.starts_with("augment.")
                    || key.starts_with("model.")
                    || key.starts_with("optimizer.")
                    || key.starts_with("train.")
                    || key.starts_with("ui."),
                "names a key: {}",
                key
            );
            prop_assert!(!reason.is_empty());
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!("unexpected error kind: {e}"))),
    }
}

fn snippet() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("=".to_string()),
        Just("[train]\n".to_string()),
        Just("epochs = ".to_string()),
        Just("{ type = \"conv\" }".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("1e400".to_string()),
        "[a-z_.]{1,8}",
        any::<String>(),
    ]
}

/// A number in TOML spelling, ordinary or extreme.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1".to_string()),
        Just("0.0".to_string()),
        Just("-0.0".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("1e308".to_string()),
        Just("4097".to_string()),
        Just("9223372036854775807".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        (0u32..5000).prop_map(|v| v.to_string()),
    ]
}

/// Any usize, biased to the small and the huge.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..8, 0usize..5000, any::<usize>(), Just(usize::MAX)]
}

fn layer() -> impl Strategy<Value = LayerSpec> {
    let act = prop_oneof![Just(Activation::Relu), Just(Activation::None)];
    prop_oneof![
        (size(), size(), any::<bool>(), act.clone(), size()).prop_map(
            |(filters, kernel, same, activation, stride)| LayerSpec::Conv {
                filters,
                kernel,
                padding: if same { Padding::Same } else { Padding::Valid },
                activation,
                stride,
            }
        ),
        size().prop_map(|size| LayerSpec::Maxpool { size }),
        any::<f32>().prop_map(|rate| LayerSpec::Dropout { rate }),
        Just(LayerSpec::Flatten),
        (
            prop_oneof![
                size().prop_map(Units::Fixed),
                Just(Units::Classes(ClassesMarker::Classes))
            ],
            act
        )
            .prop_map(|(units, activation)| LayerSpec::Dense { units, activation }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        // Fixed, so that CI is repeatable; change it locally to explore further.
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5ca9),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn toml_shaped_text_never_panics(text in "[\\[\\]a-z_=\"0-9. \n,{}#-]{0,200}") {
        check(&text)?;
    }

    #[test]
    fn mutated_default_config_never_panics(
        cuts in proptest::collection::vec((any::<proptest::sample::Index>(), 0usize..40), 0..3),
        inserts in proptest::collection::vec((any::<proptest::sample::Index>(), snippet()), 0..3),
    ) {
        let mut text = DEFAULT_TOML.to_string();
        for (at, len) in cuts {
            let start = at.index(text.len() + 1);
            let end = (start + len).min(text.len());
            if text.is_char_boundary(start) && text.is_char_boundary(end) {
                text.replace_range(start..end, "");
            }
        }
        for (at, s) in inserts {
            let i = at.index(text.len() + 1);
            if text.is_char_boundary(i) {
                text.insert_str(i, &s);
            }
        }
        check(&text)?;
    }

    #[test]
    fn any_number_for_any_numeric_key_never_panics(
        key in any::<proptest::sample::Index>(),
        value in number(),
    ) {
        // Every `key = number` line of the default file, one replaced by an arbitrary number.
        let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
        let numeric: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.split_once(" = ")
                    .is_some_and(|(_, v)| v.trim().starts_with(|c: char| c.is_ascii_digit()))
            })
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!numeric.is_empty());
        let i = numeric[key.index(numeric.len())];
        let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_string()).collect();
        let (k, _) = lines[i].split_once(" = ").expect("key = value");
        edited[i] = format!("{k} = {value}");
        check(&edited.join("\n"))?;
    }

    #[test]
    fn any_layer_stack_and_image_size_validates_without_panicking(
        layers in proptest::collection::vec(layer(), 0..8),
        h in any::<u32>(),
        w in 0u32..5000,
        classes in 0usize..2000,
    ) {
        let mut cfg = Config::default();
        cfg.data.image_size = [h % 5000, w];
        cfg.model.layers = layers;
        check_valid(&cfg)?;
        let _ = cfg.layer_shapes(classes);
    }
}

/// The regression corpus: inputs that once broke validation, and other odd files.
#[test]
fn corpus_of_odd_config_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        seen += 1;
        if name == "utf8-bom.toml" {
            // Editors on Windows write one; it is accepted.
            let cfg = Config::load(Some(&path)).expect("BOM accepted");
            assert_eq!(cfg.train.epochs, 3);
            continue;
        }
        let result = Config::load(Some(&path)).and_then(|c| c.validate());
        let err = result.expect_err(&name).to_string();
        let expect = match name.as_str() {
            "flatten-overflow.toml" => {
                "config key `model.layers[0]` = conv: this layer is far too large"
            }
            "dense-units-max.toml" => {
                "config key `model.layers[3]` = dense: this layer is far too large"
            }
            "lr-nan.toml" => "config key `optimizer.lr` = NaN",
            "epochs-negative.toml" | "unclosed-table.toml" => "line ",
            "binary-junk.toml" => "stream did not contain valid UTF-8",
            other => panic!("add {other} to this list"),
        };
        assert!(err.contains(expect), "{name}: {err}");
        if !err.starts_with("config key") {
            assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        }
    }
    assert_eq!(seen, 7);
}
