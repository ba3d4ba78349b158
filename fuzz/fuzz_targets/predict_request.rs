#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Accepted or refused, both are fine; only a panic, hang or OOM is a finding.
    let _accepted = seresnext_serve::fuzzing::predict_request(data);
});
