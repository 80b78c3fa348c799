//! Data parallelism shared by the kernels: split an output into fixed-size chunks and run them on
//! the rayon pool when the output is large enough to pay for it. Chunk boundaries depend only on
//! the sizes, never on the number of threads, so results are the same for any pool.

use rayon::prelude::*;

/// Outputs smaller than this many elements are computed on the calling thread.
pub const PAR_MIN: usize = 1 << 16;

/// Calls `f(i, chunk)` for each consecutive `chunk_len`-element chunk `i` of `out` (the last may be
/// shorter), in parallel when `out` has at least [`PAR_MIN`] elements.
pub fn for_each_chunk(out: &mut [f32], chunk_len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let chunk_len = chunk_len.max(1);
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(chunk_len).enumerate().for_each(|(i, chunk)| f(i, chunk));
    } else {
        out.chunks_mut(chunk_len).enumerate().for_each(|(i, chunk)| f(i, chunk));
    }
}

/// The chunk length for independent elementwise work: large enough to amortize scheduling.
pub const ELEMENT_CHUNK: usize = 1 << 14;

/// An output pointer shared by parallel tasks that each write their own disjoint part of it
/// (GEMM output blocks, a fused group's chunks). Whoever builds one guarantees that the parts are
/// disjoint and that the storage outlives the tasks.
#[derive(Clone, Copy)]
pub struct SharedOut(pub *mut f32);
// SAFETY: only sound as its builders use it: tasks write pairwise disjoint parts of storage that
// outlives them (see the type's doc and each use's SAFETY comment).
unsafe impl Send for SharedOut {}
// SAFETY: as for Send.
unsafe impl Sync for SharedOut {}

/// Copies `src` into `dst` (of the same length). Runs of up to 32 values, the length of the
/// runs the convolution and GEMM packing copy, are moved by a few fixed-size (possibly
/// overlapping) blocks, which compile to inline vector moves: a `memmove` call per run had been 14%
/// of a DC-GAN step (and a loop of blocks is turned back into that call by the compiler).
#[inline]
pub fn copy_short(dst: &mut [f32], src: &[f32]) {
    let n = src.len();
    assert_eq!(dst.len(), n, "copy_short needs equal lengths");
    let mut block = |at: usize, len: usize| match len {
        8 => dst[at..at + 8].copy_from_slice(&<[f32; 8]>::try_from(&src[at..at + 8]).expect("8 values")),
        _ => dst[at..at + 4].copy_from_slice(&<[f32; 4]>::try_from(&src[at..at + 4]).expect("4 values")),
    };
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            block(0, 4);
            block(n - 4, 4);
        }
        8..=16 => {
            block(0, 8);
            block(n - 8, 8);
        }
        17..=32 => {
            block(0, 8);
            block(8, 8);
            block(n - 16, 8);
            block(n - 8, 8);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// Adds `src` into `dst` (of the same length), eight and then four values at a time as
/// fixed-size blocks, which compile to vector adds, and the last at most three one by one. Each
/// element gets the same single addition a plain loop gives it. The runs col2im adds are an output
/// row long (14 or 28 values in the models): left to the compiler, the 8-value vector loop it made
/// of them finished each run with up to 7 scalar additions, about half of every 14-value run.
#[inline]
pub fn add_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "add_short needs equal lengths");
    fn add<const N: usize>(dst: &mut [f32], src: &[f32]) {
        let (d, s): (&mut [f32; N], &[f32; N]) = (dst.try_into().expect("N values"), src.try_into().expect("N values"));
        d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
    }
    let eights = dst.len() / 8 * 8;
    for (d, s) in dst[..eights].chunks_exact_mut(8).zip(src.chunks_exact(8)) {
        add::<8>(d, s);
    }
    let (mut dst, mut src) = (&mut dst[eights..], &src[eights..]);
    if dst.len() >= 4 {
        add::<4>(&mut dst[..4], &src[..4]);
        (dst, src) = (&mut dst[4..], &src[4..]);
    }
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
}

#[cfg(test)]
mod tests {
    #[test]
    fn add_short_adds_every_length_once() {
        for n in 0..40 {
            let src: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
            let mut dst: Vec<f32> = (0..n).map(|i| 100.0 * i as f32).collect();
            super::add_short(&mut dst, &src);
            let expected: Vec<f32> = (0..n).map(|i| 100.0 * i as f32 + (i as f32 + 0.5)).collect();
            assert_eq!(dst, expected, "length {n}");
        }
    }

    #[test]
    fn copy_short_copies_every_length() {
        for n in 0..70 {
            let src: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
            let mut dst = vec![0.0; n];
            super::copy_short(&mut dst, &src);
            assert_eq!(dst, src, "length {n}");
        }
    }
}
