//! Server-rendered pages (minijinja, auto-escaped), built once at start-up from templates
//! compiled into the binary.
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use minijinja::Environment;
use serde::Serialize;
use std::sync::LazyLock;

const TEMPLATES: [(&str, &str); 21] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("account.html", include_str!("../../templates/account.html")),
    (
        "signed_out.html",
        include_str!("../../templates/signed_out.html"),
    ),
    (
        "end_session.html",
        include_str!("../../templates/end_session.html"),
    ),
    (
        "second_step.html",
        include_str!("../../templates/second_step.html"),
    ),
    (
        "enrol_totp.html",
        include_str!("../../templates/enrol_totp.html"),
    ),
    (
        "enrol_code.html",
        include_str!("../../templates/enrol_code.html"),
    ),
    (
        "recovery_codes.html",
        include_str!("../../templates/recovery_codes.html"),
    ),
    (
        "console_base.html",
        include_str!("../../templates/console_base.html"),
    ),
    ("console.html", include_str!("../../templates/console.html")),
    (
        "console_clients.html",
        include_str!("../../templates/console_clients.html"),
    ),
    (
        "console_secret.html",
        include_str!("../../templates/console_secret.html"),
    ),
    (
        "console_client_delete.html",
        include_str!("../../templates/console_client_delete.html"),
    ),
    (
        "console_users.html",
        include_str!("../../templates/console_users.html"),
    ),
    (
        "console_user.html",
        include_str!("../../templates/console_user.html"),
    ),
    (
        "console_audit.html",
        include_str!("../../templates/console_audit.html"),
    ),
    (
        "console_refused.html",
        include_str!("../../templates/console_refused.html"),
    ),
];

/// The one stylesheet.
pub const STYLESHEET: &str = include_str!("../../static/umbra.css");

pub struct Templates {
    env: Option<Environment<'static>>,
}

static COMPILED: LazyLock<Templates> = LazyLock::new(Templates::compile);

/// The compiled templates (compiled on first use; a broken template is caught by the tests
/// and rendered as a plain-text error at run time).
pub fn templates() -> &'static Templates {
    &COMPILED
}

impl Templates {
    fn compile() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(template = name, error = %err, "a template does not compile");
                return Self { env: None };
            }
        }
        Self { env: Some(env) }
    }

    /// Renders `name` into a response with the security headers every page carries.
    pub fn page<C: Serialize>(&self, status: StatusCode, name: &str, context: C) -> HttpResponse {
        let body = match &self.env {
            Some(env) => env.get_template(name).and_then(|t| t.render(context)),
            None => Err(minijinja::Error::new(
                minijinja::ErrorKind::TemplateNotFound,
                "templates did not compile",
            )),
        };
        match body {
            Ok(body) => page_headers(HttpResponse::build(status)).body(body),
            Err(err) => {
                tracing::error!(template = name, error = %err, "a page failed to render");
                page_headers(HttpResponse::InternalServerError()).body("Internal error")
            }
        }
    }
}

/// Pages are never cached (they carry CSRF tokens and personal data), never framed
/// (clickjacking on the consent page), and load nothing but our own stylesheet.
pub fn page_headers(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ));
    builder
}

/// `GET /static/umbra.css`
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        assert!(templates().env.is_some());
    }

    #[test]
    fn every_page_renders_with_a_full_context_and_escapes_input() {
        let context = minijinja::context! {
            title => "T", message => "<script>", csrf_token => "tok", client_name => "App <b>",
            username => "ada", error => "E",
            scopes => vec![minijinja::context! { name => "read", description => "Read" }],
            consents => vec![minijinja::context! { client_id => "a b", client_name => "App", scope => "read" }],
            methods => vec![minijinja::context! { value => "totp", label => "Authenticator app" }],
            method => "email", destination => "a…@example.com", sent => true,
            factors => vec![minijinja::context! { kind => "totp", label => "Authenticator app", confirmed => true }],
            addable => vec!["email"], has_factor => true, recovery_codes_left => 9, required => true,
            qr_code => "data:image/svg+xml;base64,AA==", secret_groups => vec!["JBSW", "Y3DP"], otpauth_uri => "otpauth://totp/x",
            kind => "email", label => "E-mail", codes => vec!["abcd-efgh-jkmn"], resume => true,
            client_id => "app", post_logout_redirect_uri => "https://app.example/bye", state => "s\"1",
            operator => "ada", section => "users", notice => "Done <b>",
            counts => minijinja::context! { clients => 1, users => 2, disabled_users => 0, admins => 1 },
            user => minijinja::context! { id => "u1", username => "bob <i>", disabled => false, admin => true, created => "2026-12-01 00:00 UTC" },
            filters => minijinja::context! { user => "", client => "", event => "client.", since => "", until => "" },
        };
        let layouts = ["base.html", "console_base.html"];
        for (name, _) in TEMPLATES.iter().filter(|(name, _)| !layouts.contains(name)) {
            let response = templates().page(StatusCode::OK, name, &context);
            assert_eq!(response.status(), StatusCode::OK, "{name}");
        }
        let env = templates().env.as_ref().unwrap();
        let html = env
            .get_template("account.html")
            .unwrap()
            .render(&context)
            .unwrap();
        assert!(html.contains("/account/consents/a%20b/withdraw"), "{html}");
        assert!(
            html.contains("/account/2fa/totp/remove") && html.contains("9 unused"),
            "{html}"
        );
        for name in ["second_step.html", "enrol_totp.html", "enrol_code.html"] {
            let html = env.get_template(name).unwrap().render(&context).unwrap();
            assert!(
                html.contains("autocomplete=\"one-time-code\"")
                    && html.contains("inputmode=\"numeric\"")
                    && html.contains("<label for=\"code\">"),
                "{name}: {html}"
            );
        }
        let html = env
            .get_template("recovery_codes.html")
            .unwrap()
            .render(&context)
            .unwrap();
        assert!(
            html.contains("abcd-efgh-jkmn") && html.contains("href=\"/login/continue\""),
            "{html}"
        );
        let html = env
            .get_template("error.html")
            .unwrap()
            .render(&context)
            .unwrap();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
    }
}
