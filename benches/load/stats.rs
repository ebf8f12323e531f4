//! Counters and latency histograms shared by thousands of connection tasks, and CPU/RSS read
//! from /proc.
//!
//! Each tokio worker thread records into its own `ThreadStats` (registered once in a global
//! list), so the hot path is an uncontended mutex and a relaxed add; `Totals::collect` merges
//! them at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;

/// The harness's shared epoch: send timestamps in message contents are nanoseconds since it.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

pub struct ThreadStats {
    /// Bench messages delivered to a client (measured or warm-up).
    pub delivered: AtomicU64,
    /// End-to-end latency of measured deliveries (send timestamp in the payload -> received).
    pub e2e: Mutex<Histogram<u64>>,
    /// Ack latency (write of the event -> ack parsed) of measured sends.
    pub ack: Mutex<Histogram<u64>>,
}

static REGISTRY: Mutex<Vec<Arc<ThreadStats>>> = Mutex::new(Vec::new());

thread_local! {
    static LOCAL: Arc<ThreadStats> = {
        let stats = Arc::new(ThreadStats {
            delivered: AtomicU64::new(0),
            e2e: Mutex::new(new_histogram()),
            ack: Mutex::new(new_histogram()),
        });
        REGISTRY.lock().expect("stats registry").push(stats.clone());
        stats
    };
}

pub fn record_delivery(latency_ns: Option<u64>) {
    LOCAL.with(|s| {
        s.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(ns) = latency_ns {
            s.e2e
                .lock()
                .expect("histogram")
                .saturating_record(ns.max(1));
        }
    });
}

pub fn record_ack(latency_ns: u64) {
    LOCAL.with(|s| {
        s.ack
            .lock()
            .expect("histogram")
            .saturating_record(latency_ns.max(1));
    });
}

/// Bench messages delivered so far, all threads.
pub fn delivered_total() -> u64 {
    REGISTRY
        .lock()
        .expect("stats registry")
        .iter()
        .map(|s| s.delivered.load(Ordering::Relaxed))
        .sum()
}

pub fn merged_e2e() -> Histogram<u64> {
    merge(|s| &s.e2e)
}

pub fn merged_ack() -> Histogram<u64> {
    merge(|s| &s.ack)
}

fn merge(pick: impl Fn(&ThreadStats) -> &Mutex<Histogram<u64>>) -> Histogram<u64> {
    let mut all = new_histogram();
    for s in REGISTRY.lock().expect("stats registry").iter() {
        let h = pick(s).lock().expect("histogram");
        all.add(&*h).expect("same bounds");
    }
    all
}

/// Global counters of sends and acks (low rate compared to deliveries).
#[derive(Default)]
pub struct SendCounters {
    pub sent: AtomicU64,
    pub acked_ok: AtomicU64,
    pub acked_err: AtomicU64,
    /// Last error ack text, for the report.
    pub last_error: Mutex<Option<String>>,
}

impl SendCounters {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn ok(&self) -> u64 {
        self.acked_ok.load(Ordering::Relaxed)
    }
    pub fn err(&self) -> u64 {
        self.acked_err.load(Ordering::Relaxed)
    }
}

pub fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e4).round() / 100.0
}

pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| ms(h.value_at_quantile(q)))
}

/// Round to 3 significant-ish decimals for the JSON line.
pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// CPU time (user + system) of a process in seconds, from /proc/<pid>/stat.
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the rest follows the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime is field 14, stime field 15 (1-based in proc(5)).
    if fields.len() < 13 {
        bail!("short /proc/{pid}/stat");
    }
    let utime: f64 = fields[11].parse()?;
    let stime: f64 = fields[12].parse()?;
    Ok((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux architecture that matters here (sysconf(_SC_CLK_TCK)).
    100.0
}

/// Resident set size in KiB, from /proc/<pid>/status (VmRSS).
pub fn rss_kib(pid: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            return Ok(v.trim().trim_end_matches("kB").trim().parse()?);
        }
    }
    bail!("no VmRSS in /proc/{pid}/status")
}

/// CPU use of the server and of the harness itself between two points in time.
pub struct CpuWindow {
    server_pid: Option<String>,
    start: Instant,
    server0: f64,
    self0: f64,
}

pub struct CpuUse {
    pub seconds: f64,
    /// Percent of one core (200 = both cores of a 2-core machine).
    pub server_pct: Option<f64>,
    pub harness_pct: f64,
}

impl CpuWindow {
    pub fn start(server_pid: Option<u32>) -> Result<CpuWindow> {
        let server_pid = server_pid.map(|p| p.to_string());
        Ok(CpuWindow {
            server0: match &server_pid {
                Some(p) => cpu_seconds(p)?,
                None => 0.0,
            },
            self0: cpu_seconds("self")?,
            server_pid,
            start: Instant::now(),
        })
    }

    pub fn stop(&self) -> Result<CpuUse> {
        let seconds = self.start.elapsed().as_secs_f64();
        let server_pct = match &self.server_pid {
            Some(p) => Some(round((cpu_seconds(p)? - self.server0) / seconds * 100.0, 1)),
            None => None,
        };
        let harness_pct = round((cpu_seconds("self")? - self.self0) / seconds * 100.0, 1);
        Ok(CpuUse {
            seconds,
            server_pct,
            harness_pct,
        })
    }
}
