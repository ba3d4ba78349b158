//! Small tensor helpers the classifier uses: layout and copies to the host.

use tch::{Device, Kind, TchError, Tensor};

use super::ModelError;

/// The same `[N, C, H, W]` tensor with NHWC strides (PyTorch's
/// `channels_last`), which tch has no direct call for. Copies only when the
/// tensor is not laid out that way already.
pub(super) fn to_channels_last(tensor: &Tensor) -> Result<Tensor, TchError> {
    tensor
        .f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_permute([0, 3, 1, 2])
}

/// Copies any float tensor to a flat host `Vec<f32>`.
pub(super) fn tensor_to_vec(tensor: &Tensor) -> Result<Vec<f32>, ModelError> {
    let host = tensor
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?;
    let numel = host.numel();
    let mut flat = vec![0f32; numel];
    host.f_copy_data(&mut flat, numel)?;
    Ok(flat)
}
