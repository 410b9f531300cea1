//! The browser pages a person sees: sign-in, the second step, consent and the account page with
//! its second-factor enrolment. HTML forms with CSRF tokens; errors render as pages.
pub mod account;
pub mod consent;
pub mod login;
pub mod second_step;
pub mod two_factor;
