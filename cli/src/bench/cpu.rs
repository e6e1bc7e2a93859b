//! CPU time and memory figures for the bench report: this process's user+system CPU
//! (`getrusage(RUSAGE_SELF)`, all threads) and, for a daemon we spawned, its CPU from
//! `/proc/<pid>/stat` and its peak resident memory from `/proc/<pid>/status` (`VmHWM`). Only
//! reading the numbers lives here; turning them into per-call figures is the report's job.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

/// User plus system CPU time this process (every thread of it) has used so far.
#[allow(unsafe_code)]
pub(crate) fn own_cpu() -> io::Result<Duration> {
    let mut usage = MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage(2) writes one `struct rusage` through the pointer, which points to
    // enough memory for one, owned by this frame. A zeroed `rusage` is a valid value (plain
    // integers), so `assume_init` is sound whether or not the call wrote anything; we only
    // read it after checking that the call succeeded.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        usage.assume_init()
    };
    Ok(timeval(usage.ru_utime) + timeval(usage.ru_stime))
}

fn timeval(t: libc::timeval) -> Duration {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let micros = u32::try_from(t.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

/// Clock ticks per second, the unit of the CPU times in `/proc/<pid>/stat`.
#[allow(unsafe_code)]
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf(3) takes a constant name, reads no memory of ours and cannot fail for
    // _SC_CLK_TCK on Linux; a failure would return -1, handled below.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // USER_HZ is 100 on every Linux architecture we would run on.
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// User plus system CPU time process `pid` has used so far (resolution: one clock tick,
/// usually 10 ms).
pub(crate) fn process_cpu(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = stat_cpu_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc stat"))?;
    let per_second = clock_ticks_per_second();
    Ok(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / per_second,
    ))
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted from the
/// last `)`: after it come field 3 (state) onwards, and utime and stime are fields 14 and 15.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The peak resident set size of process `pid`, in KiB (`VmHWM`).
pub(crate) fn peak_rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_kib(&status, "VmHWM:")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmHWM in /proc status"))
}

/// The resident set size of process `pid` now, in KiB (`VmRSS`).
pub(crate) fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_kib(&status, "VmRSS:")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS in /proc status"))
}

/// The value of a `Name:   1234 kB` line of `/proc/<pid>/status`.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let mut words = line[name.len()..].split_ascii_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_grows_while_we_compute() {
        let before = own_cpu().expect("getrusage");
        // Spin until the kernel has charged us more time: at most a few clock ticks.
        let mut x = 0u64;
        let mut after = before;
        for _ in 0..10_000 {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            after = own_cpu().expect("getrusage");
            if after > before {
                break;
            }
        }
        assert!(after > before, "{before:?} -> {after:?} ({x})");
    }

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // Fields 1..=15 of a real line, with a command name made to confuse a naive split.
        let line = "4242 (we ird) (name) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0";
        assert_eq!(stat_cpu_ticks(line), Some(10));
        assert_eq!(stat_cpu_ticks("4242 (x) S 1"), None, "too short");
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn our_own_proc_files_are_readable() {
        let pid = std::process::id();
        assert!(process_cpu(pid).is_ok());
        assert!(peak_rss_kib(pid).expect("VmHWM") > 0);
    }

    #[test]
    fn status_values_need_their_unit() {
        let status = "Name:\thearthd\nVmPeak:\t  20000 kB\nVmHWM:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(5120));
        assert_eq!(status_kib(status, "Threads:"), None, "no kB");
        assert_eq!(status_kib(status, "VmRSS:"), None);
    }
}
