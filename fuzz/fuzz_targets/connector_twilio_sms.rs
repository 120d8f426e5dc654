#![no_main]
libfuzzer_sys::fuzz_target!(
    init: switchboard_fuzz_targets::fuzzing_init("connector_twilio_sms"),
    |data: &[u8]| switchboard_fuzz_targets::fuzz("connector_twilio_sms", data)
);
