#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_policy::fuzzing::policy(data));
