//! Replica placement: which brokers hold the replicas of new partitions.
//!
//! Kafka's assignment (`AdminUtils.assignReplicasToBrokers`): the first
//! replica of each partition goes round-robin over the brokers from a random
//! start, so preferred leaders spread evenly; the others follow it at a shift
//! that grows every full round, so followers spread too. With `broker.rack`
//! set, the brokers are first interleaved rack by rack, so consecutive
//! replicas sit on different racks.

use std::collections::BTreeMap;

/// A broker that can take replicas: its id and rack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: i32,
    pub rack: Option<String>,
}

/// Kafka's message when the brokers are too few.
pub fn too_few_brokers(replication_factor: i16, brokers: usize) -> String {
    format!(
        "Unable to replicate the partition {replication_factor} time(s): The target \
         replication factor of {replication_factor} cannot be reached because only \
         {brokers} broker(s) are registered."
    )
}

/// The replicas of partitions `first..first + count` (the preferred leader
/// first in each), or Kafka's message when there are fewer brokers than
/// `replication_factor`. `start` and `shift` are the random start index and
/// the first follower shift (taken modulo the broker count).
pub fn assign(
    brokers: &[Candidate],
    first: i32,
    count: i32,
    replication_factor: i16,
    start: usize,
    shift: usize,
) -> Result<Vec<Vec<i32>>, String> {
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    let n = brokers.len();
    if rf == 0 || n < rf {
        return Err(too_few_brokers(replication_factor, n));
    }
    let ordered = interleave_racks(brokers);
    let rack_of: BTreeMap<i32, Option<&str>> =
        brokers.iter().map(|b| (b.id, b.rack.as_deref())).collect();
    let racks = rack_of
        .values()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let rack_aware = rack_of.values().any(Option::is_some);
    let start = start % n;
    let mut shift = shift % n;
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 0..usize::try_from(count).unwrap_or(0) {
        let p = usize::try_from(first).unwrap_or(0) + i;
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let leader = (start + p) % n;
        let mut replicas = vec![ordered[leader]];
        // Followers at the shifted steps; with racks, first those on a rack
        // not yet holding a replica while such racks remain.
        let mut step = 0;
        while replicas.len() < rf {
            let idx = (leader + 1 + (shift + step % (n - 1)) % (n - 1)) % n;
            let id = ordered[idx];
            let used: std::collections::BTreeSet<_> = replicas.iter().map(|r| rack_of[r]).collect();
            let rack_taken = rack_aware && used.len() < racks && used.contains(&rack_of[&id]);
            if !replicas.contains(&id) && (!rack_taken || step >= n - 1) {
                replicas.push(id);
            }
            step += 1;
        }
        out.push(replicas);
    }
    Ok(out)
}

/// The broker ids, by id within each rack, taken one rack at a time in turn
/// (Kafka's `getRackAlternatedBrokerList`); by id when no rack is set.
fn interleave_racks(brokers: &[Candidate]) -> Vec<i32> {
    let mut sorted: Vec<&Candidate> = brokers.iter().collect();
    sorted.sort_by_key(|b| b.id);
    if sorted.iter().all(|b| b.rack.is_none()) {
        return sorted.iter().map(|b| b.id).collect();
    }
    let mut racks: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for b in &sorted {
        racks
            .entry(b.rack.as_deref().unwrap_or(""))
            .or_default()
            .push(b.id);
    }
    let mut out = Vec::with_capacity(sorted.len());
    let deepest = racks.values().map(Vec::len).max().unwrap_or(0);
    for depth in 0..deepest {
        for ids in racks.values() {
            if let Some(id) = ids.get(depth) {
                out.push(*id);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(racks: &[Option<&str>]) -> Vec<Candidate> {
        racks
            .iter()
            .enumerate()
            .map(|(i, r)| Candidate {
                id: i as i32 + 1,
                rack: r.map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn leaders_go_round_robin_and_followers_shift_each_round() {
        let b = brokers(&[None, None, None]);
        let a = assign(&b, 0, 6, 2, 0, 0).unwrap();
        assert_eq!(
            a,
            vec![
                vec![1, 2],
                vec![2, 3],
                vec![3, 1],
                vec![1, 3],
                vec![2, 1],
                vec![3, 2]
            ]
        );
        // A random start rotates the leaders; every broker leads as many.
        let a = assign(&b, 0, 12, 1, 2, 0).unwrap();
        assert_eq!(a[0], vec![3]);
        for id in 1..=3 {
            assert_eq!(a.iter().filter(|r| r[0] == id).count(), 4);
        }
    }

    #[test]
    fn added_partitions_continue_the_rotation() {
        let b = brokers(&[None, None, None]);
        let all = assign(&b, 0, 5, 3, 1, 1).unwrap();
        let tail = assign(&b, 3, 2, 3, 1, 1).unwrap();
        assert_eq!(&all[3..], &tail[..]);
    }

    #[test]
    fn racks_alternate_so_replicas_span_them() {
        let b = brokers(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        assert_eq!(interleave_racks(&b), vec![1, 3, 2, 4]);
        for replicas in assign(&b, 0, 8, 2, 0, 0).unwrap() {
            let rack = |id: i32| b[(id - 1) as usize].rack.clone();
            assert_ne!(rack(replicas[0]), rack(replicas[1]), "{replicas:?}");
        }
    }

    #[test]
    fn more_replicas_than_brokers_is_refused_with_kafkas_message() {
        let b = brokers(&[None, None]);
        assert_eq!(
            assign(&b, 0, 1, 3, 0, 0).unwrap_err(),
            "Unable to replicate the partition 3 time(s): The target replication factor \
             of 3 cannot be reached because only 2 broker(s) are registered."
        );
    }
}
