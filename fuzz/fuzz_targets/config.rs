//! config.json: decoding, then every check `hull create` makes before it
//! creates anything (the spec's own checks and the seccomp compiler).

#![no_main]

use libcontainer::oci_spec::runtime::Spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<Spec>(data) else {
        return;
    };
    if libcontainer::validate_spec(&spec).is_err() {
        return;
    }
    if let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        let _ = libcontainer::seccomp::prepare(profile, None);
    }
});
