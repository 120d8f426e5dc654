#![no_main]
libfuzzer_sys::fuzz_target!(
    init: switchboard_fuzz_targets::fuzzing_init("policy"),
    |data: &[u8]| switchboard_fuzz_targets::fuzz("policy", data)
);
