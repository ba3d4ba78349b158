//! The threads that decode the images of the regular decode workers, at a
//! lower scheduling priority (a higher nice value) than everything else in
//! the process.
//!
//! On a CPU server decoding and forward passes share the cores. A
//! 49-Mpixel JPEG decodes for about a second, and two of them decoding made
//! every forward pass beside them two to three times slower: a one-image
//! request that arrived during a heavy request's decoding waited seconds for
//! its own pass. Niced, the decoders take what the forward passes leave:
//! CPU time the kernel hands out by weight, so they still progress under
//! load (nice 10 weighs about a tenth of nice 0), and take all of it when
//! nothing else runs. At 16 clients sending photos, niced decoders also
//! raised ONNX Runtime's throughput (12.0 against 9.4 images/s, one run
//! each): its threads were no longer preempted mid-pass. The express slot
//! stays on tokio's blocking pool at normal priority: it is where a small
//! image goes when every worker is busy.
//!
//! Dedicated threads, because a thread can lower its priority but not raise
//! it back without privileges, so a shared pool's thread could not be lent.

#![allow(unsafe_code)]

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// How far below normal the decoders run: weight 110 against 1024 for
/// nice 0 (the kernel's table), so beside a busy forward pass they get
/// about a tenth of a core each, and never starve.
pub(super) const DECODE_NICE: i32 = 10;

type Task = Box<dyn FnOnce() + Send>;

/// A fixed set of niced threads taking tasks from one channel.
pub(super) struct LowPriorityThreads {
    /// `Sender` is `Sync`: callers on any thread send without a lock.
    sender: Sender<Task>,
}

impl LowPriorityThreads {
    /// Starts `threads` threads (at least one) at `nice`. A system that
    /// refuses the change (it never should: lowering is unprivileged) gets
    /// a warning and normal-priority threads.
    pub(super) fn new(threads: usize, nice: i32) -> Self {
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            thread::Builder::new()
                .name(format!("decode-{index}"))
                .spawn(move || run(&receiver, nice))
                .expect("spawning a decode thread");
        }
        Self { sender }
    }

    /// Runs `task` on the next free thread (queued if none is).
    pub(super) fn spawn(&self, task: impl FnOnce() + Send + 'static) {
        // The threads outlive every sender (they exit when the channel
        // closes), so the send cannot fail.
        let _ = self.sender.send(Box::new(task));
    }
}

fn run(receiver: &Mutex<Receiver<Task>>, nice: i32) {
    lower_priority(nice);
    loop {
        // The lock is held only to take a task, never while it runs.
        let task = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        match task {
            Ok(task) => task(),
            Err(_) => return,
        }
    }
}

/// Raises the calling thread's nice value to `nice` (never lowers it: a
/// server started niced stays as nice). On Linux the nice value belongs to
/// the thread, and `who = 0` names the caller.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority and setpriority take plain integers and touch
        // no memory of ours.
        let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        if current >= nice {
            return;
        }
        // SAFETY: as above.
        let status = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if status != 0 {
            tracing::warn!(
                nice,
                error = %std::io::Error::last_os_error(),
                "could not lower the decode threads' priority; they run at normal priority"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_on_niced_threads() {
        let threads = LowPriorityThreads::new(2, DECODE_NICE);
        let (sender, receiver) = mpsc::channel();
        for task in 0..4 {
            let sender = sender.clone();
            threads.spawn(move || {
                let name = thread::current().name().map(str::to_owned);
                sender.send((task, name, own_nice())).unwrap();
            });
        }
        let mut seen: Vec<_> = (0..4).map(|_| receiver.recv().unwrap()).collect();
        seen.sort();
        for (task, (index, name, nice)) in seen.into_iter().enumerate() {
            assert_eq!(index, task);
            assert!(name.unwrap().starts_with("decode-"));
            // Nice values only go up without privileges; a test run that is
            // already niced further keeps its own.
            assert!(nice >= DECODE_NICE, "nice {nice}");
        }
    }

    /// The calling thread's nice value, from /proc (getpriority's -1 is
    /// ambiguous).
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Field 19 is the nice value; the command name (field 2) may hold
        // spaces, so count from after its closing parenthesis.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }
}
