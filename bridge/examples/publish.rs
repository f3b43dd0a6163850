//! A container with a published port through the libraries alone, what
//! `hull run -d --network NETWORK -p PORT` does: create it connected to a
//! bridge network, start it, and once a line arrives on stdin stop it and
//! delete it (the delete disconnects it).
//!
//! ```text
//! cargo run -p bridge --example publish -- BUNDLE ROOT ID NET_ROOT NET_TABLE NETWORK PORT
//! ```
//!
//! e.g. `PORT` = `127.0.0.1:8080:80`. Prints `address=<container IPv4>`
//! once the container runs, `exit=<code>` at the end. The network must
//! exist (`hull --net-root NET_ROOT --net-table NET_TABLE network create`);
//! an empty `NETWORK` is the default one, made on first use.

use std::io::BufRead;
use std::process::ExitCode;

use bridge::{ContainerNetwork, PortMapping, Store};
use libcontainer::nix::sys::signal::Signal;
use libcontainer::ContainerBuilder;

fn main() -> ExitCode {
    // Protect this binary (CVE-2019-5736) before anything else; re-executes.
    if let Err(e) = libcontainer::ensure_sealed() {
        eprintln!("publish: {e}");
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bundle, root, id, net_root, net_table, network, port] = args.as_slice() else {
        eprintln!("usage: publish BUNDLE ROOT ID NET_ROOT NET_TABLE NETWORK PORT");
        return ExitCode::from(2);
    };
    let port: PortMapping = match port.parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("publish: {e}");
            return ExitCode::from(2);
        }
    };
    let store = Store::new(net_root, net_table);
    let connection = ContainerNetwork::new(store.clone())
        .network(network)
        .publish(port);
    match run(bundle, root, id, connection, &store) {
        Ok(code) => {
            println!("exit={code}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("publish: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    bundle: &str,
    root: &str,
    id: &str,
    connection: ContainerNetwork,
    store: &Store,
) -> Result<i32, Box<dyn std::error::Error>> {
    let container = ContainerBuilder::new(id, bundle)
        .root(root)
        .network(connection)
        .create()?;
    container.start()?;
    let address = store
        .attachments(None)?
        .into_iter()
        .find(|a| a.container == id)
        .map(|a| a.ip.to_string())
        .unwrap_or_default();
    println!("address={address}");
    // Serves until told to stop.
    std::io::stdin().lock().read_line(&mut String::new())?;
    container.kill(Signal::SIGKILL as i32)?;
    let code = container.wait()?;
    container.delete(false)?;
    Ok(code)
}
