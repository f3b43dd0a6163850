//! The soak: `scripts/soak.sh N WORKERS` runs N networked containers one
//! after the other and N more a few at a time, and fails if anything hull
//! keeps or makes grows (state files, leases, attachment records, nf_tables
//! elements, veths, cgroups, mounts, processes, open files). Here with
//! 100 + 100 containers; the documented run is 1000 + 1000.

use std::process::Command;

use hull_tests::*;

#[test]
fn two_hundred_networked_containers_leave_nothing_growing() {
    require("jq");
    let out = output_via_files(
        Command::new(workspace().join("scripts/soak.sh"))
            .args(["100", "4"])
            .env("HULL", hull_bin())
            .env("HULL_TEST_FIXTURE", fixture()),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "soak failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("nothing grew over 200 containers"),
        "{stdout}"
    );
    let zero =
        "state=0 leases=0 attachments=0 elements=0 veths=0 cgroups=0 mounts=0 processes=0 fds=0";
    assert_eq!(
        stdout.matches(zero).count(),
        3,
        "start, sequential, parallel:\n{stdout}"
    );
}
