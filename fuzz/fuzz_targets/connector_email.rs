#![no_main]
libfuzzer_sys::fuzz_target!(
    init: switchboard_fuzz_targets::fuzzing_init("connector_email"),
    |data: &[u8]| switchboard_fuzz_targets::fuzz("connector_email", data)
);
