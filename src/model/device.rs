//! Which device a model runs on, checked before anything is loaded.
//!
//! A GPU that is not there must fail at once, with a sentence, not after the
//! weights were read and with a C++ backtrace: a host whose driver is too old
//! for the wheel's CUDA, or a container started without GPUs, is the usual
//! cause, and the operator needs to hear that, not where libtorch noticed.

use tch::{Cuda, Device};

use crate::config::DeviceSpec;

/// Why a configured device cannot be used on this machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "device {requested} was asked for, but CUDA is not available here: libtorch sees no GPU \
         (no NVIDIA driver, a driver too old for this CUDA build, or a container started \
         without GPUs); use device = \"cpu\" or \"auto\""
    )]
    CudaUnavailable { requested: String },
    #[error("device cuda:{index} was asked for, but libtorch sees {count} GPU(s): cuda:0 to cuda:{last}", last = count - 1)]
    NoSuchGpu { index: usize, count: usize },
}

/// The libtorch device for a configured one: `auto` takes the first GPU when
/// libtorch sees one. Unchecked: see [`check_device`].
pub fn resolve_device(spec: DeviceSpec) -> Device {
    match spec {
        DeviceSpec::Auto => Device::cuda_if_available(),
        DeviceSpec::Cpu => Device::Cpu,
        DeviceSpec::AnyCuda => Device::Cuda(0),
        DeviceSpec::Cuda(index) => Device::Cuda(index),
    }
}

/// The device of each of a model's `replicas`, for a machine with `gpus`
/// GPUs: `cuda` (and `auto` when there is a GPU) spreads them over every
/// GPU in turn, `cuda:N` puts all on GPU N, `cpu` on the CPU. Plain data, so
/// the placement is tested for any machine on this one; [`check_device`]
/// has already refused what this machine cannot do.
pub fn place_replicas(spec: DeviceSpec, replicas: usize, gpus: usize) -> Vec<DeviceSpec> {
    (0..replicas)
        .map(|replica| match spec {
            DeviceSpec::Auto | DeviceSpec::AnyCuda if gpus > 0 => DeviceSpec::Cuda(replica % gpus),
            DeviceSpec::Auto | DeviceSpec::AnyCuda | DeviceSpec::Cpu => DeviceSpec::Cpu,
            DeviceSpec::Cuda(index) => DeviceSpec::Cuda(index),
        })
        .collect()
}

/// [`place_replicas`] on this machine.
pub fn place_replicas_here(spec: DeviceSpec, replicas: usize) -> Vec<DeviceSpec> {
    place_replicas(spec, replicas, visible_gpus())
}

fn visible_gpus() -> usize {
    usize::try_from(Cuda::device_count()).unwrap_or(0)
}

/// [`resolve_device`], refusing a GPU this machine does not have.
pub fn check_device(spec: DeviceSpec) -> Result<Device, DeviceError> {
    check_against(spec, visible_gpus())
}

/// The rule of [`check_device`] with the GPU count as data, so it is tested
/// for any machine on this one.
fn check_against(spec: DeviceSpec, gpus: usize) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Auto if gpus > 0 => Ok(Device::Cuda(0)),
        DeviceSpec::Auto | DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::AnyCuda | DeviceSpec::Cuda(_) if gpus == 0 => {
            Err(DeviceError::CudaUnavailable {
                requested: spec.to_string(),
            })
        }
        DeviceSpec::AnyCuda => Ok(Device::Cuda(0)),
        DeviceSpec::Cuda(index) if index >= gpus => {
            Err(DeviceError::NoSuchGpu { index, count: gpus })
        }
        DeviceSpec::Cuda(index) => Ok(Device::Cuda(index)),
    }
}

/// A device as the API writes it: `cpu`, `cuda:0` (libtorch's Debug form,
/// `Cuda(0)`, is not what a user configures or reads in the docs).
pub fn device_label(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_owned(),
        Device::Cuda(index) => format!("cuda:{index}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_labelled_as_the_api_documents_them() {
        assert_eq!(device_label(Device::Cpu), "cpu");
        assert_eq!(device_label(Device::Cuda(0)), "cuda:0");
        assert_eq!(device_label(Device::Cuda(3)), "cuda:3");
    }

    #[test]
    fn a_missing_gpu_is_refused_with_a_sentence() {
        let error = check_against(DeviceSpec::Cuda(0), 0).unwrap_err();
        assert!(matches!(error, DeviceError::CudaUnavailable { .. }));
        let text = error.to_string();
        assert!(text.contains("CUDA is not available"), "{text}");
        assert!(text.contains("cuda:0"), "{text}");
        assert_eq!(
            check_against(DeviceSpec::Cuda(2), 2),
            Err(DeviceError::NoSuchGpu { index: 2, count: 2 })
        );
        assert!(check_against(DeviceSpec::Cuda(2), 2)
            .unwrap_err()
            .to_string()
            .contains("cuda:0 to cuda:1"));
        assert_eq!(check_against(DeviceSpec::Cuda(1), 2), Ok(Device::Cuda(1)));
    }

    #[test]
    fn replicas_spread_over_the_visible_gpus_unless_one_is_named() {
        use DeviceSpec::{AnyCuda, Auto, Cpu, Cuda};
        assert_eq!(
            place_replicas(AnyCuda, 5, 2),
            [Cuda(0), Cuda(1), Cuda(0), Cuda(1), Cuda(0)]
        );
        assert_eq!(place_replicas(Auto, 3, 4), [Cuda(0), Cuda(1), Cuda(2)]);
        assert_eq!(place_replicas(Auto, 2, 0), [Cpu, Cpu]);
        assert_eq!(place_replicas(Cuda(3), 2, 4), [Cuda(3), Cuda(3)]);
        assert_eq!(place_replicas(Cpu, 2, 8), [Cpu, Cpu]);
        assert!(check_against(AnyCuda, 0).is_err());
        assert_eq!(check_against(AnyCuda, 2), Ok(Device::Cuda(0)));
    }

    #[test]
    fn auto_takes_the_first_gpu_or_the_cpu() {
        assert_eq!(check_against(DeviceSpec::Auto, 0), Ok(Device::Cpu));
        assert_eq!(check_against(DeviceSpec::Auto, 4), Ok(Device::Cuda(0)));
        assert_eq!(check_against(DeviceSpec::Cpu, 4), Ok(Device::Cpu));
    }

    #[test]
    fn this_machine_agrees_with_libtorch() {
        let gpus = usize::try_from(Cuda::device_count()).unwrap_or(0);
        assert_eq!(check_device(DeviceSpec::Cpu), Ok(Device::Cpu));
        assert!(
            check_device(DeviceSpec::Cuda(gpus)).is_err(),
            "cuda:{gpus} is past the last GPU"
        );
    }
}
