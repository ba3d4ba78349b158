//! Replays every saved fuzz input (`fuzz/regression/<target>/`: the seed
//! corpus and the reproducer of every crash found and fixed) through the
//! fuzz targets' own entry points, `seresnext_serve::fuzzing`. A fixed crash
//! stays fixed in `make test`, with no fuzzer or nightly toolchain needed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use seresnext_serve::fuzzing::TARGETS;
use seresnext_serve::preprocess::{caught_decoder_panics, prepare, DecodeLimits};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files saved for `target`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("regression").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// No saved input panics, either out of its target or inside a decoder.
/// `preprocess::decode` runs the decoders under `catch_unwind` and turns a
/// panic into a `Corrupt` error, which would hide a replayed decoder crash;
/// its process-wide counter shows every catch. (The counter is shared with
/// any test running at the same time in this process; a catch there is a
/// decoder bug too, only attributed here to the input being replayed.)
#[test]
fn every_saved_input_runs_through_its_target_without_a_panic() {
    let mut panicked = Vec::new();
    let mut caught_in_a_decoder = Vec::new();
    let caught_at_start = caught_decoder_panics();
    for (target, run) in TARGETS {
        let files = inputs(target);
        assert!(!files.is_empty(), "no saved inputs for {target}");
        for file in files {
            let data = std::fs::read(&file).expect("read a saved input");
            let caught_before = caught_decoder_panics();
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                panicked.push(file.display().to_string());
            }
            let caught = caught_decoder_panics() - caught_before;
            if caught > 0 {
                caught_in_a_decoder.push(format!("{} ({caught} caught)", file.display()));
            }
        }
    }
    assert!(panicked.is_empty(), "inputs that panic: {panicked:#?}");
    assert!(
        caught_in_a_decoder.is_empty(),
        "inputs whose decoder panicked (caught by preprocess::decode): {caught_in_a_decoder:#?}"
    );
    assert_eq!(
        caught_decoder_panics(),
        caught_at_start,
        "decoder panics were caught during the replay"
    );
}

#[test]
fn every_target_is_a_cargo_fuzz_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (target, _) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml has no [[bin]] {target}"
        );
        let source = fuzz_dir().join(format!("fuzz_targets/{target}.rs"));
        let text = std::fs::read_to_string(&source).unwrap();
        assert!(
            text.contains(&format!("seresnext_serve::fuzzing::{target}(")),
            "{} does not call fuzzing::{target}",
            source.display()
        );
    }
}

/// The seeds (`seed-*`, made by scripts/fixtures/make_fuzz_seeds.py) are valid
/// inputs, so the fuzzer starts deep inside each format rather than at its
/// first check; `seed-bad-*` ones start it on an error path on purpose.
#[test]
fn the_seeds_are_accepted() {
    for (target, run) in TARGETS {
        for file in inputs(target) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("seed-") {
                let data = std::fs::read(&file).unwrap();
                assert_eq!(
                    run(&data),
                    !name.starts_with("seed-bad-"),
                    "{target}/{name}"
                );
            }
        }
    }
}

/// The image seeds cover every accepted format, through the real pipeline.
#[test]
fn the_image_seeds_decode() {
    let spec = seresnext_serve::model::ModelId::SeResNeXt50_32x4d
        .pretrained_cfg()
        .transform_spec();
    let seeds: Vec<PathBuf> = inputs("preprocess")
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .collect();
    assert!(seeds.len() >= 10, "image seeds are missing");
    for seed in seeds {
        let data = std::fs::read(&seed).unwrap();
        let prepared = prepare(&data, &spec, &DecodeLimits::default());
        assert!(prepared.is_ok(), "{}: {prepared:?}", seed.display());
    }
}
