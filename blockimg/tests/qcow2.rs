//! qcow2 images written by hull, judged by qemu: `qemu-img check` finds no
//! error or leak, `qemu-img info` reads them, and `qemu-img convert -O raw`
//! gives back exactly the bytes written through hull.

mod support;

use std::process::Command;

use blockimg::qcow2::{create, create_overlay, snapshot, CreateOptions, Image};
use blockimg::{BlockDevice, Error};
use support::{need, pattern, qemu_check, qemu_info, qemu_raw, run, Scratch};

const MIB: u64 = 1 << 20;

/// Writes `count` pieces of deterministic data at scattered, unaligned
/// offsets through `dev`, and into `model` likewise.
fn scatter(dev: &mut dyn BlockDevice, model: &mut [u8], seed: u64, count: usize) {
    let size = model.len() as u64;
    let offsets = pattern(seed, count * 8);
    for (i, o) in offsets.chunks_exact(8).enumerate() {
        let len = 1 + (u64::from_le_bytes(o.try_into().unwrap()) >> 40) as usize % 70_000;
        let at = u64::from_le_bytes(o.try_into().unwrap()) % (size - len as u64);
        let data = pattern(seed + i as u64, len);
        dev.write_at(&data, at).unwrap();
        model[at as usize..at as usize + len].copy_from_slice(&data);
    }
}

fn read_all(dev: &mut dyn BlockDevice) -> Vec<u8> {
    let mut buf = vec![0u8; dev.size() as usize];
    dev.read_at(&mut buf, 0).unwrap();
    buf
}

#[test]
fn a_new_image_passes_qemu_img_check_and_info() {
    need("qemu-img");
    let s = Scratch::new("new");
    let path = s.path("a.qcow2");
    create(&path, 5 << 30, &CreateOptions::default()).unwrap();
    qemu_check(&path);
    qemu_info(&path, 5 << 30);
    // Sparse: a 5 GiB image starts at a few clusters.
    assert!(std::fs::metadata(&path).unwrap().len() < MIB);
}

#[test]
fn data_written_reads_back_through_qemu_img_convert() {
    need("qemu-img");
    let s = Scratch::new("rw");
    // Both qemu's default clusters and 512-byte ones, which make writes
    // cross many L2 tables and refcount blocks.
    for bits in [16, 9] {
        let path = s.path(&format!("rw-{bits}.qcow2"));
        let size = 8 * MIB;
        let options = CreateOptions {
            cluster_bits: bits,
            ..CreateOptions::default()
        };
        create(&path, size, &options).unwrap();
        let mut model = vec![0u8; size as usize];
        {
            let mut image = Image::open(&path, false).unwrap();
            scatter(&mut image, &mut model, 7 + bits as u64, 60);
            // The last byte and a write over what is already allocated.
            image.write_at(b"Z", size - 1).unwrap();
            model[size as usize - 1] = b'Z';
            scatter(&mut image, &mut model, 99, 20);
            image.flush().unwrap();
            assert!(read_all(&mut image) == model, "hull reads back");
        }
        qemu_check(&path);
        qemu_info(&path, size);
        assert!(qemu_raw(&path, &s) == model, "qemu reads what hull wrote");
        let mut image = Image::open(&path, true).unwrap();
        assert!(
            read_all(&mut image) == model,
            "hull reads back after reopening"
        );
    }
}

#[test]
fn hull_reads_and_extends_images_qemu_wrote() {
    need("qemu-img");
    need("qemu-io");
    let s = Scratch::new("qemu");
    let path = s.path("q.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("16M"));
    // A persistent dirty bitmap would go stale: hull reads such an image
    // but refuses to write to it until the bitmap is removed.
    run(Command::new("qemu-img")
        .args(["bitmap", "--add", "-f", "qcow2"])
        .arg(&path)
        .arg("b0"));
    run(Command::new("qemu-io")
        .args([
            "-f",
            "qcow2",
            "-c",
            "write -P 0xab 65000 200000",
            "-c",
            "write -z 131072 65536",
        ])
        .arg(&path));
    let mut model = vec![0u8; 16 << 20];
    model[65000..265000].fill(0xab);
    model[131072..196608].fill(0);
    assert!(read_all(&mut Image::open(&path, true).unwrap()) == model);
    let err = Image::open(&path, false).err().unwrap();
    assert!(err.to_string().contains("bitmap"), "{err}");
    run(Command::new("qemu-img")
        .args(["bitmap", "--remove", "-f", "qcow2"])
        .arg(&path)
        .arg("b0"));
    let mut image = Image::open(&path, false).unwrap();
    // Writing into the cluster qemu zeroed, and elsewhere.
    image.write_at(b"hull", 131072 + 10).unwrap();
    model[131082..131086].copy_from_slice(b"hull");
    scatter(&mut image, &mut model, 3, 30);
    image.flush().unwrap();
    drop(image);
    qemu_check(&path);
    assert!(qemu_raw(&path, &s) == model);
}

#[test]
fn snapshots_and_linked_clones_diverge() {
    need("qemu-img");
    let s = Scratch::new("snap");
    let vol = s.path("vol.qcow2");
    let size = 4 * MIB;
    create(&vol, size, &CreateOptions::default()).unwrap();
    let mut base = vec![0u8; size as usize];
    {
        let mut image = Image::open(&vol, false).unwrap();
        scatter(&mut image, &mut base, 11, 20);
        image.flush().unwrap();
    }
    // The snapshot freezes the volume's content; the volume goes on.
    snapshot(&vol, &s.path("snap1.qcow2")).unwrap();
    let clone = s.path("clone.qcow2");
    create_overlay(&clone, &s.path("snap1.qcow2")).unwrap();
    let info = qemu_info(&vol, size);
    assert!(
        info.contains("\"backing-filename\": \"snap1.qcow2\""),
        "{info}"
    );

    let mut in_vol = base.clone();
    let mut in_clone = base.clone();
    {
        let mut v = Image::open(&vol, false).unwrap();
        let mut c = Image::open(&clone, false).unwrap();
        assert!(read_all(&mut v) == base && read_all(&mut c) == base);
        scatter(&mut v, &mut in_vol, 21, 15);
        scatter(&mut c, &mut in_clone, 31, 15);
        v.flush().unwrap();
        c.flush().unwrap();
        assert!(read_all(&mut v) == in_vol);
        assert!(read_all(&mut c) == in_clone);
    }
    assert!(in_vol != in_clone);
    for (path, want) in [(&vol, &in_vol), (&clone, &in_clone)] {
        qemu_check(path);
        assert!(&qemu_raw(path, &s) == want);
    }
    let snap = s.path("snap1.qcow2");
    qemu_check(&snap);
    assert!(qemu_raw(&snap, &s) == base, "the snapshot did not change");
    // A snapshot name that exists is refused, and the volume is untouched.
    assert!(matches!(snapshot(&vol, &snap), Err(Error::Invalid(_))));
    assert!(qemu_raw(&vol, &s) == in_vol);
}

#[test]
fn an_overlay_over_a_raw_file_reads_it() {
    need("qemu-img");
    let s = Scratch::new("raw");
    let raw = s.path("base.raw");
    let data = pattern(5, MIB as usize);
    std::fs::write(&raw, &data).unwrap();
    let top = s.path("top.qcow2");
    create_overlay(&top, &raw).unwrap();
    let mut image = Image::open(&top, false).unwrap();
    let mut model = data.clone();
    assert!(read_all(&mut image) == model);
    scatter(&mut image, &mut model, 8, 10);
    image.flush().unwrap();
    drop(image);
    qemu_check(&top);
    assert!(qemu_raw(&top, &s) == model);
    assert!(
        std::fs::read(&raw).unwrap() == data,
        "the backing file is untouched"
    );
}

#[test]
fn bad_access_and_bad_files_are_errors() {
    let s = Scratch::new("bad");
    let path = s.path("b.qcow2");
    create(&path, MIB, &CreateOptions::default()).unwrap();
    assert!(matches!(
        create(&path, MIB, &CreateOptions::default()),
        Err(Error::File { .. })
    ));
    let mut image = Image::open(&path, false).unwrap();
    let err = image.write_at(b"xy", MIB - 1).unwrap_err();
    assert!(matches!(err, Error::OutOfRange { .. }));
    assert_eq!(err.errno(), libc::ENOSPC);
    assert!(image.read_at(&mut [0u8; 1], u64::MAX).is_err());
    // One writer at a time, and no reader beside it.
    assert!(matches!(Image::open(&path, false), Err(Error::InUse(_))));
    assert!(matches!(Image::open(&path, true), Err(Error::InUse(_))));
    assert!(matches!(
        snapshot(&path, &s.path("snap.qcow2")),
        Err(Error::InUse(_))
    ));
    assert!(!s.path("snap.qcow2").exists());
    drop(image);
    let mut ro = Image::open(&path, true).unwrap();
    assert!(matches!(ro.write_at(b"x", 0), Err(Error::ReadOnly)));
    let _second_reader = Image::open(&path, true).unwrap();

    let junk = s.path("junk");
    std::fs::write(&junk, b"not an image at all").unwrap();
    assert!(matches!(Image::open(&junk, true), Err(Error::NotQcow2(_))));
    // A header whose L1 table lies past the end of the file.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40..48].copy_from_slice(&(1u64 << 40).to_be_bytes());
    let broken = s.path("broken.qcow2");
    std::fs::write(&broken, &bytes).unwrap();
    assert!(matches!(Image::open(&broken, true), Err(Error::Corrupt(_))));
    // A missing backing file names itself.
    let orphan = s.path("orphan.qcow2");
    let base = s.path("gone.qcow2");
    create(&base, MIB, &CreateOptions::default()).unwrap();
    create_overlay(&orphan, &base).unwrap();
    std::fs::remove_file(&base).unwrap();
    let err = Image::open(&orphan, true).err().unwrap();
    assert!(err.to_string().contains("gone.qcow2"), "{err}");
}
