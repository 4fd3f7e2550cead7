#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_chains::fuzzing::psbt(data));
