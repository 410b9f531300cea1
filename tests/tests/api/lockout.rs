//! The second-factor lockout under parallel guesses: one second-step session firing dozens of
//! wrong codes at once gets at most `max_failures` of them judged, the rest are refused with
//! 429 without being looked at, and the lock holds (even against the right code) until it ends.
//! For authenticator codes, e-mailed codes and recovery codes, on both databases.
use reqwest::StatusCode;
use umbra::auth::codes::hash_code;
use umbra::auth::factor::FactorKind;
use umbra::settings::Settings;
use umbra::store::{CodeCheck, NewFactor, User};
use umbra_tests::{Browser, TestApp, location, metric_value, totp_code};

const PASSWORD: &str = "correct horse battery";
/// Long enough for the burst and the check after it to finish inside the lock on a loaded
/// machine, short enough to wait out.
const LOCK_SECS: i64 = 15;
const GUESSES: usize = 40;
/// How late a request of the burst may be answered on a loaded machine.
const MAX_LATENCY_SECS: i64 = 5;

/// A lock short enough to wait out; per-code attempts and the password limiter out of the way,
/// so that only the second-factor lockout decides.
fn short_lock(settings: &mut Settings) {
    settings.second_factor.lockout_secs = LOCK_SECS;
    settings.second_factor.max_code_attempts = 1000;
    settings.second_factor.resend_interval_secs = 0;
    settings.login.max_attempts_per_account = 1000;
    settings.login.max_attempts_per_address = 1000;
}

/// What a burst of guesses got back.
#[derive(Debug)]
struct Burst {
    /// 422 "wrong code": judged, not (yet) locked.
    wrong: usize,
    /// 429: refused, or the failure that set the lock.
    refused: usize,
    /// The longest `Retry-After` among the 429s.
    retry_after: i64,
}

/// Submits every code in `codes` for `method` at once, all on the second-step session of
/// `browser`.
async fn burst(browser: &Browser, method: &str, codes: &[String]) -> Burst {
    let token = browser
        .form_token(&format!("/login/2fa?method={method}"))
        .await;
    let token = &token;
    let responses = futures_util::future::join_all(codes.iter().map(|code| async move {
        browser
            .post(
                "/login/2fa",
                &[("csrf_token", token), ("method", method), ("code", code)],
            )
            .await
    }))
    .await;
    let statuses: Vec<_> = responses.iter().map(|r| r.status()).collect();
    assert!(
        statuses.iter().all(|s| [
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(s)),
        "{statuses:?}"
    );
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    Burst {
        wrong: count(StatusCode::UNPROCESSABLE_ENTITY),
        refused: count(StatusCode::TOO_MANY_REQUESTS),
        retry_after: responses
            .iter()
            .filter_map(|r| r.headers().get("retry-after"))
            .map(|v| v.to_str().unwrap().parse::<i64>().unwrap())
            .max()
            .unwrap_or(0),
    }
}

async fn failures_metric(app: &TestApp) -> usize {
    metric_value(&app.metrics().await, "umbra_second_factor_failures_total").unwrap_or(0.0) as usize
}

/// `n` distinct six-digit codes, none of them in `right`.
fn wrong_codes(n: usize, right: &[String]) -> Vec<String> {
    (0..)
        .map(|i: u32| format!("{:06}", i * 7919 % 1_000_000))
        .filter(|code| !right.contains(code))
        .take(n)
        .collect()
}

/// Asserts what a burst on a fresh account must come to: exactly `max_failures` guesses
/// judged (audit and metrics agree), one lock, everything else refused.
async fn assert_locked_after_burst(app: &TestApp, burst: &Burst) {
    let limit = usize::try_from(app.settings.second_factor.max_failures).unwrap();
    let judged = app.audit_count("login.second_factor_failed").await;
    assert_eq!(judged, limit, "guesses judged: {judged}, {burst:?}");
    assert_eq!(failures_metric(app).await, judged);
    assert_eq!(burst.wrong + burst.refused, GUESSES);
    assert!(
        burst.wrong < limit,
        "the failure that locks answers 429: {burst:?}"
    );
    // A guess reads the clock when it arrives; one that arrived before the locking failure
    // read its clock sees a lock ending up to its own latency later than LOCK_SECS from then.
    assert!(
        burst.retry_after > 0 && burst.retry_after <= LOCK_SECS + MAX_LATENCY_SECS,
        "{burst:?}"
    );
    assert_eq!(app.audit_count("account.locked").await, 1);
}

/// Submits `code` during the lock (refused, and the lock keeps its end), waits the lock out
/// and submits it again; returns that answer.
async fn after_the_lock(
    app: &TestApp,
    browser: &Browser,
    method: &str,
    code: &str,
) -> reqwest::Response {
    let ada = app
        .store
        .find_user_by_username("ada")
        .await
        .unwrap()
        .unwrap();
    let locked = app.store.lockout_state(ada.id).await.unwrap();
    assert!(
        locked.is_some_and(|s| s.locked_until.is_some()),
        "{locked:?}"
    );
    let response = browser.second_step(method, code).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the right code during the lock"
    );
    assert_eq!(app.store.lockout_state(ada.id).await.unwrap(), locked);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(wait + 1)).await;
    browser.second_step(method, code).await
}

db_test_with! {
    short_lock,
    async fn parallel_wrong_totp_codes_on_one_session_are_judged_at_most_max_failures_times(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (secret, _) = app.enroll_totp(&ada).await;
        let browser = app.browser();
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/login/2fa");
        // Still valid after the lock: a code is accepted until the step after next.
        let right = totp_code(&secret, 0).await;
        let near = [totp_code(&secret, -1).await, right.clone(), totp_code(&secret, 1).await];

        let burst = burst(&browser, "totp", &wrong_codes(GUESSES, &near)).await;

        assert_locked_after_burst(&app, &burst).await;
        // The right code is refused unseen during the lock, so the same code still works after.
        let response = after_the_lock(&app, &browser, "totp", &right).await;
        assert_eq!(location(&response), "/account");
    }
}

db_test_with! {
    short_lock,
    async fn parallel_wrong_emailed_codes_on_one_session_are_judged_at_most_max_failures_times(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        enable_email(&app, &ada).await;
        let browser = app.browser();
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/login/2fa");
        let token = browser.form_token("/login/2fa?method=email").await;
        let sent = browser.post("/login/2fa/send", &[("csrf_token", &token), ("method", "email")]).await;
        assert_eq!(sent.status(), StatusCode::OK);
        let right = app.sender.last_code_to("ada@example.com");

        let burst = burst(&browser, "email", &wrong_codes(GUESSES, std::slice::from_ref(&right))).await;

        assert_locked_after_burst(&app, &burst).await;
        let response = after_the_lock(&app, &browser, "email", &right).await;
        assert_eq!(location(&response), "/account");
    }
}

db_test_with! {
    short_lock,
    async fn parallel_wrong_recovery_codes_on_one_session_are_judged_at_most_max_failures_times(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let (_, recovery) = app.enroll_totp(&ada).await;
        let browser = app.browser();
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/login/2fa");
        // Well-formed recovery codes (so each is looked up), none of them issued.
        let wrong: Vec<String> = (0..GUESSES).map(|i| format!("zzzz-zzzz-{i:04}")).collect();
        assert!(wrong.iter().all(|c| umbra::auth::codes::normalize_recovery_code(c).is_some()));

        let burst = burst(&browser, "recovery", &wrong).await;

        assert_locked_after_burst(&app, &burst).await;
        let response = after_the_lock(&app, &browser, "recovery", &recovery[0]).await;
        assert_eq!(location(&response), "/account");
        assert_eq!(app.store.recovery_codes_left(ada.id).await.unwrap(), 9);
    }
}

db_test_with! {
    short_lock,
    async fn parallel_checks_of_one_sent_code_use_at_most_its_attempts(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        let factor = enable_email(&app, &ada).await;
        let now = umbra::clock::now();
        let right = hash_code("123456");
        app.store.store_one_time_code(factor, right, now, 300, 0).await.unwrap();
        let max_attempts = 5;

        let checks = futures_util::future::join_all((0..GUESSES).map(|i| {
            let wrong = hash_code(&format!("{:06}", i + 200_000));
            app.store.check_one_time_code(factor, wrong, now, max_attempts)
        }))
        .await;

        let wrong = checks.iter().filter(|c| matches!(c, Ok(CodeCheck::Wrong))).count();
        let dead = checks.iter().filter(|c| matches!(c, Ok(CodeCheck::Dead))).count();
        assert_eq!((wrong, dead), (5, GUESSES - 5));
        let last = app.store.check_one_time_code(factor, right, now, max_attempts).await.unwrap();
        assert_eq!(last, CodeCheck::Dead, "out of attempts, even for the right code");
    }
}

/// Gives `user` a confirmed e-mail factor (ada@example.com); returns its id.
async fn enable_email(app: &TestApp, user: &User) -> uuid::Uuid {
    let now = umbra::clock::now();
    let factor = app
        .store
        .start_factor(
            NewFactor {
                user_id: user.id,
                kind: FactorKind::Email,
                secret_ciphertext: None,
                destination: Some("ada@example.com".into()),
            },
            now,
        )
        .await
        .unwrap();
    assert!(
        app.store
            .confirm_factor(factor.id, None, now)
            .await
            .unwrap()
    );
    factor.id
}
