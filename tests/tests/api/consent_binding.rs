//! Consent is bound to the request the person saw: a second `/authorize` in the same browser
//! (another tab, or a popup opened by another site) cannot take the place of the request
//! whose consent page is open. Each form names its request; a decision for a request that is
//! no longer in progress is refused, and nothing is approved.
use futures_util::future::join_all;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use umbra::oauth::grant_type::GrantType;
use umbra_tests::{
    Browser, ClientSpec, ConsentForm, Pkce, REDIRECT_URI, TestApp, TestClient, location,
    query_param,
};
use uuid::Uuid;

const OTHER_REDIRECT_URI: &str = "https://other.example/cb";
const PASSWORD: &str = "correct horse battery";

/// A second web application, with its own redirect URI.
async fn other_app(app: &TestApp) -> TestClient {
    app.register(ClientSpec {
        public: true,
        scopes: "read write",
        grant_types: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: &[OTHER_REDIRECT_URI],
        ..ClientSpec::default()
    })
    .await
}

/// Signs ada in through `client`'s request (state `tab-a`) and opens its consent page.
async fn consent_page_open(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    pkce: &Pkce,
) -> (Uuid, ConsentForm) {
    let user = app.create_user("ada", PASSWORD).await;
    let response = browser
        .authorize(client, pkce, "&scope=read&state=tab-a")
        .await;
    assert_eq!(location(&response), "/login");
    assert_eq!(
        location(&browser.sign_in("ada", PASSWORD).await),
        "/consent"
    );
    (user.id, browser.consent_form().await)
}

/// Codes ever issued to `client`.
async fn codes_of(app: &TestApp, client: &TestClient) -> u64 {
    entity::authorization_code::Entity::find()
        .filter(entity::authorization_code::Column::ClientId.eq(client.id.as_str()))
        .count(app.store.connection())
        .await
        .unwrap()
}

async fn assert_refused_page(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.unwrap();
    assert!(page.contains("no longer in progress"), "{page}");
}

db_test! {
    async fn allow_on_the_first_tab_approves_its_own_request_not_the_one_opened_after(app: TestApp) {
        let first = app.web_app(true).await;
        let second = other_app(&app).await;
        let browser = app.browser();
        let (pkce_a, pkce_b) = (Pkce::new(), Pkce::new());
        let (user, form_a) = consent_page_open(&app, &browser, &first, &pkce_a).await;

        // Another tab (or a popup another site opened) starts a request in the same browser.
        let response = browser.authorize(&second, &pkce_b, "&scope=read&state=tab-b").await;
        assert_eq!(location(&response), "/consent");
        let form_b = browser.consent_form().await;
        assert_ne!(form_a.request, form_b.request);

        let response = form_a.submit(&browser, "approve").await;

        let to = location(&response);
        assert!(to.starts_with(&format!("{REDIRECT_URI}?code=")), "the first client's answer: {to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("tab-a"));
        let code = query_param(&to, "code").unwrap();
        let tokens = app.exchange_code(&first, &code, &pkce_a.verifier).await;
        assert_eq!(tokens.status(), StatusCode::OK);
        assert_eq!(app.store.consent(user, &second.id).await.unwrap(), None);
        assert_eq!(codes_of(&app, &second).await, 0);

        // The second tab still finishes, with its own request.
        let to = location(&form_b.submit(&browser, "approve").await);
        assert!(to.starts_with(&format!("{OTHER_REDIRECT_URI}?code=")), "{to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("tab-b"));
    }
}

db_test! {
    async fn deny_on_the_first_tab_refuses_only_its_own_request(app: TestApp) {
        let first = app.web_app(true).await;
        let second = other_app(&app).await;
        let browser = app.browser();
        let (_, form_a) = consent_page_open(&app, &browser, &first, &Pkce::new()).await;
        browser.authorize(&second, &Pkce::new(), "&scope=read&state=tab-b").await;

        let to = location(&form_a.submit(&browser, "deny").await);

        assert!(to.starts_with(&format!("{REDIRECT_URI}?error=access_denied")), "{to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("tab-a"));
        let form_b = browser.consent_form().await;
        let to = location(&form_b.submit(&browser, "approve").await);
        assert!(to.starts_with(&format!("{OTHER_REDIRECT_URI}?code=")), "{to}");
    }
}

/// Two applications; ada approved the first in one tab, then another tab opened a request
/// for the second: the first consent form is stale.
struct Stale {
    first: TestClient,
    second: TestClient,
    browser: Browser,
    user: Uuid,
    form: ConsentForm,
}

async fn stale_form(app: &TestApp) -> Stale {
    let first = app.web_app(true).await;
    let second = other_app(app).await;
    let browser = app.browser();
    let (user, form) = consent_page_open(app, &browser, &first, &Pkce::new()).await;
    assert!(location(&form.submit(&browser, "approve").await).starts_with(REDIRECT_URI));
    let response = browser
        .authorize(&second, &Pkce::new(), "&scope=read&state=tab-b")
        .await;
    assert_eq!(location(&response), "/consent");
    Stale {
        first,
        second,
        browser,
        user,
        form,
    }
}

/// The second application got neither consent nor code; the first only its one code.
async fn assert_only_the_first_code(app: &TestApp, stale: &Stale) {
    assert_eq!(
        app.store
            .consent(stale.user, &stale.second.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(codes_of(app, &stale.second).await, 0);
    assert_eq!(codes_of(app, &stale.first).await, 1);
}

db_test! {
    async fn a_form_for_a_request_no_longer_in_progress_approves_nothing(app: TestApp) {
        let stale = stale_form(&app).await;

        // The first form, sent again (back button, double submit): its request is over.
        assert_refused_page(stale.form.submit(&stale.browser, "approve").await).await;
        // A form naming no request, or one never issued, decides nothing either.
        for request in ["", "made-up"] {
            let forged = ConsentForm { request: request.into(), ..stale.form.clone() };
            assert_refused_page(forged.submit(&stale.browser, "approve").await).await;
        }

        assert_only_the_first_code(&app, &stale).await;
    }
}

db_test! {
    async fn a_request_pushed_out_by_newer_ones_is_refused_not_replaced(app: TestApp) {
        let first = app.web_app(true).await;
        let second = other_app(&app).await;
        let browser = app.browser();
        let (user, form_a) = consent_page_open(&app, &browser, &first, &Pkce::new()).await;
        for n in 0..umbra::http::session::MAX_PENDING {
            let response = browser.authorize(&second, &Pkce::new(), &format!("&scope=read&state=b{n}")).await;
            assert_eq!(location(&response), "/consent");
        }

        assert_refused_page(form_a.submit(&browser, "approve").await).await;

        assert_eq!(app.store.consent(user, &first.id).await.unwrap(), None);
        assert_eq!(app.store.consent(user, &second.id).await.unwrap(), None);
        assert_eq!(codes_of(&app, &first).await + codes_of(&app, &second).await, 0);
    }
}

db_test! {
    async fn dozens_of_concurrent_decisions_with_a_stale_id_approve_nothing(app: TestApp) {
        let stale = stale_form(&app).await;

        let responses = join_all((0..40).map(|_| stale.form.submit(&stale.browser, "approve"))).await;

        for response in responses {
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
        assert_only_the_first_code(&app, &stale).await;
    }
}

db_test! {
    async fn the_requests_in_progress_fit_in_a_browser_cookie(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let client = app.web_app(true).await;
        let browser = app.browser();
        browser.authorize(&client, &Pkce::new(), "&scope=read+write").await;
        browser.sign_in("ada", PASSWORD).await;
        let longest_state = "s".repeat(umbra::oauth::authorize::MAX_STATE_LEN);

        for _ in 0..=umbra::http::session::MAX_PENDING {
            let response = browser
                .authorize(&client, &Pkce::new(), &format!("&scope=read+write&state={longest_state}"))
                .await;

            assert_eq!(location(&response), "/consent");
            for cookie in response.headers().get_all("set-cookie") {
                // RFC 6265 §6.1: user agents need keep no more than 4096 bytes per cookie.
                let name_and_value = cookie.to_str().unwrap().split(';').next().unwrap();
                assert!(name_and_value.len() <= 4096, "{} bytes", name_and_value.len());
            }
        }
        // The newest request is the one shown, whole.
        let form = browser.consent_form().await;
        let to = location(&form.submit(&browser, "approve").await);
        assert_eq!(query_param(&to, "state").as_deref(), Some(longest_state.as_str()));
    }
}
