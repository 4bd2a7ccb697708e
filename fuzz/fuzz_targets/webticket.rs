#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocs_fuzz::check_webticket(data));
