//! `hull exec --process FILE`: decoding and checking the process.

#![no_main]

use libcontainer::oci_spec::runtime::Process;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(process) = serde_json::from_slice::<Process>(data) {
        let _ = libcontainer::validate_process(&process);
    }
});
