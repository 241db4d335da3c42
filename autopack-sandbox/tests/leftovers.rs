//! `reap_leftovers` and the file log, with real processes.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use autopack_sandbox::{FileProcessLog, ProcessLog, StartedProcess, reap_leftovers};

fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn wait_gone(child: &mut std::process::Child) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn kills_a_recorded_process_and_ignores_a_different_start_time() {
    use std::os::unix::process::CommandExt;
    let mut victim = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let mut bystander = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let recorded = [
        StartedProcess {
            pid: victim.id(),
            start_time: start_time(victim.id()),
            own_pid_namespace: false,
        },
        // Same pid, another start time: a reused pid, which must be left alone.
        StartedProcess {
            pid: bystander.id(),
            start_time: start_time(bystander.id()) + 1,
            own_pid_namespace: false,
        },
        StartedProcess {
            pid: u32::MAX,
            start_time: 1,
            own_pid_namespace: true,
        },
    ];
    assert_eq!(reap_leftovers(&recorded), 1);
    assert!(wait_gone(&mut victim));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "bystander was killed"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[test]
fn the_file_log_survives_a_reopen_and_reaps() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("processes.json");
    let mut orphan = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let p = StartedProcess {
        pid: orphan.id(),
        start_time: start_time(orphan.id()),
        own_pid_namespace: false,
    };
    let done = StartedProcess {
        pid: 1,
        start_time: 1,
        own_pid_namespace: false,
    };
    {
        let log = FileProcessLog::open(&path).unwrap();
        log.started(&p);
        log.started(&done);
        log.ended(&done);
        // The host "dies" here: no ended(p).
    }
    assert_eq!(FileProcessLog::read(&path).unwrap(), vec![p.clone()]);
    let log = FileProcessLog::open(&path).unwrap();
    assert_eq!(log.alive(), vec![p]);
    assert_eq!(log.reap(), 1);
    assert!(wait_gone(&mut orphan));
    assert!(FileProcessLog::read(&path).unwrap().is_empty());
    std::fs::write(&path, "not json").unwrap();
    let err = FileProcessLog::open(&path).unwrap_err().to_string();
    assert!(err.contains("processes.json"), "{err}");
}
