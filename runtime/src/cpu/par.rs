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
