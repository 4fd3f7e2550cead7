//! Trusted time against real NTP servers: chronyd (Debian's chrony) on loopback ports with a
//! symmetric SHA256 key. The vault's clock follows the sources' vote, so turning the node's
//! wall clock (libfaketime) back or forward by hours moves nothing; a wrong key, or a lying
//! source without a majority, leaves the clock untrusted and time-dependent operations fail
//! closed; a liar outvoted by two honest sources is named and ignored.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;

const CHRONYD: &str = "/usr/sbin/chronyd";

/// A chronyd serving time on a loopback port under its own SHA256 key, its own clock shifted
/// by `fake` (libfaketime) when given. Killed on drop.
struct Chrony {
    child: Child,
    port: u16,
    key: String,
}

impl Chrony {
    fn start(dir: &Path, name: &str, fake: Option<&str>) -> Self {
        assert!(
            Path::new(CHRONYD).exists(),
            "chrony is missing: run ./scripts/test.sh"
        );
        let home = dir.join(name);
        std::fs::create_dir_all(&home).unwrap();
        let keys = home.join("keys");
        let key = sha256_hex(name.as_bytes());
        std::fs::write(&keys, format!("1 SHA256 HEX:{key}\n")).unwrap();
        // A free UDP port (released just before chronyd binds it).
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = home.join("chrony.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\n\
                 keyfile {}\ndriftfile {}\npidfile {}\ncmdport 0\n",
                keys.display(),
                home.join("drift").display(),
                home.join("chronyd.pid").display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(CHRONYD);
        // -x: never touch this machine's clock; -d: foreground; -u root: no privilege drop.
        cmd.args(["-x", "-d", "-u", "root", "-f", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(offset) = fake {
            cmd.env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = cmd.spawn().unwrap();
        // Serving once it answers; a plain (unauthenticated) query is enough to tell.
        wait_up_to(10, || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
                .unwrap();
            let mut q = [0u8; 48];
            q[0] = 0x23;
            q[40] = 1;
            s.send_to(&q, ("127.0.0.1", port)).unwrap();
            let mut buf = [0u8; 128];
            s.recv(&mut buf).is_ok_and(|n| n >= 48 && buf[1] != 0)
        });
        Self { child, port, key }
    }
}

impl Drop for Chrony {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[time]` naming `sources`, each with its own key (or a wrong one).
fn time_config(dir: &Path, sources: &[&Chrony], right_key: bool) -> String {
    let mut cfg = "[time]\nmax_disagreement = \"1s\"\npoll = \"1s\"\n".to_owned();
    for s in sources {
        let keys: PathBuf = dir.join(format!("ntp-{}-{right_key}.keys", s.port));
        let key = if right_key {
            s.key.clone()
        } else {
            "ab".repeat(32)
        };
        std::fs::write(&keys, format!("1 SHA256 HEX:{key}\n")).unwrap();
        cfg.push_str(&format!(
            "[[time.ntp]]\naddress = \"127.0.0.1:{}\"\nkey_file = \"{}\"\nkey_id = 1\n",
            s.port,
            keys.display()
        ));
    }
    cfg
}

fn time_status(node: &Node) -> serde_json::Value {
    node.http("GET", "/v1/sys/status", None, None).1["time"].clone()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[test]
fn the_vault_keeps_ntp_time_whatever_its_wall_clock_says() {
    let dir = tempfile::tempdir().unwrap();
    let a = Chrony::start(dir.path(), "a", None);
    let clock = FakeClock::new(dir.path());
    let data = dir.path().join("vault");
    let node = Node::production_with(&data, &time_config(dir.path(), &[&a], true), &clock.env());
    let t = time_status(&node);
    assert_eq!(t["trusted"], true, "{t}");
    assert_eq!(t["sources"][0]["trusted"], true, "{t}");
    assert!(
        t["wall_clock_offset_ms"].as_i64().unwrap().abs() < 1000,
        "{t}"
    );
    let init = init_unsealed(&node);
    let boot = init["root_token"].as_str().unwrap().to_owned();
    let sam_e = enrol(&node, &boot, "sam", &["security-officer"]);

    // The wall clock turned back an hour: the vault's time does not move, so the one-time
    // code of the real time logs in (a node on its wall clock alone refuses: clock.rs).
    clock.set("-1h");
    let settled = |expect: i64| {
        wait_for(|| {
            time_status(&node)["wall_clock_offset_ms"]
                .as_i64()
                .is_some_and(|o| (o - expect).abs() < 2000)
        });
        assert_eq!(time_status(&node)["trusted"], true);
    };
    settled(3_600_000);
    let sam = login_person(&node, dir.path(), "sam", &sam_e);
    // Then forward two hours: the 15-minute session is still young by the vault's clock,
    // and filing a request (time-dependent) works.
    clock.set("+2h");
    settled(-7_200_000);
    pending(&node.cli(Some(&sam), &["--json", "domain", "create", "ops"]));
    node.stop();

    // Every record carries the vault's time: real time, not the wall clock's.
    let share = init["shares"][0].as_str().unwrap();
    let events = audit_events(&data, &[share]);
    let newest: i64 = events
        .query_row("SELECT max(time) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert!(
        (newest - now_ms()).abs() < 60_000,
        "audit time {newest} vs now {}",
        now_ms()
    );
}

#[test]
fn a_wrong_key_or_a_lone_liar_leaves_the_clock_untrusted_and_two_honest_sources_outvote_one() {
    let dir = tempfile::tempdir().unwrap();
    let honest = Chrony::start(dir.path(), "honest", None);
    let second = Chrony::start(dir.path(), "second", None);
    let liar = Chrony::start(dir.path(), "liar", Some("+1h"));

    // The right server under a wrong key: its replies never authenticate.
    let node = Node::production_with(
        &dir.path().join("v1"),
        &time_config(dir.path(), &[&honest], false),
        &[],
    );
    let t = time_status(&node);
    assert_eq!(t["trusted"], false, "{t}");
    assert!(
        t["sources"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no authenticated reply"),
        "{t}"
    );
    let init = init_unsealed(&node);
    let root = init["root_token"].as_str().unwrap();
    assert_eq!(
        node.cli(Some(root), &["--json", "token", "create"])
            .error_code(),
        "clock_untrusted"
    );
    node.stop();
    let share = init["shares"][0].as_str().unwrap();
    let untrusted: i64 = audit_events(&dir.path().join("v1"), &[share])
        .query_row(
            "SELECT count(*) FROM audit WHERE operation = 'time.untrusted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(untrusted, 1, "audited once");

    // Two sources sharing a key (either could answer for the other): refused at start.
    let shared = dir.path().join("shared.keys");
    std::fs::write(&shared, format!("1 SHA256 HEX:{}\n", honest.key)).unwrap();
    let cfg = dir.path().join("shared.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[time]\n\
             [[time.ntp]]\naddress = \"127.0.0.1:{}\"\nkey_file = \"{}\"\nkey_id = 1\n\
             [[time.ntp]]\naddress = \"127.0.0.1:{}\"\nkey_file = \"{}\"\nkey_id = 1\n",
            dir.path().join("v0").display(),
            honest.port,
            shared.display(),
            second.port,
            shared.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("its own key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // One honest source and one an hour ahead: no majority, no time.
    let node = Node::production_with(
        &dir.path().join("v2"),
        &time_config(dir.path(), &[&honest, &liar], true),
        &[],
    );
    let t = time_status(&node);
    assert_eq!(t["trusted"], false, "{t}");
    node.stop();

    // Two honest sources outvote the liar, which is named.
    let node = Node::production_with(
        &dir.path().join("v3"),
        &time_config(dir.path(), &[&honest, &second, &liar], true),
        &[],
    );
    let t = time_status(&node);
    assert_eq!(t["trusted"], true, "{t}");
    let sources = t["sources"].as_array().unwrap();
    assert_eq!(
        sources
            .iter()
            .map(|s| s["trusted"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        vec![true, true, false],
        "{t}"
    );
    assert!(
        (sources[2]["offset_ms"].as_i64().unwrap() - 3_600_000).abs() < 2000,
        "{t}"
    );
    assert!(
        t["wall_clock_offset_ms"].as_i64().unwrap().abs() < 1000,
        "{t}"
    );
    node.stop();
}
