//! One module per subcommand.

mod create;
mod delete;
mod kill;
mod list;
mod run;
mod spec;
mod start;
mod state;

use crate::cli::{Cli, Command};
use crate::Outcome;

pub fn dispatch(cli: &Cli) -> Outcome {
    let root = cli.root.as_path();
    match &cli.command {
        Command::Create(args) => create::create(root, args),
        Command::Start { id } => start::start(root, id),
        Command::Run(args) => run::run(root, args),
        Command::State { id } => state::state(root, id),
        Command::Kill { id, signal } => kill::kill(root, id, signal.as_deref()),
        Command::Delete { force, id } => delete::delete(root, id, *force),
        Command::List { format, quiet } => list::list(root, *format, *quiet),
        Command::Spec { bundle, rootless } => spec::spec(bundle, *rootless),
    }
}
