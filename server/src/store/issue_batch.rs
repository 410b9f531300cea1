//! Group commit of client_credentials issuance: concurrent requests share one transaction.
//!
//! Under load most of what an issuance costs the database is per transaction, not per row:
//! the statement's round trip and planning, the commit and its WAL flush. So issuances that
//! arrive together are committed together: the first request to find nobody collecting
//! becomes the leader of a group, and a task it starts waits until [`IssueBatching::max`]
//! requests are queued, [`IssueBatching::wait`] has passed, or no other group is committing
//! (a lone request does not wait for company that is not coming), then stores the whole group
//! in one transaction (one multi-row statement on Postgres) and answers every member. Nobody
//! is answered before the transaction holding their rows has committed, so durability is what
//! it was: synchronous commit, one group at a time.
//!
//! The group is a task of its own, not the leader's request, so that a client that hangs up
//! (its request future dropped) leaves the others' answers intact; its own rows are committed
//! all the same, as they would be had it hung up one instant later.
//!
//! A failed group fails every member only when the failure is the database's (an outage or a
//! lost race after every retry: 503). Anything else is about some member's rows (typically a
//! client deleted meanwhile, so its grant's foreign key fails): each member is then stored on
//! its own, and gets the answer it would have had alone.
use super::tokens::Issue;
use super::{Store, StoreError};
use futures_util::future::{BoxFuture, join_all};
use prometheus::{Histogram, HistogramOpts};
use sea_orm::DbErr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// How issuances are grouped (`tokens.issue_batch_max`, `tokens.issue_batch_wait_us`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssueBatching {
    /// The most issuances one transaction stores.
    pub max: usize,
    /// The longest a group collects before it commits; zero commits each issuance alone.
    pub wait: Duration,
}

impl IssueBatching {
    fn groups(self) -> bool {
        self.max > 1 && !self.wait.is_zero()
    }
}

/// The committer a [`Store`] and its clones share, and the group sizes it has seen.
#[derive(Clone)]
pub(super) struct IssueBatch {
    sizes: Histogram,
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for IssueBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssueBatch")
            .field("batching", &self.shared.as_ref().map(|s| s.batching))
            .finish()
    }
}

struct Shared {
    batching: IssueBatching,
    queue: Mutex<Queue<Pending>>,
    /// Rung when the queue reaches `max` or a group has committed: the collecting leader
    /// looks again whether to commit.
    wake: Notify,
}

/// An issuance waiting for its group's commit, and where its answer goes.
struct Pending {
    issue: Issue,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

impl IssueBatch {
    /// Grouping off: each issuance commits alone.
    #[allow(
        clippy::expect_used,
        reason = "a literal name, help and buckets that prometheus accepts, as every start shows"
    )]
    pub(super) fn off() -> Self {
        let sizes = Histogram::with_opts(
            HistogramOpts::new(
                "issue_batch_size",
                "client_credentials issuances committed in one transaction",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )
        .expect("a valid metric definition");
        Self {
            sizes,
            shared: None,
        }
    }

    /// The same metric with `batching` in force.
    pub(super) fn configured(&self, batching: IssueBatching) -> Self {
        let shared = batching.groups().then(|| {
            Arc::new(Shared {
                batching,
                queue: Mutex::new(Queue::default()),
                wake: Notify::new(),
            })
        });
        Self {
            sizes: self.sizes.clone(),
            shared,
        }
    }
}

impl Store {
    /// Stores `issue`, in a group with concurrent ones when grouping is on.
    pub(super) async fn commit_issue(&self, issue: Issue) -> Result<(), StoreError> {
        let Some(shared) = &self.issue_batch.shared else {
            return self.issue_alone(&issue).await;
        };
        let (reply, answer) = oneshot::channel();
        let role = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let role = queue.push(Pending { issue, reply });
            if role == Role::Follower && queue.pending.len() >= shared.batching.max {
                shared.wake.notify_one();
            }
            role
        };
        if role == Role::Leader {
            tokio::spawn(self.clone().lead(shared.clone()));
        }
        // The sender is dropped unanswered only if the group's task died with its runtime
        // (the server is stopping): the request then fails like one cut off from the database.
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(DbErr::Custom(
                "the issuance group was abandoned".into(),
            )))
        })
    }

    /// The group's task: collect, commit, answer. Boxed because it may start another one (for
    /// the entries beyond `max`), and the compiler cannot see through that recursion.
    fn lead(self, shared: Arc<Shared>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let IssueBatching { max, wait } = shared.batching;
            let deadline = Instant::now() + wait;
            let group = loop {
                let woken = shared.wake.notified();
                {
                    let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
                    if queue.ready(max) {
                        break queue.take(max);
                    }
                }
                if tokio::time::timeout_at(deadline, woken).await.is_err() {
                    break shared
                        .queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take(max);
                }
            };
            if group.left_behind {
                tokio::spawn(self.clone().lead(shared.clone()));
            }
            let (issues, replies): (Vec<_>, Vec<_>) = group
                .members
                .into_iter()
                .map(|pending| (pending.issue, pending.reply))
                .unzip();
            #[allow(
                clippy::cast_precision_loss,
                reason = "a group holds at most tokens.issue_batch_max members"
            )]
            self.issue_batch.sizes.observe(issues.len() as f64);
            let outcomes = self.issue_group(&issues).await;
            shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .committed();
            shared.wake.notify_one();
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A member whose request was dropped meanwhile has nobody to tell.
                let _ = reply.send(outcome);
            }
        })
    }

    /// One outcome per member of `issues`, in order.
    async fn issue_group(&self, issues: &[Issue]) -> Vec<Result<(), StoreError>> {
        let together = self
            .retrying("issue_client_credentials_group", move || {
                self.insert_client_credentials(issues)
            })
            .await;
        match together {
            Ok(()) => issues.iter().map(|_| Ok(())).collect(),
            Err(err @ (StoreError::Unavailable(_) | StoreError::Contended(_))) => {
                issues.iter().map(|_| Err(err.clone())).collect()
            }
            Err(err) if issues.len() == 1 => vec![Err(err)],
            Err(err) => {
                tracing::debug!(error = %err, size = issues.len(), "issuance group failed; storing each alone");
                join_all(issues.iter().map(|issue| self.issue_alone(issue))).await
            }
        }
    }

    /// The group sizes seen, exported as `umbra_issue_batch_size`.
    pub fn issue_batch_sizes(&self) -> Histogram {
        self.issue_batch.sizes.clone()
    }
}

/// What a request became when it joined the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// It opened a group and starts the task that commits it.
    Leader,
    /// A group was already collecting; it waits for that group's answer.
    Follower,
}

/// The bookkeeping of grouping, apart from any database: who leads, when a group is ready,
/// how it is taken.
#[derive(Debug)]
struct Queue<T> {
    pending: Vec<T>,
    /// A leader is collecting the pending entries.
    collecting: bool,
    /// Groups taken and not yet committed.
    committing: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            collecting: false,
            committing: 0,
        }
    }
}

/// A group taken from the queue.
#[derive(Debug)]
struct Group<T> {
    members: Vec<T>,
    /// Entries beyond `max` stayed queued: whoever took the group starts a leader for them.
    left_behind: bool,
}

impl<T> Queue<T> {
    fn push(&mut self, entry: T) -> Role {
        self.pending.push(entry);
        if self.collecting {
            Role::Follower
        } else {
            self.collecting = true;
            Role::Leader
        }
    }

    /// Whether the collecting group should commit now: it is full, or nothing else is being
    /// committed, so that waiting would only add latency (the entries that arrive while a
    /// group commits are what makes the next one large).
    fn ready(&self, max: usize) -> bool {
        self.pending.len() >= max || self.committing == 0
    }

    fn take(&mut self, max: usize) -> Group<T> {
        let size = self.pending.len().min(max);
        let members: Vec<T> = self.pending.drain(..size).collect();
        self.committing += 1;
        self.collecting = !self.pending.is_empty();
        Group {
            members,
            left_behind: self.collecting,
        }
    }

    fn committed(&mut self) {
        self.committing = self.committing.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_entry_leads_and_the_next_ones_follow_until_the_group_is_taken() {
        let mut queue = Queue::default();
        assert_eq!(queue.push(1), Role::Leader);
        assert_eq!(queue.push(2), Role::Follower);
        let group = queue.take(8);
        assert_eq!(group.members, vec![1, 2]);
        assert!(!group.left_behind);
        assert_eq!(queue.push(3), Role::Leader, "a new group opens at once");
    }

    #[test]
    fn a_lone_entry_is_ready_at_once_but_waits_while_another_group_commits() {
        let mut queue = Queue::default();
        queue.push(1);
        assert!(queue.ready(8));
        queue.take(8);
        queue.push(2);
        queue.push(3);
        assert!(
            !queue.ready(8),
            "the group collects while the first commits"
        );
        queue.committed();
        assert!(queue.ready(8));
    }

    #[test]
    fn a_full_group_is_ready_even_while_another_commits() {
        let mut queue = Queue::default();
        queue.push(0);
        queue.take(3);
        for entry in 1..=3 {
            queue.push(entry);
        }
        assert!(queue.ready(3));
    }

    #[test]
    fn entries_beyond_max_stay_queued_for_a_new_leader() {
        let mut queue = Queue::default();
        queue.push(0);
        queue.take(2);
        for entry in 1..=5 {
            queue.push(entry);
        }
        let group = queue.take(2);
        assert_eq!(group.members, vec![1, 2]);
        assert!(group.left_behind);
        assert_eq!(
            queue.push(6),
            Role::Follower,
            "the leftovers' leader collects it"
        );
        let rest = queue.take(8);
        assert_eq!(rest.members, vec![3, 4, 5, 6]);
        assert!(!rest.left_behind);
        assert_eq!(queue.committing, 3);
    }

    #[test]
    fn grouping_needs_room_for_two_and_a_wait() {
        let wait = Duration::from_micros(1000);
        assert!(IssueBatching { max: 64, wait }.groups());
        assert!(!IssueBatching { max: 1, wait }.groups());
        assert!(
            !IssueBatching {
                max: 64,
                wait: Duration::ZERO
            }
            .groups()
        );
    }
}
