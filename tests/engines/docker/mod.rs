//! Docker Engine 20.10 (Debian's docker.io) driving hull: one private daemon
//! for the whole test, each check removing its own containers, then the
//! daemon stopped and the host checked for anything left behind.

mod containers;
mod daemon;
mod limits;
mod swarm;

use daemon::{Docker, IMAGE};

#[test]
fn docker() {
    let d = Docker::start();
    containers::one_shot(&d);
    containers::published_port_exec_top_stats_pause(&d);
    containers::stop_kill_restart(&d);
    containers::options(&d);
    containers::user_network(&d);
    limits::oom(&d);
    limits::pids(&d);
    limits::update(&d);
    swarm::service(&d);
    timing(&d);
    d.stop_and_check();
}

/// `docker run --rm IMAGE /bin/true` timed with hull and with runc in the
/// same daemon; reported, not asserted (the machine is shared).
fn timing(d: &Docker) {
    const RUNS: usize = 20;
    for runtime in ["hull", "runc"] {
        let (mean, min, max) = crate::harness::time_runs(RUNS, || {
            d.ok(&["run", "--rm", "--runtime", runtime, IMAGE, "/bin/true"]);
        });
        println!(
            "docker run --rm /bin/true with {runtime}: mean {mean:.0} ms, min {min:.0} ms, max {max:.0} ms over {RUNS} runs"
        );
    }
}
