//! The file commands of the lab's node shell, with coreutils' options,
//! texts (C locale) and exit statuses: `cat`, `tee`, `echo`, `printf`,
//! `mkdir`, `mv`, `rm`, `test`/`[`, `ls`, `chmod`, `touch`, `pwd`, `sync`.
//! Paths are plain paths: the process is chrooted to the node's root
//! before any of these run (see the module above).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::io_text;

/// Runs `name` if it is a file command; `None` if it is not one.
pub fn run(name: &str, args: &[String], input: &mut dyn Read, out: &mut Vec<u8>, err: &mut Vec<u8>) -> Option<i32> {
    Some(match name {
        "echo" => echo(args, out),
        "printf" => printf(args, out, err),
        "cat" => cat(args, input, out, err),
        "tee" => tee(args, input, out, err),
        "mkdir" => mkdir(args, err),
        "mv" => mv(args, err),
        "rm" => rm(args, err),
        "test" => test(args, err),
        "[" => match args.split_last() {
            Some((last, rest)) if last == "]" => test(rest, err),
            _ => {
                let _ = writeln!(err, "bash: [: missing `]'");
                2
            }
        },
        "ls" => ls(args, out, err),
        "chmod" => chmod(args, err),
        "touch" => touch(args, err),
        "pwd" => {
            let _ = writeln!(out, "{}", std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default());
            0
        }
        "sync" => 0,
        _ => return None,
    })
}

/// Splits leading `-x` flags (grouped, like `-pv`) from operands; `--` ends them.
fn flags<'a>(args: &'a [String], known: &str, cmd: &str, err: &mut Vec<u8>) -> Result<(String, Vec<&'a String>), i32> {
    let mut set = String::new();
    let mut operands = Vec::new();
    let mut done = false;
    for a in args {
        if !done && a == "--" {
            done = true;
        } else if !done && a.starts_with('-') && a.len() > 1 {
            for c in a[1..].chars() {
                if !known.contains(c) {
                    let _ = writeln!(err, "{cmd}: invalid option -- '{c}'");
                    return Err(if cmd == "ls" { 2 } else { 1 });
                }
                set.push(c);
            }
        } else {
            operands.push(a);
        }
    }
    Ok((set, operands))
}

fn echo(args: &[String], out: &mut Vec<u8>) -> i32 {
    let (newline, words) = match args.first().map(String::as_str) {
        Some("-n") => (false, &args[1..]),
        _ => (true, args),
    };
    let _ = write!(out, "{}", words.join(" "));
    if newline {
        out.push(b'\n');
    }
    0
}

/// Backslash escapes as `printf` knows them.
fn escapes(s: &str) -> String {
    let mut r = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            r.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => r.push('\n'),
            Some('t') => r.push('\t'),
            Some('r') => r.push('\r'),
            Some('\\') => r.push('\\'),
            Some('0') => r.push('\0'),
            Some(o) => {
                r.push('\\');
                r.push(o);
            }
            None => r.push('\\'),
        }
    }
    r
}

/// `printf FORMAT [ARG...]`: `%s`, `%d`, `%b`, `%%`; the format repeats while arguments remain.
fn printf(args: &[String], out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
    let Some((format, mut rest)) = args.split_first() else {
        let _ = writeln!(err, "printf: usage: printf format [arguments]");
        return 2;
    };
    let format = escapes(format);
    loop {
        let mut used = 0;
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.extend_from_slice(c.to_string().as_bytes());
                continue;
            }
            let spec = chars.next();
            let arg = || rest.get(used).map(String::as_str).unwrap_or("");
            match spec {
                Some('%') => out.push(b'%'),
                Some('s') => {
                    out.extend_from_slice(arg().as_bytes());
                    used += 1;
                }
                Some('b') => {
                    out.extend_from_slice(escapes(arg()).as_bytes());
                    used += 1;
                }
                Some('d') | Some('i') => {
                    let a = arg();
                    let n: i64 = if a.is_empty() { 0 } else { a.parse().unwrap_or(0) };
                    let _ = write!(out, "{n}");
                    used += 1;
                }
                other => {
                    let _ =
                        writeln!(err, "printf: %{}: invalid directive", other.map(String::from).unwrap_or_default());
                    return 1;
                }
            }
        }
        if used == 0 || used >= rest.len() {
            return 0;
        }
        rest = &rest[used..];
    }
}

fn cat(args: &[String], input: &mut dyn Read, out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
    let Ok((_, files)) = flags(args, "", "cat", err) else { return 1 };
    if files.is_empty() {
        return match input.read_to_end(out) {
            Ok(_) => 0,
            Err(e) => {
                let _ = writeln!(err, "cat: -: {}", io_text(&e));
                1
            }
        };
    }
    let mut status = 0;
    for f in files {
        if f == "-" {
            let _ = input.read_to_end(out);
            continue;
        }
        if Path::new(f).is_dir() {
            let _ = writeln!(err, "cat: {f}: Is a directory");
            status = 1;
            continue;
        }
        match std::fs::read(f) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(e) => {
                let _ = writeln!(err, "cat: {f}: {}", io_text(&e));
                status = 1;
            }
        }
    }
    status
}

fn tee(args: &[String], input: &mut dyn Read, out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
    let Ok((set, files)) = flags(args, "ai", "tee", err) else { return 1 };
    let mut data = Vec::new();
    if let Err(e) = input.read_to_end(&mut data) {
        let _ = writeln!(err, "tee: standard input: {}", io_text(&e));
        return 1;
    }
    let mut status = 0;
    for f in files {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(set.contains('a'))
            .truncate(!set.contains('a'))
            .open(f)
            .and_then(|mut file| file.write_all(&data));
        if let Err(e) = written {
            let _ = writeln!(err, "tee: {f}: {}", io_text(&e));
            status = 1;
        }
    }
    out.extend_from_slice(&data);
    status
}

fn mode_arg(text: &str) -> Option<u32> {
    u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777)
}

fn mkdir(args: &[String], err: &mut Vec<u8>) -> i32 {
    // `-m MODE` takes a value: pull it out first.
    let mut mode = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-m" {
            match it.next().and_then(|m| mode_arg(m)) {
                Some(m) => mode = Some(m),
                None => {
                    let _ = writeln!(err, "mkdir: invalid mode");
                    return 1;
                }
            }
        } else {
            rest.push(a.clone());
        }
    }
    let Ok((set, dirs)) = flags(&rest, "pv", "mkdir", err) else { return 1 };
    if dirs.is_empty() {
        let _ = writeln!(err, "mkdir: missing operand");
        return 1;
    }
    let mut status = 0;
    for d in dirs {
        let made = if set.contains('p') { std::fs::create_dir_all(d) } else { std::fs::create_dir(d) };
        match made {
            Ok(()) => {
                if let Some(m) = mode {
                    let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(m));
                }
            }
            Err(e) => {
                let _ = writeln!(err, "mkdir: cannot create directory '{d}': {}", io_text(&e));
                status = 1;
            }
        }
    }
    status
}

fn mv(args: &[String], err: &mut Vec<u8>) -> i32 {
    let Ok((_, ops)) = flags(args, "fv", "mv", err) else { return 1 };
    let Some((dest, sources)) = ops.split_last().filter(|(_, s)| !s.is_empty()) else {
        let _ = writeln!(err, "mv: missing file operand");
        return 1;
    };
    let into_dir = Path::new(dest.as_str()).is_dir();
    if sources.len() > 1 && !into_dir {
        let _ = writeln!(err, "mv: target '{dest}' is not a directory");
        return 1;
    }
    let mut status = 0;
    for s in sources {
        if std::fs::symlink_metadata(s).is_err() {
            let _ = writeln!(err, "mv: cannot stat '{s}': No such file or directory");
            status = 1;
            continue;
        }
        let target = if into_dir {
            Path::new(dest.as_str()).join(Path::new(s.as_str()).file_name().unwrap_or_default())
        } else {
            Path::new(dest.as_str()).to_path_buf()
        };
        if let Err(e) = std::fs::rename(s, &target) {
            let _ = writeln!(err, "mv: cannot move '{s}' to '{}': {}", target.display(), io_text(&e));
            status = 1;
        }
    }
    status
}

fn rm(args: &[String], err: &mut Vec<u8>) -> i32 {
    let Ok((set, files)) = flags(args, "frRv", "rm", err) else { return 1 };
    let force = set.contains('f');
    let recursive = set.contains('r') || set.contains('R');
    if files.is_empty() && !force {
        let _ = writeln!(err, "rm: missing operand");
        return 1;
    }
    let mut status = 0;
    for f in files {
        if f == "/" || f == "/." {
            let _ = writeln!(err, "rm: it is dangerous to operate recursively on '/'");
            status = 1;
            continue;
        }
        let removed = match std::fs::symlink_metadata(f) {
            Err(e) if force && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(m) if m.is_dir() && !recursive => {
                let _ = writeln!(err, "rm: cannot remove '{f}': Is a directory");
                status = 1;
                continue;
            }
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(f),
            Ok(_) => std::fs::remove_file(f),
        };
        if let Err(e) = removed {
            let _ = writeln!(err, "rm: cannot remove '{f}': {}", io_text(&e));
            status = 1;
        }
    }
    status
}

/// `test EXPR`: unary file and string tests, `=`, `!=`, `-eq`..., `!`.
fn test(args: &[String], err: &mut Vec<u8>) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (negate, args) = match args.split_first() {
        Some((&"!", rest)) => (true, rest.to_vec()),
        _ => (false, args),
    };
    let result = match args.as_slice() {
        [] => Ok(false),
        [s] => Ok(!s.is_empty()),
        [op, p] => {
            let meta = std::fs::metadata(p);
            match *op {
                "-e" => Ok(meta.is_ok()),
                "-f" => Ok(meta.is_ok_and(|m| m.is_file())),
                "-d" => Ok(meta.is_ok_and(|m| m.is_dir())),
                "-s" => Ok(meta.is_ok_and(|m| m.len() > 0)),
                "-r" | "-w" => Ok(meta.is_ok()),
                "-x" => Ok(meta.is_ok_and(|m| m.permissions().mode() & 0o111 != 0)),
                "-L" | "-h" => Ok(std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())),
                "-z" => Ok(p.is_empty()),
                "-n" => Ok(!p.is_empty()),
                other => Err(format!("{other}: unary operator expected")),
            }
        }
        [a, op, b] => match *op {
            "=" | "==" => Ok(a == b),
            "!=" => Ok(a != b),
            "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" => match (a.parse::<i64>(), b.parse::<i64>()) {
                (Ok(x), Ok(y)) => Ok(match *op {
                    "-eq" => x == y,
                    "-ne" => x != y,
                    "-lt" => x < y,
                    "-le" => x <= y,
                    "-gt" => x > y,
                    _ => x >= y,
                }),
                _ => Err(format!("{}: integer expression expected", if a.parse::<i64>().is_err() { a } else { b })),
            },
            other => Err(format!("{other}: binary operator expected")),
        },
        _ => Err("too many arguments".to_string()),
    };
    match result {
        Ok(v) => i32::from(v == negate),
        Err(e) => {
            let _ = writeln!(err, "bash: test: {e}");
            2
        }
    }
}

fn ls(args: &[String], out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
    let Ok((set, paths)) = flags(args, "1aA", "ls", err) else { return 2 };
    let all = set.contains('a');
    let almost = set.contains('A');
    let paths: Vec<String> = if paths.is_empty() { vec![".".into()] } else { paths.into_iter().cloned().collect() };
    let mut status = 0;
    let many = paths.len() > 1;
    for (i, p) in paths.iter().enumerate() {
        match std::fs::metadata(p) {
            Err(e) => {
                let _ = writeln!(err, "ls: cannot access '{p}': {}", io_text(&e));
                status = 2;
            }
            Ok(m) if !m.is_dir() => {
                let _ = writeln!(out, "{p}");
            }
            Ok(_) => {
                let mut names: Vec<String> = match std::fs::read_dir(p) {
                    Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
                    Err(e) => {
                        let _ = writeln!(err, "ls: cannot open directory '{p}': {}", io_text(&e));
                        status = 2;
                        continue;
                    }
                };
                if all {
                    names.extend([".".to_string(), "..".to_string()]);
                }
                names.retain(|n| all || almost || !n.starts_with('.'));
                names.sort();
                if many {
                    let _ = writeln!(out, "{}{p}:", if i > 0 { "\n" } else { "" });
                }
                for n in names {
                    let _ = writeln!(out, "{n}");
                }
            }
        }
    }
    status
}

fn chmod(args: &[String], err: &mut Vec<u8>) -> i32 {
    let ops: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let Some((mode, files)) = ops.split_first().filter(|(_, f)| !f.is_empty()) else {
        let _ = writeln!(err, "chmod: missing operand");
        return 1;
    };
    let Some(mode) = mode_arg(mode) else {
        let _ = writeln!(err, "chmod: invalid mode: '{mode}' (the lab takes octal modes)");
        return 1;
    };
    let mut status = 0;
    for f in files {
        if let Err(e) = std::fs::set_permissions(f, std::fs::Permissions::from_mode(mode)) {
            let _ = writeln!(err, "chmod: cannot access '{f}': {}", io_text(&e));
            status = 1;
        }
    }
    status
}

fn touch(args: &[String], err: &mut Vec<u8>) -> i32 {
    let Ok((_, files)) = flags(args, "c", "touch", err) else { return 1 };
    let mut status = 0;
    for f in files {
        let touched = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)
            .and_then(|file| file.set_modified(std::time::SystemTime::now()));
        if let Err(e) = touched {
            let _ = writeln!(err, "touch: cannot touch '{f}': {}", io_text(&e));
            status = 1;
        }
    }
    status
}
