//! The Prometheus export against the real thing: Debian's prometheus-node-exporter reading
//! memwatch's textfile, and a Prometheus server scraping `--prometheus-listen` and
//! evaluating the alert rules of docs/prometheus-rules.yml. `.ci/run` installs both.

use crate::util::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The body of `GET path` on 127.0.0.1:port, or `None` when nothing answers.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

fn wait_for(port: u16, path: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, path).is_none() {
        assert!(
            Instant::now() < deadline,
            "{what} never answered on port {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn daemon(program: &str, args: &[String]) -> ChildGuard {
    ChildGuard(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("'{program}' is needed (.ci/run installs it): {e}")),
    )
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{text}"))
}

fn value(s: &prometheus_parse::Sample) -> f64 {
    match s.value {
        prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

/// The value of `metric` whose labels include all of `labels`.
fn find(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(value)
}

#[test]
fn node_exporter_serves_the_textfile_with_the_growing_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let textfiles = dir.path().join("textfiles");
    std::fs::create_dir(&textfiles).unwrap();
    let port = free_port();
    let _node_exporter = daemon(
        "prometheus-node-exporter",
        &[
            "--collector.disable-defaults".into(),
            "--collector.textfile".into(),
            format!("--collector.textfile.directory={}", textfiles.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
    );
    wait_for(port, "/metrics", "prometheus-node-exporter");
    // a leaking service and two steady ones, under a name of this test's own
    let name = format!("mwpx-{}", std::process::id() % 100_000);
    let bin = dir.path().join(&name);
    std::os::unix::fs::symlink(fixture_bin(), &bin).unwrap();
    let start = |args: &[&str]| {
        ChildGuard(
            Command::new(&bin)
                .args(args)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let leak = start(&["leak", "8MiB/s"]);
    let _steady = [start(&["steady"]), start(&["steady"])];
    let textfile = textfiles.join("memwatch.prom");
    let mut mw = ChildGuard(
        memwatch(dir.path())
            .args([
                "--all",
                "--name",
                &format!("^{name}$"),
                "--interval",
                "500ms",
            ])
            .args([
                "--duration",
                "2m",
                "--prometheus-top",
                "1",
                "--out",
                "out",
                "--quiet",
            ])
            .arg("--prometheus-textfile")
            .arg(&textfile)
            .spawn()
            .unwrap(),
    );
    let pid = leak.pid().to_string();
    let deadline = Instant::now() + Duration::from_secs(40);
    let seen = loop {
        let body = get(port, "/metrics").expect("node_exporter answers");
        let s = scrape(&body);
        if find(
            &s,
            "memwatch_verdict",
            &[("pid", &pid), ("verdict", "growing")],
        ) == Some(1.0)
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no growing verdict via node_exporter:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(find(&seen, "node_textfile_scrape_error", &[]), Some(0.0));
    let p = [("pid", pid.as_str()), ("name", name.as_str())];
    assert!(find(&seen, "memwatch_rss_bytes", &p).unwrap() > 8.0 * MIB);
    assert!(find(&seen, "memwatch_anon_bytes", &p).unwrap() > 0.0);
    let slope = find(&seen, "memwatch_slope_bytes_per_second", &p).unwrap();
    assert!(slope > 4.0 * MIB && slope < 16.0 * MIB, "{slope}");
    assert_eq!(
        find(
            &seen,
            "memwatch_verdict",
            &[("pid", &pid), ("verdict", "stable")]
        ),
        Some(0.0)
    );
    assert!(find(&seen, "memwatch_samples_total", &p).unwrap() >= 10.0);
    assert_eq!(
        find(&seen, "memwatch_processes", &[("state", "watched")]),
        Some(3.0)
    );
    // bounded: every grower and the top 1 of the ranking, not every process watched
    let exported = find(&seen, "memwatch_exported_series", &[]).unwrap();
    let pids: std::collections::BTreeSet<&str> = seen
        .samples
        .iter()
        .filter(|s| s.metric == "memwatch_rss_bytes")
        .filter_map(|s| s.labels.get("pid"))
        .collect();
    assert_eq!(exported, pids.len() as f64);
    assert_eq!(
        pids.into_iter().collect::<Vec<_>>(),
        [pid.as_str()],
        "top 1: the leak"
    );
    assert!(find(&seen, "memwatch_machine_rss_bytes", &[]).unwrap() > 8.0 * MIB);
    // written for node_exporter's user to read, and no temporary left behind
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&textfile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(entries(&textfiles), ["memwatch.prom"]);
    // the run ends (Ctrl-C): the file goes, and the series with it
    send_signal(mw.pid(), libc::SIGINT);
    assert_eq!(wait_guarded(&mut mw).code(), Some(1));
    assert!(entries(&textfiles).is_empty());
    let body = get(port, "/metrics").unwrap();
    assert!(!body.contains("memwatch_"), "{body}");
}

#[test]
fn prometheus_evaluates_the_alert_rules_on_memwatchs_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let leak = start_fixture(&["leak", "8MiB/s"]);
    let port = free_port();
    let mut mw = ChildGuard(
        memwatch(dir.path())
            .args(["--pid", &leak.pid().to_string(), "--interval", "500ms"])
            .args(["--duration", "2m", "--out", "out", "--quiet"])
            .args(["--prometheus-listen", &format!("127.0.0.1:{port}")])
            .spawn()
            .unwrap(),
    );
    wait_for(port, "/metrics", "memwatch --prometheus-listen");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus-rules.yml");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: memwatch\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let web = free_port();
    let _prometheus = daemon(
        "prometheus",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{web}"),
        ],
    );
    wait_for(web, "/-/ready", "prometheus");
    // the rules of docs/prometheus-rules.yml load and evaluate
    let rules: serde_json::Value =
        serde_json::from_str(&get(web, "/api/v1/rules").unwrap()).unwrap();
    let loaded: Vec<&serde_json::Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert!(loaded.len() >= 2, "{rules}");
    // the growing verdict, scraped from memwatch, raises the alert
    let pid = leak.pid().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let alert = loop {
        let body = get(web, "/api/v1/alerts").unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let found = v["data"]["alerts"].as_array().and_then(|alerts| {
            alerts
                .iter()
                .find(|a| {
                    a["labels"]["alertname"] == "MemwatchMemoryGrowing" && a["labels"]["pid"] == pid
                })
                .cloned()
        });
        if let Some(a) = found {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert on the growing verdict: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        matches!(alert["state"].as_str(), Some("pending" | "firing")),
        "{alert}"
    );
    assert_eq!(alert["labels"]["name"], "fixture");
    // every rule evaluated without an error (the time-to-limit one finds no node_exporter
    // series here, and says nothing)
    let rules: serde_json::Value =
        serde_json::from_str(&get(web, "/api/v1/rules").unwrap()).unwrap();
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{r}");
        }
    }
    // Prometheus scraped memwatch's OpenMetrics (it asks for it first) without an error
    let targets: serde_json::Value =
        serde_json::from_str(&get(web, "/api/v1/targets").unwrap()).unwrap();
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target}");
    send_signal(mw.pid(), libc::SIGINT);
    assert_eq!(wait_guarded(&mut mw).code(), Some(1));
}

/// Waits for a guarded child (killed on drop if the test fails first), at most a minute.
fn wait_guarded(child: &mut ChildGuard) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "memwatch did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_documented_alert_rules_fire_when_they_should() {
    // promtool (from Debian's prometheus) runs the rules of docs/prometheus-rules.yml on
    // series shaped as memwatch writes them: a leak alerts, a steady process does not, and
    // the time to the memory limit is worked out from the floor's slope
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = Command::new("promtool")
        .args(["test", "rules", "prometheus-rules-test.yml"])
        .current_dir(&fixtures)
        .output()
        .unwrap_or_else(|e| panic!("'promtool' is needed (.ci/run installs prometheus): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    assert!(out.status.success() && text.contains("SUCCESS"), "{text}");
}
