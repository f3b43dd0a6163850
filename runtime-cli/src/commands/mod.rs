//! One module per subcommand.

mod checkpoint;
mod create;
mod delete;
mod dns;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod network;
mod overlay;
mod pause;
mod ps;
mod restore;
mod run;
mod spec;
mod start;
mod state;
mod tty;
mod update;
mod volume;

use crate::cli::{Cli, Command};
use crate::Outcome;

/// Runs the parsed command. Every command's entry function is
/// `#[inline(never)]`: inlined here, all of them made one function that a
/// start executed a corner of, yet kept whole among the start path's code
/// (start-path.order), where it cost a container start's peak RSS.
pub fn dispatch(cli: &Cli) -> Outcome {
    let root = || cli.state_root();
    match &cli.command {
        Command::Create(args) => create::create(cli, args),
        Command::Start { id } => start::start(&root()?, id),
        Command::Run(args) => run::run(cli, args),
        Command::Network(cmd) => network::command(cli, cmd),
        Command::Dns(cmd) => dns::command(cli, cmd),
        Command::Volume(cmd) => volume::command(cli, cmd),
        Command::Exec(args) => exec::exec(&root()?, args),
        Command::State { id } => state::state(&root()?, id),
        Command::Kill { all, id, signal } => kill::kill(&root()?, id, signal.as_deref(), *all),
        Command::Pause { id } => pause::pause(&root()?, id),
        Command::Resume { id } => pause::resume(&root()?, id),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps::ps(&root()?, id, *format, ps_args),
        Command::Update(args) => update::update(&root()?, args),
        Command::Events {
            stats,
            interval,
            id,
        } => events::events(&root()?, id, *stats, interval),
        Command::Delete { force, id } => delete::delete(cli, &root()?, id, *force),
        Command::List { format, quiet } => list::list(cli, &root()?, *format, *quiet),
        Command::Checkpoint(args) => checkpoint::checkpoint(cli, args),
        Command::Restore(args) => restore::restore(cli, args),
        Command::Features => features::features(),
        Command::Spec { bundle, rootless } => spec::spec(bundle, *rootless),
    }
}
