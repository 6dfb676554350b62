//! `events.jsonl` readers never panic, and every complete line of a valid log parses, however
//! the file is cut or however it grows.

use std::io::Write as _;
use std::path::Path;

use convscope::events::{
    BatchMetrics, CheckpointInfo, EpochMetrics, Event, FailInfo, FinishInfo, FinishReason,
    RunState, StatusChange, StopCause, WarningInfo,
};
use convscope::run::event_log::{EventLog, Tail, read_all};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Non-ASCII on purpose: multi-byte characters are where a byte-wise cut can land inside one.
    prop_oneof![
        "[a-z ]{0,12}",
        "[é漢字🦀\"\\\\\n\t a-z]{0,12}",
        any::<String>()
    ]
}

fn finite() -> impl Strategy<Value = f32> {
    prop_oneof![-1e6f32..1e6f32, Just(0.0), Just(f32::MIN_POSITIVE)]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        // serde_json parses f64 to within one ULP (no `float_roundtrip`); values with a short
        // exact decimal form keep the comparison exact.
        (
            any::<u16>(),
            any::<u16>(),
            finite(),
            finite(),
            0u32..1 << 26
        )
            .prop_map(|(epoch, batch, loss, accuracy, elapsed)| Event::Batch(
                BatchMetrics {
                    epoch: epoch.into(),
                    batch: batch.into(),
                    batches: 100,
                    loss,
                    accuracy,
                    images_per_sec: 12.5,
                    elapsed: f64::from(elapsed) / 64.0,
                }
            )),
        (any::<u16>(), finite(), proptest::option::of(finite())).prop_map(|(epoch, l, v)| {
            Event::Epoch(EpochMetrics {
                epoch: epoch.into(),
                train_loss: l,
                train_accuracy: 0.5,
                val_loss: v,
                val_accuracy: v,
                seconds: 1.5,
                images_per_sec: 3.0,
            })
        }),
        (any::<u16>(), text()).prop_map(|(epoch, name)| Event::Checkpoint(CheckpointInfo {
            epoch: epoch.into(),
            batch: 3,
            name,
        })),
        prop_oneof![
            Just(RunState::Preparing),
            Just(RunState::Tuning),
            Just(RunState::Running),
            Just(RunState::Paused),
            Just(RunState::Stopping)
        ]
        .prop_map(|state| Event::Status(StatusChange { state })),
        (any::<bool>(), 0..6usize).prop_map(|(done, cause)| Event::Finished(FinishInfo {
            reason: if done {
                FinishReason::Completed
            } else {
                FinishReason::Stopped
            },
            epoch: 2,
            batch: 7,
            cause: [
                StopCause::Hangup,
                StopCause::Terminate,
                StopCause::Interrupt,
                StopCause::Screen,
                StopCause::Viewer,
            ]
            .get(cause)
            .copied(),
        })),
        text().prop_map(|error| Event::Failed(FailInfo { error })),
        text().prop_map(|message| Event::Warning(WarningInfo { message })),
    ]
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.split(|&b| b == b'\n').count() - 1
}

/// Write `events` with the real writer and return the file's bytes.
fn log_bytes(dir: &Path, events: &[Event]) -> Vec<u8> {
    let path = dir.join("source.jsonl");
    let mut log = EventLog::append(&path).expect("open");
    for e in events {
        log.write(e).expect("write");
    }
    drop(log);
    std::fs::read(&path).expect("read")
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
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, &bytes).expect("write");
        let (events, bad) = read_all(&path).expect("a readable file always reads");
        let lines = newlines(&bytes);
        prop_assert!(events.len() + bad <= lines);
        let mut tail = Tail::open(&path).expect("tail");
        let again = tail.poll().expect("poll");
        prop_assert_eq!(again.len(), events.len());
    }

    #[test]
    fn json_like_lines_never_panic(lines in proptest::collection::vec(prop_oneof![
        "\\{\"event\":\"[a-z_]{0,10}\"[,:a-z0-9\"\\[\\]{}.-]{0,40}\\}",
        "[\\{\\}\\[\\]\":,0-9a-z ]{0,40}",
    ], 0..20)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, lines.join("\n")).expect("write");
        read_all(&path).expect("reads");
    }

    #[test]
    fn valid_log_cut_anywhere_keeps_every_complete_line(
        events in proptest::collection::vec(event(), 1..12),
        cut in any::<proptest::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = log_bytes(dir.path(), &events);
        let at = cut.index(bytes.len() + 1);
        let path = dir.path().join("cut.jsonl");
        std::fs::write(&path, &bytes[..at]).expect("write");
        let complete = newlines(&bytes[..at]);
        let (read, bad) = read_all(&path).expect("reads");
        prop_assert_eq!(bad, 0);
        prop_assert_eq!(&read[..], &events[..complete]);
    }

    #[test]
    fn tail_of_a_growing_log_sees_every_event_once(
        events in proptest::collection::vec(event(), 1..12),
        chunks in proptest::collection::vec(1usize..40, 1..200),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = log_bytes(dir.path(), &events);
        let path = dir.path().join("growing.jsonl");
        let mut file = std::fs::File::create(&path).expect("create");
        let mut tail = Tail::open(&path).expect("tail");
        let mut seen = Vec::new();
        let mut pos = 0;
        for n in chunks.iter().cycle() {
            if pos >= bytes.len() {
                break;
            }
            let end = (pos + n).min(bytes.len());
            file.write_all(&bytes[pos..end]).expect("grow");
            file.flush().expect("flush");
            pos = end;
            seen.extend(tail.poll().expect("poll"));
        }
        seen.extend(tail.poll().expect("poll"));
        prop_assert_eq!(tail.bad_lines, 0);
        prop_assert_eq!(seen, events);
    }
}

#[test]
fn non_finite_validation_loss_reads_back_as_missing_not_as_a_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Event::Epoch(EpochMetrics {
        epoch: 1,
        train_loss: 0.5,
        train_accuracy: 0.5,
        val_loss: Some(f32::NAN),
        val_accuracy: Some(f32::INFINITY),
        seconds: 1.0,
        images_per_sec: 1.0,
    });
    let bytes = log_bytes(dir.path(), &[e]);
    let path = dir.path().join("nan.jsonl");
    std::fs::write(&path, bytes).expect("write");
    let (events, bad) = read_all(&path).expect("reads");
    assert_eq!(bad, 0);
    assert!(matches!(
        events.as_slice(),
        [Event::Epoch(EpochMetrics { val_loss: None, .. })]
    ));
}

/// Logs written before a stop recorded its cause still read; new ones carry it.
#[test]
fn finished_events_with_and_without_a_stop_cause_read_back() {
    let old = r#"{"event":"finished","reason":"stopped","epoch":2,"batch":7}"#;
    let new = r#"{"event":"finished","reason":"stopped","epoch":2,"batch":7,"cause":"hangup"}"#;
    let read = |line: &str| serde_json::from_str::<Event>(line).expect("parses");
    assert!(matches!(
        read(old),
        Event::Finished(FinishInfo { cause: None, .. })
    ));
    assert!(matches!(
        read(new),
        Event::Finished(FinishInfo {
            cause: Some(StopCause::Hangup),
            ..
        })
    ));
    // A completed run's line has no cause field at all, as before.
    let done = serde_json::to_string(&Event::Finished(FinishInfo {
        reason: FinishReason::Completed,
        epoch: 2,
        batch: 7,
        cause: None,
    }))
    .expect("serialises");
    assert_eq!(
        done,
        r#"{"event":"finished","reason":"completed","epoch":2,"batch":7}"#
    );
}

/// Found by `tail_of_a_growing_log_sees_every_event_once`: a poll that landed inside the two
/// bytes of "®" decoded half a character lossily, and the finished line no longer parsed.
#[test]
fn regression_tail_across_a_split_multibyte_character() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = Event::Checkpoint(CheckpointInfo {
        epoch: 0,
        batch: 3,
        name: " a#®".into(),
    });
    let bytes = log_bytes(dir.path(), std::slice::from_ref(&event));
    let split = bytes
        .iter()
        .position(|&b| b == 0xC2)
        .expect("first byte of ®")
        + 1;
    let path = dir.path().join("growing.jsonl");
    let mut file = std::fs::File::create(&path).expect("create");
    let mut tail = Tail::open(&path).expect("tail");
    file.write_all(&bytes[..split]).expect("write");
    assert!(tail.poll().expect("poll").is_empty());
    file.write_all(&bytes[split..]).expect("write");
    assert_eq!(tail.poll().expect("poll"), vec![event]);
    assert_eq!(tail.bad_lines, 0);
}

/// The regression corpus of odd `events.jsonl` files: (events, bad lines) each, read whole and
/// followed byte by byte.
#[test]
fn corpus_of_odd_event_logs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let want = match name.as_str() {
            "split-multibyte.jsonl" => (1, 0),
            "torn-last-line.jsonl" | "crlf.jsonl" => (2, 0),
            "garbage-middle.jsonl" => (2, 4),
            other => panic!("add {other} to this list"),
        };
        let (events, bad) = read_all(&path).expect("reads");
        assert_eq!((events.len(), bad), want, "{name}");
        // The same, arriving one byte at a time.
        let bytes = std::fs::read(&path).expect("read");
        let tmp = tempfile::tempdir().expect("tempdir");
        let grow = tmp.path().join("grow.jsonl");
        let mut file = std::fs::File::create(&grow).expect("create");
        let mut tail = Tail::open(&grow).expect("tail");
        let mut got = Vec::new();
        for b in &bytes {
            file.write_all(std::slice::from_ref(b)).expect("write");
            got.extend(tail.poll().expect("poll"));
        }
        assert_eq!((got, tail.bad_lines), (events, bad), "{name}");
        seen += 1;
    }
    assert_eq!(seen, 4);
}
