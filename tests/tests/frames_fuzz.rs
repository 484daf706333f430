//! Random and mutated frames sent to a node's port: the node never panics, a peer
//! connected meanwhile keeps working, and afterwards the node holds nothing for the
//! garbage and its memory is back near where it was.
//!
//! The frames are what ractor_cluster reads: an 8-byte big-endian length, then a protobuf
//! message. A deterministic generator (its seed printed) makes any failure reproducible:
//! `FUZZ_SEED=<seed> cargo test -p otp-tests --test frames_fuzz`.

use std::time::Duration;

use otp::node::{Cookie, Node, NodeConfig};
use otp_tests::{Echo, FixtureNode, Say, ECHO};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const FIXTURE: &str = env!("CARGO_BIN_EXE_node_fixture");
const COOKIE: &str = "fuzz-test-cookie";
/// Connections of garbage, in waves.
const CONNECTIONS: usize = 600;
const WAVE: usize = 20;
/// Growth of the test process's resident memory still taken as "back to baseline": the
/// allocator keeps some of what it was given, but nothing may grow with the garbage.
const MEMORY_SLACK_KIB: u64 = 64 * 1024;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A protobuf-shaped message: nested length-delimited fields with random contents.
fn protobuf_like(random: &mut Random, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + random.below(3) {
        let field = 1 + random.below(6) as u8;
        if depth > 0 && random.below(2) == 0 {
            let inner = protobuf_like(random, depth - 1);
            out.push(field << 3 | 2);
            out.push(inner.len().min(127) as u8);
            out.extend_from_slice(&inner[..inner.len().min(127)]);
        } else if random.below(2) == 0 {
            out.push(field << 3); // varint
            let n = 1 + random.below(9) as usize;
            out.extend(random.bytes(n));
        } else {
            let len = random.below(64) as usize;
            out.push(field << 3 | 2);
            out.push(len as u8);
            out.extend(random.bytes(len));
        }
    }
    out
}

/// One connection's worth of garbage.
fn garbage(random: &mut Random) -> Vec<u8> {
    let framed = |payload: Vec<u8>, length: u64| {
        let mut frame = length.to_be_bytes().to_vec();
        frame.extend(payload);
        frame
    };
    match random.below(6) {
        0 => {
            let n = 1 + random.below(2000) as usize;
            random.bytes(n)
        }
        1 => {
            let payload = protobuf_like(random, 3);
            let length = payload.len() as u64;
            framed(payload, length)
        }
        2 => {
            // A length that lies: far larger (up to 2^40), or off by a little.
            let payload = protobuf_like(random, 2);
            let length = match random.below(2) {
                0 => random.below(1 << 40),
                _ => (payload.len() as u64)
                    .saturating_add(random.below(5))
                    .saturating_sub(2),
            };
            framed(payload, length)
        }
        3 => {
            // Several frames back to back, one of them mutated.
            let mut out = Vec::new();
            for _ in 0..1 + random.below(4) {
                let mut payload = protobuf_like(random, 2);
                if !payload.is_empty() && random.below(2) == 0 {
                    let at = random.below(payload.len() as u64) as usize;
                    payload[at] ^= 1 << random.below(8);
                }
                let length = payload.len() as u64;
                out.extend(framed(payload, length));
            }
            out
        }
        4 => framed(Vec::new(), 0),
        _ => {
            let n = random.below(8) as usize; // a partial header
            random.bytes(n)
        }
    }
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_port_harms_nobody() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("FUZZ_SEED={seed}");
    let mut random = Random(seed);

    let mut config = NodeConfig::new(
        "fuzzed",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    config.auth_timeout = Duration::from_millis(500);
    let node = Node::start(config).await.expect("node starts");
    let address = node.address().to_string();
    let fixture = FixtureNode::start(FIXTURE, &["peer", COOKIE]).await;
    node.connect(&fixture.address)
        .await
        .expect("the peer connects");
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(
        echo.call(Say("before".into())).await.as_deref(),
        Ok("before")
    );
    let baseline = node.census().await.unwrap();
    let memory = resident_kib();

    for wave in 0..CONNECTIONS / WAVE {
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..WAVE {
            let bytes = garbage(&mut random);
            let hold = Duration::from_millis(random.below(200));
            let address = address.clone();
            senders.spawn(async move {
                let Ok(mut stream) = TcpStream::connect(&address).await else {
                    return;
                };
                let _ = stream.write_all(&bytes).await;
                tokio::time::sleep(hold).await; // a client that lingers, then leaves
            });
        }
        while senders.join_next().await.is_some() {}
        // The peer's link keeps working all along.
        let text = format!("wave {wave}");
        assert_eq!(
            echo.call(Say(text.clone())).await.as_deref(),
            Ok(text.as_str()),
            "FUZZ_SEED={seed}"
        );
    }

    otp_tests::census_settles_to(&node, baseline).await;
    let grown = resident_kib().saturating_sub(memory);
    assert!(
        grown < MEMORY_SLACK_KIB,
        "resident memory grew by {grown} KiB over {CONNECTIONS} garbage connections (FUZZ_SEED={seed})"
    );
    assert_eq!(echo.call(Say("after".into())).await.as_deref(), Ok("after"));
    node.stop().await;
}
