//! One OS thread runs the libtorch work of every CPU model.
//!
//! libtorch's CPU kernels parallelise with OpenMP, and GNU OpenMP gives each
//! thread that opens a parallel region its own team of worker threads. With a
//! thread per replica, every model loaded adds a team; once libgomp manages
//! more threads than there are CPUs, it stops spinning between parallel
//! regions and puts its workers to sleep instead, and each of the hundreds of
//! regions in a forward pass then pays a wake-up. Measured on 2 cores:
//! seresnext50's batch-1 latency over HTTP went from 57 to 75 ms when a
//! second model was merely loaded, idle. Sending all CPU work through one
//! thread keeps a single team. The models share the same cores anyway, so two
//! forward passes at once would gain nothing.
//!
//! With one intra-op thread no team is ever made, so replicas then keep their
//! own threads and can run side by side (one core each).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use crate::config::DeviceSpec;
use crate::model::shares_cpu_engine_thread;

type Job = Box<dyn FnOnce() + Send>;

/// The shared CPU thread: jobs in, each answered on its own channel.
pub(super) struct CpuThread {
    jobs: Mutex<mpsc::Sender<Job>>,
}

static CPU_THREAD: OnceLock<CpuThread> = OnceLock::new();

impl CpuThread {
    /// The process's CPU thread, started on first use.
    pub(super) fn get() -> &'static CpuThread {
        CPU_THREAD.get_or_init(|| {
            let (jobs, receiver) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("cpu-engine".to_owned())
                .spawn(move || {
                    // Grad mode is per thread; nothing here ever trains.
                    let _engine_thread = crate::model::engine_thread_guard();
                    for job in receiver {
                        // A job's panic is reported to its caller (its reply
                        // channel closes); the thread goes on with the next.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .expect("cannot start the CPU engine thread");
            CpuThread {
                jobs: Mutex::new(jobs),
            }
        })
    }

    /// Runs `job` on the CPU thread, after the jobs queued before it, and
    /// returns its result. A panic in `job` resumes here, on the caller.
    pub(super) fn run<R: Send + 'static>(&self, job: impl FnOnce() -> R + Send + 'static) -> R {
        let (reply, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(job));
            let _ = reply.send(outcome);
        });
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job)
            .expect("the CPU engine thread is gone");
        match result.recv().expect("the CPU engine thread dropped a job") {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Where a replica's libtorch calls run: on the replica's own thread, or on
/// the shared [`CpuThread`].
#[derive(Clone, Copy)]
pub(super) enum Runner {
    OwnThread,
    SharedCpuThread,
}

impl Runner {
    /// The shared thread for CPU models whose kernels use OpenMP teams (more
    /// than one intra-op thread); the replica's own thread otherwise.
    pub(super) fn for_device(device: DeviceSpec) -> Self {
        if shares_cpu_engine_thread(device) {
            Runner::SharedCpuThread
        } else {
            Runner::OwnThread
        }
    }

    pub(super) fn run<R: Send + 'static>(self, job: impl FnOnce() -> R + Send + 'static) -> R {
        match self {
            Runner::OwnThread => job(),
            Runner::SharedCpuThread => CpuThread::get().run(job),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_from_many_threads_all_run_on_the_one_cpu_thread() {
        let names: Vec<String> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    CpuThread::get().run(|| std::thread::current().name().unwrap().to_owned())
                })
            })
            .map(|handle| handle.join().unwrap())
            .collect();
        assert_eq!(names, vec!["cpu-engine"; 4]);
    }

    #[test]
    fn a_panicking_job_panics_its_caller_and_the_thread_goes_on() {
        let caught = std::thread::spawn(|| CpuThread::get().run(|| panic!("injected")))
            .join()
            .unwrap_err();
        assert_eq!(caught.downcast_ref::<&str>(), Some(&"injected"));
        assert_eq!(CpuThread::get().run(|| 6 * 7), 42);
    }
}
