//! One model at a time loads and warms up on a GPU.
//!
//! Under cuDNN benchmark mode, the first run of each batch shape times the
//! candidate convolution algorithms and keeps the fastest for the life of
//! the process. Replicas and models warming up on one GPU at the same time
//! would time those algorithms against each other, and the choices made
//! under that contention would stay. So a replica holds its device's turn
//! from load to the end of its warm-up; serving needs no turn.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, PoisonError};

use crate::config::DeviceSpec;

/// GPUs whose turn is taken.
static TAKEN: Mutex<Option<HashSet<usize>>> = Mutex::new(None);
static RELEASED: Condvar = Condvar::new();

/// Holds a GPU's turn until dropped.
#[must_use = "the turn is released when the guard is dropped"]
pub(super) struct DeviceTurn {
    gpu: usize,
}

/// Waits for `device`'s turn; the CPU has no turn to take (its models share
/// one engine thread or a core each, and no per-shape search is made there).
pub(super) fn take_turn(device: DeviceSpec) -> Option<DeviceTurn> {
    let DeviceSpec::Cuda(gpu) = device else {
        return None;
    };
    let mut taken = TAKEN.lock().unwrap_or_else(PoisonError::into_inner);
    while taken.get_or_insert_with(HashSet::new).contains(&gpu) {
        taken = RELEASED.wait(taken).unwrap_or_else(PoisonError::into_inner);
    }
    taken.get_or_insert_with(HashSet::new).insert(gpu);
    Some(DeviceTurn { gpu })
}

impl Drop for DeviceTurn {
    fn drop(&mut self) {
        let mut taken = TAKEN.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(taken) = taken.as_mut() {
            taken.remove(&self.gpu);
        }
        RELEASED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_holder_per_gpu_at_a_time_and_none_on_the_cpu() {
        assert!(take_turn(DeviceSpec::Cpu).is_none());
        let holders = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (holders, most) = (holders.clone(), most.clone());
                std::thread::spawn(move || {
                    let _turn = take_turn(DeviceSpec::Cuda(7));
                    let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    holders.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        // Another GPU's turn is free while one is held.
        let _seven = take_turn(DeviceSpec::Cuda(7));
        let eight = take_turn(DeviceSpec::Cuda(8));
        assert!(eight.is_some());
    }
}
