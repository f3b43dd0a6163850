//! The image every engine runs, built locally from the fixture's busybox
//! rootfs (there is no registry to pull from): the rootfs as a plain
//! tarball (`docker import`, `podman import`) and as a one-layer OCI image
//! archive (`ctr image import`).

use std::path::{Path, PathBuf};

use hull_tests::fixture;
use serde_json::json;

use crate::harness::host;

/// The fixture's busybox rootfs as a tarball, written into `dir`.
pub fn rootfs_tar(dir: &Path) -> PathBuf {
    let tar = dir.join("rootfs.tar");
    let rootfs = fixture().join("rootfs");
    host(
        "tar",
        &[
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    )
    .ok();
    tar
}

/// An OCI image archive (oci-layout, index.json, blobs) of one layer, the
/// rootfs tarball, named `name` (its `org.opencontainers.image.ref.name`),
/// with `cmd` as its command, written into `dir`.
pub fn oci_archive(dir: &Path, name: &str, cmd: &[&str]) -> PathBuf {
    let layout = dir.join(format!("oci-{}", name.replace(['/', ':'], "-")));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let layer = std::fs::read(rootfs_tar(dir)).unwrap();
    let layer_digest = put_blob(&blobs, &layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": cmd,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let config_digest = put_blob(&blobs, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let manifest_digest = put_blob(&blobs, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = layout.with_extension("tar");
    host(
        "tar",
        &[
            "-C",
            layout.to_str().unwrap(),
            "-cf",
            archive.to_str().unwrap(),
            ".",
        ],
    )
    .ok();
    archive
}

/// Writes `data` as a blob named by its digest; returns `sha256:<hex>`.
fn put_blob(blobs: &Path, data: &[u8]) -> String {
    let tmp = blobs.join("incoming");
    std::fs::write(&tmp, data).unwrap();
    let out = host("sha256sum", &[tmp.to_str().unwrap()]);
    let hex = out.ok().split_whitespace().next().unwrap().to_owned();
    std::fs::rename(&tmp, blobs.join(&hex)).unwrap();
    format!("sha256:{hex}")
}
