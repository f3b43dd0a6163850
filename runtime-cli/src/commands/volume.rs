//! `hull volume create|ls|inspect|rm|snapshot|clone`, and the volumes
//! `create`/`run` ask for (`-v NAME:/PATH[:ro]` or the `org.hull.volumes`
//! annotation), which `volume::ContainerVolumes` attaches.

use std::collections::BTreeMap;
use std::path::Path;

use volume::{ContainerVolumes, CreateOptions, Format, Fs, Store, VolumeError};

use crate::cli::{Cli, CreateArgs, VolumeCommand, VolumeFormat, VolumeFs};
use crate::{Failure, Outcome};

fn vol_err(e: VolumeError) -> Failure {
    Failure::new(e.to_string())
}

fn store(cli: &Cli) -> Store {
    Store::new(&cli.volume_root)
}

#[inline(never)]
pub fn command(cli: &Cli, cmd: &VolumeCommand) -> Outcome {
    let store = store(cli);
    match cmd {
        VolumeCommand::Create {
            size,
            fs,
            format,
            from,
            remote,
            name,
        } => {
            let made = match (from, size) {
                (Some(snap), _) => store.clone_snapshot(snap, name),
                (None, size) if size.is_some() || remote.is_some() => {
                    let size = size.as_deref().map(volume::parse_size).transpose();
                    let options = CreateOptions {
                        // A remote volume without --size takes its export's.
                        size: size.map_err(vol_err)?.unwrap_or(0),
                        fs: match fs {
                            VolumeFs::Ext4 => Fs::Ext4,
                            VolumeFs::Xfs => Fs::Xfs,
                        },
                        format: match format {
                            VolumeFormat::Raw => Format::Raw,
                            VolumeFormat::Qcow2 => Format::Qcow2,
                        },
                        remote: remote.clone(),
                    };
                    store.create(name, &options)
                }
                (None, _) => return Err(Failure::new("volume create: --size is needed")),
            };
            println!("{}", made.map_err(vol_err)?.name);
        }
        VolumeCommand::Ls => {
            println!(
                "{:<24} {:<9} {:<5} {:>14} {:>14} {:<24} USERS",
                "NAME", "KIND", "FS", "SIZE", "ALLOCATED", "ORIGIN"
            );
            for v in store.list().map_err(vol_err)? {
                let allocated = volume::allocated(&store.image(&v)).unwrap_or(0);
                let users = store.users(&v.name).map_err(vol_err)?;
                let users: Vec<String> = users
                    .into_iter()
                    .map(|u| format!("{}:{}", u.container, if u.read_only { "ro" } else { "rw" }))
                    .collect();
                println!(
                    "{:<24} {:<9} {:<5} {:>14} {:>14} {:<24} {}",
                    v.name,
                    format!("{:?}", v.kind).to_lowercase(),
                    v.fs.name(),
                    v.size,
                    allocated,
                    v.origin.as_deref().unwrap_or("-"),
                    users.join(",")
                );
            }
        }
        VolumeCommand::Inspect { name } => {
            let v = store.inspect(name).map_err(vol_err)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("serializable")
            );
        }
        VolumeCommand::Rm { name } => store.remove(name).map_err(vol_err)?,
        VolumeCommand::Snapshot { name, snapshot } => {
            println!("{}", store.snapshot(name, snapshot).map_err(vol_err)?.name);
        }
        VolumeCommand::Clone { snapshot, name } => {
            println!(
                "{}",
                store.clone_snapshot(snapshot, name).map_err(vol_err)?.name
            );
        }
        VolumeCommand::Serve {
            read_only,
            pid_fd,
            source,
            file,
            pid_file,
        } => volume::serve_main(source, file, pid_file, *pid_fd, *read_only).map_err(vol_err)?,
    }
    Ok(0)
}

/// The volumes `create`/`run` asks for (flags, else the annotation),
/// checked before the container is created, so a missing volume leaves
/// nothing behind.
pub fn request(
    cli: &Cli,
    args: &CreateArgs,
    annotations: &BTreeMap<String, String>,
) -> Result<Option<ContainerVolumes>, Failure> {
    let requests = volume::requested(&args.volume, annotations).map_err(vol_err)?;
    if requests.is_empty() {
        return Ok(None);
    }
    let store = store(cli);
    volume::check(&store, &requests).map_err(vol_err)?;
    Ok(Some(ContainerVolumes::new(store, requests)))
}

/// Detaches the volumes container `id` holds, if any.
pub fn detach(root: &Path, id: &str) -> Result<(), Failure> {
    volume::detach(root, id).map_err(vol_err)
}

/// Whether container `id` holds volumes.
pub fn holds_volumes(root: &Path, id: &str) -> bool {
    volume::holds_volumes(root, id)
}
