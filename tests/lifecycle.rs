//! create / start / run / state / kill / delete / list with runc's semantics.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use hull_tests::*;
use serde_json::{json, Value};

/// `hull create --bundle <dir> [EXTRA...] <id>`; asserts success.
fn create(b: &TestBundle, extra: &[&str]) {
    let mut args = vec!["create", "--bundle", bundle_arg(b)];
    args.extend_from_slice(extra);
    args.push(&b.id);
    hull(b, &args).ok();
}

/// `hull run -d --bundle <dir> <id>`; asserts success.
fn run_detached(b: &TestBundle) {
    hull(b, &["run", "-d", "--bundle", bundle_arg(b), &b.id]).ok();
}

/// `hull state <id>`, parsed.
fn state(b: &TestBundle) -> Value {
    let out = hull(b, &["state", &b.id]);
    serde_json::from_str(out.ok()).unwrap()
}

/// Waits for a (possibly reparented) process to be gone or a zombie.
fn wait_process_gone(pid: i64) {
    wait_for(|| format!("pid {pid} to exit"), || !alive(pid as i32));
}

/// Waits for a child with a deadline, killing it if it does not exit.
fn wait_child(child: &mut std::process::Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Gives the bundle its own rootfs with a host directory bind-mounted at
/// `/shared`; returns the host directory.
fn share_dir(b: &mut TestBundle) -> PathBuf {
    let rootfs = b.own_rootfs();
    std::fs::create_dir(rootfs.join("shared")).unwrap();
    let host = b.dir.join("shared");
    std::fs::create_dir(&host).unwrap();
    let source = host.to_str().unwrap().to_owned();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/shared",
            "type": "bind",
            "source": source,
            "options": ["rbind", "rw"]
        }));
    });
    host
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
fn is_rfc3339_utc(s: &str) -> bool {
    let Some(body) = s.strip_suffix('Z') else {
        return false;
    };
    let (main, frac) = body.split_once('.').unwrap_or((body, "0"));
    let shape = "dddd-dd-ddTdd:dd:dd";
    main.len() == shape.len()
        && main.chars().zip(shape.chars()).all(|(c, p)| match p {
            'd' => c.is_ascii_digit(),
            _ => c == p,
        })
        && !frac.is_empty()
        && frac.len() <= 9
        && frac.chars().all(|c| c.is_ascii_digit())
}

#[test]
fn run_returns_the_exit_code_of_the_process() {
    let mut b = TestBundle::new("exit3");
    b.sh("exit 3");
    let (code, _, err) = b.run();
    assert_eq!(code, 3, "{err}");
    b.assert_no_state();
}

#[test]
fn create_start_exit_delete_walks_through_every_state() {
    let mut b = TestBundle::new("walk");
    let shared = share_dir(&mut b);
    b.sh("while [ ! -e /shared/go ]; do sleep 0.05; done");
    b.edit(|c| c["annotations"] = json!({ "org.example.b": "2", "a": "1" }));
    let pid_file = b.dir.join("init.pid");
    create(&b, &["--pid-file", pid_file.to_str().unwrap()]);

    let raw = hull(&b, &["state", &b.id]).ok().to_owned();
    let s: Value = serde_json::from_str(&raw).unwrap();
    assert!(s["ociVersion"].as_str().unwrap().starts_with("1."), "{raw}");
    assert_eq!(s["id"], b.id.as_str());
    let pid = s["pid"].as_i64().unwrap();
    assert!(pid > 0, "{raw}");
    assert_eq!(s["status"], "created");
    assert_eq!(s["bundle"], b.dir.to_str().unwrap());
    let rootfs = std::fs::canonicalize(b.rootfs()).unwrap();
    assert_eq!(s["rootfs"], rootfs.to_str().unwrap());
    let created = s["created"].as_str().unwrap();
    assert!(is_rfc3339_utc(created), "created {created:?}");
    assert_eq!(s["owner"], "");
    assert_eq!(s["annotations"], json!({ "a": "1", "org.example.b": "2" }));
    // runc's key order.
    let keys = [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "annotations",
        "owner",
    ];
    let at: Vec<usize> = keys
        .iter()
        .map(|k| raw.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "key order: {raw}");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());

    hull(&b, &["start", &b.id]).ok();
    let s = state(&b);
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"], pid);

    std::fs::write(shared.join("go"), "").unwrap();
    let s = wait_status(&b, "stopped");
    assert_eq!(s["pid"], 0);

    assert_eq!(hull(&b, &["delete", &b.id]).ok(), "");
    assert!(!b.root.join(&b.id).exists(), "state file kept");
    hull(&b, &["state", &b.id]).fails_with("container does not exist");
    b.assert_no_state();
    assert_no_process(&b.id);
}

#[test]
fn state_has_no_annotations_without_annotations_in_config() {
    let mut b = TestBundle::new("noannot");
    b.edit(|c| {
        c.as_object_mut().unwrap().remove("annotations");
    });
    b.args(&["sleep", "1000"]);
    create(&b, &[]);
    let s = state(&b);
    assert_eq!(s["status"], "created");
    assert!(s.get("annotations").is_none(), "{s}");
}

#[test]
fn run_exits_137_when_the_container_is_killed_from_outside() {
    let mut b = TestBundle::new("run137");
    b.args(&["sleep", "1000"]);
    let mut child = b.start_quiet(&["run"]);
    wait_status(&b, "running");
    assert_eq!(hull(&b, &["kill", &b.id, "KILL"]).ok(), "");
    let status = wait_child(&mut child);
    assert_eq!(status.code(), Some(137), "{status:?}");
    b.assert_no_state();
    assert_no_process(&b.id);
}

#[test]
fn run_detached_returns_at_once_and_delete_force_removes_it() {
    let mut b = TestBundle::new("detach");
    b.args(&["sleep", "1000"]);
    let pid_file = b.dir.join("detach.pid");
    let t0 = Instant::now();
    let out = hull(
        &b,
        &[
            "run",
            "-d",
            "--bundle",
            bundle_arg(&b),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &b.id,
        ],
    );
    assert_eq!(out.ok(), "");
    assert!(t0.elapsed() < Duration::from_secs(10), "run -d waited");
    let pid_text = std::fs::read_to_string(&pid_file).unwrap();
    let pid: i64 = pid_text.parse().expect("pid file holds only the pid");
    let s = state(&b);
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"], pid);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"sleep\0"), "{}", text(&cmdline));

    assert_eq!(hull(&b, &["delete", "--force", &b.id]).ok(), "");
    b.assert_no_state();
    wait_process_gone(pid);
    assert_no_process(&b.id);
}

#[test]
fn kill_accepts_sigkill_in_every_spelling() {
    for (i, sig) in ["KILL", "SIGKILL", "kill", "9"].into_iter().enumerate() {
        let mut b = TestBundle::new(&format!("killspell{i}"));
        b.args(&["sleep", "1000"]);
        run_detached(&b);
        let out = hull(&b, &["kill", &b.id, sig]);
        assert_eq!(out.code, 0, "kill {sig}: {}", out.stderr);
        assert_eq!(out.stdout, "");
        wait_status(&b, "stopped");
        hull(&b, &["delete", &b.id]).ok();
        b.assert_no_state();
    }
}

/// A running container whose pid 1 writes /shared/usr1 on SIGUSR1 and
/// ignores every other signal but SIGKILL (pid 1 without handlers).
fn usr1_container(name: &str) -> (TestBundle, PathBuf) {
    let mut b = TestBundle::new(name);
    let shared = share_dir(&mut b);
    b.sh(
        "trap \"echo got > /shared/usr1\" USR1; touch /shared/ready; \
         while :; do sleep 0.05; done",
    );
    run_detached(&b);
    wait_for(
        || "the trap to be set".into(),
        || shared.join("ready").exists(),
    );
    (b, shared)
}

#[test]
fn kill_delivers_usr1_in_every_spelling() {
    let (b, shared) = usr1_container("usr1");
    let flag = shared.join("usr1");
    for sig in ["USR1", "SIGUSR1", "10", "usr1"] {
        let _ = std::fs::remove_file(&flag);
        let out = hull(&b, &["kill", &b.id, sig]);
        assert_eq!(out.code, 0, "kill {sig}: {}", out.stderr);
        assert_eq!(out.stdout, "");
        wait_for(|| format!("{sig} to reach the trap"), || flag.exists());
    }
    assert_eq!(state(&b)["status"], "running");
}

#[test]
fn kill_accepts_term_and_hup_spellings() {
    // pid 1 has no handler for these, so the kernel drops them: it keeps running.
    let (b, shared) = usr1_container("termspell");
    for sig in ["TERM", "SIGTERM", "term", "sigterm", "15", "HUP", ""] {
        let out = hull(&b, &["kill", &b.id, sig]);
        assert_eq!(out.code, 0, "kill {sig:?}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    let out = hull(&b, &["kill", &b.id]);
    assert_eq!(out.code, 0, "kill without signal: {}", out.stderr);
    assert_eq!(state(&b)["status"], "running");
    assert!(!shared.join("usr1").exists());
}

#[test]
fn kill_accepts_signal_zero_and_realtime_numbers() {
    let (b, _shared) = usr1_container("sigrt");
    let failed: Vec<String> = ["0", "34", "64"]
        .into_iter()
        .filter_map(|sig| {
            let out = hull(&b, &["kill", &b.id, sig]);
            (out.code != 0).then(|| format!("{sig}: rc={} {}", out.code, out.stderr.trim()))
        })
        .collect();
    assert!(failed.is_empty(), "rejected: {failed:?}");
    assert_eq!(state(&b)["status"], "running");
}

#[test]
fn kill_with_unknown_signal_name_fails() {
    let mut b = TestBundle::new("killfoo");
    b.args(&["sleep", "1000"]);
    run_detached(&b);
    let out = hull(&b, &["kill", &b.id, "FOO"]);
    out.fails_with("unknown signal");
    assert!(out.stderr.contains("FOO"), "{}", out.stderr);
    assert_eq!(state(&b)["status"], "running");
}

#[test]
fn kill_of_a_stopped_container_fails() {
    let mut b = TestBundle::new("killstopped");
    b.args(&["true"]);
    run_detached(&b);
    wait_status(&b, "stopped");
    hull(&b, &["kill", &b.id, "KILL"]).fails_with("container not running");
    hull(&b, &["kill", &b.id]).fails_with("container not running");
    assert_eq!(state(&b)["status"], "stopped");
}

#[test]
fn start_of_a_running_container_fails() {
    let mut b = TestBundle::new("startrunning");
    b.args(&["sleep", "1000"]);
    run_detached(&b);
    hull(&b, &["start", &b.id]).fails_with("cannot start an already running container");
    assert_eq!(state(&b)["status"], "running");
}

#[test]
fn start_of_a_stopped_container_fails() {
    let mut b = TestBundle::new("startstopped");
    b.args(&["true"]);
    run_detached(&b);
    wait_status(&b, "stopped");
    hull(&b, &["start", &b.id]).fails_with("cannot start a container that has stopped");
    assert_eq!(state(&b)["status"], "stopped");
}

#[test]
fn delete_refuses_a_running_container_without_force() {
    let mut b = TestBundle::new("delrunning");
    b.args(&["sleep", "1000"]);
    run_detached(&b);
    let pid = state(&b)["pid"].as_i64().unwrap();
    let out = hull(&b, &["delete", &b.id]);
    out.fails_with("cannot delete container");
    assert!(
        out.stderr.contains("not stopped: running"),
        "{}",
        out.stderr
    );
    let s = state(&b);
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"], pid);

    assert_eq!(hull(&b, &["delete", "--force", &b.id]).ok(), "");
    b.assert_no_state();
    wait_process_gone(pid);
}

#[test]
fn delete_of_a_created_container_kills_its_init() {
    let mut b = TestBundle::new("delcreated");
    b.args(&["sleep", "1000"]);
    create(&b, &[]);
    let pid = state(&b)["pid"].as_i64().unwrap();
    assert_eq!(hull(&b, &["delete", &b.id]).ok(), "");
    b.assert_no_state();
    wait_process_gone(pid);
    assert_no_process(&b.id);
}

#[test]
fn delete_force_of_an_unknown_id_succeeds_silently() {
    let b = TestBundle::new("delunknown");
    for _ in 0..2 {
        let out = hull(&b, &["delete", "--force", &b.id]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr, "");
    }
    b.assert_no_state();
}

#[test]
fn list_shows_the_container_as_table_ids_and_json() {
    let mut b = TestBundle::new("list");
    b.args(&["sleep", "1000"]);
    create(&b, &[]);

    // Columns as Go's tabwriter aligns them: every cell starts under its header.
    let table = hull(&b, &["list"]).ok().to_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let starts = |line: &str| -> Vec<usize> {
        let b = line.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] != b' ' && (i == 0 || b[i - 1] == b' '))
            .collect()
    };
    assert_eq!(starts(lines[0]), starts(lines[1]), "{table}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], b.id, "{table}");
    assert_eq!(row[2], "created", "{table}");
    assert_eq!(row[3], bundle_arg(&b), "{table}");

    assert_eq!(hull(&b, &["list", "-q"]).ok(), format!("{}\n", b.id));

    let json: Value = serde_json::from_str(hull(&b, &["list", "--format", "json"]).ok()).unwrap();
    let all = json.as_array().expect("a JSON array");
    assert_eq!(all.len(), 1, "{json}");
    assert_eq!(all[0]["id"], b.id.as_str());
    assert_eq!(all[0]["status"], "created");
}

#[test]
fn list_of_an_empty_root() {
    let b = TestBundle::new("listempty");
    assert_eq!(hull(&b, &["list", "--format", "json"]).ok(), "null\n");
    assert_eq!(hull(&b, &["list", "-q"]).ok(), "");
    let table = hull(&b, &["list"]).ok().to_owned();
    assert_eq!(table.lines().count(), 1, "{table}");
    assert!(table.starts_with("ID          PID         STATUS      BUNDLE"));
}

#[test]
fn a_recycled_pid_does_not_revive_a_stopped_container() {
    let mut b = TestBundle::new("recycled");
    b.args(&["true"]);
    run_detached(&b);
    wait_status(&b, "stopped");

    // Point the state at a live process (this test) that is not the init.
    let path = b.root.join(&b.id);
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(saved.get("init_start_time").is_some(), "{saved}");
    saved["pid"] = Value::from(std::process::id());
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();

    let s = state(&b);
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["pid"], 0);
    // WINCH is harmless should hull signal this test process.
    hull(&b, &["kill", &b.id, "WINCH"]).fails_with("container not running");
    // Deleting a stopped container must not touch the process now owning the pid.
    hull(&b, &["delete", &b.id]).ok();
    b.assert_no_state();
}

/// `hull --log FILE --log-format FORMAT state` of an unknown id: checks that
/// stderr has the bare message, returns the log file's last line.
fn failed_state_logged_as(format: &str) -> String {
    let b = TestBundle::new(&format!("log{format}"));
    let log = b.dir.join("hull.log");
    let log_arg = log.to_str().unwrap();
    let out = hull(
        &b,
        &["--log", log_arg, "--log-format", format, "state", &b.id],
    );
    out.fails_with("container does not exist");
    assert_eq!(out.stderr, "container does not exist\n");
    let logged = std::fs::read_to_string(&log).unwrap();
    logged.lines().last().unwrap().to_owned()
}

#[test]
fn log_file_in_json_gets_the_error_and_stderr_the_bare_message() {
    let logged = failed_state_logged_as("json");
    let line: Value = serde_json::from_str(&logged).unwrap();
    assert_eq!(line["level"], "error", "{logged}");
    assert!(
        line["msg"]
            .as_str()
            .unwrap()
            .contains("container does not exist"),
        "{logged}"
    );
    assert!(is_rfc3339_utc(line["time"].as_str().unwrap()), "{logged}");
}

#[test]
fn log_file_in_text_gets_a_logrus_line() {
    let line = failed_state_logged_as("text");
    assert!(line.starts_with("time=\""), "{line}");
    assert!(line.contains("level=error msg="), "{line}");
    assert!(line.contains("container does not exist"), "{line}");
}

#[test]
fn spec_writes_a_config_once() {
    let b = TestBundle::new("spec");
    let dir = b.dir.join("spec");
    std::fs::create_dir(&dir).unwrap();
    let args = ["spec", "--bundle", dir.to_str().unwrap()];
    assert_eq!(hull(&b, &args).ok(), "");
    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(
        config["ociVersion"].as_str().unwrap().starts_with("1."),
        "{config}"
    );
    hull(&b, &args).fails_with("File config.json exists");
}

#[test]
fn spec_rootless_maps_the_user_and_drops_the_network_namespace() {
    let b = TestBundle::new("specrootless");
    let dir = b.dir.join("spec");
    std::fs::create_dir(&dir).unwrap();
    hull(
        &b,
        &["spec", "--rootless", "--bundle", dir.to_str().unwrap()],
    )
    .ok();
    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let types: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"user"), "{types:?}");
    assert!(!types.contains(&"network"), "{types:?}");
    let uid_map = &config["linux"]["uidMappings"][0];
    assert_eq!(uid_map["containerID"], 0, "{config}");
    assert_eq!(uid_map["size"], 1, "{config}");
    assert!(config["linux"]["gidMappings"].is_array(), "{config}");
}

/// `benches/lifecycle.sh`, which `benches/startup.sh` runs for every runtime,
/// measures hull: every figure, no failure (so the benchmark cannot rot).
#[test]
fn lifecycle_benchmark_runs_against_hull() {
    for program in ["hyperfine", "jq", "time"] {
        require(program);
    }
    let b = TestBundle::new("bench");
    let results = b.dir.join("bench-results");
    let out = Out::from(output_via_files(
        Command::new(workspace().join("benches/lifecycle.sh"))
            .arg(hull_bin())
            .arg("3")
            .env("PAR", "3")
            .env("RSS_N", "2")
            .env("IDLE_N", "2")
            .env("OUT", &results),
    ));
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{all}");
    assert!(!all.contains("FAIL"), "{all}");
    for figure in [
        "a.run",
        "a.run.hf",
        "b.create",
        "b.total",
        "c.total",
        "c.fg.total",
        "d.rss.run",
        "e.run.idle",
    ] {
        assert!(
            out.stdout.contains(&format!("\n{figure} ")),
            "no {figure}: {all}"
        );
    }
    let samples = std::fs::read_to_string(results.join("samples.tsv")).unwrap();
    let runs = samples.lines().filter(|l| l.starts_with("a.run\t")).count();
    assert_eq!(runs, 3, "{samples}");
}

/// Whether `v` holds a `null` anywhere.
fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(map) => map.values().any(has_null),
        _ => false,
    }
}

#[test]
fn features_describe_what_hull_supports() {
    let b = TestBundle::new("features");
    let out = hull(&b, &["features"]);
    let doc: Value = serde_json::from_str(out.ok()).unwrap();
    assert!(!has_null(&doc), "{doc}");
    // The OCI features document's shape.
    let _: libcontainer::oci_spec::runtime::Features = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    assert_eq!(doc["hooks"].as_array().unwrap().len(), 6, "{doc}");
    let listed = |v: &Value, item: &str| v.as_array().unwrap().iter().any(|i| i == item);
    for option in ["rbind", "ro", "rslave", "idmap", "ridmap"] {
        assert!(listed(&doc["mountOptions"], option), "{option}");
    }
    let linux = &doc["linux"];
    assert!(listed(&linux["namespaces"], "user") && listed(&linux["namespaces"], "time"));
    assert!(listed(&linux["capabilities"], "CAP_SYS_ADMIN"));
    assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], true);
    let seccomp = &linux["seccomp"];
    assert!(listed(&seccomp["actions"], "SCMP_ACT_NOTIFY"));
    assert!(listed(&seccomp["archs"], "SCMP_ARCH_X86_64"));
    // This kernel (6.x) takes every flag hull knows.
    assert_eq!(
        seccomp["supportedFlags"], seccomp["knownFlags"],
        "{seccomp}"
    );
    assert_eq!(linux["cgroup"]["v1"], true);
}
