//! The command-line grammar the lab's node shell accepts: a small, safe
//! subset of POSIX `sh` (what clients send to a PVE node), parsed into a
//! [`Script`] that the interpreter runs itself — no real shell is involved.
//!
//! Accepted: words with single quotes, double quotes (`\"`, `\\`, `\$`
//! escapes) and backslashes; `&&`, `||`, `;` and newlines; pipes; the
//! redirections `>`, `>>`, `<`, `2>`, `2>>`, `2>&1`, `>&2` (also `1>`);
//! comments; `$HOME` and `$?`. Refused with a clear message: command
//! substitution, other variables, background jobs, subshells and groups,
//! here-documents.

use std::fmt;

/// A list of pipelines joined by `&&`, `||` or `;`.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub items: Vec<(Connector, Pipeline)>,
}

/// How a pipeline follows the previous one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Connector {
    /// The first item, or after `;` / newline.
    Always,
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub commands: Vec<Simple>,
}

/// One command: its words and redirections.
#[derive(Debug, Clone, PartialEq)]
pub struct Simple {
    pub argv: Vec<String>,
    pub redirs: Vec<Redir>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Redir {
    /// `N> file` / `N>> file` (N = 1 or 2).
    Out { fd: u8, path: String, append: bool },
    /// `< file`.
    In { path: String },
    /// `2>&1` (from 2 to 1) or `>&2` (from 1 to 2).
    Dup { from: u8, to: u8 },
}

/// Why a command line was refused (the shell answers exit status 2).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    And,
    Or,
    Semi,
    Pipe,
    Redir(Redir),
    /// A redirection operator still waiting for its file word.
    RedirTo {
        fd: u8,
        append: bool,
        input: bool,
    },
}

fn unsupported(what: &str) -> SyntaxError {
    SyntaxError(format!("{what} is not supported by the lab's node shell"))
}

/// Expands `$HOME` and `$?` (`last` is the previous exit status).
fn dollar(chars: &[char], i: &mut usize, out: &mut String, last: i32) -> Result<(), SyntaxError> {
    let rest: String = chars[*i + 1..].iter().collect();
    if rest.starts_with('?') {
        out.push_str(&last.to_string());
        *i += 2;
        return Ok(());
    }
    for name in ["{HOME}", "HOME"] {
        if let Some(after) = rest.strip_prefix(name) {
            let next = after.chars().next();
            if name.starts_with('{') || !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.push_str("/root");
                *i += 1 + name.len();
                return Ok(());
            }
        }
    }
    match chars.get(*i + 1) {
        Some('(') => Err(unsupported("command substitution $(...)")),
        Some(c) if c.is_ascii_alphanumeric() || *c == '_' || *c == '{' => Err(unsupported(&format!(
            "the variable in ${}",
            rest.chars().take_while(|c| !c.is_whitespace()).collect::<String>()
        ))),
        // A lone `$` is literal in sh.
        _ => {
            out.push('$');
            *i += 1;
            Ok(())
        }
    }
}

fn tokenize(line: &str, last: i32) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = line.chars().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let flush = |word: &mut String, in_word: &mut bool, tokens: &mut Vec<Token>| {
        if *in_word {
            tokens.push(Token::Word(std::mem::take(word)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                flush(&mut word, &mut in_word, &mut tokens);
                i += 1;
            }
            '\n' | ';' => {
                flush(&mut word, &mut in_word, &mut tokens);
                if chars.get(i + 1) == Some(&';') {
                    return Err(unsupported("';;'"));
                }
                tokens.push(Token::Semi);
                i += 1;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '&' => {
                flush(&mut word, &mut in_word, &mut tokens);
                if chars.get(i + 1) == Some(&'&') {
                    tokens.push(Token::And);
                    i += 2;
                } else {
                    return Err(unsupported("running a command in the background ('&')"));
                }
            }
            '|' => {
                flush(&mut word, &mut in_word, &mut tokens);
                if chars.get(i + 1) == Some(&'|') {
                    tokens.push(Token::Or);
                    i += 2;
                } else {
                    tokens.push(Token::Pipe);
                    i += 1;
                }
            }
            '>' | '<' => {
                // A word of digits right before is the file descriptor (`2>`).
                let fd = if in_word && (word == "1" || word == "2") && !word.is_empty() {
                    let fd = word.parse::<u8>().unwrap_or(1);
                    word.clear();
                    in_word = false;
                    Some(fd)
                } else {
                    flush(&mut word, &mut in_word, &mut tokens);
                    None
                };
                if c == '<' {
                    if matches!(chars.get(i + 1), Some('<') | Some('(')) {
                        return Err(unsupported("here-documents and process substitution"));
                    }
                    tokens.push(Token::RedirTo { fd: 0, append: false, input: true });
                    i += 1;
                    continue;
                }
                let fd = fd.unwrap_or(1);
                if chars.get(i + 1) == Some(&'&') {
                    let to = match chars.get(i + 2) {
                        Some('1') => 1,
                        Some('2') => 2,
                        _ => return Err(unsupported("this '>&' redirection")),
                    };
                    tokens.push(Token::Redir(Redir::Dup { from: fd, to }));
                    i += 3;
                } else if chars.get(i + 1) == Some(&'>') {
                    tokens.push(Token::RedirTo { fd, append: true, input: false });
                    i += 2;
                } else if chars.get(i + 1) == Some(&'(') {
                    return Err(unsupported("process substitution"));
                } else {
                    tokens.push(Token::RedirTo { fd, append: false, input: false });
                    i += 1;
                }
            }
            '(' | ')' | '{' | '}' if !in_word => {
                return Err(unsupported("a subshell or command group"));
            }
            '`' => return Err(unsupported("command substitution `...`")),
            '$' => {
                in_word = true;
                dollar(&chars, &mut i, &mut word, last)?;
            }
            '\\' => {
                in_word = true;
                match chars.get(i + 1) {
                    Some('\n') => {}
                    Some(&next) => word.push(next),
                    None => {}
                }
                i += 2;
            }
            '\'' => {
                in_word = true;
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or_else(|| SyntaxError("unexpected EOF while looking for matching `''".into()))?;
                word.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
            }
            '"' => {
                in_word = true;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(SyntaxError("unexpected EOF while looking for matching `\"'".into())),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                        }
                        Some('\\') if chars.get(i + 1) == Some(&'\n') => i += 2,
                        Some('$') => dollar(&chars, &mut i, &mut word, last)?,
                        Some('`') => return Err(unsupported("command substitution `...`")),
                        Some(&c) => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
            }
            c => {
                in_word = true;
                word.push(c);
                i += 1;
            }
        }
    }
    flush(&mut word, &mut in_word, &mut tokens);
    Ok(tokens)
}

/// Parses one command line. `last` is what `$?` expands to.
pub fn parse(line: &str, last: i32) -> Result<Script, SyntaxError> {
    let tokens = tokenize(line, last)?;
    let mut items: Vec<(Connector, Pipeline)> = Vec::new();
    let mut connector = Connector::Always;
    let mut pipeline = Pipeline { commands: Vec::new() };
    let mut current = Simple { argv: Vec::new(), redirs: Vec::new() };
    let mut it = tokens.into_iter().peekable();
    let near = |t: &str| SyntaxError(format!("syntax error near unexpected token `{t}'"));
    while let Some(token) = it.next() {
        match token {
            Token::Word(w) => current.argv.push(w),
            Token::Redir(r) => current.redirs.push(r),
            Token::RedirTo { fd, append, input } => {
                let Some(Token::Word(path)) = it.next() else {
                    return Err(SyntaxError("syntax error near unexpected token `newline'".into()));
                };
                current.redirs.push(if input { Redir::In { path } } else { Redir::Out { fd, path, append } });
            }
            Token::Pipe => {
                if current.argv.is_empty() {
                    return Err(near("|"));
                }
                pipeline
                    .commands
                    .push(std::mem::replace(&mut current, Simple { argv: Vec::new(), redirs: Vec::new() }));
            }
            Token::And | Token::Or | Token::Semi => {
                let text = match token {
                    Token::And => "&&",
                    Token::Or => "||",
                    _ => ";",
                };
                if current.argv.is_empty() && current.redirs.is_empty() {
                    if token == Token::Semi && pipeline.commands.is_empty() {
                        // An empty line or a trailing `;`.
                        continue;
                    }
                    return Err(near(text));
                }
                pipeline
                    .commands
                    .push(std::mem::replace(&mut current, Simple { argv: Vec::new(), redirs: Vec::new() }));
                items.push((connector, std::mem::replace(&mut pipeline, Pipeline { commands: Vec::new() })));
                connector = match token {
                    Token::And => Connector::And,
                    Token::Or => Connector::Or,
                    _ => Connector::Always,
                };
                if connector != Connector::Always {
                    // `a &&` followed by a newline continues on the next line.
                    while it.peek() == Some(&Token::Semi) {
                        it.next();
                    }
                }
            }
        }
    }
    if !current.argv.is_empty() || !current.redirs.is_empty() {
        pipeline.commands.push(current);
    } else if !pipeline.commands.is_empty() || connector != Connector::Always {
        return Err(SyntaxError("syntax error: unexpected end of file".into()));
    }
    if !pipeline.commands.is_empty() {
        items.push((connector, pipeline));
    }
    Ok(Script { items })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &Script) -> Vec<Vec<Vec<String>>> {
        s.items.iter().map(|(_, p)| p.commands.iter().map(|c| c.argv.clone()).collect()).collect()
    }

    #[test]
    fn quotes_operators_and_redirections() {
        let s = parse(
            r#"sudo -n mkdir -p '/var/lib/vz/snippets' && cat > "/tmp/a b" ; echo "x\"y" 2>/dev/null || true"#,
            0,
        )
        .unwrap();
        assert_eq!(
            words(&s),
            vec![
                vec![vec!["sudo", "-n", "mkdir", "-p", "/var/lib/vz/snippets"]],
                vec![vec!["cat"]],
                vec![vec!["echo", "x\"y"]],
                vec![vec!["true"]],
            ]
            .into_iter()
            .map(|p| p.into_iter().map(|c| c.into_iter().map(String::from).collect()).collect())
            .collect::<Vec<Vec<Vec<String>>>>()
        );
        assert_eq!(s.items[1].0, Connector::And);
        assert_eq!(s.items[2].0, Connector::Always);
        assert_eq!(s.items[3].0, Connector::Or);
        assert_eq!(s.items[1].1.commands[0].redirs, vec![Redir::Out { fd: 1, path: "/tmp/a b".into(), append: false }]);
        assert_eq!(
            s.items[2].1.commands[0].redirs,
            vec![Redir::Out { fd: 2, path: "/dev/null".into(), append: false }]
        );
    }

    #[test]
    fn pipes_dups_and_variables() {
        let s = parse("echo $HOME/x \"$?\" | tee -a f >/dev/null 2>&1", 3).unwrap();
        let p = &s.items[0].1;
        assert_eq!(p.commands[0].argv, ["echo", "/root/x", "3"]);
        assert_eq!(p.commands[1].argv, ["tee", "-a", "f"]);
        assert_eq!(p.commands[1].redirs[1], Redir::Dup { from: 2, to: 1 });
    }

    #[test]
    fn refusals() {
        for bad in ["echo $(id)", "echo `id`", "sleep 1 &", "(cd /)", "echo $FOO", "cat <<EOF", "a &&", "| b", "'x"] {
            assert!(parse(bad, 0).is_err(), "{bad} parsed");
        }
        assert_eq!(parse("  # only a comment\n", 0).unwrap().items.len(), 0);
        assert_eq!(parse("a &&\n b", 0).unwrap().items.len(), 2);
    }
}
