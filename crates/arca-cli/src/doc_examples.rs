//! Every `arca ...` example in README.md and docs/*.md parses with the CLI's own clap
//! definition, so that a renamed or removed flag cannot linger in the docs.
//!
//! What is checked, and the small rule for what is not:
//!
//! - **Shell blocks** (fenced ```` ```sh ````, `bash`, `shell` or `console`): lines ending in
//!   `\` are joined, a `$ ` prompt and a shell comment (`#` starting a word outside quotes)
//!   are dropped, and the line is cut at `|`, `||`, `&&` and `;` outside quotes; the inside of
//!   `$( ... )` is a command of its own. Each piece whose first word is `arca` is parsed
//!   whole (`try_parse_from`). Redirections (`> FILE`, `2>&1`, `< FILE`) are dropped, and
//!   so are the `[` `]` around an optional part of a synopsis, whose words must then parse.
//!   `$VAR` and placeholders such as `KEY` are ordinary words: positionals and flag values.
//! - **Inline code** (`` `arca ...` `` in prose): often a reference to a command or a flag
//!   rather than a whole command (`arca audit verify --file`), so only names are checked:
//!   each subcommand must exist and each `--flag` or `-f` must be an option of the command
//!   reached (or a global one). The span is read up to a `…` or `...`.
//! - Not checked: other binaries (`arca-loadgen`, `cargo run --bin arca`) and blocks in
//!   other languages (diagrams, TOML, JSON).
//!
//! Environment variables (`ARCA_*`) are ignored while parsing, so the result does not depend
//! on the shell the tests run in.

use std::path::{Path, PathBuf};

use clap::{Arg, Command, CommandFactory, FromArgMatches};

use crate::Cli;

/// The documents that hold examples.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

/// The CLI with no `env = ...` on any argument.
fn without_env(cmd: Command) -> Command {
    cmd.mut_args(|a: Arg| a.env(None::<&'static str>))
        .mut_subcommands(without_env)
}

fn cli() -> Command {
    let mut c = without_env(Cli::command());
    c.build();
    c
}

/// One example found in a document.
#[derive(Debug)]
struct Example {
    place: String,
    words: Vec<String>,
    /// Parsed whole (a shell block) or only its names checked (inline code).
    whole: bool,
}

/// A word or a shell operator.
#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    /// `|`, `||`, `&&`, `;`: the end of a command.
    End,
}

/// Splits a shell line into words and command ends: quotes group, a word that starts with
/// `#` ends the line, redirections and their targets are dropped, `$( ... )` is replaced by
/// one word and its inside returned as a line of its own.
fn shell_words(line: &str, inner: &mut Vec<String>) -> Vec<Tok> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let mut skip_next_word = false;
    let push = |word: &mut String, in_word: &mut bool, out: &mut Vec<Tok>, skip: &mut bool| {
        if *in_word {
            let w = std::mem::take(word);
            let is_redirect = w.starts_with('>')
                || w.starts_with('<')
                || w.starts_with("2>")
                || w.starts_with("&>");
            if *skip {
                *skip = false;
            } else if is_redirect {
                // `> file` takes the next word; `>file` and `2>&1` do not.
                *skip = matches!(w.as_str(), ">" | ">>" | "<" | "2>" | "2>>" | "&>");
            } else {
                out.push(Tok::Word(w));
            }
        }
        *in_word = false;
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => push(&mut word, &mut in_word, &mut out, &mut skip_next_word),
            '#' if !in_word => break,
            '\'' | '"' => {
                in_word = true;
                let close = chars[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .map_or(chars.len(), |p| i + 1 + p);
                word.extend(&chars[i + 1..close]);
                i = close;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let mut depth = 0;
                let mut j = i + 1;
                while j < chars.len() {
                    match chars[j] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                inner.push(chars[i + 2..j.min(chars.len())].iter().collect());
                in_word = true;
                word.push_str("SUBST");
                i = j;
            }
            '|' | '&' | ';' => {
                let double = chars.get(i + 1) == Some(&c);
                if c == '&' && !double {
                    // `2>&1`, `&>`: part of a redirection word.
                    in_word = true;
                    word.push(c);
                } else {
                    push(&mut word, &mut in_word, &mut out, &mut skip_next_word);
                    out.push(Tok::End);
                    if double {
                        i += 1;
                    }
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
        i += 1;
    }
    push(&mut word, &mut in_word, &mut out, &mut skip_next_word);
    out
}

/// The `arca` commands of one shell line (after continuations are joined).
fn shell_commands(line: &str) -> Vec<Vec<String>> {
    let line = line.trim();
    let line = line.strip_prefix("$ ").unwrap_or(line);
    let mut lines = vec![line.to_string()];
    let mut commands = Vec::new();
    while let Some(l) = lines.pop() {
        let mut inner = Vec::new();
        let toks = shell_words(&l, &mut inner);
        lines.extend(inner);
        for piece in toks.split(|t| *t == Tok::End) {
            let words: Vec<String> = piece
                .iter()
                .filter_map(|t| match t {
                    Tok::Word(w) => Some(w.clone()),
                    Tok::End => None,
                })
                .collect();
            if words.first().map(String::as_str) == Some("arca") {
                let words = words
                    .into_iter()
                    .map(|w| w.trim_start_matches('[').trim_end_matches(']').to_string())
                    .filter(|w| !w.is_empty())
                    .collect();
                commands.push(words);
            }
        }
    }
    commands
}

/// Every example of one document.
fn examples_in(name: &str, text: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut fence: Option<String> = None;
    let mut pending = String::new();
    let mut pending_line = 0;
    let mut prose = String::new();
    let mut prose_line = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            fence = match fence {
                None => Some(rest.trim().to_string()),
                Some(_) => None,
            };
            continue;
        }
        match &fence {
            Some(lang) if ["sh", "bash", "shell", "console"].contains(&lang.as_str()) => {
                if pending.is_empty() {
                    pending_line = n;
                }
                match line.strip_suffix('\\') {
                    Some(head) => {
                        pending.push_str(head);
                        pending.push(' ');
                    }
                    None => {
                        pending.push_str(line);
                        for words in shell_commands(&pending) {
                            found.push(Example {
                                place: format!("{name}:{pending_line}"),
                                words,
                                whole: true,
                            });
                        }
                        pending.clear();
                    }
                }
            }
            Some(_) => {}
            None => {
                prose.push_str(line);
                prose.push('\n');
                prose_line.resize(prose.len(), n);
            }
        }
    }
    // Inline code spans of the prose (they may run over a line break).
    let mut rest = prose.as_str();
    let mut offset = 0;
    while let Some(start) = rest.find('`') {
        let Some(len) = rest[start + 1..].find('`') else {
            break;
        };
        let span = &rest[start + 1..start + 1 + len];
        if span.starts_with("arca ") || span.starts_with("arca\n") {
            let mut words = Vec::new();
            for w in span.split_whitespace() {
                if w.contains('…') || w.contains("...") {
                    break;
                }
                words.push(w.to_string());
            }
            found.push(Example {
                place: format!("{name}:{}", prose_line[offset + start]),
                words,
                whole: false,
            });
        }
        offset += start + len + 2;
        rest = &rest[start + len + 2..];
    }
    found
}

/// Checks the names in an inline reference: subcommands, then options of the command
/// reached.
fn check_names(cli: &Command, words: &[String]) -> Result<(), String> {
    let mut path: Vec<&Command> = vec![cli];
    let mut leaf = false;
    let mut value_next = false;
    for w in &words[1..] {
        let w = w
            .trim_start_matches('[')
            .trim_end_matches([']', ',', ')', ':']);
        let here = *path.last().unwrap();
        let find = |pred: &dyn Fn(&Arg) -> bool| -> Option<&Arg> {
            path.iter()
                .rev()
                .find_map(|c| c.get_arguments().find(|a| pred(a)))
        };
        if let Some(long) = w.strip_prefix("--") {
            let long = long.split('=').next().unwrap_or_default();
            let arg = find(&|a: &Arg| a.get_long() == Some(long))
                .ok_or_else(|| format!("no option --{long} on `{}`", here.get_name()))?;
            value_next = arg.get_action().takes_values() && !w.contains('=');
            leaf = true;
        } else if let Some(short) = w.strip_prefix('-').filter(|s| s.chars().count() == 1) {
            let c = short.chars().next().unwrap();
            let arg = find(&|a: &Arg| a.get_short() == Some(c))
                .ok_or_else(|| format!("no option -{c} on `{}`", here.get_name()))?;
            value_next = arg.get_action().takes_values();
            leaf = true;
        } else if value_next || w == "|" {
            value_next = false;
        } else if !leaf && here.has_subcommands() {
            let sub = here
                .find_subcommand(w)
                .ok_or_else(|| format!("no subcommand `{w}` under `{}`", here.get_name()))?;
            path.push(sub);
        } else {
            leaf = true;
        }
    }
    Ok(())
}

fn check(cli: &Command, e: &Example) -> Result<(), String> {
    if !e.whole {
        return check_names(cli, &e.words);
    }
    match cli.clone().try_get_matches_from(&e.words) {
        Ok(m) => Cli::from_arg_matches(&m)
            .map(|_| ())
            .map_err(|x| x.to_string()),
        Err(x) => match x.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => Ok(()),
            _ => Err(x.to_string()),
        },
    }
}

#[test]
fn every_documented_command_parses() {
    let cli = cli();
    let mut checked = (0, 0);
    let mut broken = Vec::new();
    for path in documents() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for e in examples_in(&name, &text) {
            if e.whole {
                checked.0 += 1;
            } else {
                checked.1 += 1;
            }
            if let Err(why) = check(&cli, &e) {
                let first = why.lines().next().unwrap_or_default().to_string();
                broken.push(format!("{}: `{}`: {first}", e.place, e.words.join(" ")));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "examples the CLI does not accept:\n{}",
        broken.join("\n")
    );
    // The scan itself works: it finds the tour's commands and the prose references.
    assert!(checked.0 > 60 && checked.1 > 60, "checked {checked:?}");
}

#[test]
fn the_scanner_reads_shell_as_the_docs_write_it() {
    let words = |l: &str| shell_commands(l);
    assert_eq!(
        words(r#"echo "hello" | arca sign signer --out hello.sig   # a comment"#),
        vec![vec!["arca", "sign", "signer", "--out", "hello.sig"]]
    );
    assert_eq!(
        words("request=$(arca key schedule-destruction k --days 7) || [ $? -eq 3 ]"),
        vec![vec![
            "arca",
            "key",
            "schedule-destruction",
            "k",
            "--days",
            "7"
        ]]
    );
    assert_eq!(
        words("arca audit public-key > audit.pem 2>&1"),
        vec![vec!["arca", "audit", "public-key"]]
    );
    assert_eq!(
        words("arca audit report [--key KEY] [--from TIME]"),
        vec![vec![
            "arca", "audit", "report", "--key", "KEY", "--from", "TIME"
        ]]
    );
    assert_eq!(
        words(r#"arca approval approve "$request" --comment "ticket OPS-42""#),
        vec![vec![
            "arca",
            "approval",
            "approve",
            "$request",
            "--comment",
            "ticket OPS-42"
        ]]
    );
    assert!(words("cargo run --release --bin arca -- serve").is_empty());
    assert!(words("arca-loadgen --connections 16").is_empty());

    let cli = cli();
    let ex = |s: &str, whole: bool| Example {
        place: "t".into(),
        words: if whole {
            shell_commands(s).remove(0)
        } else {
            s.split_whitespace().map(str::to_string).collect()
        },
        whole,
    };
    // A flag that does not exist, in a block and in prose; a missing value in a block.
    assert!(check(&cli, &ex("arca key create k --no-such-flag", true)).is_err());
    assert!(check(&cli, &ex("arca audit verify --no-such-flag", false)).is_err());
    assert!(check(&cli, &ex("arca key nosuch", false)).is_err());
    assert!(check(&cli, &ex("arca key schedule-destruction k --days", true)).is_err());
    // A reference to a flag without its value is fine in prose.
    check(&cli, &ex("arca audit verify --file", false)).unwrap();
    check(&cli, &ex("arca key create k --protection-level hsm", true)).unwrap();
    // Environment variables do not decide: `--file` and a store URL from the environment
    // would conflict.
    check(&cli, &ex("arca audit verify --file t --public-key p", true)).unwrap();
}
