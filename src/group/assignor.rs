//! Server-side partition assignors for KIP-848 consumer groups: "uniform"
//! (sticky and balanced, the default) and "range" (per-topic contiguous ranges,
//! co-partitioned across topics). Pure functions, no group state.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// One topic-partition, identified by topic id.
pub type TopicPartition = (Uuid, i32);

/// The name of the default server-side assignor.
pub const UNIFORM: &str = "uniform";
/// The name of the range server-side assignor.
pub const RANGE: &str = "range";
/// The assignor used when no member asks for one.
pub const DEFAULT_ASSIGNOR: &str = UNIFORM;

/// Whether `name` is a server-side assignor this broker supports.
pub fn is_supported(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// What an assignor knows about one member.
#[derive(Debug, Clone)]
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    pub subscribed: &'a BTreeSet<String>,
    /// The member's previous target assignment, used for stickiness.
    pub previous: Option<&'a BTreeSet<TopicPartition>>,
}

/// Computes a target assignment for every member (members without partitions
/// get an empty set). `topics` maps the subscribed, existing topics to
/// (topic id, partition count). Unknown assignor names fall back to uniform.
pub fn assign(
    assignor: &str,
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<String, (Uuid, i32)>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    if assignor == RANGE {
        range(members, topics)
    } else {
        uniform(members, topics)
    }
}

fn uniform(
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<String, (Uuid, i32)>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let n = members.len();
    let mut result: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); n];
    // Every assignable partition and the members allowed to take it.
    let mut candidates: BTreeMap<TopicPartition, Vec<usize>> = BTreeMap::new();
    for (name, &(topic_id, count)) in topics {
        let subscribers: Vec<usize> = members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.subscribed.contains(name))
            .map(|(i, _)| i)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        for p in 0..count.max(0) {
            candidates.insert((topic_id, p), subscribers.clone());
        }
    }
    let total = candidates.len();
    let (Some(quota), Some(mut extra_left)) = (total.checked_div(n), total.checked_rem(n)) else {
        return BTreeMap::new();
    };
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();

    // 1. Stickiness: members keep previous partitions up to their quota
    //    (quota + 1 for as many members as there are remainder partitions).
    for (i, m) in members.iter().enumerate() {
        let Some(previous) = m.previous else { continue };
        for tp in previous {
            let eligible = candidates.get(tp).is_some_and(|c| c.contains(&i));
            if !eligible || taken.contains(tp) {
                continue;
            }
            let count = result[i].len();
            if count < quota {
                result[i].insert(*tp);
                taken.insert(*tp);
            } else if count == quota && extra_left > 0 {
                extra_left -= 1;
                result[i].insert(*tp);
                taken.insert(*tp);
            }
        }
    }

    // 2. The rest goes, most constrained partitions first, to the least
    //    loaded member allowed to take it.
    let mut rest: Vec<(&TopicPartition, &Vec<usize>)> = candidates
        .iter()
        .filter(|(tp, _)| !taken.contains(*tp))
        .collect();
    rest.sort_by_key(|(tp, c)| (c.len(), **tp));
    for (tp, cands) in rest {
        if let Some(&best) = cands.iter().min_by_key(|&&i| (result[i].len(), i)) {
            result[best].insert(*tp);
        }
    }
    members
        .iter()
        .zip(result)
        .map(|(m, a)| (m.member_id.to_string(), a))
        .collect()
}

fn range(
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<String, (Uuid, i32)>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut result: BTreeMap<String, BTreeSet<TopicPartition>> = members
        .iter()
        .map(|m| (m.member_id.to_string(), BTreeSet::new()))
        .collect();
    for (name, &(topic_id, count)) in topics {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.subscribed.contains(name))
            .map(|m| m.member_id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_unstable();
        let count = count.max(0) as usize;
        let per = count / subscribers.len();
        let extra = count % subscribers.len();
        let mut next = 0usize;
        for (k, member_id) in subscribers.iter().enumerate() {
            let len = per + usize::from(k < extra);
            if let Some(set) = result.get_mut(*member_id) {
                for p in next..next + len {
                    // `count` came from an i32, so every p fits.
                    set.insert((topic_id, p as i32));
                }
            }
            next += len;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn uniform_balances_homogeneous_subscriptions() {
        let subs: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let topics: BTreeMap<String, (Uuid, i32)> = [
            ("a".to_string(), (topic(1), 7)),
            ("b".to_string(), (topic(2), 4)),
        ]
        .into();
        let ids = ["m1", "m2", "m3"];
        let members: Vec<AssignorMember<'_>> = ids
            .iter()
            .map(|id| AssignorMember {
                member_id: id,
                subscribed: &subs,
                previous: None,
            })
            .collect();
        let out = assign(UNIFORM, &members, &topics);
        let sizes: Vec<usize> = out.values().map(|s| s.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 11);
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let subs: BTreeSet<String> = ["a".to_string()].into();
        let topics: BTreeMap<String, (Uuid, i32)> = [("a".to_string(), (topic(1), 6))].into();
        let first = assign(
            UNIFORM,
            &[
                AssignorMember {
                    member_id: "m1",
                    subscribed: &subs,
                    previous: None,
                },
                AssignorMember {
                    member_id: "m2",
                    subscribed: &subs,
                    previous: None,
                },
            ],
            &topics,
        );
        let second = assign(
            UNIFORM,
            &[
                AssignorMember {
                    member_id: "m1",
                    subscribed: &subs,
                    previous: first.get("m1"),
                },
                AssignorMember {
                    member_id: "m2",
                    subscribed: &subs,
                    previous: first.get("m2"),
                },
                AssignorMember {
                    member_id: "m3",
                    subscribed: &subs,
                    previous: None,
                },
            ],
            &topics,
        );
        for id in ["m1", "m2"] {
            assert_eq!(second[id].len(), 2);
            assert!(second[id].is_subset(&first[id]));
        }
        assert_eq!(second["m3"].len(), 2);
    }
}
