//! Micro-benchmarks of hull's library on its start-up path:
//!
//! - `config/*`: `config.json` parsing, and `Bundle::load` (read, parse, validate,
//!   resolve the rootfs) of the fixture bundle built by `fixtures/make-bundle.sh`;
//! - `seccomp/*`: podman's default profile converted to OCI by `seccomp_to_oci.py`,
//!   compiled to BPF without a cache, and `prepare`d with and without a warm cache;
//! - `state/*`: `Container::load` + `state()` and `Container::list` on a state root
//!   holding one created container (made with `hull create`; needs root).
//!
//! A part whose prerequisite is missing (hull binary, podman's profile, root) is
//! skipped with a message. Run: `cargo bench -p hull-benches -- --quick`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::Criterion;
use libcontainer::oci_spec::runtime::{LinuxSeccomp, Spec};
use libcontainer::{seccomp, Bundle, Container, Status};

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ is inside the workspace")
        .to_owned()
}

/// `$HULL`, else the release build, else the debug build.
fn hull_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HULL") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("hull"))
        .find(|p| p.is_file())
}

fn skip(what: &str, why: &str) {
    eprintln!("hull-benches: skipping {what}: {why}");
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixture bundle (busybox rootfs + `hull spec` config) in a temp dir.
fn fixture(hull: &Path) -> Option<TempDir> {
    let dir = TempDir::new("bench-hull-benches-bundle");
    let status = Command::new(workspace().join("fixtures/make-bundle.sh"))
        .arg(&dir.0)
        .arg(hull)
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Some(dir),
        other => {
            skip(
                "every bench",
                &format!("fixtures/make-bundle.sh: {other:?}"),
            );
            None
        }
    }
}

fn bench_config(c: &mut Criterion, bundle: &Path) {
    let bytes = std::fs::read(bundle.join("config.json")).expect("read config.json");
    let mut g = c.benchmark_group("config");
    g.bench_function("parse_spec", |b| {
        b.iter(|| serde_json::from_slice::<Spec>(black_box(&bytes)).unwrap())
    });
    g.bench_function("bundle_load", |b| {
        b.iter(|| Bundle::load(black_box(bundle)).unwrap())
    });
    g.finish();
}

/// podman's default profile as OCI `linux.seccomp`, for the fixture's capabilities.
fn podman_profile(bundle: &Path) -> Option<LinuxSeccomp> {
    if !Path::new(PODMAN_PROFILE).is_file() {
        skip(
            "seccomp",
            &format!("{PODMAN_PROFILE} missing (apt-get install golang-github-containers-common)"),
        );
        return None;
    }
    let out = Command::new("python3")
        .arg(workspace().join("benches/seccomp_to_oci.py"))
        .args(["--seccomp-only", PODMAN_PROFILE])
        .arg(bundle.join("config.json"))
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            Some(serde_json::from_slice(&o.stdout).expect("OCI profile"))
        }
        other => {
            skip("seccomp", &format!("seccomp_to_oci.py: {other:?}"));
            None
        }
    }
}

fn bench_seccomp(c: &mut Criterion, bundle: &Path) {
    let Some(profile) = podman_profile(bundle) else {
        return;
    };
    let cache = TempDir::new("bench-hull-benches-seccomp-cache");
    let warm = seccomp::prepare(&profile, Some(&cache.0)).expect("compile podman's profile");
    assert!(
        std::fs::read_dir(&cache.0).unwrap().next().is_some(),
        "prepare wrote no cache entry"
    );
    eprintln!(
        "hull-benches: podman's default profile: {} syscall rules -> {} BPF instructions",
        profile.syscalls().as_ref().map_or(0, Vec::len),
        warm.program.len()
    );
    let mut g = c.benchmark_group("seccomp");
    g.bench_function("compile_podman_default", |b| {
        b.iter(|| seccomp::compile(black_box(&profile)).unwrap())
    });
    g.bench_function("prepare_no_cache", |b| {
        b.iter(|| seccomp::prepare(black_box(&profile), None).unwrap())
    });
    g.bench_function("prepare_warm_cache", |b| {
        b.iter(|| seccomp::prepare(black_box(&profile), Some(&cache.0)).unwrap())
    });
    g.finish();
}

/// One container in the `created` state, force-deleted on drop.
struct Created {
    hull: PathBuf,
    root: TempDir,
    id: String,
}

impl Created {
    fn new(hull: &Path, bundle: &Path) -> Result<Self, String> {
        let pid = std::process::id();
        let root = TempDir(PathBuf::from(format!("/tmp/bench-state-criterion-{pid}")));
        let id = format!("bench-criterion-{pid}-state");
        // Null stdio: the init inherits it and outlives `create`.
        let status = Command::new(hull)
            .arg("--root")
            .arg(&root.0)
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        let created = Self {
            hull: hull.to_owned(),
            root,
            id,
        };
        if status.success() {
            Ok(created)
        } else {
            Err(format!("hull create exited with {status}"))
        }
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        let _ = Command::new(&self.hull)
            .arg("--root")
            .arg(&self.root.0)
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn bench_state(c: &mut Criterion, hull: &Path, bundle: &Path) {
    if !libcontainer::nix::unistd::geteuid().is_root() {
        skip("state", "hull create needs root");
        return;
    }
    let created = match Created::new(hull, bundle) {
        Ok(c) => c,
        Err(e) => {
            skip("state", &e);
            return;
        }
    };
    let root = created.root.0.as_path();
    let status = Container::load(root, &created.id).unwrap().state().status;
    assert_eq!(status, Status::Created);
    let mut g = c.benchmark_group("state");
    g.bench_function("load_and_state", |b| {
        b.iter(|| {
            Container::load(root, black_box(&created.id))
                .unwrap()
                .state()
        })
    });
    g.bench_function("list_one", |b| {
        b.iter(|| Container::list(black_box(root)).unwrap())
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let Some(hull) = hull_binary() else {
        skip(
            "every bench",
            "no hull binary (cargo build --release -p runtime-cli, or set HULL)",
        );
        return;
    };
    let Some(bundle) = fixture(&hull) else {
        return;
    };
    bench_config(&mut c, &bundle.0);
    bench_seccomp(&mut c, &bundle.0);
    bench_state(&mut c, &hull, &bundle.0);
    c.final_summary();
}
