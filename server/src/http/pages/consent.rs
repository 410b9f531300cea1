//! `GET/POST /consent`: the user approves or denies the scopes an application asks for, or
//! signs out to answer as someone else.
use crate::clock;
use crate::http::AppState;
use crate::http::error::PageError;
use crate::http::oauth::authorize::{issue_code, refuse, store_error_page};
use crate::http::page_extract::{Page, PageForm, csrf_protected};
use crate::http::redirect;
use crate::http::session::{PendingRequest, UserSession};
use crate::http::templates::templates;
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::{Approval, User};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct ConsentForm {
    csrf_token: String,
    /// The id of the request the page showed; a decision binds to it and to nothing else.
    #[serde(default)]
    request: String,
    decision: String,
}

csrf_protected!(ConsentForm);

#[derive(Serialize)]
struct ScopeLine<'a> {
    name: &'a str,
    description: &'a str,
}

/// A service (RFC 8707 resource) the request asks access to.
#[derive(Serialize)]
struct ResourceLine {
    name: String,
    identifier: String,
}

/// `GET /consent`: the newest request in progress; its form names it.
pub async fn consent_page(
    state: web::Data<AppState>,
    page: Page<User>,
) -> Result<HttpResponse, PageError> {
    let (session, user) = page.into_parts();
    let Some(pending) = in_progress(&session, None)? else {
        return Ok(redirect("/login"));
    };
    let client = state
        .clients
        .get(&state.store, &pending.request.client_id)
        .await?
        .ok_or_else(|| PageError::bad_request("The application is no longer registered."))?;
    // Named as registered; a resource no longer allowed (the request would fail anyway) by
    // its identifier alone.
    let resources: Vec<ResourceLine> = pending
        .request
        .audience()
        .iter()
        .map(|identifier| ResourceLine {
            name: client
                .resources
                .allowed(identifier)
                .map_or_else(|| identifier.to_owned(), |r| r.name.clone()),
            identifier: identifier.to_owned(),
        })
        .collect();
    let scope = pending.request.scope_set();
    let descriptions = &state.settings.scopes.descriptions;
    let scopes: Vec<ScopeLine> = scope
        .iter()
        .map(|name| ScopeLine {
            name,
            description: descriptions.get(name).map_or(name, String::as_str),
        })
        .collect();
    Ok(templates().page(
        StatusCode::OK,
        "consent.html",
        minijinja::context! {
            csrf_token => session.csrf_token()?,
            request_id => pending.id,
            client_name => client.name.clone(),
            destination => destination(&pending.request.redirect_uri),
            username => user.username,
            scopes,
            resources,
        },
    ))
}

/// `POST /consent`: the decision on the request the form names, and on no other.
/// `another_account` signs the user out and sends them to sign in again, the request kept in
/// progress: the next sign-in resumes it, whoever signs in.
pub async fn decide(
    state: web::Data<AppState>,
    page: PageForm<User, ConsentForm>,
) -> Result<HttpResponse, PageError> {
    let (session, user, form) = page.into_parts();
    let Some(pending) = in_progress(&session, Some(&form.request))? else {
        return Ok(redirect("/login"));
    };
    let request = &pending.request;
    match form.decision.as_str() {
        "approve" => {
            state
                .store
                .remember_consent(
                    user.id,
                    &request.client_id,
                    &Approval {
                        scope: request.scope_set(),
                        audience: request.audience(),
                    },
                    clock::now(),
                )
                .await
                .map_err(|err| store_error_page(&state, &session, &pending, err))?;
            issue_code(&state, &session, &pending, &user).await
        }
        "deny" => {
            session.remove_pending(&pending.id);
            Ok(refuse(
                &state,
                request,
                OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
            ))
        }
        "another_account" => {
            // Resumed next even if another tab started a newer request meanwhile: the person
            // chose to answer this one as someone else.
            session.resume_next(&pending.id)?;
            session.forget_user();
            tracing::info!(user_id = %user.id, "signed out to use another account");
            Ok(redirect("/login"))
        }
        _ => Err(PageError::bad_request("Choose Allow or Deny.")),
    }
}

/// The request in progress that `id` names (the newest when `None`); `None` sends to sign-in.
/// A request no longer in progress (answered, or pushed out by newer ones) is an error page: a
/// decision never falls through to another request.
fn in_progress(
    session: &UserSession,
    id: Option<&str>,
) -> Result<Option<PendingRequest>, PageError> {
    let pending = match id {
        Some(id) => session.pending_by_id(id).ok_or_else(|| {
            PageError::bad_request(
                "This authorization request is no longer in progress: it was answered, or \
                 replaced by newer ones. Start again from the application.",
            )
        })?,
        None => session
            .latest_pending()
            .ok_or_else(|| PageError::bad_request("No authorization request is in progress."))?,
    };
    if pending.request.prompt.login {
        return Ok(None);
    }
    Ok(Some(pending))
}

/// Where the answer sends the person, as they can check it: the host (and port, if not the
/// default) of the redirect URI, or the scheme of a native app's private-use URI
/// (RFC 8252 §7.1). IDNs stay in their ASCII form, which a look-alike cannot imitate.
pub(crate) fn destination(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) => match url.host_str().filter(|host| !host.is_empty()) {
            Some(host) => match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
            None => format!("{}:", url.scheme()),
        },
        // Registered URIs are absolute; should one not parse, show it whole.
        Err(_) => redirect_uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::destination;

    #[test]
    fn the_destination_is_the_host_a_person_can_check() {
        for (uri, shown) in [
            ("https://app.example/callback?x=1", "app.example"),
            ("https://app.example:8443/cb", "app.example:8443"),
            ("https://app.example:443/cb", "app.example"),
            ("http://127.0.0.1:51004/cb", "127.0.0.1:51004"),
            ("http://[::1]:8080/cb", "[::1]:8080"),
            ("https://bücher.example/cb", "xn--bcher-kva.example"),
            ("com.example.app:/oauth2redirect", "com.example.app:"),
        ] {
            assert_eq!(destination(uri), shown, "{uri}");
        }
    }
}
