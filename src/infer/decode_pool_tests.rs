//! The scheduler's order, cancellation and budget, driven by closures that
//! log what ran and gates (channels) that hold a worker busy: no sleeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use super::*;

type Log = Arc<Mutex<Vec<String>>>;

/// Work that logs `name` and returns it.
fn logged(log: &Log, name: &str, pixels: u64) -> Work<String, String> {
    let log = log.clone();
    let name = name.to_owned();
    Work {
        pixels,
        run: Box::new(move || {
            log.lock().unwrap().push(name.clone());
            Ok(name)
        }),
    }
}

/// Work that logs `name` as it starts, then blocks until the returned
/// sender sends (or is dropped).
fn gated(log: &Log, name: &str) -> (Work<String, String>, std_mpsc::Sender<()>) {
    let (open, gate) = std_mpsc::channel::<()>();
    let log = log.clone();
    let name = name.to_owned();
    let work = Work {
        pixels: 1,
        run: Box::new(move || {
            log.lock().unwrap().push(name.clone());
            let _ = gate.recv();
            Ok(name)
        }),
    };
    (work, open)
}

fn failing(log: &Log, name: &str) -> Work<String, String> {
    let log = log.clone();
    let name = name.to_owned();
    Work {
        pixels: 1,
        run: Box::new(move || {
            log.lock().unwrap().push(name.clone());
            Err(format!("{name} is bad"))
        }),
    }
}

/// Until something is logged: the gated first item is running.
async fn started(log: &Log) {
    while entries(log).is_empty() {
        tokio::task::yield_now().await;
    }
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn a_later_small_request_takes_turns_with_a_big_one() {
    let pool = FairPool::new(1, u64::MAX);
    let log = Log::default();
    let (first, open) = gated(&log, "a0");
    let mut big_works = vec![first];
    big_works.extend((1..5).map(|i| logged(&log, &format!("a{i}"), 1)));
    let mut big = pool.submit(big_works);
    let mut small = pool.submit(vec![logged(&log, "b0", 1)]);
    open.send(()).unwrap();
    assert_eq!(small.collect().await.unwrap(), ["b0"]);
    assert_eq!(big.collect().await.unwrap().len(), 5);
    // a0 was running when b registered and a1 already had its turn queued;
    // then b0, not the rest of a.
    assert_eq!(entries(&log), ["a0", "a1", "b0", "a2", "a3", "a4"]);
}

#[tokio::test]
async fn a_dropped_job_never_runs_its_remaining_items() {
    let pool = FairPool::new(1, u64::MAX);
    let log = Log::default();
    let (first, open) = gated(&log, "a0");
    let works = vec![first, logged(&log, "a1", 1), logged(&log, "a2", 1)];
    let big = pool.submit(works);
    started(&log).await;
    drop(big);
    let mut after = pool.submit(vec![logged(&log, "b0", 1)]);
    open.send(()).unwrap();
    after.collect().await.unwrap();
    // b0 ran on the only worker after a0, so a1/a2 had their chance: skipped.
    assert_eq!(entries(&log), ["a0", "b0"]);
    assert_eq!(pool.pixels_ahead_of(0), 0, "nothing left waiting");
}

#[tokio::test]
async fn the_first_failure_stops_the_rest_and_names_its_index() {
    let pool = FairPool::new(1, u64::MAX);
    let log = Log::default();
    let works = vec![
        logged(&log, "a0", 1),
        failing(&log, "a1"),
        logged(&log, "a2", 1),
        failing(&log, "a3"),
    ];
    let mut job = pool.submit(works);
    let error = job.collect().await.unwrap_err();
    assert_eq!(
        error,
        JobError::Failed {
            index: 1,
            error: "a1 is bad".to_owned()
        }
    );
    let mut after = pool.submit(vec![logged(&log, "b0", 1)]);
    after.collect().await.unwrap();
    assert_eq!(entries(&log), ["a0", "a1", "b0"]);
}

#[tokio::test]
async fn with_parallel_workers_the_lowest_failing_index_wins() {
    let pool = FairPool::new(4, u64::MAX);
    let log = Log::default();
    let (slow_bad, open) = {
        let (open, gate) = std_mpsc::channel::<()>();
        let work: Work<String, String> = Work {
            pixels: 1,
            run: Box::new(move || {
                let _ = gate.recv();
                Err("first".to_owned())
            }),
        };
        (work, open)
    };
    let mut job = pool.submit(vec![slow_bad, failing(&log, "a1")]);
    let waiter = tokio::spawn(async move { job.collect().await });
    // Index 1 fails first; the result must still be index 0's failure.
    started(&log).await;
    open.send(()).unwrap();
    let error = waiter.await.unwrap().unwrap_err();
    assert!(
        matches!(error, JobError::Failed { index: 0, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_pixel_budget_bounds_what_runs_at_once_and_never_deadlocks() {
    let pool = FairPool::new(4, 150);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let works = (0..6)
        .map(|_| {
            let (running, most) = (running.clone(), most.clone());
            Work::<String, String> {
                pixels: 100,
                run: Box::new(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(String::new())
                }),
            }
        })
        .collect();
    pool.submit(works).collect().await.unwrap();
    assert_eq!(most.load(Ordering::SeqCst), 1, "two of 100 px exceed 150");

    // One item larger than the whole budget still runs (alone).
    let log = Log::default();
    let mut huge = pool.submit(vec![logged(&log, "huge", 1_000)]);
    assert_eq!(huge.collect().await.unwrap(), ["huge"]);
}

#[tokio::test]
async fn a_panicking_item_fails_its_job_not_the_pool() {
    let pool = FairPool::<(), ()>::new(1, u64::MAX);
    let mut job = pool.submit(vec![Work {
        pixels: 1,
        run: Box::new(|| panic!("work panicked on purpose")),
    }]);
    assert_eq!(
        job.collect().await.unwrap_err(),
        JobError::Panicked { index: 0 }
    );
    let mut after = pool.submit(vec![Work {
        pixels: 1,
        run: Box::new(|| Ok(())),
    }]);
    after.collect().await.unwrap();
}

#[tokio::test]
async fn pixels_ahead_count_a_fair_share_of_each_waiting_request() {
    let pool = FairPool::new(1, u64::MAX);
    let log = Log::default();
    let (first, open) = gated(&log, "a0");
    let mut works = vec![first];
    works.extend((1..4).map(|i| logged(&log, &format!("a{i}"), 1_000)));
    // Big enough to be a rate sample (small images are mostly fixed cost).
    works.push(logged(&log, "a4", 1_000_000));
    let mut big = pool.submit(works);
    // Running: a0 (1 px); waiting: 1_003_000 px of a, of which a 500 px
    // request would see about 500 decoded before its own.
    assert_eq!(pool.pixels_ahead_of(500), 1 + 500 + 500);
    assert_eq!(
        pool.pixels_ahead_of(0),
        1,
        "no share of nothing: only the running"
    );
    assert!(pool.time_per_megapixel().is_none(), "nothing measured yet");
    open.send(()).unwrap();
    big.collect().await.unwrap();
    assert!(pool.time_per_megapixel().is_some());
}

#[tokio::test]
async fn requests_of_one_client_share_one_turn_per_round() {
    let pool = FairPool::new(1, u64::MAX);
    let log = Log::default();
    let (first, open) = gated(&log, "a0");
    let first_of_a = vec![first, logged(&log, "a1", 1), logged(&log, "a2", 1)];
    let mut first_of_a = pool.submit_for(Some("client-a"), None, first_of_a);
    started(&log).await;
    let second_of_a: Vec<_> = (0..3).map(|i| logged(&log, &format!("x{i}"), 1)).collect();
    let mut second_of_a = pool.submit_for(Some("client-a"), None, second_of_a);
    let of_b: Vec<_> = (0..3).map(|i| logged(&log, &format!("b{i}"), 1)).collect();
    let mut of_b = pool.submit_for(Some("client-b"), None, of_b);
    open.send(()).unwrap();
    assert_eq!(of_b.collect().await.unwrap().len(), 3);
    assert_eq!(first_of_a.collect().await.unwrap().len(), 3);
    assert_eq!(second_of_a.collect().await.unwrap().len(), 3);
    // Client a's two requests take a's turns in rotation (a1, x0, a2, ...);
    // client b gets every other turn, as one client, not one in three.
    assert_eq!(
        entries(&log),
        ["a0", "a1", "b0", "x0", "b1", "a2", "b2", "x1", "x2"]
    );
}

#[tokio::test]
async fn without_a_client_key_each_request_is_its_own_share() {
    let pool = FairPool::new(1, u64::MAX);
    let log = Log::default();
    let (first, open) = gated(&log, "a0");
    let mut first_of_a = pool.submit(vec![first, logged(&log, "a1", 1), logged(&log, "a2", 1)]);
    started(&log).await;
    let mut second_of_a = pool.submit((0..3).map(|i| logged(&log, &format!("x{i}"), 1)).collect());
    let mut of_b = pool.submit((0..3).map(|i| logged(&log, &format!("b{i}"), 1)).collect());
    open.send(()).unwrap();
    of_b.collect().await.unwrap();
    first_of_a.collect().await.unwrap();
    second_of_a.collect().await.unwrap();
    assert_eq!(
        entries(&log),
        ["a0", "a1", "x0", "b0", "a2", "x1", "b1", "x2", "b2"]
    );
}

#[tokio::test]
async fn a_small_image_runs_in_the_express_slot_while_every_worker_is_busy() {
    let pool = FairPool::with_express(1, u64::MAX, 10);
    let log = Log::default();
    let (first, open) = gated(&log, "a0");
    let mut big = pool.submit(vec![first, logged(&log, "a1", 100)]);
    started(&log).await;
    let mut small = pool.submit(vec![logged(&log, "b0", 5)]);
    // a0 still holds the only worker: b0 ran beside it, a1 (too big for
    // the express slot) waits for the worker.
    assert_eq!(small.collect().await.unwrap(), ["b0"]);
    assert_eq!(entries(&log), ["a0", "b0"]);
    open.send(()).unwrap();
    big.collect().await.unwrap();
    assert_eq!(entries(&log), ["a0", "b0", "a1"]);
}
