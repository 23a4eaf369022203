//! Throughput of the local hub (its release binary) under concurrent lifecycles, on moto and in
//! memory, with the CPU each process used: where the emulator, not the hub, is the bottleneck,
//! its share shows it.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hub_tests::fakes::{FakeAshby, FakeVendor};
use hub_tests::lifecycle::{Callers, hub_config, percentile};

use crate::{ASHBY_KEY, PACKAGE, VENDOR_SECRET, ms};

struct Run {
    store: &'static str,
    lifecycles: usize,
    in_flight: usize,
    requests: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    /// CPU seconds each process used during the run.
    cpu: Vec<(&'static str, f64)>,
}

pub struct Throughput {
    runs: Vec<Run>,
}

/// Lifecycles on moto (16 requests in flight), and ten times as many in memory (64 in flight).
pub async fn run(lifecycles: usize) -> Throughput {
    let table = format!("hub-bench-{}", uuid::Uuid::new_v4().simple());
    Throughput {
        runs: vec![
            one("DynamoDB (moto)", Some(table), lifecycles, 16).await,
            one("memory", None, lifecycles * 10, 64).await,
        ],
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces, in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn one(
    store: &'static str,
    table: Option<String>,
    lifecycles: usize,
    in_flight: usize,
) -> Run {
    let vendor = FakeVendor::start(VENDOR_SECRET).await;
    let ashby = FakeAshby::start(ASHBY_KEY).await;
    let token = format!("bench-token-{}", uuid::Uuid::new_v4());
    let dir = std::env::temp_dir().join(format!("hub-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("hub.toml");
    std::fs::write(
        &config,
        hub_config(
            &vendor.order_url,
            VENDOR_SECRET,
            &token,
            &ashby.base_url,
            ASHBY_KEY,
        ),
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = tokio::process::Command::new(hub_tests::lambda::bin_dir().join("hub-local"));
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--config")
        .arg(&config)
        .arg("--retry-interval-ms")
        .arg("200")
        .env("AWS_ENDPOINT_URL", hub_tests::aws::endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env(
            "HUB_SECRET_PREFIX",
            format!("bench-{}/", uuid::Uuid::new_v4().simple()),
        )
        .env("HUB_ALLOW_INSECURE_LOOPBACK", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(t) = &table {
        cmd.arg("--table").arg(t);
    }
    let mut hub = cmd
        .spawn()
        .expect("spawn hub-local (build it with --release)");
    let hub_pid = hub.id().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "hub-local did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let callers = std::sync::Arc::new(Callers::new(
        &format!("http://127.0.0.1:{port}"),
        &token,
        PACKAGE,
        VENDOR_SECRET,
        in_flight,
    ));
    let moto_pid: Option<u32> = std::env::var("HUB_BENCH_MOTO_PID")
        .ok()
        .and_then(|p| p.parse().ok());
    let pids = [
        ("hub-local", Some(hub_pid)),
        ("moto", moto_pid),
        (
            "bench driver (callers, fake vendor and Ashby)",
            Some(std::process::id()),
        ),
    ];
    let before: Vec<Option<f64>> = pids.iter().map(|(_, p)| p.and_then(cpu_seconds)).collect();
    let began = Instant::now();
    let tasks: Vec<_> = (0..lifecycles)
        .map(|i| {
            let c = callers.clone();
            tokio::spawn(async move { c.lifecycle(i).await })
        })
        .collect();
    for t in tasks {
        t.await
            .unwrap()
            .unwrap_or_else(|e| panic!("a lifecycle failed on {store}: {e}"));
    }
    let elapsed = began.elapsed();
    let cpu = pids
        .iter()
        .zip(before)
        .filter_map(|((name, pid), before)| Some((*name, pid.and_then(cpu_seconds)? - before?)))
        .collect();
    let _ = hub.kill().await;
    let mut latencies: Vec<Duration> = callers.timings().iter().map(|(_, _, d)| *d).collect();
    latencies.sort();
    Run {
        store,
        lifecycles,
        in_flight,
        requests: latencies.len(),
        elapsed,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        cpu,
    }
}

impl Throughput {
    pub fn report(&self) -> String {
        let mut out = String::new();
        writeln!(
            out,
            "\n## Throughput of the local hub (release build; lifecycles of start, in_progress, completed, all at once)\n"
        )
        .unwrap();
        writeln!(
            out,
            "| store | lifecycles | in flight | requests | requests/s | p50 ms | p99 ms | CPU seconds used during the run |"
        )
        .unwrap();
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|").unwrap();
        for r in &self.runs {
            let cpu: Vec<String> = r
                .cpu
                .iter()
                .map(|(name, s)| format!("{name} {s:.1}"))
                .collect();
            writeln!(
                out,
                "| {} | {} | {} | {} | {:.1} | {} | {} | {} (of {:.1} s wall) |",
                r.store,
                r.lifecycles,
                r.in_flight,
                r.requests,
                r.requests as f64 / r.elapsed.as_secs_f64(),
                ms(r.p50),
                ms(r.p99),
                cpu.join("; "),
                r.elapsed.as_secs_f64(),
            )
            .unwrap();
        }
        out
    }
}
