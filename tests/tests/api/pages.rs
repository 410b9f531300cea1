//! What the browser pages tell the person: where the consent answer sends them and how to
//! answer as someone else, how long a paused sign-in waits, the authenticator key in groups of
//! four, and colours that keep text readable in light and dark mode.
use reqwest::StatusCode;
use umbra_tests::{Pkce, REDIRECT_URI, location, query_param};

const PASSWORD: &str = "correct horse battery";

db_test! {
    async fn the_consent_page_names_the_site_it_sends_to_and_offers_another_account(app: TestApp) {
        let client = app.web_app(true).await;
        app.create_user("ada", PASSWORD).await;
        let browser = app.browser();
        browser.authorize(&client, &Pkce::new(), "&scope=read&state=s").await;
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/consent");

        let form = browser.consent_form().await;

        assert_eq!(url::Url::parse(REDIRECT_URI).unwrap().host_str(), Some("app.example"));
        assert!(
            form.page.contains("sent to <strong class=\"host\">app.example</strong>"),
            "{}",
            form.page
        );
        let switch = form.page.find("value=\"another_account\"").expect("the button");
        let form_start = form.page[..switch].rfind("<form").unwrap();
        let switch_form = &form.page[form_start..];
        assert!(switch_form.starts_with("<form method=\"post\" action=\"/consent\""));
        assert!(switch_form.contains(&format!("name=\"csrf_token\" value=\"{}\"", form.csrf_token)));
        assert!(switch_form.contains(&format!("name=\"request\" value=\"{}\"", form.request)));
        assert!(form.page.contains("Not you? Use another account"), "{}", form.page);
    }
}

db_test! {
    async fn another_account_at_consent_signs_out_and_the_request_resumes_for_the_new_user(app: TestApp) {
        let client = app.web_app(true).await;
        let resource_server = app.resource_server().await;
        let ada = app.create_user("ada", PASSWORD).await;
        let bob = app.create_user("bob", PASSWORD).await;
        let browser = app.browser();
        let pkce = Pkce::new();
        browser.authorize(&client, &pkce, "&scope=read&state=s1").await;
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/consent");
        let ada_form = browser.consent_form().await;

        let response = ada_form.submit(&browser, "another_account").await;

        assert_eq!(location(&response), "/login");
        assert_eq!(location(&browser.get("/account").await), "/login", "ada is signed out");
        let login = browser.get("/login").await.text().await.unwrap();
        assert!(login.contains("to continue to"), "the request is still in progress: {login}");
        assert_eq!(location(&browser.sign_in("bob", PASSWORD).await), "/consent");
        let bob_form = browser.consent_form().await;
        assert_eq!(bob_form.request, ada_form.request, "the same request resumes");
        assert!(bob_form.page.contains("Signed in as <strong>bob</strong>"), "{}", bob_form.page);
        let to = location(&bob_form.submit(&browser, "approve").await);
        assert!(to.starts_with(&format!("{REDIRECT_URI}?code=")), "{to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("s1"));
        let code = query_param(&to, "code").unwrap();
        let response = app.exchange_code(&client, &code, &pkce.verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: serde_json::Value = response.json().await.unwrap();
        let token = tokens["access_token"].as_str().unwrap();
        let answer = app.introspection_of(&resource_server, token).await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["sub"], bob.id.to_string());
        assert_eq!(answer["username"], "bob");
        assert_eq!(app.store.consent(ada.id, &client.id).await.unwrap(), None);
    }
}

db_test! {
    async fn another_account_resumes_the_request_it_was_chosen_on_not_a_newer_one(app: TestApp) {
        let first = app.web_app(true).await;
        let second = app.web_app(true).await;
        app.create_user("ada", PASSWORD).await;
        app.create_user("bob", PASSWORD).await;
        let browser = app.browser();
        browser.authorize(&first, &Pkce::new(), "&scope=read&state=tab-a").await;
        assert_eq!(location(&browser.sign_in("ada", PASSWORD).await), "/consent");
        let form_a = browser.consent_form().await;
        // Another tab starts a newer request in the same browser.
        browser.authorize(&second, &Pkce::new(), "&scope=read&state=tab-b").await;

        form_a.submit(&browser, "another_account").await;

        assert_eq!(location(&browser.sign_in("bob", PASSWORD).await), "/consent");
        let form = browser.consent_form().await;
        assert_eq!(form.request, form_a.request);
        let to = location(&form.submit(&browser, "approve").await);
        assert_eq!(query_param(&to, "state").as_deref(), Some("tab-a"));
        assert!(to.contains("code="), "{to}");
    }
}

db_test! {
    async fn the_too_many_attempts_page_says_how_long_to_wait(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        for _ in 0..app.settings.login.max_attempts_per_account {
            app.browser().sign_in("ada", "guess").await;
        }

        let response = app.browser().sign_in("ada", PASSWORD).await;

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after > 60, "the window is {} s", app.settings.login.window_secs);
        let page = response.text().await.unwrap();
        let wait = format!("Try again in {} minutes.", retry_after.div_ceil(60));
        assert!(page.contains(&wait), "{wait} in {page}");
    }
}

db_test! {
    async fn the_authenticator_key_is_shown_in_groups_of_four_and_copies_exactly(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;

        let response = browser.get("/account/2fa/totp").await;

        assert_eq!(response.status(), StatusCode::OK);
        let page = response.text().await.unwrap();
        let uri_start = page.find("otpauth:").expect("the otpauth link");
        let uri = &page[uri_start..uri_start + page[uri_start..].find('<').unwrap()];
        let uri = uri.replace("&#x2f;", "/").replace("&amp;", "&");
        let secret = query_param(&uri, "secret").unwrap_or_else(|| panic!("no secret in {uri}"));
        assert!(secret.len() > 16, "{secret}");
        let groups: Vec<String> = secret
            .chars()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| format!("<span>{}</span>", c.iter().collect::<String>()))
            .collect();
        // No characters between the groups: what a person copies is the key itself.
        let shown = format!("<code class=\"secret grouped\">{}</code>", groups.concat());
        assert!(page.contains(&shown), "{shown} in {page}");
        assert_eq!(umbra_tests::shown_totp_secret(&page), Some(secret));
    }
}

db_test! {
    async fn the_account_page_says_what_each_code_is_for_and_its_fields_show_the_examples_of_their_errors(app: TestApp) {
        app.create_user("ada", PASSWORD).await;
        let browser = app.browser();
        browser.sign_in("ada", PASSWORD).await;

        let page = browser.get("/account").await.text().await.unwrap();

        assert!(!page.contains(">Send a code<"), "{page}");
        assert!(page.contains(">E-mail me a confirmation code</button>"), "{page}");
        assert!(page.contains(">Text me a confirmation code</button>"), "{page}");
        let token = umbra_tests::hidden_field(&page, "csrf_token").unwrap();
        for (kind, wrong, example) in [
            ("email", "ada", "ada@example.com"),
            ("sms", "079", "+41 79 123 45 67"),
        ] {
            assert!(page.contains(&format!("placeholder=\"{example}\"")), "{kind}: {page}");
            let response = browser
                .post(&format!("/account/2fa/{kind}"), &[("csrf_token", &token), ("destination", wrong)])
                .await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let refused = response.text().await.unwrap();
            let message = refused.split("<p class=\"error\" role=\"alert\">").nth(1).unwrap();
            let message = &message[..message.find("</p>").unwrap()];
            assert!(message.starts_with("Enter ") && message.ends_with(&format!("{example}.")), "{message}");
        }
    }
}

/// The colour table at the top of the stylesheet: every figure matches the colours it names,
/// in light and in dark mode, and meets WCAG (4.5:1 for text, 3:1 for borders).
#[test]
fn every_text_colour_of_the_stylesheet_meets_wcag_contrast_in_light_and_dark_mode() {
    let css = umbra::http::templates::STYLESHEET;
    let (light_block, dark_block) = css
        .split_once("@media (prefers-color-scheme: dark)")
        .expect("a dark scheme");
    let light = custom_properties(light_block.split_once(":root").unwrap().1);
    let dark = custom_properties(dark_block);
    let mut checked = 0;
    for line in css.split("*/").next().unwrap().lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [kind, fg, "on", bg, light_figure, "/", dark_figure] = words[..] else {
            continue;
        };
        let minimum = match kind {
            "text" => 4.5,
            "border" => 3.0,
            other => panic!("{other}"),
        };
        for (scheme, colours, figure) in [
            ("light", &light, light_figure),
            ("dark", &dark, dark_figure),
        ] {
            let ratio = contrast(&colours[fg], &colours[bg]);
            assert!(ratio >= minimum, "{fg} on {bg} in {scheme}: {ratio:.2}");
            let stated: f64 = figure.parse().unwrap();
            assert!(
                (ratio - stated).abs() < 0.006,
                "{fg} on {bg} in {scheme}: {ratio:.2}, says {stated}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "the table has {checked} rows");
    // Every colour a rule sets for text is one the table checks.
    for rule in css.split('}') {
        for declaration in rule.split(['{', ';']) {
            if let Some(value) = declaration.trim().strip_prefix("color:") {
                let value = value.trim();
                assert!(
                    value.starts_with("var(--") || value == "transparent",
                    "a text colour outside the table: {declaration}"
                );
            }
        }
    }
}

/// `--name: #rrggbb` declarations of the first rule in `block`.
fn custom_properties(block: &str) -> std::collections::HashMap<String, String> {
    let body = block.split('}').next().unwrap().rsplit('{').next().unwrap();
    body.split(';')
        .filter_map(|d| d.split_once(':'))
        .filter(|(name, _)| name.trim().starts_with("--"))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// WCAG 2.x contrast ratio of two `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}
