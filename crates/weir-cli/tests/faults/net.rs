//! Hosts with their own addresses: Linux network namespaces on one virtual switch.
//!
//! A [`Net`] is a *switch* namespace holding a bridge, an uplink veth from the test's own
//! namespace to it (so the test reaches every host at `10.213.N.1` → `10.213.N.x`), and one
//! namespace per host, each with an `eth0` veth whose other end is a bridge port in the switch.
//! The bridge lives in its own namespace on purpose: that namespace has no firewall rules, so
//! Docker's `FORWARD DROP` policy in the root namespace never sees the hosts' traffic.
//!
//! Faults: [`Net::cut`] takes a host's bridge port down (a partition: packets vanish, TCP
//! connections hang, nothing is refused), [`Net::heal`] brings it back.
//!
//! Everything is named `wf<pid>x<serial>-…` after the test process; [`Drop`] kills every process
//! left in the hosts and deletes the namespaces, and [`Net::new`] first removes what a dead
//! earlier run left behind.

use std::process::{Command, Stdio};

/// Runs `ip ARGS`; returns its stderr on failure.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip_ok(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("network setup failed: {e}");
    }
}

/// Why this machine cannot run the suite (not root, no `ip netns`), or `None`.
pub fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Some("network namespaces need root (run the suite as root, as CI does)".into());
    }
    let probe = format!("wf-probe-{}", std::process::id());
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("`ip netns add` does not work here: {e}"));
    }
    let _ = ip(&["netns", "del", &probe]);
    None
}

/// One host: a namespace and its address.
#[derive(Debug, Clone)]
pub struct Host {
    /// Short name (`pg`, `s1`, `a1`…).
    pub name: String,
    /// The namespace (`wf<tag>-<name>`).
    pub ns: String,
    /// Its address on the switch.
    pub ip: String,
    /// Its port on the bridge, in the switch namespace.
    port: String,
}

/// The switch and its hosts; see the module docs.
pub struct Net {
    tag: String,
    switch: String,
    uplink: String,
    subnet: String,
    hosts: Vec<Host>,
}

impl Net {
    /// A new switch, reachable from the test at `<subnet>.1`.
    pub fn new() -> Net {
        remove_leftovers();
        let pid = std::process::id();
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tag = format!("{pid}x{serial}");
        let subnet = format!("10.213.{}", (pid as usize + serial * 31) % 250 + 1);
        let switch = format!("wf{tag}-sw");
        let uplink = format!("wf{tag}u");
        let net = Net {
            tag,
            switch: switch.clone(),
            uplink: uplink.clone(),
            subnet: subnet.clone(),
            hosts: Vec::new(),
        };
        ip_ok(&["netns", "add", &switch]);
        ip_ok(&["-n", &switch, "link", "set", "lo", "up"]);
        ip_ok(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip_ok(&["-n", &switch, "link", "set", "br0", "up"]);
        ip_ok(&[
            "link", "add", &uplink, "type", "veth", "peer", "name", "up0", "netns", &switch,
        ]);
        ip_ok(&["addr", "add", &format!("{subnet}.1/24"), "dev", &uplink]);
        ip_ok(&["link", "set", &uplink, "up"]);
        ip_ok(&["-n", &switch, "link", "set", "up0", "master", "br0", "up"]);
        net
    }

    /// The test's own address on the switch.
    pub fn gateway(&self) -> String {
        format!("{}.1", self.subnet)
    }

    /// Adds host `name` with the next free address.
    pub fn host(&mut self, name: &str) -> Host {
        let n = self.hosts.len() + 10;
        let ns = format!("wf{}-{name}", self.tag);
        let port = format!("p{n}");
        let ip_addr = format!("{}.{n}", self.subnet);
        ip_ok(&["netns", "add", &ns]);
        ip_ok(&[
            "-n",
            &self.switch,
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ns,
        ]);
        ip_ok(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &port,
            "master",
            "br0",
            "up",
        ]);
        ip_ok(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip_addr}/24"),
            "dev",
            "eth0",
        ]);
        ip_ok(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        let host = Host {
            name: name.to_string(),
            ns,
            ip: ip_addr,
            port,
        };
        self.hosts.push(host.clone());
        host
    }

    /// Cuts `host` off the switch: every packet to or from it is lost until [`Net::heal`].
    pub fn cut(&self, host: &Host) {
        ip_ok(&["-n", &self.switch, "link", "set", &host.port, "down"]);
    }

    /// Reconnects `host` after [`Net::cut`].
    pub fn heal(&self, host: &Host) {
        ip_ok(&["-n", &self.switch, "link", "set", &host.port, "up"]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in &self.hosts {
            kill_all_in(&h.ns);
            let _ = ip(&["netns", "del", &h.ns]);
        }
        let _ = ip(&["link", "del", &self.uplink]);
        let _ = ip(&["netns", "del", &self.switch]);
    }
}

/// SIGKILLs every process in namespace `ns`.
pub fn kill_all_in(ns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = Command::new("kill")
            .args(["-KILL", pid])
            .stderr(Stdio::null())
            .status();
    }
}

static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Deletes namespaces and uplinks of earlier runs whose test process is gone (killed before
/// its `Drop` ran): names are `wf<pid>x<serial>-<host>`.
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some((tag, _)) = ns.strip_prefix("wf").and_then(|r| r.split_once('-')) else {
            continue;
        };
        let Some(pid) = tag.split_once('x').and_then(|(p, _)| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            kill_all_in(ns);
            let _ = ip(&["netns", "del", ns]);
            let _ = ip(&["link", "del", &format!("wf{tag}u")]);
        }
    }
}
