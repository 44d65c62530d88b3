//! The test network: each node in its own network namespace, joined by a
//! veth pair to one bridge in the root namespace, where the test's clients
//! run (clients are never partitioned, like Jepsen's control node). Owns the
//! namespaces, links, nftables rules and qdiscs; never starts a node.
//!
//! Faults are rules in a node's own namespace (an `inet vfault` table that
//! drops input by source address, or at random) and qdiscs on its veth.
//! Every name and the subnet carry a per-process tag (claimed in
//! `/run/vltava-faults`), so two runs on one machine never touch each
//! other's network.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Whether a `Net` lives in this process (one at a time: they would share
/// a tag), and the condition a waiting `create` sleeps on.
static LIVE: Mutex<bool> = Mutex::new(false);
static LIVE_FREED: Condvar = Condvar::new();

/// Where each tag's owner writes its process id (a tag whose owner is
/// alive belongs to another run on this machine).
const OWNERS: &str = "/run/vltava-faults";

/// How many tags (third octets of 10.78.x.0/24) there are.
const TAGS: u32 = 200;

/// A node's fault rules, as last applied to its namespace.
#[derive(Debug, Default, Clone)]
struct Rules {
    /// Nodes whose packets this node drops.
    drop_from: BTreeSet<i32>,
    /// Percent of all incoming packets dropped at random.
    loss: u32,
}

/// The namespaces, links and rules of one run's nodes.
pub struct Net {
    tag: u32,
    n: i32,
    rules: Mutex<Vec<Rules>>,
    /// Released last, after `drop` removed everything.
    _live: Live,
}

/// This process's one live `Net` (a `Net` holds it; dropping frees it).
struct Live;

impl Live {
    /// Waits until no other `Net` of this process lives.
    fn acquire() -> Live {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        while *live {
            live = LIVE_FREED.wait(live).unwrap_or_else(|e| e.into_inner());
        }
        *live = true;
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = false;
        LIVE_FREED.notify_all();
    }
}

impl Net {
    /// `n` namespaces `vf<tag>n<id>` (ids 1..=n) on bridge `vf<tag>br`
    /// (10.78.<tag>.1/24); node `id` at 10.78.<tag>.(10+id). The tag is
    /// `pid % 200`, or the next one no live run holds. Waits while another
    /// `Net` of this process lives; first sweeps what runs whose process
    /// died left behind. Panics when setup fails (or `ip`, `nft`, `tc` are
    /// missing, or bridged traffic is blocked on this host).
    pub fn create(n: i32) -> Net {
        assert!((1..=9).contains(&n), "Net::create({n}): 1 to 9 nodes");
        require("ip", &["ip", "-V"]);
        require("nft", &["nft", "--version"]);
        require("tc", &["tc", "-V"]);
        let live = Live::acquire();
        let tag = claim_tag();
        let net = Net {
            tag,
            n,
            rules: Mutex::new(vec![Rules::default(); n as usize]),
            _live: live,
        };
        let br = net.bridge_name();
        must(&["ip", "link", "add", &br, "type", "bridge"]);
        must(&[
            "ip",
            "addr",
            "add",
            &format!("10.78.{tag}.1/24"),
            "dev",
            &br,
        ]);
        must(&["ip", "link", "set", &br, "up"]);
        for id in net.ids() {
            let ns = net.ns(id);
            let (outer, inner) = (net.outer(id), net.inner(id));
            must(&["ip", "netns", "add", &ns]);
            must(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            must(&[
                "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            must(&["ip", "link", "set", &inner, "netns", &ns]);
            must(&["ip", "link", "set", &outer, "master", &br]);
            must(&["ip", "link", "set", &outer, "up"]);
            let addr = format!("{}/24", net.ip(id));
            must(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inner,
            ]);
            must(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", &inner, "up",
            ]);
            net.apply(id, &Rules::default());
        }
        net.check_reachable();
        net
    }

    /// The node ids, 1..=n.
    pub fn ids(&self) -> Vec<i32> {
        (1..=self.n).collect()
    }

    /// This run's tag (the third octet of its subnet).
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// Node `id`'s namespace name (for `ip netns exec`).
    pub fn ns(&self, id: i32) -> String {
        self.check(id);
        format!("vf{}n{id}", self.tag)
    }

    /// Node `id`'s address.
    pub fn ip(&self, id: i32) -> Ipv4Addr {
        self.check(id);
        Ipv4Addr::new(10, 78, self.tag as u8, 10 + id as u8)
    }

    /// The bridge's address: where the test's clients come from.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 78, self.tag as u8, 1)
    }

    /// Nodes in different groups drop each other's packets (every node in
    /// exactly one group). Adds to the rules in force.
    pub fn partition(&self, groups: &[Vec<i32>]) {
        let mut seen = BTreeSet::new();
        for id in groups.iter().flatten() {
            self.check(*id);
            assert!(seen.insert(*id), "partition {groups:?}: node {id} twice");
        }
        assert_eq!(
            seen.len(),
            self.n as usize,
            "partition {groups:?}: every node in one group"
        );
        let ids = self.ids();
        self.change(|rules| {
            for group in groups {
                for id in group {
                    let others = ids.iter().filter(|o| !group.contains(o));
                    rules[(*id - 1) as usize].drop_from.extend(others);
                }
            }
        });
    }

    /// `middle` sees both sides; `left` and `right` do not see each other.
    pub fn bridge(&self, left: &[i32], right: &[i32], middle: i32) {
        let mut all: Vec<i32> = left.iter().chain(right).copied().collect();
        all.push(middle);
        all.sort();
        all.dedup();
        assert_eq!(
            all,
            self.ids(),
            "bridge {left:?} | {middle} | {right:?}: every node once"
        );
        self.change(|rules| {
            for (side, other) in [(left, right), (right, left)] {
                for id in side {
                    rules[(*id - 1) as usize].drop_from.extend(other);
                }
            }
        });
    }

    /// `to` drops every packet from `from`; `from` still hears `to` (so a
    /// TCP connection between them cannot work either way, but `from` keeps
    /// receiving what `to` sends).
    pub fn one_way(&self, from: i32, to: i32) {
        self.check(from);
        assert_ne!(from, to, "one_way from a node to itself");
        self.check(to);
        self.change(|rules| {
            rules[(to - 1) as usize].drop_from.insert(from);
        });
    }

    /// `percent` % of all packets into node `id` (from anyone, clients
    /// included) are dropped at random.
    pub fn lose(&self, id: i32, percent: u32) {
        assert!(percent <= 100, "lose {percent} %");
        self.check(id);
        self.change(|rules| rules[(id - 1) as usize].loss = percent);
    }

    /// Slows node `id` both ways: netem delay when the kernel has netem,
    /// else a tbf rate limit (which delays only what queues behind it).
    /// Says which.
    pub fn slow(&self, id: i32) -> String {
        let (outer, inner) = (self.outer(id), self.inner(id));
        let ns = self.ns(id);
        let netem = ["netem", "delay", "150ms", "50ms"];
        let tbf = ["tbf", "rate", "1mbit", "burst", "16kb", "latency", "400ms"];
        // Both ends of the veth: the outer one's egress is traffic into the
        // node, the inner one's is traffic out of it.
        let on = |qdisc: &[&str]| -> Result<(), String> {
            let mut outside = vec!["tc", "qdisc", "replace", "dev", &outer, "root"];
            outside.extend_from_slice(qdisc);
            run(&outside)?;
            let mut inside = vec!["ip", "netns", "exec", &ns];
            inside.extend_from_slice(&["tc", "qdisc", "replace", "dev", &inner, "root"]);
            inside.extend_from_slice(qdisc);
            run(&inside).map(drop)
        };
        match on(&netem) {
            Ok(()) => format!("netem delay 150ms ± 50ms both ways on node {id}'s veth"),
            Err(netem_err) => {
                if let Err(e) = on(&tbf) {
                    panic!("slow({id}): netem failed ({netem_err}) and tbf failed: {e}");
                }
                format!(
                    "tbf rate 1mbit (queue up to 400ms) both ways on node {id}'s veth \
                     (no netem in this kernel)"
                )
            }
        }
    }

    /// Clears every rule and qdisc on every node (idempotent).
    pub fn heal(&self) {
        self.change(|rules| rules.iter_mut().for_each(|r| *r = Rules::default()));
        for id in self.ids() {
            let _ = run(&["tc", "qdisc", "del", "dev", &self.outer(id), "root"]);
            let _ = run(&[
                "ip",
                "netns",
                "exec",
                &self.ns(id),
                "tc",
                "qdisc",
                "del",
                "dev",
                &self.inner(id),
                "root",
            ]);
        }
    }

    /// Whether any rule or qdisc is in force (what `heal` clears).
    pub fn faulty(&self) -> bool {
        self.lock_rules()
            .iter()
            .any(|r| r.loss > 0 || !r.drop_from.is_empty())
            || self.ids().into_iter().any(|id| {
                let out = run(&["tc", "qdisc", "show", "dev", &self.outer(id), "root"]);
                out.map(|o| o.contains("netem") || o.contains("tbf"))
                    .unwrap_or(false)
            })
    }

    /// A TCP connect to `to` from node `from`'s namespace (`None`: from
    /// the root namespace, where the clients are), within `timeout`.
    pub fn connect_from(
        &self,
        from: Option<i32>,
        to: SocketAddr,
        timeout: Duration,
    ) -> std::io::Result<()> {
        let ns = from.map(|id| self.ns(id));
        std::thread::scope(|s| {
            s.spawn(|| {
                if let Some(ns) = &ns {
                    enter_netns(ns)?;
                }
                TcpStream::connect_timeout(&to, timeout).map(drop)
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("connect thread panicked")))
        })
    }

    fn check(&self, id: i32) {
        assert!(
            (1..=self.n).contains(&id),
            "node {id}: this net has nodes 1..={}",
            self.n
        );
    }

    fn bridge_name(&self) -> String {
        format!("vf{}br", self.tag)
    }

    /// The root-namespace end of node `id`'s veth (on the bridge).
    fn outer(&self, id: i32) -> String {
        format!("vf{}v{id}", self.tag)
    }

    /// The namespace end of node `id`'s veth.
    fn inner(&self, id: i32) -> String {
        format!("vf{}p{id}", self.tag)
    }

    fn lock_rules(&self) -> std::sync::MutexGuard<'_, Vec<Rules>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the rules with `f` and writes every node's into its
    /// namespace.
    fn change(&self, f: impl FnOnce(&mut Vec<Rules>)) {
        let mut rules = self.lock_rules();
        f(&mut rules);
        for id in self.ids() {
            self.apply(id, &rules[(id - 1) as usize]);
        }
    }

    /// Writes node `id`'s `rules` into its namespace (all at once).
    fn apply(&self, id: i32, rules: &Rules) {
        let mut script = String::from(
            "table inet vfault {\n\
             \tchain input { type filter hook input priority 0; policy accept; }\n\
             }\n\
             flush chain inet vfault input\n",
        );
        if !rules.drop_from.is_empty() {
            let sources: Vec<String> = rules
                .drop_from
                .iter()
                .map(|o| self.ip(*o).to_string())
                .collect();
            script.push_str(&format!(
                "add rule inet vfault input ip saddr {{ {} }} drop\n",
                sources.join(", ")
            ));
        }
        if rules.loss >= 100 {
            // numgen's range is 0..=99: a 100 % loss is a plain drop.
            script.push_str("add rule inet vfault input drop\n");
        } else if rules.loss > 0 {
            script.push_str(&format!(
                "add rule inet vfault input numgen random mod 100 < {} drop\n",
                rules.loss
            ));
        }
        let ns = self.ns(id);
        if let Err(e) = run_stdin(&["ip", "netns", "exec", &ns, "nft", "-f", "-"], &script) {
            panic!("nft rules for node {id}: {e}\nscript:\n{script}");
        }
    }

    /// Panics unless the root namespace reaches every node and node 1
    /// reaches the others (a host whose bridge traffic passes a dropping
    /// firewall — br_netfilter and an iptables FORWARD policy — fails here).
    fn check_reachable(&self) {
        let timeout = Duration::from_secs(2);
        for id in self.ids() {
            let to = SocketAddr::from((self.ip(id), 9));
            let from: Vec<Option<i32>> = if id == 1 {
                vec![None]
            } else {
                vec![None, Some(1)]
            };
            for from in from {
                // Nobody listens on port 9: a refusal proves the path.
                match self.connect_from(from, to, timeout) {
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    other => panic!(
                        "the fault net cannot carry traffic from {} to node {id} ({to}): {other:?}; \
                         is bridged traffic filtered on this host (br_netfilter with an iptables \
                         FORWARD drop)?",
                        from.map_or("the root namespace".to_string(), |f| format!("node {f}"))
                    ),
                }
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for id in self.ids() {
            if let Err(e) = run(&["ip", "link", "del", &self.outer(id)]) {
                eprintln!("faults: removing node {id}'s veth: {e}");
            }
            if let Err(e) = run(&["ip", "netns", "del", &self.ns(id)]) {
                eprintln!("faults: removing namespace {}: {e}", self.ns(id));
            }
        }
        if let Err(e) = run(&["ip", "link", "del", &self.bridge_name()]) {
            eprintln!("faults: removing bridge {}: {e}", self.bridge_name());
        }
        let _ = std::fs::remove_file(owner_file(self.tag));
    }
}

/// Sweeps what runs whose process died left behind, then claims the first
/// tag from `pid % 200` on that no live process holds: its owner file is
/// created whole (linked from a file already written), so two runs
/// starting at once cannot both claim it.
fn claim_tag() -> u32 {
    let me = std::process::id();
    std::fs::create_dir_all(OWNERS).unwrap_or_else(|e| panic!("create {OWNERS}: {e}"));
    for tag in 0..TAGS {
        if let Some(pid) = owner(tag) {
            if pid != me && !alive(pid) {
                sweep(tag);
                let _ = std::fs::remove_file(owner_file(tag));
            }
        }
    }
    let mine = PathBuf::from(OWNERS).join(format!("claim.{me}"));
    std::fs::write(&mine, me.to_string())
        .unwrap_or_else(|e| panic!("write {}: {e}", mine.display()));
    let claimed = (0..TAGS).map(|step| (me + step) % TAGS).find(|&tag| {
        if owner(tag) == Some(me) {
            return true;
        }
        std::fs::hard_link(&mine, owner_file(tag)).is_ok()
    });
    let _ = std::fs::remove_file(&mine);
    match claimed {
        Some(tag) => {
            // A leftover of this very process (a Net leaked with mem::forget).
            sweep(tag);
            tag
        }
        None => panic!("every fault-net tag 0..{TAGS} is held by a live process (see {OWNERS})"),
    }
}

/// The process that owns tag `tag`, if its owner file names one.
fn owner(tag: u32) -> Option<u32> {
    std::fs::read_to_string(owner_file(tag))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Whether process `pid` exists.
pub fn alive(pid: u32) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}

/// Removes the namespaces and links of tag `tag`, and kills what still
/// runs in those namespaces: they are left by a run of this harness whose
/// process died (killed before its `Drop` could run).
fn sweep(tag: u32) {
    let namespaces = run(&["ip", "netns", "list"]).unwrap_or_default();
    for line in namespaces.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if !owned_name(name, tag) {
            continue;
        }
        let pids = run(&["ip", "netns", "pids", name]).unwrap_or_default();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            eprintln!("faults: killing pid {pid}, left running in namespace {name}");
            // SAFETY: kill(2) has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = run(&["ip", "netns", "del", name]);
    }
    let links = run(&["ip", "-o", "link", "show"]).unwrap_or_default();
    for line in links.lines() {
        // "7: vf12v1@if6: <...": the name ends at '@' or ':'.
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        if owned_name(name, tag) {
            let _ = run(&["ip", "link", "del", name]);
        }
    }
}

fn owner_file(tag: u32) -> PathBuf {
    PathBuf::from(OWNERS).join(format!("{tag}.pid"))
}

/// Whether `name` is one of tag `tag`'s namespaces or links: `vf<tag>br`,
/// or `vf<tag>` then `n`, `v` or `p` then digits (`vf1` must not match
/// `vf12br`).
fn owned_name(name: &str, tag: u32) -> bool {
    let Some(rest) = name.strip_prefix(&format!("vf{tag}")) else {
        return false;
    };
    if rest == "br" {
        return true;
    }
    let mut chars = rest.chars();
    matches!(chars.next(), Some('n' | 'v' | 'p'))
        && !chars.as_str().is_empty()
        && chars.as_str().chars().all(|c| c.is_ascii_digit())
}

/// Moves the calling thread into network namespace `ns`.
fn enter_netns(ns: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(format!("/run/netns/{ns}"))?;
    // SAFETY: setns(2) on a valid descriptor; CLONE_NEWNET changes only
    // this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Panics with a clear message when `tool` is not installed.
fn require(tool: &str, probe: &[&str]) {
    if let Err(e) = run(probe) {
        panic!("the fault tests need `{tool}` (Debian: iproute2, nftables), run as root: {e}");
    }
}

/// Runs `args` (program first); its stdout, or what went wrong.
pub fn run(args: &[&str]) -> Result<String, String> {
    run_stdin(args, "")
}

/// `run` with `input` on stdin.
pub fn run_stdin(args: &[&str], input: &str) -> Result<String, String> {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{}`: {e}", args.join(" ")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` exited with {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `run`, panicking on failure (for setup, where failure ends the test).
pub fn must(args: &[&str]) -> String {
    run(args).unwrap_or_else(|e| panic!("fault net setup: {e}"))
}
