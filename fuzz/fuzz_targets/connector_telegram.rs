#![no_main]
libfuzzer_sys::fuzz_target!(
    init: switchboard_fuzz_targets::fuzzing_init("connector_telegram"),
    |data: &[u8]| switchboard_fuzz_targets::fuzz("connector_telegram", data)
);
