//! The arithmetic of the relational interval tree behind `env_intervals`
//! (see the migration): which node an interval is filed under, and which
//! nodes a stabbing query must look at. Pure; the SQL is in `runtime.rs`.
//!
//! The tree is virtual: its nodes are the integers 1..2^31-1, the root is
//! 2^30, and node n's children are n ± lowbit(n)/2. An interval is filed
//! under its fork node, the first node on the way down from the root that
//! lies inside it. Every point of the interval is then in that node's
//! subtree, so the intervals containing q are all filed on the path from
//! the root to q: at a node left of q those whose upper bound reaches q, at
//! a node right of q those whose lower bound does, and all of those at q.

/// The last index of an interval that is still open (still running).
pub const OPEN: i64 = (1 << 31) - 1;

const ROOT: i64 = 1 << 30;

/// The node the interval [lower, upper] is filed under (1 ≤ lower ≤ upper ≤ OPEN).
pub fn fork(lower: i64, upper: i64) -> i64 {
    debug_assert!(1 <= lower && lower <= upper && upper <= OPEN);
    let (mut node, mut step) = (ROOT, ROOT / 2);
    while step > 0 {
        if upper < node {
            node -= step;
        } else if lower > node {
            node += step;
        } else {
            break;
        }
        step /= 2;
    }
    node
}

/// The nodes from the root down to `q`: below `q` (left) and above it
/// (right), `q` itself excluded.
pub fn path(q: i64) -> (Vec<i64>, Vec<i64>) {
    let (mut left, mut right) = (vec![], vec![]);
    let (mut node, mut step) = (ROOT, ROOT / 2);
    while node != q && step > 0 {
        if q < node {
            right.push(node);
            node -= step;
        } else {
            left.push(node);
            node += step;
        }
        step /= 2;
    }
    (left, right)
}

/// The nodes from the root down to `q`, `q` included: every interval that
/// contains `q` is filed under one of them.
pub fn path_inclusive(q: i64) -> Vec<i64> {
    let (mut all, right) = path(q);
    all.extend(right);
    all.push(q);
    all
}

/// A comma-separated list for an SQL `IN (...)`: only integers computed
/// here ever reach it.
pub fn sql_list(nodes: &[i64]) -> String {
    if nodes.is_empty() {
        // `IN ()` is not valid SQL everywhere; no node is 0.
        return "0".to_string();
    }
    nodes
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contains(iv: (i64, i64), q: i64) -> bool {
        iv.0 <= q && q <= iv.1
    }

    /// What the SQL does, done on a list.
    fn stab(intervals: &[(i64, i64)], q: i64) -> Vec<(i64, i64)> {
        let (left, right) = path(q);
        intervals
            .iter()
            .copied()
            .filter(|&(l, u)| {
                let n = fork(l, u);
                (left.contains(&n) && u >= q) || (right.contains(&n) && l <= q) || n == q
            })
            .collect()
    }

    #[test]
    fn forks() {
        assert_eq!(fork(1, OPEN), ROOT);
        assert_eq!(fork(5, 5), 5);
        assert_eq!(fork(3, 6), 4);
        assert!(path(1).1.len() == 30 && path(1).0.is_empty());
        assert_eq!(path_inclusive(ROOT), vec![ROOT]);
    }

    proptest! {
        #[test]
        fn stabbing_finds_exactly_the_intervals_that_contain_the_point(
            raw in prop::collection::vec((1i64..300, 0i64..100, any::<bool>()), 0..60),
            q in 1i64..400,
        ) {
            let intervals: Vec<(i64, i64)> = raw
                .into_iter()
                .map(|(l, len, open)| (l, if open { OPEN } else { l + len }))
                .collect();
            let want: Vec<_> = intervals.iter().copied().filter(|iv| contains(*iv, q)).collect();
            prop_assert_eq!(stab(&intervals, q), want);
            for &(l, u) in &intervals {
                prop_assert!(path_inclusive(q).contains(&fork(l, u)) || !contains((l, u), q));
            }
        }

        #[test]
        fn far_points_work_too(l in 1i64..OPEN, len in 0i64..1000, q in 1i64..OPEN) {
            let u = (l + len).min(OPEN);
            prop_assert_eq!(stab(&[(l, u)], q).len(), usize::from(contains((l, u), q)));
        }
    }
}
