//! The CUDA backend's kernels, as CUDA C for NVRTC: the hand-written ones (`kernels.cu`) and
//! those generated from the IR's fused expressions ([`codegen`]). Nothing here needs a GPU or
//! the CUDA libraries; `device` loads them.

pub mod codegen;
pub mod launch;

/// Definitions every kernel source starts with: the grid-stride loop, strided views.
pub const PRELUDE: &str = include_str!("prelude.cuh");

/// The hand-written kernels (compiled after [`PRELUDE`]).
pub const KERNELS: &str = include_str!("kernels.cu");

/// The hand-written kernels as one translation unit.
pub fn hand_written() -> String {
    format!("{PRELUDE}\n{KERNELS}")
}

/// The entry points of a CUDA C translation unit: its `extern "C" __global__` functions.
pub fn entry_points(source: &str) -> Vec<&str> {
    source
        .split("extern \"C\" __global__ void ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .map(str::trim)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_kernels_are_listed() {
        let names = entry_points(KERNELS);
        for expected in ["fill", "gather", "reduce", "softmax", "pool2d", "pool2d_grad", "im2col", "col2im", "accuracy"]
        {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
    }
}
