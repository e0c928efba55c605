//! What the throughput benchmarks share: CPU time per runtime from `/proc`, and a one-instance
//! scenario whose port 22 is a server of the benchmark's own.

#![allow(dead_code)] // Each benchmark uses its own part of this module.

use std::net::SocketAddr;

/// `/proc` reports CPU time in USER_HZ ticks, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// Worker threads of each runtime (client side, server side).
const WORKERS: usize = 2;

/// A runtime whose threads are named `name` (`bench-client` or `bench-server`), so that
/// [`Cpu`] can tell their CPU time apart.
pub fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// CPU seconds (user + system) used so far: by the process, and by the threads of each runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub process: f64,
    pub client: f64,
    pub server: f64,
}

impl Cpu {
    /// Reads `/proc/self/stat` and every thread's `/proc/self/task/*/stat`; NaN where there is
    /// no `/proc`.
    pub fn now() -> Cpu {
        let process = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| parse_stat(&stat).map(|(_, seconds)| seconds))
            .unwrap_or(f64::NAN);
        let (mut client, mut server) = (0.0, 0.0);
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Cpu {
                process,
                client: f64::NAN,
                server: f64::NAN,
            };
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            match parse_stat(&stat) {
                Some(("bench-client", seconds)) => client += seconds,
                Some(("bench-server", seconds)) => server += seconds,
                _ => {}
            }
        }
        Cpu {
            process,
            client,
            server,
        }
    }

    pub fn since(self, before: Cpu) -> Cpu {
        Cpu {
            process: self.process - before.process,
            client: self.client - before.client,
            server: self.server - before.server,
        }
    }
}

/// CPU seconds (user + system) another process has used so far, all its threads together
/// (an external client such as the official session-manager-plugin); `None` without `/proc`.
pub fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|(_, seconds)| seconds)
}

/// A `/proc/…/stat` line's command name and utime + stime in seconds.
fn parse_stat(stat: &str) -> Option<(&str, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let command = stat.get(open + 1..close)?;
    // After the command: state (field 3), …, utime (field 14), stime (field 15).
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((command, (utime + stime) as f64 / TICKS_PER_SECOND))
}

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "111122223333";
pub const PROFILE: &str = "bench";
pub const ACCESS_KEY_ID: &str = "AKIAYW7IREEWU2DYLLU4";
pub const SECRET_ACCESS_KEY: &str = "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";
pub const ENDPOINT_ID: &str = "eice-0c7919e50564c6f7a";
pub const INSTANCE_ID: &str = "i-06133c3aacf6f15d2";
pub const INSTANCE_IP: &str = "10.10.1.21";

/// One running instance behind one endpoint, with an SSM Agent; its port 22 is the
/// benchmark's server at `backend`.
pub fn scenario_toml(backend: SocketAddr) -> String {
    format!(
        r#"
regions = ["{REGION}"]

[[accounts]]
id = "{ACCOUNT}"
alias = "bench"

[[profiles]]
name = "{PROFILE}"
account = "{ACCOUNT}"
region = "{REGION}"
access_key_id = "{ACCESS_KEY_ID}"
secret_access_key = "{SECRET_ACCESS_KEY}"

[[vpcs]]
id = "vpc-06701fdef60f5dd0d"
account = "{ACCOUNT}"
region = "{REGION}"
cidr = "10.10.0.0/16"

[[subnets]]
id = "subnet-096e388a9429c5ce6"
vpc = "vpc-06701fdef60f5dd0d"
cidr = "10.10.1.0/24"
availability_zone = "us-east-1a"

[[security_groups]]
id = "sg-0925b5aa79f5c0afe"
name = "eice"
vpc = "vpc-06701fdef60f5dd0d"
ingress = []

[[security_groups]]
id = "sg-03bdce9de075022f4"
name = "bench"
vpc = "vpc-06701fdef60f5dd0d"
ingress = [
  {{ protocol = "tcp", from_port = 22, to_port = 22, groups = ["sg-0925b5aa79f5c0afe"] }},
]

[[eic_endpoints]]
id = "{ENDPOINT_ID}"
subnet = "subnet-096e388a9429c5ce6"
security_groups = ["sg-0925b5aa79f5c0afe"]

[[instances]]
instance_id = "{INSTANCE_ID}"
subnet = "subnet-096e388a9429c5ce6"
state = "running"
instance_type = "t3.small"
image_id = "ami-02360a8ff6d9d8189"
private_ip = "{INSTANCE_IP}"
launch_time = 2024-09-12T08:15:00Z
tags = {{ Name = "bench-1" }}
ssm_agent = {{ version = "3.3.1142.0", ping_status = "Online" }}
security_groups = ["sg-03bdce9de075022f4"]
backends = {{ 22 = "tcp:{backend}" }}
"#
    )
}
