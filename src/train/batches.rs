//! Mini-batches from a data set: a fresh shuffle each epoch, from the seeded RNG, so that the
//! order is a function of (seed, epoch) alone and a resumed run sees the same batches.

use graphc_runtime::rng::Rng;

use crate::data::Dataset;

/// The RNG stream of the data order (noise sources use small stream numbers).
const SHUFFLE_STREAM: u64 = u64::MAX - 1;

/// Where a run is in its data: the epoch and the next position in that epoch's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Completed passes over the data.
    pub epoch: u64,
    /// Next position in the epoch's order.
    pub position: usize,
}

/// Draws batches of images (raw pixel values) and labels.
pub struct Batches {
    data: Dataset,
    seed: u64,
    order: Vec<usize>,
    cursor: Cursor,
}

impl Batches {
    /// Batches over `data`, starting at `cursor`.
    pub fn new(data: Dataset, seed: u64, cursor: Cursor) -> Self {
        let order = shuffled(data.count, seed, cursor.epoch);
        Batches { data, seed, order, cursor }
    }

    /// Where the next batch starts.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Epochs completed, fractional: 2.5 is halfway through the third pass.
    pub fn epochs_done(&self) -> f64 {
        self.cursor.epoch as f64 + self.cursor.position as f64 / self.data.count.max(1) as f64
    }

    /// Images per epoch.
    pub fn len(&self) -> usize {
        self.data.count
    }

    /// Whether the data set is empty.
    pub fn is_empty(&self) -> bool {
        self.data.count == 0
    }

    /// The next `batch` examples as (images N×H×W, labels N), both as floats. An epoch ends when
    /// fewer than `batch` examples remain (they are skipped, as PyTorch's `drop_last`).
    pub fn next_batch(&mut self, batch: usize) -> (Vec<f32>, Vec<f32>) {
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        self.next_batch_into(batch, &mut images, &mut labels);
        (images, labels)
    }

    /// [`Batches::next_batch`] into `images` and `labels`, replacing their contents and keeping
    /// their storage, so that a training loop allocates no batch after its first.
    pub fn next_batch_into(&mut self, batch: usize, images: &mut Vec<f32>, labels: &mut Vec<f32>) {
        if self.cursor.position + batch > self.order.len() {
            self.cursor = Cursor { epoch: self.cursor.epoch + 1, position: 0 };
            self.order = shuffled(self.data.count, self.seed, self.cursor.epoch);
        }
        let picked = &self.order[self.cursor.position..self.cursor.position + batch];
        self.cursor.position += batch;
        let pixels = self.data.height * self.data.width;
        images.clear();
        labels.clear();
        for &i in picked {
            images.extend(self.data.images[i * pixels..(i + 1) * pixels].iter().map(|p| *p as f32));
            labels.push(self.data.labels[i] as f32);
        }
    }
}

/// A Fisher–Yates shuffle of `0..n` for `epoch`.
fn shuffled(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::keyed(seed, SHUFFLE_STREAM, epoch);
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(count: usize) -> Dataset {
        Dataset { images: (0..count as u8).collect(), labels: (0..count as u8).collect(), count, height: 1, width: 1 }
    }

    #[test]
    fn epochs_cover_every_example_once_in_a_seeded_order() {
        let mut b = Batches::new(tiny(10), 5, Cursor::default());
        let mut seen: Vec<f32> = (0..5).flat_map(|_| b.next_batch(2).1).collect();
        let first_epoch = seen.clone();
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, (0..10).map(|i| i as f32).collect::<Vec<_>>());
        assert_ne!(first_epoch, seen, "the order is shuffled");
        let again: Vec<f32> = {
            let mut b = Batches::new(tiny(10), 5, Cursor::default());
            (0..5).flat_map(|_| b.next_batch(2).1).collect()
        };
        assert_eq!(first_epoch, again);
    }

    #[test]
    fn resuming_at_a_cursor_gives_the_same_batches() {
        let mut a = Batches::new(tiny(9), 1, Cursor::default());
        let _ = (a.next_batch(4), a.next_batch(4), a.next_batch(4));
        let cursor = a.cursor();
        assert_eq!(cursor, Cursor { epoch: 1, position: 4 });
        let mut b = Batches::new(tiny(9), 1, cursor);
        assert_eq!(a.next_batch(4), b.next_batch(4));
    }
}
