//! Child processes with a deadline. Every external program a test (or a tool of
//! this crate) runs — `pulumi`, `talosctl`, `go`, `openssl`, `ssh`, the lab binary —
//! goes through [`output_within`]: a run that overruns is killed with its whole
//! process group (a `pulumi` run takes its plugins and language hosts with it) and
//! reported with everything it printed so far, instead of hanging the suite.
//!
//! Owns: spawning in a new process group, draining stdout/stderr while waiting.
//! Must not: retry, or judge the exit status (callers do).

use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A run that did not end within its deadline (it was killed), or could not start.
#[derive(Debug)]
pub struct Overrun {
    pub command: String,
    pub within: Duration,
    /// What it printed before it was killed (stdout, then stderr); empty when it did not start.
    pub printed: String,
    /// Why it could not start, when it did not.
    pub spawn_error: Option<std::io::Error>,
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.spawn_error {
            Some(e) => write!(f, "{} could not start: {e}", self.command),
            None => write!(
                f,
                "{} did not finish within {:?} and was killed (with its process group); it printed:\n{}",
                self.command, self.within, self.printed
            ),
        }
    }
}

impl std::error::Error for Overrun {}

/// Runs `command` to the end with stdin closed and stdout/stderr captured, like
/// [`Command::output`], but kills it (and every process in its group) when it has not
/// ended `within` of starting.
pub fn output_within(command: &mut Command, within: Duration) -> Result<Output, Overrun> {
    Running::start(command)?.finish_within(within)
}

/// A child started in its own process group with its output drained as it comes, for
/// callers that act while it runs (e.g. kill one of its descendants) before [`finish_within`].
///
/// [`finish_within`]: Running::finish_within
pub struct Running {
    child: Child,
    name: String,
    stdout: Drained,
    stderr: Drained,
}

impl Running {
    /// Starts `command` with stdin closed and stdout/stderr captured.
    pub fn start(command: &mut Command) -> Result<Running, Overrun> {
        Running::start_fed(command, None)
    }

    /// Starts `command` with `input` (then end of file) on its stdin, or stdin closed.
    pub fn start_fed(command: &mut Command, input: Option<Vec<u8>>) -> Result<Running, Overrun> {
        let name = describe(command);
        let mut child = command
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| Overrun {
                command: name.clone(),
                within: Duration::ZERO,
                printed: String::new(),
                spawn_error: Some(e),
            })?;
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
            std::thread::spawn(move || {
                use std::io::Write as _;
                let _ = stdin.write_all(&input);
            });
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Ok(Running { child, name, stdout, stderr })
    }

    /// The child's pid (also its process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What it printed so far (stdout, then stderr).
    pub fn printed(&self) -> String {
        format!("{}{}", lossy(&self.stdout.0), lossy(&self.stderr.0))
    }

    /// Waits for the end, at most `within` from now; past that, kills its process group.
    pub fn finish_within(mut self, within: Duration) -> Result<Output, Overrun> {
        let deadline = Instant::now() + within;
        let status: Option<ExitStatus> = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => break None,
            }
        };
        let Some(status) = status else {
            kill_group(self.child.id());
            let _ = self.child.wait();
            return Err(Overrun { command: self.name.clone(), within, printed: self.printed(), spawn_error: None });
        };
        // The child ended; its pipes close once every process of the group that holds them has.
        let (stdout, stderr) = (self.stdout.finish(deadline), self.stderr.finish(deadline));
        Ok(Output { status, stdout, stderr })
    }
}

impl Drop for Running {
    /// A run abandoned by a panicking caller takes its process group with it.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

/// [`output_within`] for tests: panics with the [`Overrun`] (and what was printed).
pub fn output_or_panic(command: &mut Command, within: Duration) -> Output {
    output_within(command, within).unwrap_or_else(|e| panic!("{e}"))
}

/// The first line a started server prints on stdout (its address or port), read within
/// `within`; past that the server is killed and the caller gets an error. The rest of stdout
/// is drained on a thread so the server never blocks on a full pipe.
pub fn first_line_within(child: &mut Child, within: Duration) -> Result<String, String> {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().ok_or("the child's stdout is not piped")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    match rx.recv_timeout(within) {
        Ok(line) if !line.is_empty() => Ok(line),
        Ok(_) => Err(format!("the server (pid {}) ended its output before its first line", child.id())),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("the server (pid {}) printed no first line within {within:?}; killed", child.id()))
        }
    }
}

/// A pipe read to its end on a thread, readable so far at any time.
struct Drained(Arc<Mutex<Vec<u8>>>, Option<JoinHandle<()>>);

impl Drained {
    /// Waits (until `deadline`, then at most a moment more) for the reader, and returns the bytes.
    fn finish(&mut self, deadline: Instant) -> Vec<u8> {
        if let Some(reader) = self.1.take() {
            let until = deadline.max(Instant::now() + Duration::from_secs(2));
            while !reader.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Drained {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let Some(mut pipe) = pipe else { return Drained(bytes, None) };
    let sink = bytes.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&buf[..n]);
        }
    });
    Drained(bytes, Some(reader))
}

fn lossy(bytes: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&bytes.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// SIGKILL to the process group `pgid` (the child made its own group).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    format!("`{text}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_within_its_deadline_is_an_ordinary_output() {
        let out =
            output_within(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(30))
                .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn an_overrun_is_killed_with_its_group_and_reports_what_it_printed() {
        let dir = std::env::temp_dir().join(format!("deadline-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("grandchild.pid");
        // A grandchild that would outlive a kill of the direct child alone.
        let script = format!("sleep 300 & echo $! > {}; echo started; wait", pidfile.display());
        let started = Instant::now();
        let e = output_within(Command::new("sh").args(["-c", &script]), Duration::from_millis(500)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
        assert!(e.spawn_error.is_none());
        assert!(e.printed.contains("started"), "{e}");
        assert!(e.to_string().contains("did not finish within 500ms"), "{e}");
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
        // Gone, or a zombie waiting for whoever inherited it to reap it.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
                .unwrap_or(false)
        };
        let gone = (0..200).any(|_| {
            let a = alive();
            if a {
                std::thread::sleep(Duration::from_millis(10));
            }
            !a
        });
        assert!(gone, "the grandchild {pid} survived the deadline");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_program_that_does_not_exist_says_so() {
        let e = output_within(&mut Command::new("/nonexistent/program"), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("could not start"), "{e}");
    }
}
