//! `linux.seccomp`: validating and compiling an arbitrary profile.

#![no_main]

use libcontainer::oci_spec::runtime::LinuxSeccomp;
use libcontainer::seccomp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    let valid = seccomp::validate(&profile).is_ok();
    let _ = seccomp::compile(&profile);
    let prepared = seccomp::prepare(&profile, None);
    if !valid {
        assert!(prepared.is_err(), "prepare accepted an invalid profile");
    }
});
