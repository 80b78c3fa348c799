//! The assignment problem (Hungarian method, O(n²m) with row and column potentials): the
//! one-to-one matching of rows to columns of least total cost. `eval` uses it to map each value
//! of a categorical latent code to the digit it draws most often, one digit per code.

/// For each row of the `rows`×`cols` cost matrix (`rows <= cols`), the column it is assigned
/// to, so that no column is used twice and the total cost is the least possible.
///
/// # Panics
/// If a row is shorter than the first or there are more rows than columns.
pub fn min_cost_assignment(cost: &[Vec<f64>]) -> Vec<usize> {
    let rows = cost.len();
    let cols = cost.first().map_or(0, Vec::len);
    assert!(rows <= cols && cost.iter().all(|r| r.len() == cols), "need rows <= columns in a rectangular matrix");
    // Index 0 is a virtual column that holds the row being inserted; rows and columns are 1-based.
    let mut row_potential = vec![0.0; rows + 1];
    let mut col_potential = vec![0.0; cols + 1];
    let mut row_of_col = vec![0usize; cols + 1];
    let mut previous_col = vec![0usize; cols + 1];
    for row in 1..=rows {
        row_of_col[0] = row;
        let mut col = 0;
        let mut slack = vec![f64::INFINITY; cols + 1];
        let mut visited = vec![false; cols + 1];
        // Grow a tree of tight edges from `row` until it reaches a free column.
        loop {
            visited[col] = true;
            let r = row_of_col[col];
            let (mut delta, mut next) = (f64::INFINITY, 0);
            for c in 1..=cols {
                if visited[c] {
                    continue;
                }
                let reduced = cost[r - 1][c - 1] - row_potential[r] - col_potential[c];
                if reduced < slack[c] {
                    slack[c] = reduced;
                    previous_col[c] = col;
                }
                if slack[c] < delta {
                    delta = slack[c];
                    next = c;
                }
            }
            for c in 0..=cols {
                if visited[c] {
                    row_potential[row_of_col[c]] += delta;
                    col_potential[c] -= delta;
                } else {
                    slack[c] -= delta;
                }
            }
            col = next;
            if row_of_col[col] == 0 {
                break;
            }
        }
        // Flip the augmenting path back to the virtual column.
        while col != 0 {
            let before = previous_col[col];
            row_of_col[col] = row_of_col[before];
            col = before;
        }
    }
    let mut assignment = vec![0; rows];
    for c in 1..=cols {
        if row_of_col[c] != 0 {
            assignment[row_of_col[c] - 1] = c - 1;
        }
    }
    assignment
}

/// The assignment of most total `score` (e.g. counts of agreements), as
/// [`min_cost_assignment`] of the negated scores.
pub fn max_score_assignment(score: &[Vec<f64>]) -> Vec<usize> {
    let negated: Vec<Vec<f64>> = score.iter().map(|r| r.iter().map(|v| -v).collect()).collect();
    min_cost_assignment(&negated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(cost: &[Vec<f64>], assignment: &[usize]) -> f64 {
        assignment.iter().enumerate().map(|(r, c)| cost[r][*c]).sum()
    }

    /// Every injective assignment's least cost, by enumeration.
    fn brute_force(cost: &[Vec<f64>]) -> f64 {
        fn go(cost: &[Vec<f64>], row: usize, used: &mut Vec<bool>) -> f64 {
            if row == cost.len() {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for c in 0..used.len() {
                if !used[c] {
                    used[c] = true;
                    best = best.min(cost[row][c] + go(cost, row + 1, used));
                    used[c] = false;
                }
            }
            best
        }
        go(cost, 0, &mut vec![false; cost[0].len()])
    }

    #[test]
    fn a_known_matrix() {
        let cost = vec![vec![4.0, 1.0, 3.0], vec![2.0, 0.0, 5.0], vec![3.0, 2.0, 2.0]];
        assert_eq!(min_cost_assignment(&cost), vec![1, 0, 2]);
        // A permuted identity of counts: the best mapping undoes the permutation.
        let counts: Vec<Vec<f64>> =
            (0..4).map(|r| (0..4).map(|c| if c == (r + 1) % 4 { 9.0 } else { 1.0 }).collect()).collect();
        assert_eq!(max_score_assignment(&counts), vec![1, 2, 3, 0]);
    }

    #[test]
    fn matches_brute_force_on_pseudo_random_matrices() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1000) as f64 / 10.0
        };
        for (rows, cols) in [(1, 1), (3, 3), (5, 5), (4, 6), (7, 7)] {
            for _ in 0..20 {
                let cost: Vec<Vec<f64>> = (0..rows).map(|_| (0..cols).map(|_| next()).collect()).collect();
                let assignment = min_cost_assignment(&cost);
                let mut seen = assignment.clone();
                seen.sort();
                seen.dedup();
                assert_eq!(seen.len(), rows, "columns used once");
                assert!((total(&cost, &assignment) - brute_force(&cost)).abs() < 1e-9, "{cost:?}");
            }
        }
    }
}
