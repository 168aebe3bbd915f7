//! Operator output shared by the airlock binaries: results on stdout (a closed pipe
//! is not an error), errors and warnings on stderr, each error as "what happened"
//! then "what to do".

use crate::Exit;
use std::fmt::Display;
use std::io::Write;

/// An error as the binaries report it: what happened (`Display`), what to do,
/// and the exit code.
pub trait OperatorError: Display {
    /// The "what to do" line.
    fn hint(&self) -> String;
    /// The exit code (design card §9).
    fn exit(&self) -> Exit;
}

impl OperatorError for crate::Error {
    fn hint(&self) -> String {
        crate::Error::hint(self)
    }
    fn exit(&self) -> Exit {
        crate::Error::exit(self)
    }
}

/// Parses a binary's command line: `Err` is the exit code after clap has printed
/// its message (usage errors exit 2; `--help` and `--version` exit 0).
///
/// A hidden first argument, `PROGRAM --generate KIND [PAGE]`, is handled
/// before clap sees the line: see [`generate_docs`]. It needs no profile or file.
pub fn parse_args<C: clap::Parser>(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<C, Exit> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if let Some(request) = generate_request(&args) {
        return Err(generate_docs(C::command(), &request));
    }
    C::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            Exit::Usage
        } else {
            Exit::Success
        }
    })
}

/// What `--generate` can write, as named on the command line.
pub const GENERATE_KINDS: [&str; 4] = ["man", "complete-bash", "complete-zsh", "complete-fish"];

/// The words after a leading `--generate` (`--generate=KIND` counts too), or `None`
/// when the first argument is something else and clap parses the line as usual.
fn generate_request(args: &[std::ffi::OsString]) -> Option<Vec<String>> {
    let first = args.get(1)?.to_str()?;
    let mut words = match first.strip_prefix("--generate") {
        Some("") => Vec::new(),
        Some(rest) => vec![rest.strip_prefix('=')?.to_owned()],
        None => return None,
    };
    words.extend(args[2..].iter().map(|a| a.to_string_lossy().into_owned()));
    Some(words)
}

/// Handles `--generate KIND [PAGE]` for the program `cmd`: writes the
/// man page (roff) or completion script to stdout and returns the exit code
/// (0; 2 with a message on stderr for an unknown kind or page; 1 if stdout
/// fails other than by a closed pipe).
///
/// `man` is the program's page, `PROGRAM(1)`, whose SUBCOMMANDS section refers to
/// one page per subcommand; `man PAGE` is one of those, by the name it is referred
/// to (`airlock-bundler --generate man airlock-bundler-feed-publish`), and refers in
/// turn to its own subcommands' pages.
/// `complete-bash`, `complete-zsh` and `complete-fish` are completion scripts.
pub fn generate_docs(cmd: clap::Command, request: &[String]) -> Exit {
    let program = cmd.get_name().to_owned();
    let mut buf = Vec::new();
    if let Err(e) = render_docs(cmd, request, &mut buf) {
        let mut o = std::io::stderr().lock();
        let _ = writeln!(o, "{program}: error: {e}");
        let _ = writeln!(o, "  what to do: {}", e.hint());
        return Exit::Usage;
    }
    let mut o = std::io::stdout().lock();
    match o.write_all(&buf).and_then(|()| o.flush()) {
        Ok(()) => Exit::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Success,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{program}: error: cannot write to stdout: {e}\n  what to do: check where stdout goes (disk full?) and run again"
            );
            Exit::Operational
        }
    }
}

/// Why `--generate` refused its arguments.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    /// No kind after `--generate`.
    #[error("--generate needs a kind")]
    MissingKind,
    /// A kind that is not one of [`GENERATE_KINDS`].
    #[error("--generate does not know the kind '{kind}'")]
    UnknownKind {
        /// As given.
        kind: String,
    },
    /// `man PAGE` names no page of the program.
    #[error("{program} has no man page '{page}'")]
    UnknownPage {
        /// The program.
        program: String,
        /// As given.
        page: String,
    },
    /// Words after a completion kind.
    #[error("--generate {kind} takes no further arguments, got '{extra}'")]
    Extra {
        /// The kind.
        kind: String,
        /// The first extra word.
        extra: String,
    },
}

impl GenerateError {
    /// The "what to do" line.
    pub fn hint(&self) -> String {
        match self {
            GenerateError::MissingKind
            | GenerateError::UnknownKind { .. }
            | GenerateError::Extra { .. } => format!(
                "use --generate KIND with KIND one of: {} (`man PAGE` for a subcommand's page)",
                GENERATE_KINDS.join(", ")
            ),
            GenerateError::UnknownPage { program, .. } => format!(
                "name a page as the SUBCOMMANDS section of `{program} --generate man` refers to it ({program}-SUBCOMMAND)"
            ),
        }
    }
}

/// Renders what `request` (the words after `--generate`) asks for into `w`.
pub fn render_docs(
    cmd: clap::Command,
    request: &[String],
    w: &mut Vec<u8>,
) -> Result<(), GenerateError> {
    use clap_complete::Shell;
    let (kind, rest) = request.split_first().ok_or(GenerateError::MissingKind)?;
    let shell = match kind.as_str() {
        "man" => return render_man(cmd, rest, w),
        "complete-bash" => Shell::Bash,
        "complete-zsh" => Shell::Zsh,
        "complete-fish" => Shell::Fish,
        _ => return Err(GenerateError::UnknownKind { kind: kind.clone() }),
    };
    if let Some(extra) = rest.first() {
        return Err(GenerateError::Extra {
            kind: kind.clone(),
            extra: extra.clone(),
        });
    }
    let mut cmd = cmd;
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, w);
    Ok(())
}

/// The man page of `cmd` (`page` empty), or the page named `page[0]`: the page of
/// a subcommand, named as the SUBCOMMANDS section refers to it (`PROGRAM-SUB`,
/// `PROGRAM-SUB-SUB`).
fn render_man(cmd: clap::Command, page: &[String], w: &mut Vec<u8>) -> Result<(), GenerateError> {
    // As clap_mangen::generate_to: no page for the `help` subcommand, and building
    // the root first gives each subcommand its display name (`PROGRAM-SUB`) and
    // its bin name (`PROGRAM SUB`) for the synopsis.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    let found = match page {
        [] => Some(cmd.clone()),
        [name] => find_page(&cmd, name),
        [_, extra, ..] => {
            return Err(GenerateError::Extra {
                kind: "man PAGE".to_owned(),
                extra: extra.clone(),
            });
        }
    };
    let found = found.ok_or_else(|| GenerateError::UnknownPage {
        program: cmd.get_name().to_owned(),
        page: page.join(" "),
    })?;
    // The examples at the end of `--help` become an EXAMPLES section, kept as
    // written (clap_mangen would fill them into one paragraph under "EXTRA").
    let examples = found.get_after_long_help().map(|e| e.to_string());
    let found = found.after_long_help(None::<&'static str>);
    clap_mangen::Man::new(found)
        .source(source)
        .render(w)
        .expect("writing to a Vec cannot fail");
    if let Some(examples) = examples {
        w.extend_from_slice(b".SH EXAMPLES\n.nf\n");
        for line in examples.lines().filter(|l| l.trim_end() != "Examples:") {
            w.extend_from_slice(roff_line(line.trim_start()).as_bytes());
            w.push(b'\n');
        }
        w.extend_from_slice(b".fi\n");
    }
    Ok(())
}

/// The example command lines in the `--help` of `cmd`'s subcommands (at any
/// depth), each as the words a shell would pass: continuation lines (`\`) are
/// joined, and a leading `VAR=value`, a trailing `# comment` and a `> FILE`
/// redirection are left out. The tests of each
/// program parse every one, so the examples cannot drift from the options.
pub fn example_invocations(cmd: &clap::Command) -> Vec<Vec<String>> {
    let program = cmd.get_name().to_owned();
    let mut out = Vec::new();
    let mut stack: Vec<&clap::Command> = cmd.get_subcommands().collect();
    while let Some(sub) = stack.pop() {
        stack.extend(sub.get_subcommands());
        let Some(examples) = sub.get_after_long_help() else {
            continue;
        };
        // A line ending in `\` continues on the next, as in a shell.
        let joined = examples.to_string().replace("\\\n", " ");
        for line in joined.lines() {
            let line = line.split(" #").next().unwrap_or_default();
            let line = line.split(" > ").next().unwrap_or_default();
            let words: Vec<String> = line
                .split_whitespace()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .map(str::to_owned)
                .collect();
            if words.first() == Some(&program) {
                out.push(words);
            }
        }
    }
    out
}

/// Parses every line of [`example_invocations`] with `C` itself: the number of
/// examples, or the first that does not parse with clap's message (for the
/// programs' tests).
pub fn check_examples<C: clap::Parser>() -> Result<usize, String> {
    let examples = example_invocations(&C::command());
    for words in &examples {
        if let Err(e) = C::try_parse_from(words) {
            return Err(format!("the example {words:?} does not parse:\n{e}"));
        }
    }
    Ok(examples.len())
}

/// `line` as literal roff text: backslashes and hyphens escaped, and a leading
/// `.` or `'` kept from being read as a request.
fn roff_line(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The visible subcommand of `cmd` (at any depth) whose page is called `name`.
fn find_page(cmd: &clap::Command, name: &str) -> Option<clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set())
        .find_map(|s| {
            if s.get_display_name() == Some(name) {
                Some(s.clone())
            } else {
                find_page(s, name)
            }
        })
}

/// The `-q` / `-v` options every airlock program takes (flattened into its clap
/// definition, shown under "Global options").
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Verbosity {
    /// Print only errors (and JSON when asked for).
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,
}

impl Verbosity {
    /// The [`Output`] of `program` at this verbosity.
    pub fn output(&self, program: &'static str) -> Output {
        Output::new(program, self.quiet, self.verbose)
    }
}

/// Where and how much to print, for one program.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    program: &'static str,
    quiet: bool,
    verbose: bool,
}

impl Output {
    /// `program` prefixes errors and warnings; `-q` / `-v`.
    pub fn new(program: &'static str, quiet: bool, verbose: bool) -> Self {
        Output {
            program,
            quiet,
            verbose,
        }
    }

    /// A progress bar over `len` steps of `what` for a person at a terminal:
    /// nothing with `-q` or when `json` (see [`crate::progress`]).
    pub fn progress(
        &self,
        json: bool,
        len: usize,
        what: &'static str,
    ) -> crate::progress::Progress {
        crate::progress::Progress::new(!self.quiet && !json, len as u64, what)
    }

    /// True with `-v` (for output that is costly to prepare).
    pub fn is_verbose(&self) -> bool {
        self.verbose
    }

    /// A result line (suppressed by `-q`).
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.quiet {
            stdout(s.as_ref());
        }
    }

    /// A detail line (only with `-v`).
    pub fn detail(&self, s: impl AsRef<str>) {
        if self.verbose {
            stdout(s.as_ref());
        }
    }

    /// Machine output (JSON), printed even with `-q`.
    pub fn json(&self, v: &serde_json::Value) {
        stdout(&serde_json::to_string_pretty(v).unwrap_or_default());
    }

    /// Prints an error with its hint.
    pub fn error(&self, e: &dyn OperatorError) {
        let mut o = std::io::stderr().lock();
        let _ = writeln!(o, "{}: error: {e}", self.program);
        let _ = writeln!(o, "  what to do: {}", e.hint());
    }

    /// The exit code of a finished command, printing its error if it failed.
    pub fn finish<E: OperatorError>(&self, result: Result<(), E>) -> Exit {
        match result {
            Ok(()) => Exit::Success,
            Err(e) => {
                self.error(&e);
                e.exit()
            }
        }
    }

    /// Prints a warning.
    pub fn warn(&self, s: impl AsRef<str>) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}: warning: {}",
            self.program,
            s.as_ref()
        );
    }
}

fn stdout(s: &str) {
    // A closed pipe (`| head`) is not an error.
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    /// A small program with a nested subcommand.
    #[derive(Debug, Parser)]
    #[command(name = "demo", version)]
    struct Demo {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, Subcommand)]
    enum Sub {
        /// Do one thing.
        One {
            /// A flag of one.
            #[arg(long)]
            loud: bool,
        },
        /// A group.
        #[command(subcommand)]
        Group(Inner),
    }

    #[derive(Debug, Subcommand)]
    enum Inner {
        /// The nested one.
        Leaf,
    }

    fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
        args.iter().map(Into::into).collect()
    }

    fn render(words: &[&str]) -> Result<String, GenerateError> {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        let mut buf = Vec::new();
        render_docs(Demo::command(), &words, &mut buf)?;
        Ok(String::from_utf8(buf).unwrap())
    }

    #[test]
    fn generate_is_recognised_only_as_the_first_argument() {
        let req = |a: &[&str]| generate_request(&os(a));
        assert_eq!(
            req(&["demo", "--generate", "man"]),
            Some(vec!["man".to_owned()])
        );
        assert_eq!(
            req(&["demo", "--generate=man"]),
            Some(vec!["man".to_owned()])
        );
        assert_eq!(req(&["demo", "--generate"]), Some(vec![]));
        assert_eq!(req(&["demo", "one", "--generate", "man"]), None);
        assert_eq!(req(&["demo", "--generated"]), None);
        assert_eq!(req(&["demo"]), None);
    }

    #[test]
    fn man_page_of_the_program_refers_to_each_subcommand_page() {
        let page = render(&["man"]).unwrap();
        assert!(page.contains(".TH demo 1"), "{page}");
        assert!(page.contains("demo\\-one(1)"), "{page}");
        assert!(page.contains("demo\\-group(1)"), "{page}");
        assert!(!page.contains("demo\\-help(1)"), "{page}");
    }

    #[test]
    fn examples_become_a_literal_examples_section() {
        #[derive(Debug, Parser)]
        #[command(name = "prog")]
        struct Cli {
            #[command(subcommand)]
            command: Sub,
        }
        #[derive(Debug, Subcommand)]
        enum Sub {
            /// Does it.
            #[command(
                after_long_help = "Examples:\n  prog run --fast x  # a -> b\n  .hidden \\ 'q'"
            )]
            Run {
                #[arg(long)]
                fast: bool,
                x: String,
            },
        }
        let mut page = Vec::new();
        render_man(Cli::command(), &["prog-run".into()], &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.ends_with(
                ".SH EXAMPLES\n.nf\nprog run \\-\\-fast x  # a \\-> b\n\\&.hidden \\e 'q'\n.fi\n"
            ),
            "{page}"
        );
        assert!(!page.contains("EXTRA"), "{page}");
    }

    #[test]
    fn example_invocations_are_the_words_a_shell_would_pass() {
        let cmd = clap::Command::new("prog").subcommand(
            clap::Command::new("run").after_long_help(
                "Examples:\n  # a comment line\n  prog run a \\\n      --fast  # why\n  X=1 prog run b > out.txt\n  other prog run c",
            ),
        );
        assert_eq!(
            example_invocations(&cmd),
            [vec!["prog", "run", "a", "--fast"], vec!["prog", "run", "b"]]
        );
    }

    #[test]
    fn man_page_of_a_nested_subcommand_by_its_name() {
        let page = render(&["man", "demo-group-leaf"]).unwrap();
        assert!(page.contains(".TH demo-group-leaf 1"), "{page}");
        let source = format!("demo {}", env!("CARGO_PKG_VERSION"));
        assert!(page.contains(&source), "source names the program: {page}");
        let one = render(&["man", "demo-one"]).unwrap();
        assert!(one.contains("\\-\\-loud"), "{one}");
    }

    #[test]
    fn completions_name_the_program() {
        assert!(
            render(&["complete-zsh"])
                .unwrap()
                .starts_with("#compdef demo")
        );
        assert!(
            render(&["complete-fish"])
                .unwrap()
                .contains("complete -c demo")
        );
        assert!(render(&["complete-bash"]).unwrap().contains("group"));
    }

    #[test]
    fn refusals() {
        assert_eq!(render(&[]), Err(GenerateError::MissingKind));
        assert_eq!(
            render(&["html"]),
            Err(GenerateError::UnknownKind {
                kind: "html".into()
            })
        );
        assert!(matches!(
            render(&["man", "demo-two"]),
            Err(GenerateError::UnknownPage { .. })
        ));
        assert!(matches!(
            render(&["complete-bash", "x"]),
            Err(GenerateError::Extra { .. })
        ));
        assert!(
            GenerateError::MissingKind
                .hint()
                .contains("man, complete-bash, complete-zsh, complete-fish")
        );
    }
}
