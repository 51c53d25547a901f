//! Start-up time of an in-process server with every certificate variant ready.
//!
//! One sample is the time from nothing to a started server: the certificate catalogue for the
//! hostname, a lookup of every server configuration it holds (each variant under each choice of
//! TLS versions), and [`Server::start`], which loads TLS for the hostname itself. The server is
//! shut down after the clock stops, so shutting down is not part of the figure.
//!
//! - **cold**: a hostname the process has never seen (`h{i}.lab.test`), so every certificate is
//!   generated, as in a fresh process;
//! - **warm**: the same hostname every time, so the catalogue comes from the per-process cache
//!   and the sample is binding the listener and starting its tasks.
//!
//! `bench/run` runs this with `cargo bench --bench startup` and reads the lines it prints, one per
//! figure, of the form `startup-cold samples=200 median_ms=1.234 p90_ms=1.567 ...`.

use std::time::{Duration, Instant};

use smtp_fault::tls::{self, CertVariant, TlsVersions};
use smtp_fault::{Server, ServerConfig};

/// Samples of each figure; each is also stopped by [`TIME_BUDGET`], whichever comes first.
const COLD_SAMPLES: usize = 200;
const WARM_SAMPLES: usize = 1000;

/// The most time either figure may take, so that a slow machine still finishes.
const TIME_BUDGET: Duration = Duration::from_secs(60);

/// The hostname of the warm figure.
const WARM_HOSTNAME: &str = "mx.lab.test";

/// How long one start took, in its two parts.
struct Sample {
    catalogue: Duration,
    total: Duration,
}

fn main() {
    // A single-threaded runtime keeps the samples free of scheduling between worker threads;
    // starting a server does not need more than one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    runtime.block_on(async {
        // The first server of a process pays one-off costs (the crypto provider's tables, the
        // runtime's I/O driver, the first socket) that a cold start in a long-lived test process
        // does not pay again; it is left out of both figures.
        start_once("warm-up.lab.test").await;

        let cold = sample_many(COLD_SAMPLES, |i| format!("h{i}.lab.test")).await;
        report("startup-cold", &cold);

        let warm = sample_many(WARM_SAMPLES, |_| WARM_HOSTNAME.to_string()).await;
        report("startup-warm", &warm);
    });
}

/// Takes up to `count` samples, the `i`th for hostname `hostname(i)`, within [`TIME_BUDGET`].
async fn sample_many(count: usize, hostname: impl Fn(usize) -> String) -> Vec<Sample> {
    let began = Instant::now();
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        if began.elapsed() > TIME_BUDGET {
            break;
        }
        samples.push(start_once(&hostname(i)).await);
    }
    samples
}

/// Starts one server for `hostname` with every certificate variant ready, then shuts it down.
async fn start_once(hostname: &str) -> Sample {
    let began = Instant::now();

    let catalogue = tls::catalogue(hostname);
    for &variant in CertVariant::ALL {
        for &versions in TlsVersions::ALL {
            std::hint::black_box(catalogue.server_config(variant, versions));
        }
    }
    let catalogue_done = began.elapsed();

    let config = ServerConfig {
        hostname: hostname.to_string(),
        ..ServerConfig::default()
    };
    let server = Server::start(config)
        .await
        .expect("a server binds to a free loopback port");
    let total = began.elapsed();

    server.shutdown().await;
    Sample {
        catalogue: catalogue_done,
        total,
    }
}

/// Prints one figure: the median and 90th percentile of the whole start, and the median of its
/// catalogue part.
fn report(name: &str, samples: &[Sample]) {
    let mut totals: Vec<Duration> = samples.iter().map(|s| s.total).collect();
    let mut catalogues: Vec<Duration> = samples.iter().map(|s| s.catalogue).collect();
    println!(
        "{name} samples={} median_ms={:.3} p90_ms={:.3} catalogue_median_ms={:.3}",
        samples.len(),
        millis(percentile(&mut totals, 0.5)),
        millis(percentile(&mut totals, 0.9)),
        millis(percentile(&mut catalogues, 0.5)),
    );
}

/// The nearest-rank percentile `p` (0 to 1) of `values`, which it sorts.
fn percentile(values: &mut [Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = (p * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
