//! The operator console (`/console`) through a cookie-keeping browser: who may enter (an
//! operator with a second factor, nobody else), each page, each action and its audit entry,
//! CSRF refusals that change nothing, and concurrent clicks that never fail with a 5xx.
use reqwest::StatusCode;
use umbra::store::{AuditQuery, User};
use umbra_tests::{Browser, TestApp, location, totp_code};

const PASSWORD: &str = "correct horse battery staple";

/// A user with the admin role and an authenticator, signed in with both in a new browser.
async fn operator(app: &TestApp, name: &str) -> (Browser, User) {
    let user = app.create_user(name, PASSWORD).await;
    assert!(
        app.store
            .set_user_admin(user.id, true, umbra::clock::now())
            .await
            .unwrap()
    );
    let (secret, _) = app.enroll_totp(&user).await;
    let browser = app.browser();
    assert_eq!(
        location(&browser.sign_in(name, PASSWORD).await),
        "/login/2fa"
    );
    let response = browser
        .second_step("totp", &totp_code(&secret, 0).await)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    (browser, user)
}

/// Submits a console form on `page` (fetched first for its token) to `action`.
async fn submit(browser: &Browser, page: &str, action: &str) -> reqwest::Response {
    let token = browser.form_token(page).await;
    browser.post(action, &[("csrf_token", &token)]).await
}

/// The page a redirect leads to, as text.
async fn follow(browser: &Browser, response: &reqwest::Response) -> String {
    let page = browser.get(&location(response)).await;
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

/// The actors of the recorded events named `event`.
async fn actors(app: &TestApp, event: &str) -> Vec<Option<String>> {
    let query = AuditQuery {
        event: Some(event.into()),
        limit: 100,
        ..AuditQuery::default()
    };
    app.store
        .query_audit(&query)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.actor)
        .collect()
}

db_test! {
    async fn an_operator_with_a_second_factor_sees_every_console_page(app: TestApp) {
        let (browser, ada) = operator(&app, "ada").await;
        let client = app.service_client("read").await;
        for path in [
            "/console".to_owned(),
            "/console/clients".to_owned(),
            "/console/users".to_owned(),
            "/console/users?q=AD".to_owned(),
            format!("/console/users/{}", ada.id),
            "/console/audit".to_owned(),
            "/console/audit?event=login.&since=2020-01-01&until=2099-12-31".to_owned(),
            format!("/console/clients/{}/delete", client.id),
        ] {
            let response = browser.get(&path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers().clone();
            assert_eq!(headers["cache-control"], "no-store", "{path}");
            assert_eq!(headers["x-frame-options"], "DENY", "{path}");
            assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
            let page = response.text().await.unwrap();
            assert!(page.contains("Umbra console") && page.contains(">ada<"), "{path}: {page}");
        }
        let clients = browser.get("/console/clients").await.text().await.unwrap();
        assert!(clients.contains(&client.id));
        let users = browser.get("/console/users?q=AD").await.text().await.unwrap();
        assert!(users.contains(&format!("/console/users/{}", ada.id)));
        let none = browser.get("/console/users?q=zz").await.text().await.unwrap();
        assert!(!none.contains(&format!("/console/users/{}", ada.id)));
        let audit = browser.get("/console/audit?event=login.").await.text().await.unwrap();
        assert!(audit.contains("login.succeeded"), "{audit}");
    }
}

db_test! {
    async fn anonymous_people_are_sent_to_sign_in_and_others_are_refused(app: TestApp) {
        // Anonymous: to /login.
        let anonymous = app.browser();
        assert_eq!(location(&anonymous.get("/console/users").await), "/login");

        // A user without the role: 403, a page.
        app.create_user("bob", PASSWORD).await;
        let bob = app.browser();
        assert_eq!(location(&bob.sign_in("bob", PASSWORD).await), "/account");
        let response = bob.get("/console").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(response.text().await.unwrap().contains("admin role"));

        // An operator without a second factor: 403, told to enrol one.
        let carol = app.create_user("carol", PASSWORD).await;
        app.store.set_user_admin(carol.id, true, umbra::clock::now()).await.unwrap();
        let browser = app.browser();
        browser.sign_in("carol", PASSWORD).await;
        let response = browser.get("/console/clients").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.text().await.unwrap().contains("second factor"));
    }
}

db_test! {
    async fn an_operator_sent_to_sign_in_or_to_the_second_step_comes_back_to_the_console(app: TestApp) {
        let ada = app.create_user("ada", PASSWORD).await;
        app.store.set_user_admin(ada.id, true, umbra::clock::now()).await.unwrap();
        let (secret, _) = app.enroll_totp(&ada).await;

        // Anonymous at the console: signed in with both factors, back at the console.
        let browser = app.browser();
        assert_eq!(location(&browser.get("/console/users").await), "/login");
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/login/2fa");
        let response = browser.second_step("totp", &totp_code(&secret, 0).await).await;
        assert_eq!(location(&response), "/console");
        assert_eq!(browser.get("/console").await.status(), StatusCode::OK);
        // Once: a later sign-in with no console visit goes to the account as ever.
        browser.post("/logout", &[("csrf_token", &browser.form_token("/account").await)]).await;
        browser.sign_in("ada", PASSWORD).await;
        let response = browser.second_step("totp", &totp_code(&secret, 1).await).await;
        assert_eq!(location(&response), "/account");

        // Signed in before the factor existed: the console asks for it, then lets them in.
        let grace = app.create_user("grace", PASSWORD).await;
        app.store.set_user_admin(grace.id, true, umbra::clock::now()).await.unwrap();
        let browser = app.browser();
        assert_eq!(location(&browser.sign_in("grace", PASSWORD).await), "/account");
        let (secret, _) = app.enroll_totp(&grace).await;
        assert_eq!(location(&browser.get("/console").await), "/login/2fa");
        let response = browser.second_step("totp", &totp_code(&secret, 0).await).await;
        assert_eq!(location(&response), "/console");
        assert_eq!(browser.get("/console/clients").await.status(), StatusCode::OK);
    }
}

db_test! {
    async fn revoking_the_role_or_disabling_the_operator_acts_at_the_next_request(app: TestApp) {
        let (browser, ada) = operator(&app, "ada").await;
        assert_eq!(browser.get("/console").await.status(), StatusCode::OK);
        assert!(app.store.set_user_admin(ada.id, false, umbra::clock::now()).await.unwrap());
        assert_eq!(browser.get("/console").await.status(), StatusCode::FORBIDDEN);

        let (browser, dan) = operator(&app, "dan").await;
        assert_eq!(browser.get("/console").await.status(), StatusCode::OK);
        app.store.set_user_disabled(dan.id, true, umbra::clock::now()).await.unwrap();
        assert_eq!(location(&browser.get("/console").await), "/login");
    }
}

db_test! {
    async fn a_rotated_secret_is_shown_once_and_the_old_one_is_refused(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let client = app.service_client("read").await;
        let old = client.secret.clone().unwrap();

        let response = submit(&browser, "/console/clients", &format!("/console/clients/{}/secret", client.id)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let page = response.text().await.unwrap();
        let shown = page.split("<code class=\"secret\">").nth(2).unwrap();
        let secret = shown[..shown.find('<').unwrap()].to_owned();
        assert!(secret.starts_with("cs_"), "{page}");

        let token = |secret: String| {
            let http = app.http.clone();
            let url = app.url("/token");
            let id = client.id.clone();
            async move {
                http.post(url)
                    .basic_auth(id, Some(secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(token(old).await, StatusCode::UNAUTHORIZED);
        assert_eq!(token(secret.clone()).await, StatusCode::OK);
        // The list never shows it again.
        assert!(!browser.get("/console/clients").await.text().await.unwrap().contains(&secret));
        assert_eq!(actors(&app, "client.secret_rotated").await, [Some("user:ada".to_owned())]);
    }
}

db_test! {
    async fn deleting_a_client_asks_first_then_removes_it_with_its_tokens(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let client = app.service_client("read").await;
        let issued = app.issue_token(&client).await;
        let rs = app.resource_server().await;

        let confirm = format!("/console/clients/{}/delete", client.id);
        let page = browser.get(&confirm).await.text().await.unwrap();
        assert!(page.contains("cannot be undone"));
        let response = submit(&browser, &confirm, &confirm).await;
        assert_eq!(location(&response), "/console/clients");
        let list = follow(&browser, &response).await;
        assert!(list.contains(&format!("Deleted {}", client.id)), "{list}");
        assert!(app.store.find_client(&client.id).await.unwrap().is_none());
        assert_eq!(app.introspection_of(&rs, &issued).await["active"], false);
        assert_eq!(actors(&app, "client.deleted").await, [Some("user:ada".to_owned())]);

        // Again: gone, said plainly.
        let response = submit(&browser, "/console/clients", &confirm).await;
        assert!(follow(&browser, &response).await.contains("There is no client"));
        assert_eq!(browser.get(&confirm).await.status(), StatusCode::NOT_FOUND);
    }
}

db_test! {
    async fn disabling_a_user_makes_their_tokens_inactive_and_enabling_lets_them_back(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let bob = app.create_user("bob", PASSWORD).await;
        let web = app.web_app(true).await;
        let token = app.user_access_token(&web, "bob", PASSWORD, "read").await;
        let rs = app.resource_server().await;
        assert_eq!(app.introspection_of(&rs, &token).await["active"], true);

        let page = format!("/console/users/{}", bob.id);
        let response = submit(&browser, &page, &format!("{page}/disable")).await;
        assert_eq!(location(&response), page);
        assert!(follow(&browser, &response).await.contains("Disabled bob"));
        assert!(app.store.find_user(bob.id).await.unwrap().unwrap().disabled);
        assert_eq!(app.introspection_of(&rs, &token).await["active"], false);

        let response = submit(&browser, &page, &format!("{page}/enable")).await;
        assert!(follow(&browser, &response).await.contains("Enabled bob"));
        assert!(!app.store.find_user(bob.id).await.unwrap().unwrap().disabled);
        assert_eq!(actors(&app, "user.disabled").await, [Some("user:ada".to_owned())]);
        assert_eq!(actors(&app, "user.enabled").await, [Some("user:ada".to_owned())]);
    }
}

db_test! {
    async fn an_operator_resets_a_second_factor_and_withdraws_a_consent(app: TestApp) {
        let (browser, ada) = operator(&app, "ada").await;
        let bob = app.create_user("bob", PASSWORD).await;
        let web = app.web_app(true).await;
        let token = app.user_access_token(&web, "bob", PASSWORD, "read").await;
        app.enroll_totp(&bob).await;
        let rs = app.resource_server().await;

        let page = format!("/console/users/{}", bob.id);
        let shown = browser.get(&page).await.text().await.unwrap();
        assert!(shown.contains("Authenticator app") && shown.contains(&web.id), "{shown}");

        let response = submit(&browser, &page, &format!("{page}/second-factor/reset")).await;
        assert!(follow(&browser, &response).await.contains("Removed 1 factor(s)"));
        assert!(app.store.confirmed_factors(bob.id).await.unwrap().is_empty());
        assert_eq!(actors(&app, "factor.reset").await, [Some("user:ada".to_owned())]);

        let response = submit(&browser, &page, &format!("{page}/consents/{}/withdraw", web.id)).await;
        assert!(follow(&browser, &response).await.contains("Withdrew the consent"));
        assert!(app.store.list_consents(bob.id).await.unwrap().is_empty());
        assert_eq!(app.introspection_of(&rs, &token).await["active"], false);
        assert_eq!(actors(&app, "consent.withdrawn").await, [Some("user:ada".to_owned())]);

        // Their own account: refused, nothing changed.
        let own = format!("/console/users/{}", ada.id);
        let response = submit(&browser, &own, &format!("{own}/disable")).await;
        assert!(follow(&browser, &response).await.contains("cannot disable your own"));
        assert!(!app.store.find_user(ada.id).await.unwrap().unwrap().disabled);
    }
}

db_test! {
    async fn a_form_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let bob = app.create_user("bob", PASSWORD).await;
        let client = app.service_client("read").await;
        let disable = format!("/console/users/{}/disable", bob.id);
        let delete = format!("/console/clients/{}/delete", client.id);
        for (path, form) in [
            (&disable, vec![]),
            (&disable, vec![("csrf_token", "wrong")]),
            (&delete, vec![]),
            (&delete, vec![("csrf_token", "")]),
        ] {
            let response = browser.post(path, &form).await;
            assert!(
                matches!(response.status(), StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST),
                "{path}: {}",
                response.status()
            );
        }
        assert!(!app.store.find_user(bob.id).await.unwrap().unwrap().disabled);
        assert!(app.store.find_client(&client.id).await.unwrap().is_some());
        // Another person's token does not work either.
        let (other, _) = operator(&app, "eve").await;
        let theirs = other.form_token("/console").await;
        let response = browser.post(&disable, &[("csrf_token", &theirs)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(!app.store.find_user(bob.id).await.unwrap().unwrap().disabled);
    }
}

db_test! {
    async fn the_audit_log_filters_by_user_client_event_and_dates_and_pages_older_events(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let bob = app.create_user("bob", PASSWORD).await;
        let now = umbra::clock::now();
        for i in 0..60 {
            let entry = umbra::store::AuditEntry::new(umbra::store::AuditKind::LoginFailed)
                .user(bob.id, "bob")
                .client(Some("app-1"))
                .detail(format!("attempt {i}"));
            app.store.record_audit(entry, now - 86_400 * 3).await.unwrap();
        }
        let page = browser.get("/console/audit?user=bob&client=app-1&event=login.").await.text().await.unwrap();
        assert_eq!(page.matches("<code>login.failed</code>").count(), 50, "{page}");
        assert!(!page.contains("login.succeeded"));
        let link = &page[..page.find("\">Older</a>").expect("an older link")];
        let href = link[link.rfind("href=\"/console/audit?").unwrap() + 21..].replace("&amp;", "&");
        let rest = browser.get(&format!("/console/audit?{href}")).await.text().await.unwrap();
        assert_eq!(rest.matches("<code>login.failed</code>").count(), 10, "{rest}");

        let today = browser.get("/console/audit?user=bob&since=2099-01-01").await.text().await.unwrap();
        assert!(!today.contains("<code>login.failed</code>"));
        let unknown = browser.get("/console/audit?user=nobody").await.text().await.unwrap();
        assert!(unknown.contains("no user named") && !unknown.contains("<code>login"));
        let response = browser.get("/console/audit?since=2026-02-30").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.text().await.unwrap().contains("not a date"));
        let response = browser.get("/console/audit?cursor=garbage").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}

db_test! {
    async fn sixteen_concurrent_deletions_of_one_client_have_one_winner_and_no_error(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let client = app.service_client("read").await;
        let path = format!("/console/clients/{}/delete", client.id);
        let token = browser.form_token(&path).await;
        let form = [("csrf_token", token.as_str())];
        let responses = futures_util::future::join_all((0..16).map(|_| browser.post(&path, &form))).await;
        for response in &responses {
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert_eq!(location(response), "/console/clients");
        }
        assert!(app.store.find_client(&client.id).await.unwrap().is_none());
        assert_eq!(actors(&app, "client.deleted").await.len(), 1, "one deletion won");
    }
}

db_test! {
    async fn sixteen_concurrent_rotations_leave_exactly_one_working_secret(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let client = app.service_client("read").await;
        let path = format!("/console/clients/{}/secret", client.id);
        let token = browser.form_token("/console/clients").await;
        let form = [("csrf_token", token.as_str())];
        let responses = futures_util::future::join_all((0..16).map(|_| browser.post(&path, &form))).await;
        let mut secrets = Vec::new();
        for response in responses {
            assert_eq!(response.status(), StatusCode::OK);
            let page = response.text().await.unwrap();
            let shown = page.split("<code class=\"secret\">").nth(2).unwrap();
            secrets.push(shown[..shown.find('<').unwrap()].to_owned());
        }
        let mut working = 0;
        for secret in secrets {
            let status = app
                .http
                .post(app.url("/token"))
                .basic_auth(&client.id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status();
            working += usize::from(status == StatusCode::OK);
        }
        assert_eq!(working, 1);
        assert_eq!(actors(&app, "client.secret_rotated").await.len(), 16);
    }
}

db_test! {
    async fn an_operator_revokes_one_grant_of_a_user_and_its_tokens_stop_working(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let bob = app.create_user("bob", PASSWORD).await;
        let web = app.web_app(true).await;
        let token = app.user_access_token(&web, "bob", PASSWORD, "read").await;
        let rs = app.resource_server().await;

        let page = format!("/console/users/{}", bob.id);
        let shown = browser.get(&page).await.text().await.unwrap();
        let action = shown.split("action=\"").find(|a| a.contains("/grants/")).expect("a grant listed");
        let action = action[..action.find('"').unwrap()].to_owned();
        let response = submit(&browser, &page, &action).await;
        assert!(follow(&browser, &response).await.contains("Revoked the grant"));
        assert_eq!(app.introspection_of(&rs, &token).await["active"], false);
        assert_eq!(actors(&app, "grants.revoked").await, [Some("user:ada".to_owned())]);
        // The consent stays; the grant is no longer listed, and a second click says so.
        assert_eq!(app.store.list_consents(bob.id).await.unwrap().len(), 1);
        assert!(!browser.get(&page).await.text().await.unwrap().contains("/grants/"));
        let response = submit(&browser, &page, &action).await;
        assert!(follow(&browser, &response).await.contains("already revoked"));
    }
}

/// The secret a console page shows, if any (the second `code.secret`: the first is the id).
fn shown_secret(page: &str) -> Option<String> {
    let shown = page.split("<code class=\"secret\">").nth(2)?;
    Some(shown[..shown.find('<')?].to_owned())
}

db_test! {
    async fn a_client_created_in_the_console_shows_its_secret_once_and_it_works(app: TestApp) {
        let (browser, _) = operator(&app, "ada").await;
        let token = browser.form_token("/console/clients").await;
        let response = browser
            .post(
                "/console/clients",
                &[
                    ("csrf_token", token.as_str()),
                    ("client_name", "Billing <service>"),
                    ("client_id", "billing"),
                    ("client_credentials", "on"),
                    ("scope", "read write"),
                    ("token_endpoint_auth_method", "client_secret_basic"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let page = response.text().await.unwrap();
        assert!(page.contains("Billing &lt;service&gt;") && !page.contains("Billing <service>"));
        let secret = shown_secret(&page).expect("the secret is shown");
        let status = app
            .http
            .post(app.url("/token"))
            .basic_auth("billing", Some(&secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "read")])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK);
        let list = browser.get("/console/clients").await.text().await.unwrap();
        assert!(list.contains("billing") && !list.contains(&secret));
        assert_eq!(actors(&app, "client.created").await, [Some("user:ada".to_owned())]);

        // The same id again, and metadata the rules refuse: the form comes back with the
        // reason and what was typed; nothing is created.
        for (id, redirect, why) in [
            ("billing", "https://app.example/cb", "already exists"),
            ("web", "http://evil.example/cb", "http"),
        ] {
            let response = browser
                .post(
                    "/console/clients",
                    &[
                        ("csrf_token", token.as_str()),
                        ("client_name", "Again"),
                        ("client_id", id),
                        ("authorization_code", "on"),
                        ("redirect_uris", redirect),
                        ("token_endpoint_auth_method", "none"),
                    ],
                )
                .await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{id}");
            let page = response.text().await.unwrap();
            assert!(page.contains("class=\"error\"") && page.contains(why), "{id}: {page}");
            assert!(page.contains("value=\"Again\"") && shown_secret(&page).is_none());
        }
        assert!(app.store.find_client("web").await.unwrap().is_none());
        assert_eq!(actors(&app, "client.created").await.len(), 1);
    }
}
