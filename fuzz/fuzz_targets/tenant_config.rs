#![no_main]
libfuzzer_sys::fuzz_target!(
    init: switchboard_fuzz_targets::fuzzing_init("tenant_config"),
    |data: &[u8]| switchboard_fuzz_targets::fuzz("tenant_config", data)
);
