//! hull's NBD client against `qemu-nbd` serving a qcow2 image on
//! 127.0.0.1: reads and writes, timeouts instead of hangs, EIO when the
//! server goes away, and reconnecting after it comes back.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use blockimg::nbd::{NbdClient, Target, Timeouts};
use blockimg::qcow2::{create, CreateOptions, Image};
use blockimg::{BlockDevice, Error};
use support::{free_port, pattern, qemu_check, qemu_raw, QemuNbd, Scratch};

const MIB: u64 = 1 << 20;

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(1),
        io: Duration::from_secs(5),
    }
}

fn connect(url: &str) -> blockimg::Result<NbdClient> {
    NbdClient::connect(Target::parse(url).unwrap(), quick(), false)
}

fn image(s: &Scratch, size: u64) -> std::path::PathBuf {
    let path = s.path("vol.qcow2");
    create(&path, size, &CreateOptions::default()).unwrap();
    path
}

#[test]
fn writes_through_nbd_reach_the_image() {
    let s = Scratch::new("nbd-rw");
    let size = 8 * MIB;
    let path = image(&s, size);
    let mut server = QemuNbd::start(&path, &[]);
    let mut model = vec![0u8; size as usize];
    {
        let mut client = connect(&server.url()).unwrap();
        assert_eq!(client.size(), size);
        assert!(!client.read_only());
        // Larger than one request, unaligned, and at the very end.
        for (i, (at, len)) in [
            (0u64, 3 * MIB as usize),
            (5 * MIB + 7, 100_000),
            (size - 10, 10),
        ]
        .into_iter()
        .enumerate()
        {
            let data = pattern(i as u64 + 40, len);
            client.write_at(&data, at).unwrap();
            model[at as usize..][..len].copy_from_slice(&data);
        }
        client.flush().unwrap();
        let mut back = vec![0u8; size as usize];
        client.read_at(&mut back, 0).unwrap();
        assert!(back == model, "reads back over NBD");
        assert!(matches!(
            client.write_at(b"xx", size - 1),
            Err(Error::OutOfRange { .. })
        ));
    }
    server.stop(libc::SIGTERM);
    qemu_check(&path);
    assert!(qemu_raw(&path, &s) == model, "qemu reads it");
    let mut back = vec![0u8; size as usize];
    Image::open(&path, true)
        .unwrap()
        .read_at(&mut back, 0)
        .unwrap();
    assert!(back == model, "hull reads it");
}

#[test]
fn an_unknown_export_and_a_read_only_one_are_refused() {
    let s = Scratch::new("nbd-export");
    let path = image(&s, MIB);
    let server = QemuNbd::start(&path, &["--read-only"]);
    let url = server.url().replace("/vol", "/nope");
    let err = connect(&url).err().unwrap();
    assert!(err.to_string().contains("\"nope\""), "{err}");
    let mut client = connect(&server.url()).unwrap();
    assert!(client.read_only());
    let err = client.write_at(b"x", 0).unwrap_err();
    assert!(matches!(err, Error::ReadOnly));
    assert_eq!(err.errno(), libc::EROFS);
    let mut buf = [1u8; 16];
    client.read_at(&mut buf, 0).unwrap();
    assert_eq!(buf, [0u8; 16]);
}

#[test]
fn a_silent_or_absent_server_times_out_instead_of_hanging() {
    // A listener nobody accepts from: the kernel completes the TCP
    // handshake, then nothing ever speaks. (A host that drops SYNs cannot
    // be had here: tests only reach 127.0.0.1, which always answers.)
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let start = Instant::now();
    let err = connect(&format!("nbd://127.0.0.1:{port}/vol"))
        .err()
        .unwrap();
    let took = start.elapsed();
    assert!(matches!(err, Error::Nbd(_)), "{err}");
    assert!(err.to_string().contains("negotiation"), "{err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // Nothing listening: refused at once.
    let closed = free_port();
    let start = Instant::now();
    let err = connect(&format!("nbd://127.0.0.1:{closed}/vol"))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{closed}")),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_server_gone_is_eio_and_a_restarted_one_is_reconnected() {
    let s = Scratch::new("nbd-restart");
    let size = 4 * MIB;
    let path = image(&s, size);
    let mut server = QemuNbd::start(&path, &[]);
    let mut client = connect(&server.url()).unwrap();
    let data = pattern(9, 200_000);
    client.write_at(&data, 12345).unwrap();
    client.flush().unwrap();

    server.stop(libc::SIGKILL);
    let start = Instant::now();
    let mut buf = vec![0u8; data.len()];
    let err = client.read_at(&mut buf, 12345).unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(client.write_at(b"lost", 0).is_err());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    // The same export back on the same port: the client connects again.
    server.restart();
    client.read_at(&mut buf, 12345).unwrap();
    assert!(buf == data, "flushed data survived the restart");
    client.write_at(b"after", 0).unwrap();
    client.flush().unwrap();
    drop(client);
    server.stop(libc::SIGTERM);
    qemu_check(&path);
    let raw = qemu_raw(&path, &s);
    assert_eq!(&raw[..5], b"after");
    assert!(raw[12345..12345 + data.len()] == data[..]);
}
