//! Leases with many instances on one database: one holder at a time, whoever races for it;
//! cleanup run by one instance; automatic key rotations made once, not once per instance.
use entity::signing_key;
use futures_util::future::join_all;
use sea_orm::EntityTrait;
use std::time::Duration;
use umbra::keys::{self, KeyRing};
use umbra::store::Holder;

/// Instances racing in the tests below.
const INSTANCES: usize = 24;

db_test! {
    async fn of_dozens_of_instances_racing_for_a_lease_exactly_one_holds_it(app: TestApp) {
        let now = umbra::clock::now();
        let holders: Vec<Holder> = (0..INSTANCES).map(|_| Holder::generate()).collect();
        let race = |holders: Vec<Holder>, at: i64| {
            let store = app.store.clone();
            async move {
                let taken = join_all(
                    holders.iter().map(|h| store.acquire_lease("race", h, at, 30)),
                )
                .await;
                holders
                    .into_iter()
                    .zip(taken)
                    .filter_map(|(h, taken)| taken.expect("no error, whoever loses").then_some(h))
                    .collect::<Vec<_>>()
            }
        };

        let winners = race(holders.clone(), now).await;

        assert_eq!(winners.len(), 1, "{winners:?}");
        let first = winners[0].clone();
        let others: Vec<Holder> = holders.iter().filter(|h| **h != first).cloned().collect();
        assert!(app.store.acquire_lease("race", &first, now + 20, 30).await.unwrap(), "renewed");
        assert!(race(others.clone(), now + 49).await.is_empty(), "held until its renewal expires");

        let winners = race(others.clone(), now + 50).await;
        assert_eq!(winners.len(), 1, "once expired, one other takes it: {winners:?}");
        let second = winners[0].clone();
        assert!(!app.store.acquire_lease("race", &first, now + 51, 30).await.unwrap());

        app.store.release_lease("race", &first).await.unwrap();
        assert_eq!(app.store.lease("race").await.unwrap().unwrap().holder, second.as_str(), "only the holder releases");
        app.store.release_lease("race", &second).await.unwrap();
        assert!(app.store.lease("race").await.unwrap().is_none());
        let winners = race(others, now + 52).await;
        assert_eq!(winners.len(), 1, "a released lease is free at once: {winners:?}");
    }
}

db_test! {
    async fn dozens_of_instances_starting_together_on_a_database_without_keys_make_one(app: TestApp) {
        signing_key::Entity::delete_many().exec(app.store.connection()).await.unwrap();
        let (sealer, policy) = umbra::startup::key_parts(&app.settings).unwrap();
        let now = umbra::clock::now();

        let rings = join_all((0..INSTANCES).map(|_| {
            KeyRing::load(app.store.clone(), sealer.clone(), policy, Holder::generate(), now)
        }))
        .await;

        let stored = keys::list(&app.store, now).await.unwrap();
        assert_eq!(stored.len(), 1, "one key, not one per instance: {stored:?}");
        for ring in rings {
            let jwks = ring.expect("every instance starts").jwks(now);
            assert_eq!(jwks["keys"][0]["kid"], stored[0].kid.as_str(), "{jwks}");
        }
    }
}

db_test! {
    async fn dozens_of_instances_seeing_the_key_come_of_age_rotate_it_once(app: TestApp) {
        let (sealer, mut policy) = umbra::startup::key_parts(&app.settings).unwrap();
        policy.rotate_after_secs = 3600;
        let now = umbra::clock::now();
        let rings: Vec<KeyRing> = join_all((0..INSTANCES).map(|_| {
            KeyRing::load(app.store.clone(), sealer.clone(), policy, Holder::generate(), now)
        }))
        .await
        .into_iter()
        .map(|ring| ring.unwrap())
        .collect();
        assert_eq!(keys::list(&app.store, now).await.unwrap().len(), 1);

        let later = now + 3600;
        for refreshed in join_all(rings.iter().map(|ring| ring.refresh(later))).await {
            refreshed.expect("every instance refreshes");
        }

        let stored = keys::list(&app.store, later).await.unwrap();
        assert_eq!(stored.len(), 2, "one successor, not one per instance: {stored:?}");
        assert_eq!(stored.iter().filter(|k| k.state == "pending").count(), 1);
    }
}

/// The value of counter `name` in a Prometheus text exposition.
fn counter(exposition: &str, name: &str) -> u64 {
    umbra_tests::metric_value(exposition, name)
        .unwrap_or_else(|| panic!("no {name} in {exposition}")) as u64
}

db_test_with! {
    |settings| settings.cleanup.interval_secs = 1,
    async fn of_several_instances_on_one_database_one_runs_the_cleanup(app: TestApp) {
        let mut metrics = vec![app.metrics_address.clone()];
        for _ in 0..3 {
            metrics.push(app.another_instance().await.1);
        }

        tokio::time::sleep(Duration::from_millis(3500)).await;

        let mut passes = Vec::new();
        for address in &metrics {
            let text = app.http.get(format!("{address}/metrics")).send().await.unwrap().text().await.unwrap();
            passes.push(counter(&text, "umbra_cleanup_passes_total"));
        }
        let working: Vec<&u64> = passes.iter().filter(|p| **p > 0).collect();
        assert_eq!(working.len(), 1, "one instance cleans up: {passes:?}");
        assert!(*working[0] >= 3, "every second, the holder renewing its lease: {passes:?}");
        let holder = app.store.lease("cleanup").await.unwrap().expect("a holder");
        assert!(holder.expires_at > umbra::clock::now());
    }
}
