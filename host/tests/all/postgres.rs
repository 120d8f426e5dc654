//! The store on a real PostgreSQL: a throwaway server (`initdb` and `postgres` from Debian's
//! `postgresql` package, on a loopback port, in a temporary folder) started by the test and
//! stopped with it. The same code path as on SQLite: migrations, group commit with a savepoint
//! per message (on PostgreSQL an error aborts the whole transaction without them), processing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use switchboard::store::Store;

/// A PostgreSQL server of our own, one per test; stopped (fast shutdown) when dropped.
pub(crate) struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    as_nobody: bool,
}

/// Where `initdb` is: on PATH, or in Debian's versioned folder (not on PATH).
fn postgres_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(debian)
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .expect(
            "PostgreSQL is not installed (Debian: apt-get install postgresql); .ci/run installs it",
        )
}

impl Postgres {
    pub(crate) fn start() -> Postgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // initdb refuses to run as root: then the cluster belongs to `nobody`.
        let as_nobody = {
            use std::os::unix::fs::MetadataExt;
            // /proc/self belongs to the process's effective user.
            std::fs::metadata("/proc/self").unwrap().uid() == 0
        };
        if as_nobody {
            let status = Command::new("chown")
                .args(["-R", "nobody"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let pg = Postgres {
            _dir: dir,
            data,
            bin,
            port,
            as_nobody,
        };
        let out = pg
            .command("initdb")
            .args(["-A", "trust", "-U", "sb", "-D"])
            .arg(&pg.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket_dir = pg.data.parent().unwrap().display().to_string();
        let out = pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&pg.data)
            .args([
                "-o",
                &format!("-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=on"),
                "-w",
                "-l",
            ])
            .arg(pg.data.parent().unwrap().join("log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null()).current_dir("/");
        cmd
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://sb@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "stop"])
            .output();
    }
}

fn switchboard(dir: &Path, db: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(dir)
        .args(["--cache-dir", "cache", "run"])
        .arg(repo_root().join("examples/acme/tenant.toml"))
        .arg(repo_root().join("examples/acme/inbound.jsonl"))
        .args(["--db", db, "--format", "table"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "switchboard run on {db}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    without_ids(&String::from_utf8_lossy(&out.stdout))
}

/// `text` with every UUID (fresh in each store) replaced by `<id>`.
fn without_ids(text: &str) -> String {
    let is_uuid = |w: &[u8]| {
        w.len() == 36
            && w.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            out.push_str("<id>");
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// README's first command, on PostgreSQL instead of the SQLite default: every line of its
/// output the same (ids aside), then a second run finds every message stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_example_runs_the_same_on_postgresql_as_on_sqlite() {
    let pg = Postgres::start();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let on_sqlite = switchboard(dir.path(), "sqlite.db");
    let on_postgres = switchboard(dir.path(), &url);
    assert!(on_sqlite.contains("10 new messages"), "{on_sqlite}");
    assert_eq!(on_postgres, on_sqlite);
    let again = switchboard(dir.path(), &url);
    assert!(again.contains("0 new messages"), "{again}");
}

/// Group commit on PostgreSQL: acceptances that arrive together share transactions, the same
/// message sent by several callers at once is stored once and every caller gets its ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acceptances_share_commits_and_store_each_message_once_on_postgresql() {
    let pg = Postgres::start();
    let store = Store::open(&pg.url()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every message is sent twice, by two callers.
            let mut m = message("t", &format!("my parcel {} is late", i / 2));
            m.external_id = format!("m-{}", i / 2);
            m.author.id = format!("u-{}", i / 2);
            store.accept("webhook", &m).await.unwrap()
        }));
    }
    let mut accepted = Vec::new();
    for t in tasks {
        accepted.push(t.await.unwrap());
    }
    for pair in accepted.chunks(2) {
        assert_eq!(pair[0].message_id, pair[1].message_id);
        assert!(pair[0].duplicate != pair[1].duplicate, "{pair:?}");
    }
    assert_eq!(
        store
            .count("SELECT COUNT(*) FROM messages WHERE tenant = $1", "t")
            .await
            .unwrap(),
        100
    );
    assert!(
        store.group_commits() < 200,
        "{} commits for 200 acceptances",
        store.group_commits()
    );
}
