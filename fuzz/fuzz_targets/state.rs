//! A container's state file: decoding, and a decoded state must survive
//! being written out and read back.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = libcontainer::decode_state(data) else {
        return;
    };
    let json = serde_json::to_vec(&state).expect("a decoded state serializes");
    let again: libcontainer::State = serde_json::from_slice(&json).expect("and decodes again");
    assert_eq!(state, again);
});
