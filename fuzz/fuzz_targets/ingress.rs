#![no_main]
libfuzzer_sys::fuzz_target!(
    init: switchboard_fuzz_targets::warm_up("ingress"),
    |data: &[u8]| {
        switchboard_fuzz_targets::run("ingress", data);
    }
);
