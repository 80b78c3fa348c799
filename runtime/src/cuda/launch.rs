//! Host-side launch logic of the CUDA kernels, all testable without a GPU: the strided views the
//! kernels index with (the `View` of prelude.cuh, same layout), built from the plan's shapes for
//! broadcasts, slices and reductions; the launch configuration; and the cache of compiled kernels.

use std::collections::HashMap;

/// The most axes a [`View`] describes (`MAX_RANK` in prelude.cuh).
pub const MAX_RANK: usize = 8;

/// A strided view, laid out as prelude.cuh's `struct View`: element `i` (row-major over `size`)
/// sits at `Σ coordinate_d · stride_d`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Number of axes used.
    pub rank: i32,
    /// Elements along each axis.
    pub size: [i64; MAX_RANK],
    /// Memory distance between neighbours along each axis (0 repeats an element).
    pub stride: [i64; MAX_RANK],
}

impl View {
    /// The view over `sizes` with `strides`; `None` beyond [`MAX_RANK`] axes.
    fn new(sizes: &[usize], strides: &[i64]) -> Option<Self> {
        if sizes.len() > MAX_RANK {
            return None;
        }
        let mut view = View { rank: sizes.len() as i32, size: [1; MAX_RANK], stride: [0; MAX_RANK] };
        for (d, (size, stride)) in sizes.iter().zip(strides).enumerate() {
            view.size[d] = *size as i64;
            view.stride[d] = *stride;
        }
        Some(view)
    }

    /// Row-major strides of `shape`.
    fn contiguous(shape: &[usize]) -> Vec<i64> {
        let mut strides = vec![0i64; shape.len()];
        let mut step = 1i64;
        for d in (0..shape.len()).rev() {
            strides[d] = step;
            step *= shape[d] as i64;
        }
        strides
    }

    /// How the `gather` kernel reads an input of shape `input` broadcast to `output`: input axis
    /// `i` is output axis `dims[i]` (equal size, or 1 and repeated); other output axes repeat.
    pub fn broadcast(input: &[usize], output: &[usize], dims: &[usize]) -> Option<Self> {
        let input_strides = Self::contiguous(input);
        let mut strides = vec![0i64; output.len()];
        for (i, &d) in dims.iter().enumerate() {
            strides[d] = if input[i] == 1 { 0 } else { input_strides[i] };
        }
        Self::new(output, &strides)
    }

    /// How the `reduce` kernels walk an input of shape `shape` reduced over the sorted `axes`:
    /// the kept axes (whose row-major order numbers the outputs) and the reduced ones, each with
    /// the input's strides, and the number of elements summed per output.
    pub fn reduction(shape: &[usize], axes: &[usize]) -> Option<(Self, Self, u64)> {
        let strides = Self::contiguous(shape);
        let pick = |reduced: bool| -> (Vec<usize>, Vec<i64>) {
            (0..shape.len()).filter(|d| axes.contains(d) == reduced).map(|d| (shape[d], strides[d])).unzip()
        };
        let ((kept_sizes, kept_strides), (red_sizes, red_strides)) = (pick(false), pick(true));
        let count = red_sizes.iter().product::<usize>() as u64;
        Some((Self::new(&kept_sizes, &kept_strides)?, Self::new(&red_sizes, &red_strides)?, count))
    }

    /// The offset of element `i`, as prelude.cuh's `offset_of` computes it.
    pub fn offset(&self, mut i: u64) -> i64 {
        let mut offset = 0;
        for d in (0..self.rank as usize).rev() {
            offset += (i % self.size[d] as u64) as i64 * self.stride[d];
            i /= self.size[d] as u64;
        }
        offset
    }
}

/// Threads per block of every elementwise-style kernel.
pub const BLOCK: u32 = 256;

/// Grid and block sizes for `n` outputs on a device with `multiprocessors` SMs: enough blocks to
/// cover `n` up to 32 per SM (the kernels loop grid-stride over the rest), at least one.
pub fn launch_config(n: u64, multiprocessors: u32) -> (u32, u32) {
    let needed = n.div_ceil(BLOCK as u64).max(1);
    let cap = (multiprocessors.max(1) as u64) * 32;
    (needed.min(cap) as u32, BLOCK)
}

/// Compiled kernels by name (the name hashes the source), so that each distinct kernel is
/// compiled once per process however many nodes and steps use it.
#[derive(Debug, Default)]
pub struct KernelCache {
    compiled: HashMap<String, String>,
    compilations: usize,
}

impl KernelCache {
    /// The compiled form (PTX) of kernel `name` from `source`, compiling it with `compile` on
    /// first use.
    pub fn get_or_compile<E>(
        &mut self,
        name: &str,
        source: &str,
        compile: impl FnOnce(&str) -> Result<String, E>,
    ) -> Result<&str, E> {
        if !self.compiled.contains_key(name) {
            let ptx = compile(source)?;
            self.compilations += 1;
            self.compiled.insert(name.to_string(), ptx);
        }
        Ok(&self.compiled[name])
    }

    /// How many compilations the cache has run.
    pub fn compilations(&self) -> usize {
        self.compilations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{execute, NoiseKey, View as CpuView};
    use crate::ops::ReduceOp;
    use crate::Kernel;

    fn values(n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37).sin()).collect()
    }

    #[test]
    fn broadcast_views_read_what_the_cpu_kernel_writes() {
        // (input shape, output shape, dims)
        let cases: [(&[usize], &[usize], &[usize]); 4] =
            [(&[3], &[2, 3], &[1]), (&[4], &[2, 4, 3, 3], &[1]), (&[2, 1], &[2, 5], &[0, 1]), (&[], &[3, 2], &[])];
        for (input, output, dims) in cases {
            let x = values(input.iter().product());
            let mut expected = vec![0.0; output.iter().product()];
            let view = [CpuView { data: &x, shape: input }];
            let kernel = Kernel::Broadcast { dims: dims.to_vec() };
            execute(&kernel, &view, &mut expected, output, &NoiseKey { seed: 0, draw: 0 });
            let v = View::broadcast(input, output, dims).unwrap();
            let gathered: Vec<f32> = (0..expected.len() as u64).map(|i| x[v.offset(i) as usize]).collect();
            assert_eq!(gathered, expected, "{input:?} -> {output:?} by {dims:?}");
        }
    }

    #[test]
    fn reduction_views_sum_what_the_cpu_kernel_sums() {
        let shape = [3, 4, 5, 2];
        let x = values(shape.iter().product());
        for axes in [vec![0], vec![1, 3], vec![0, 2, 3], vec![0, 1, 2, 3]] {
            let out_len: usize = (0..4).filter(|d| !axes.contains(d)).map(|d| shape[d]).product();
            let mut expected = vec![0.0; out_len];
            let out_shape: Vec<usize> = (0..4).filter(|d| !axes.contains(d)).map(|d| shape[d]).collect();
            let kernel = Kernel::Reduce { op: ReduceOp::Sum, axes: axes.clone() };
            execute(
                &kernel,
                &[CpuView { data: &x, shape: &shape }],
                &mut expected,
                &out_shape,
                &NoiseKey { seed: 0, draw: 0 },
            );
            let (kept, reduced, count) = View::reduction(&shape, &axes).unwrap();
            for (i, e) in expected.iter().enumerate() {
                let base = kept.offset(i as u64);
                let sum: f64 = (0..count).map(|j| x[(base + reduced.offset(j)) as usize] as f64).sum();
                assert!((sum as f32 - e).abs() <= 1e-6, "axes {axes:?} output {i}: {sum} vs {e}");
            }
        }
    }

    #[test]
    fn views_beyond_the_rank_limit_are_refused() {
        assert!(View::broadcast(&[1], &[1; 9], &[0]).is_none());
    }

    #[test]
    fn launches_cover_small_outputs_and_cap_large_ones() {
        assert_eq!(launch_config(0, 132), (1, BLOCK));
        assert_eq!(launch_config(1000, 132), (4, BLOCK));
        assert_eq!(launch_config(1 << 30, 132), (132 * 32, BLOCK));
    }

    #[test]
    fn the_cache_compiles_each_kernel_once() {
        let mut cache = KernelCache::default();
        let compile = |src: &str| Ok::<_, ()>(format!("ptx of {src}"));
        assert_eq!(cache.get_or_compile("a", "src a", compile).unwrap(), "ptx of src a");
        assert_eq!(cache.get_or_compile("a", "src a", |_| Err(())).unwrap(), "ptx of src a");
        cache.get_or_compile("b", "src b", compile).unwrap();
        assert_eq!(cache.compilations(), 2);
        assert!(cache.get_or_compile("c", "src c", |_| Err("rejected")).is_err());
        assert_eq!(cache.compilations(), 2);
    }
}
