//! The lifecycle commands an engine runs for every container (`create`,
//! `run`, `start`, `state`, `kill`, `delete`) in their plain spellings,
//! parsed without clap.
//!
//! Building clap's command and matching against it was a tenth of a
//! container start's code and a good part of its heap, so a start's peak
//! RSS. This parser takes only what it is sure of: long flags as
//! `--flag VALUE` or `--flag=VALUE`, the single-letter flags a shim passes
//! alone (`-b`, `-d`, `-f`, `-a`, `-p`, `-v` after the subcommand), the id
//! last. Anything else — help, a repeated flag, a value that looks like a
//! flag, `--network`, combined short flags, an unknown word, non-UTF-8 —
//! returns `None`, and clap parses the line (and words any error) as
//! before. The unit tests check that whatever this accepts, clap parses to
//! the same [`Cli`].

use std::ffi::OsString;
use std::path::PathBuf;

use super::{Cli, Command, CreateArgs, LogFormat, RunArgs};

/// Parses `args` (the program name first) if it is a plain lifecycle call.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<_>>()?;
    let mut words = Words::new(&args);
    let mut cli = Cli {
        version: None,
        root: None,
        log: None,
        log_format: LogFormat::Text,
        debug: false,
        net_root: PathBuf::from(bridge::DEFAULT_DIR),
        net_table: bridge::DEFAULT_TABLE.to_owned(),
        volume_root: PathBuf::from(volume::DEFAULT_ROOT),
        systemd_cgroup: false,
        criu: None,
        command: Command::Features,
    };
    let subcommand = loop {
        let (flag, inline) = match words.next()? {
            Word::Flag(flag, inline) => (flag, inline),
            Word::Plain(word) => break word,
        };
        match flag {
            "--root" => cli.root = Some(words.value(flag, inline)?.into()),
            "--log" => cli.log = Some(words.value(flag, inline)?.into()),
            "--log-format" => {
                cli.log_format = match words.value(flag, inline)? {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return None,
                }
            }
            "--debug" => cli.debug = words.switch(flag, inline)?,
            "--net-root" => cli.net_root = words.value(flag, inline)?.into(),
            "--net-table" => cli.net_table = words.value(flag, inline)?.to_owned(),
            "--volume-root" => cli.volume_root = words.value(flag, inline)?.into(),
            "--systemd-cgroup" => cli.systemd_cgroup = words.switch(flag, inline)?,
            "--criu" => cli.criu = Some(words.value(flag, inline)?.into()),
            _ => return None,
        }
    };
    words.seen.clear();
    cli.command = match subcommand {
        "create" => Command::Create(create_args(&mut words, &mut None)?),
        "run" => {
            let mut run = Some((false, false));
            let create = create_args(&mut words, &mut run)?;
            let (detach, keep) = run?;
            Command::Run(RunArgs {
                create,
                detach,
                keep,
            })
        }
        "start" => Command::Start { id: words.id()? },
        "state" => Command::State { id: words.id()? },
        "delete" => {
            let (force, id) = words.switch_then_id("--force", "-f")?;
            words.end()?;
            Command::Delete { force, id }
        }
        "kill" => {
            let (all, id) = words.switch_then_id("--all", "-a")?;
            // An optional signal after the id, a plain word.
            let signal = match words.next() {
                None => None,
                Some(Word::Plain(signal)) => Some(signal.to_owned()),
                Some(Word::Flag(..)) => return None,
            };
            words.end()?;
            Command::Kill { all, id, signal }
        }
        _ => return None,
    };
    Some(cli)
}

/// `create`'s (and `run`'s) flags and id; `run` holds `(detach, keep)` for
/// `run`, `None` for `create` (whose words do not include them).
fn create_args(words: &mut Words, run: &mut Option<(bool, bool)>) -> Option<CreateArgs> {
    let mut args = CreateArgs {
        bundle: PathBuf::from("."),
        console_socket: None,
        pid_file: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        network: None,
        publish: Vec::new(),
        volume: Vec::new(),
        id: String::new(),
    };
    let id = words.id_after(|flag, inline, words| {
        match (flag, run.as_mut()) {
            ("--bundle" | "-b", _) => args.bundle = words.value(flag, inline)?.into(),
            ("--console-socket", _) => {
                args.console_socket = Some(words.value(flag, inline)?.into())
            }
            ("--pid-file", _) => args.pid_file = Some(words.value(flag, inline)?.into()),
            ("--no-pivot", _) => args.no_pivot = words.switch(flag, inline)?,
            ("--no-new-keyring", _) => args.no_new_keyring = words.switch(flag, inline)?,
            ("--preserve-fds", _) => args.preserve_fds = words.value(flag, inline)?.parse().ok()?,
            // Repeatable.
            ("--publish" | "-p", _) => args.publish.push(words.take(inline)?.to_owned()),
            ("--volume" | "-v", _) => args.volume.push(words.take(inline)?.to_owned()),
            ("--detach" | "-d", Some((detach, _))) => *detach = words.switch(flag, inline)?,
            ("--keep", Some((_, keep))) => *keep = words.switch(flag, inline)?,
            _ => return None,
        }
        Some(())
    })?;
    words.end()?;
    args.id = id;
    Some(args)
}

/// One command-line word.
enum Word<'a> {
    /// `--flag`, `-f`, or `--flag=value` (the value apart).
    Flag(&'a str, Option<&'a str>),
    /// Anything not starting with `-`.
    Plain(&'a str),
}

/// The words left, and the flags seen since the subcommand (or the start).
struct Words<'a> {
    rest: std::slice::Iter<'a, &'a str>,
    /// Canonical spellings seen, so a repeated flag goes to clap.
    seen: Vec<&'a str>,
}

impl<'a> Words<'a> {
    fn new(args: &'a [&'a str]) -> Self {
        Self {
            rest: args.iter(),
            seen: Vec::new(),
        }
    }

    /// The next word; `None` at the end. `--` and a lone `-` are not
    /// plain words: they end the fast path (as `None` from the caller's
    /// match on an unknown flag).
    fn next(&mut self) -> Option<Word<'a>> {
        let word = *self.rest.next()?;
        Some(match word.strip_prefix("--") {
            Some(long) => match long.split_once('=') {
                Some((name, value)) => Word::Flag(&word[..name.len() + 2], Some(value)),
                None => Word::Flag(word, None),
            },
            None if word.starts_with('-') => Word::Flag(word, None),
            None => Word::Plain(word),
        })
    }

    /// Records FLAG as seen; `None` if it was (clap refuses a repeat).
    fn mark(&mut self, flag: &'a str) -> Option<()> {
        let name = canonical(flag);
        if self.seen.contains(&name) {
            return None;
        }
        self.seen.push(name);
        Some(())
    }

    /// FLAG's value, once: see [`Words::take`].
    fn value(&mut self, flag: &'a str, inline: Option<&'a str>) -> Option<&'a str> {
        self.mark(flag)?;
        self.take(inline)
    }

    /// A value: inline, or the next word if that is a plain one; not empty
    /// nor starting with `-`.
    fn take(&mut self, inline: Option<&'a str>) -> Option<&'a str> {
        let value = match inline {
            Some(value) => value,
            None => match self.next()? {
                Word::Plain(value) => value,
                Word::Flag(..) => return None,
            },
        };
        (!value.is_empty() && !value.starts_with('-')).then_some(value)
    }

    /// A flag without a value: `true`, once.
    fn switch(&mut self, flag: &'a str, inline: Option<&'a str>) -> Option<bool> {
        self.mark(flag)?;
        inline.is_none().then_some(true)
    }

    /// The id, as the only word left.
    fn id(&mut self) -> Option<String> {
        let id = self.id_after(|_, _, _| None)?;
        self.end()?;
        Some(id)
    }

    /// Flags handled by `flag` (its `None`: not a plain call), then the id.
    fn id_after(
        &mut self,
        mut flag: impl FnMut(&'a str, Option<&'a str>, &mut Self) -> Option<()>,
    ) -> Option<String> {
        loop {
            match self.next()? {
                Word::Flag(name, inline) => flag(name, inline, self)?,
                Word::Plain(id) => return (!id.is_empty()).then(|| id.to_owned()),
            }
        }
    }

    /// An optional switch (its long or short spelling), then the id.
    fn switch_then_id(&mut self, long: &str, short: &str) -> Option<(bool, String)> {
        let mut on = false;
        let id = self.id_after(|flag, inline, words| {
            (flag == long || flag == short).then_some(())?;
            on = words.switch(flag, inline)?;
            Some(())
        })?;
        Some((on, id))
    }

    /// `Some` if no word is left.
    fn end(&mut self) -> Option<()> {
        self.rest.next().is_none().then_some(())
    }
}

/// One name per flag, whichever spelling was used.
fn canonical(flag: &str) -> &str {
    match flag {
        "-b" => "--bundle",
        "-d" => "--detach",
        "-f" => "--force",
        "-a" => "--all",
        "-p" => "--publish",
        "-v" => "--volume",
        long => long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn argv(line: &str) -> Vec<OsString> {
        std::iter::once("hull")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    /// Whatever the fast path takes, clap parses to the same `Cli`.
    fn same_as_clap(line: &str) -> bool {
        let args = argv(line);
        let Some(fast) = parse(&args) else {
            return false;
        };
        let clap = Cli::try_parse_from(&args)
            .unwrap_or_else(|e| panic!("the fast path took `{line}`, clap refused it: {e}"));
        assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "`{line}`");
        true
    }

    #[test]
    fn takes_the_lifecycle_calls_of_engines_as_clap_reads_them() {
        for line in [
            "run c1",
            "run --bundle /b c1",
            "run -b /b -d --pid-file /p --console-socket /s c1",
            "--root /r --log /l --log-format json run --bundle=/b --keep c1",
            "--root=/r --debug --systemd-cgroup create --bundle /b --pid-file /p c1",
            "--net-root /n --net-table t --volume-root /v --criu /c create c1",
            "create --no-pivot --no-new-keyring --preserve-fds 2 c1",
            "run -p 8080:80 --publish 127.0.0.1:53:53/udp -v data:/d -v logs:/l:ro c1",
            "--root /r start c1",
            "--root /r state c1",
            "--root /r delete c1",
            "--root /r delete --force c1",
            "--root /r delete -f c1",
            "--root /r kill c1",
            "--root /r kill c1 KILL",
            "--root /r kill --all c1 9",
            "--root /r kill -a c1",
        ] {
            assert!(same_as_clap(line), "the fast path should take `{line}`");
        }
    }

    #[test]
    fn leaves_everything_else_to_clap() {
        for line in [
            "",
            "--help",
            "-v",
            "--version",
            "run",
            "run --help",
            "run -h c1",
            "run c1 c2",
            "run c1 --bundle /b",
            "run --bundle c1",
            "run --bundle -x c1",
            "run --bundle= c1",
            "run --bundle /a --bundle /b c1",
            "run -b /a --bundle /b c1",
            "run -db /b c1",
            "run --network c1",
            "run --network net c1",
            "run --preserve-fds -1 c1",
            "run --preserve-fds x c1",
            "run --detach=true c1",
            "run -- c1",
            "create -d c1",
            "create --keep c1",
            "--log-format xml run c1",
            "--debug --debug run c1",
            "--root /r exec c1 sh",
            "--root /r list",
            "--root /r delete c1 c2",
            "--root /r delete -f -f c1",
            "--root /r kill c1 KILL extra",
            "--root /r kill c1 -9",
            "--root /r delete c1 --force",
            "--root /r start c1 c2",
            "run -b /b c1 -d",
            "--root /r start",
            "--root /r network ls",
            "--bogus run c1",
        ] {
            assert!(!same_as_clap(line), "`{line}` should be left to clap");
        }
    }

    #[test]
    fn non_utf8_words_go_to_clap() {
        use std::os::unix::ffi::OsStringExt;
        let mut args = argv("run --bundle");
        args.push(OsString::from_vec(vec![0xff, b'/']));
        args.push("c1".into());
        assert!(parse(&args).is_none());
    }
}
