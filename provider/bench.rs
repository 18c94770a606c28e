//! `pulumi-resource-proxmox-talos bench`: measures what users feel of the plugin
//! itself, by launching this binary as the engine does: start-up to the port
//! line, GetSchema latency, and resident memory when idle; and the local Talos
//! work: secrets generation and machine-config rendering with patches. Numbers
//! are printed, never asserted (timing belongs in benchmarks, not tests).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::rpc::proto::pulumirpc::{resource_provider_client::ResourceProviderClient, GetSchemaRequest};

/// Runs the benchmark; `args` may be `--runs N`.
pub fn run(args: &[String]) -> Result<(), String> {
    let runs: usize = match args {
        [flag, n] if flag == "--runs" => n.parse().map_err(|_| format!("--runs takes a number, not {n:?}"))?,
        [] => 20,
        _ => return Err("usage: bench [--runs N]".into()),
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut starts = Vec::new();
    for _ in 0..runs {
        let (mut child, _port, took) = launch(&exe)?;
        starts.push(took);
        let _ = child.kill();
        let _ = child.wait();
    }
    let (mut child, port, _) = launch(&exe)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = rt.block_on(async {
        let mut client = ResourceProviderClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| e.to_string())?
            .max_decoding_message_size(crate::rpc::launch::MAX_MESSAGE_SIZE);
        let mut first = None;
        let mut calls = Vec::new();
        let mut size = 0;
        for i in 0..runs.max(5) * 5 {
            let t = Instant::now();
            let resp = client.get_schema(GetSchemaRequest::default()).await.map_err(|e| e.to_string())?;
            size = resp.into_inner().schema.len();
            if i == 0 {
                first = Some(t.elapsed());
            } else {
                calls.push(t.elapsed());
            }
        }
        Ok::<_, String>((first.unwrap_or_default(), calls, size))
    });
    let rss = rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let (first, calls, size) = result?;
    println!(
        "plugin start -> port line: median {:.2} ms, max {:.2} ms ({} runs)",
        ms(median(&starts)),
        ms(max(&starts)),
        starts.len()
    );
    println!(
        "GetSchema ({size} bytes): first {:.2} ms, then median {:.3} ms, max {:.3} ms ({} calls)",
        ms(first),
        ms(median(&calls)),
        ms(max(&calls)),
        calls.len()
    );
    match rss {
        Some(kib) => println!("idle RSS after GetSchema: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("idle RSS: not available on this platform"),
    }
    talos_work(runs)
}

/// Secrets generation (contract v1.12: an RSA-4096 key) and rendering one node's
/// config with the seed's four patches.
fn talos_work(runs: usize) -> Result<(), String> {
    use crate::talos::config::{render, GenerateInput, MachineType};
    use crate::talos::secrets::{generate, SystemClock, VersionContract};

    let mut gens = Vec::new();
    let mut secrets = None;
    for _ in 0..runs.clamp(3, 10) {
        let t = Instant::now();
        let s = generate(VersionContract::V1_12, &SystemClock, &mut rand_core::OsRng).map_err(|e| e.to_string())?;
        gens.push(t.elapsed());
        secrets = Some(s);
    }
    let secrets = secrets.expect("at least one run");
    println!(
        "secrets generation (v1.12): median {:.1} ms, max {:.1} ms ({} runs)",
        ms(median(&gens)),
        ms(max(&gens)),
        gens.len()
    );

    let patches: Vec<String> = [
        "cluster:\n  network:\n    cni:\n      name: none\n  proxy:\n    disabled: true\n",
        "machine:\n  nodeLabels:\n    node.longhorn.io/create-default-disk: config\n",
        "machine:\n  kernel:\n    modules:\n      - name: nbd\n      - name: iscsi_tcp\n      - name: iscsi_generic\n      - name: configfs\n",
        "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: k8s-worker1\n",
    ]
    .map(String::from)
    .to_vec();
    let input = GenerateInput::new("talos-cluster", "https://192.168.1.210:6443", MachineType::Worker, &secrets);
    let mut renders = Vec::new();
    for _ in 0..runs.max(5) * 10 {
        let t = Instant::now();
        render(&input, &patches).map_err(|e| e.to_string())?;
        renders.push(t.elapsed());
    }
    println!(
        "machine config render, worker + 4 patches: median {:.3} ms, max {:.3} ms ({} runs)",
        ms(median(&renders)),
        ms(max(&renders)),
        renders.len()
    );
    Ok(())
}

fn launch(exe: &std::path::Path) -> Result<(Child, u16, Duration), String> {
    let t = Instant::now();
    let mut child = Command::new(exe)
        .arg("127.0.0.1:1") // an engine address, as the engine passes; nothing is sent until a log is made
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).map_err(|e| e.to_string())?;
    let took = t.elapsed();
    let port = line.trim().parse().map_err(|_| format!("the plugin printed {line:?} instead of a port"))?;
    Ok((child, port, took))
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s.get(s.len() / 2).copied().unwrap_or_default()
}

fn max(v: &[Duration]) -> Duration {
    v.iter().max().copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
