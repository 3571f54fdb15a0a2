//! Group commit: one thread owns the database connection and runs every caller's call there,
//! many calls to one transaction and so one fsync for all of them.
//!
//! Each call runs inside a savepoint of the group's transaction, so a call that fails undoes
//! only its own writes. Every caller of a group is answered after the group's COMMIT returned:
//! an acknowledged write is on disk (the database runs `synchronous = FULL`) even if power
//! fails a moment later. While one group commits the next one gathers, so the busier the store
//! the larger its groups, and a lone caller waits for one commit only.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use rusqlite::{ffi, Connection};

/// Calls that share one transaction at most; bounds how long the first of them waits.
const MAX_GROUP: usize = 256;

/// How a call is answered once its group's commit is done: `None` if it committed.
pub(super) type Reply = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

/// One caller's pending call.
pub(super) trait Call: Send {
    /// Runs the call: whether it succeeded (else its writes are undone), and its answer,
    /// which waits for the commit.
    fn run(self: Box<Self>, conn: &mut Connection) -> (bool, Reply);
    /// Answers the call with `err` without running it.
    fn fail(self: Box<Self>, err: &rusqlite::Error);
}

/// Starts the writer thread on `conn`; it ends once every sender is dropped.
pub(super) fn spawn(conn: Connection) -> mpsc::Sender<Box<dyn Call>> {
    let (sender, calls) = mpsc::channel::<Box<dyn Call>>();
    std::thread::Builder::new()
        .name("hookline-db-writer".into())
        .spawn(move || run(conn, calls))
        .expect("the database writer thread starts");
    sender
}

fn run(mut conn: Connection, calls: mpsc::Receiver<Box<dyn Call>>) {
    while let Ok(first) = calls.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match calls.try_recv() {
                Ok(call) => group.push(call),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group);
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Box<dyn Call>>) {
    if let Err(err) = conn.execute_batch("BEGIN IMMEDIATE") {
        for call in group {
            call.fail(&err);
        }
        return;
    }
    let replies: Vec<Reply> = group.into_iter().map(|call| run_one(conn, call)).collect();
    let committed = conn.execute_batch("COMMIT");
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let outcome = committed.as_ref().err();
    for reply in replies {
        reply(outcome);
    }
}

/// Runs one call in a savepoint of its own: kept if it succeeded, undone if it failed.
fn run_one(conn: &mut Connection, call: Box<dyn Call>) -> Reply {
    if let Err(err) = conn.execute_batch("SAVEPOINT call") {
        call.fail(&err);
        return Box::new(|_| {});
    }
    match catch_unwind(AssertUnwindSafe(|| call.run(conn))) {
        Ok((true, reply)) => {
            let _ = conn.execute_batch("RELEASE call");
            reply
        }
        Ok((false, reply)) => {
            let _ = conn.execute_batch("ROLLBACK TO call; RELEASE call");
            reply
        }
        Err(_) => {
            // The caller sees its call dropped (and panics in turn); the group goes on.
            let _ = conn.execute_batch("ROLLBACK TO call; RELEASE call");
            Box::new(|_| {})
        }
    }
}

/// An owned copy of `err` for each caller it concerns (rusqlite's error is not `Clone`).
pub(super) fn copy_error(err: &rusqlite::Error) -> rusqlite::Error {
    let code = match err {
        rusqlite::Error::SqliteFailure(e, _) => e.extended_code,
        _ => ffi::SQLITE_ERROR,
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(err.to_string()))
}
