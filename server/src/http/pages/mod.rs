//! The browser pages a person sees: sign-in, the second step, consent and the account page with
//! its second-factor enrolment, and the operator console. HTML forms with CSRF tokens; errors
//! render as pages.
pub mod account;
pub mod consent;
pub mod console;
pub mod end_session;
pub mod login;
pub mod second_step;
pub mod two_factor;

/// What the pages say when a code was sent too recently to send another.
pub(crate) fn resend_throttled(retry_after_secs: i64) -> String {
    let wait = crate::http::error::wait_in_words(u64::try_from(retry_after_secs).unwrap_or(1));
    format!("A code was sent moments ago. Wait {wait} before asking for another.")
}
