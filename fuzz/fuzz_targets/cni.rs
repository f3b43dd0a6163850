//! hull-cni: the environment and the config on stdin, parsed and validated
//! into what the plugin would do, without doing it. The first byte picks
//! the command and the program name, the rest is stdin.

#![no_main]

use libfuzzer_sys::fuzz_target;

use hull_cni as cni;

const COMMANDS: [&str; 5] = ["ADD", "DEL", "CHECK", "VERSION", "BOGUS"];
const PROGRAMS: [&str; 2] = ["/opt/cni/bin/hull-cni", "/opt/cni/bin/host-local"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, stdin)) = data.split_first() else {
        return;
    };
    let command = COMMANDS[usize::from(pick & 7) % COMMANDS.len()];
    let program = PROGRAMS[usize::from(pick >> 7)];
    // The netns must exist for ADD and CHECK; nothing is done in it.
    let var = |k: &str| {
        match k {
            "CNI_COMMAND" => Some(command),
            "CNI_CONTAINERID" => Some("hull-fuzz"),
            "CNI_IFNAME" => Some("eth0"),
            "CNI_NETNS" => Some("/proc/self/ns/net"),
            _ => None,
        }
        .map(String::from)
    };
    let _ = cni::plan(program, var, stdin);
});
