//! Running one benchmark child and measuring it from outside.
//!
//! The parent measures what the child cannot honestly measure itself:
//!
//! * wall time, from just before `spawn` to the moment the child has exited
//!   (process start-up included, about a millisecond);
//! * CPU time (user + system) and peak RSS, from the child's own `rusage`
//!   as `wait4` returns it. `wait4` is used rather than deltas of
//!   `getrusage(RUSAGE_CHILDREN)` because `ru_maxrss` of all children is a
//!   maximum, not a sum: a small child after a big one would inherit the big
//!   one's peak.
//!
//! Waiting protocol, which lets the parent kill a child that overruns its
//! timeout without ever signalling a recycled pid: a waiter thread drains
//! the child's stdout, then waits for the exit with `waitid(WNOWAIT)`, which
//! does *not* reap the child, and reports the exit instant on a channel.
//! Only the calling thread reaps (with `wait4`), after the waiter reported
//! or after it killed the still-unreaped child. So between spawn and
//! `wait4` the pid always names our child, alive or zombie.

use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::report::Outcome;

/// How a run ended, when it did not end well.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// Killed by the harness after the timeout.
    Killed(Duration),
    /// Exited non-zero or by a signal; the status and the last stderr line.
    Failed(String),
    /// Exited zero but its output could not be read.
    BadOutput(String),
}

/// One measured run.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Spawn to exit.
    pub wall: Duration,
    /// User plus system CPU time of the child.
    pub cpu: Duration,
    /// The child's peak resident set, in bytes.
    pub max_rss_bytes: u64,
    /// What the child reported.
    pub result: Result<Outcome, RunError>,
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

/// Blocks until child `pid` has exited, without reaping it.
fn wait_exit_unreaped(pid: libc::pid_t) -> io::Result<()> {
    let id = libc::id_t::try_from(pid).map_err(io::Error::other)?;
    loop {
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: `info` is a valid, writable siginfo_t; `pid` is our own
        // unreaped child (see the module comment), so P_PID names it.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                id,
                info.as_mut_ptr(),
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps child `pid`, returning its wait status and resource usage.
fn reap(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    loop {
        let mut status = 0;
        let mut usage = MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: both out-pointers are valid and writable; `pid` is our
        // own child, not yet reaped (only this function reaps it).
        let rc = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
        if rc == pid {
            // SAFETY: wait4 succeeded, so it filled in `usage` (and it was
            // zero-initialised before, which is a valid rusage anyway).
            return Ok((status, unsafe { usage.assume_init() }));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn read_all(mut from: impl Read) -> String {
    let mut bytes = Vec::new();
    // A read error leaves what was read; the parse reports what is missing.
    let _ = from.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn describe_status(status: libc::c_int, stderr: &str) -> String {
    let how = if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    };
    match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => format!("{how}: {}", line.trim()),
        None => how,
    }
}

/// Runs `cmd` to completion (or kills it after `timeout`) and measures it.
///
/// # Errors
/// The child could not be started or waited for.
pub fn measure(mut cmd: Command, timeout: Duration) -> io::Result<Measurement> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let stdout: ChildStdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = thread::spawn(move || read_all(stderr));
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let out = read_all(stdout);
        let exited = wait_exit_unreaped(pid).map(|()| Instant::now());
        // The receiver outlives this thread (it is joined below).
        let _ = tx.send(exited);
        out
    });
    let (exited, killed) = match rx.recv_timeout(timeout) {
        Ok(exited) => (exited, false),
        Err(_) => {
            // SAFETY: kill has no memory preconditions; `pid` is still our
            // unreaped child (only `reap` below reaps it), so no other
            // process can have its id.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (rx.recv().unwrap_or_else(|_| Ok(Instant::now())), true)
        }
    };
    let exited = exited?;
    let (status, usage) = reap(pid)?;
    let stdout = waiter.join().expect("stdout reader panicked");
    let stderr = stderr_reader.join().expect("stderr reader panicked");
    let wall = exited.duration_since(start);
    let result = if killed {
        Err(RunError::Killed(timeout))
    } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Outcome::parse(&stdout).map_err(|e| RunError::BadOutput(e.to_string()))
    } else {
        Err(RunError::Failed(describe_status(status, &stderr)))
    };
    Ok(Measurement {
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn measures_a_child_and_parses_its_result() {
        let m = measure(
            sh("echo 'result checksum=7 gc_count=2 max_pause_ns=-'"),
            Duration::from_secs(30),
        )
        .unwrap();
        let out = m.result.unwrap();
        assert_eq!(out.checksum, 7);
        assert_eq!(out.gc.count, Some(2));
        assert!(m.max_rss_bytes > 0);
    }

    #[test]
    fn reports_failure_with_the_last_stderr_line() {
        let m = measure(sh("echo boom >&2; exit 3"), Duration::from_secs(30)).unwrap();
        assert_eq!(
            m.result.unwrap_err(),
            RunError::Failed("exit status 3: boom".into())
        );
    }

    #[test]
    fn kills_a_child_that_overruns() {
        let m = measure(sh("exec sleep 30"), Duration::from_millis(100)).unwrap();
        assert_eq!(
            m.result.unwrap_err(),
            RunError::Killed(Duration::from_millis(100))
        );
        assert!(m.wall < Duration::from_secs(10));
    }
}
