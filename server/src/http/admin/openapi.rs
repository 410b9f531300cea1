//! The OpenAPI 3 document of the admin API, served at `GET /openapi.json` on the admin
//! listener. Every operation requires the bearer token and may answer the problems every
//! call can meet (400, 401, 403, 503); those are added here once rather than on each handler.
use super::problem::ProblemBody;
use super::{ROUTES, audit, clients, grants, keys, resources, users};
use crate::http::admin::ADMIN_SCOPE;
use crate::keys::KeySummary;
use crate::manage::{AllowedClientView, ResourceView};
use crate::oauth::registration::ClientMetadata;
use crate::second_factor::{FactorStatus, FactorSummary};
use crate::store::{AuditRecord, GrantView};
use actix_web::HttpResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Umbra admin API",
        description = "Administration of Umbra over JSON: clients, resources, users, grants, consents, the audit log and signing keys. Every call presents a client's own access token (client_credentials) with the scope `umbra:admin`. Errors are RFC 7807 problem details. Updates need `If-Match` with the `ETag` of the version they replace."
    ),
    paths(
        clients::list,
        clients::create,
        clients::show,
        clients::replace,
        clients::delete,
        clients::rotate_secret,
        users::list,
        users::create,
        users::show,
        users::update,
        users::delete,
        users::disable,
        users::enable,
        users::set_password,
        users::second_factor,
        users::reset_second_factor,
        users::consents,
        users::withdraw_consent,
        grants::of_user,
        grants::of_client,
        grants::revoke_user_grants,
        grants::revoke_user_grant,
        grants::revoke_client_grants,
        resources::list,
        resources::create,
        resources::show,
        resources::update,
        resources::delete,
        audit::query,
        keys::list,
        keys::rotate,
        openapi_json
    ),
    components(schemas(
        ProblemBody,
        ClientMetadata,
        clients::ClientView,
        clients::CreatedClient,
        clients::NewSecret,
        clients::ClientList,
        users::UserView,
        users::UserList,
        users::NewUser,
        users::ProfilePatch,
        users::NewPassword,
        users::ConsentItem,
        users::FactorsReset,
        FactorStatus,
        FactorSummary,
        GrantView,
        grants::GrantsRevoked,
        ResourceView,
        AllowedClientView,
        resources::NewResource,
        resources::ResourcePatch,
        AuditRecord,
        audit::AuditList,
        KeySummary,
        keys::Rotation
    )),
    modifiers(&AdminSecurity)
)]
pub struct AdminDoc;

/// The bearer scheme, required by every operation but this document, and the problems any
/// call may answer.
struct AdminSecurity;

impl Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(format!(
                            "A client's access token (client_credentials) with the scope {ADMIN_SCOPE}"
                        )))
                        .build(),
                ),
            );
        }
        for route in ROUTES {
            if let Some(item) = openapi.paths.paths.get_mut(route.path)
                && let Some(operation) = operation_mut(item, route.verb)
            {
                guard(operation);
            }
        }
    }
}

fn operation_mut(
    item: &mut utoipa::openapi::PathItem,
    verb: super::Verb,
) -> Option<&mut Operation> {
    use super::Verb;
    match verb {
        Verb::Get => item.get.as_mut(),
        Verb::Post => item.post.as_mut(),
        Verb::Put => item.put.as_mut(),
        Verb::Patch => item.patch.as_mut(),
        Verb::Delete => item.delete.as_mut(),
    }
}

/// Adds the bearer requirement and the common problems to `operation`.
fn guard(operation: &mut Operation) {
    operation
        .security
        .get_or_insert_with(Vec::new)
        .push(SecurityRequirement::new("bearer", [ADMIN_SCOPE]));
    for (status, description) in [
        ("400", "Bad input: body, query or path"),
        ("401", "No token, or an invalid, expired or revoked one"),
        (
            "403",
            "A token without the umbra:admin scope, or a person's token",
        ),
        ("503", "The database is unavailable"),
    ] {
        let problem = ResponseBuilder::new()
            .description(description)
            .content(
                super::problem::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ProblemBody")))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem.into());
    }
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The admin API's OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(AdminDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_admin_route_is_documented_with_the_bearer_scheme() {
        let doc = AdminDoc::openapi();
        for route in ROUTES {
            let operation = doc
                .paths
                .get_path_operation(route.path, route.verb.openapi())
                .unwrap_or_else(|| {
                    panic!(
                        "{:?} {} is not in the admin OpenAPI document",
                        route.verb, route.path
                    )
                });
            assert!(
                operation.security.as_ref().is_some_and(|s| !s.is_empty()),
                "{:?} {} does not require the bearer token",
                route.verb,
                route.path
            );
            assert!(
                operation.responses.responses.contains_key("401"),
                "{:?} {}",
                route.verb,
                route.path
            );
        }
    }

    #[test]
    fn the_document_describes_no_route_that_is_not_served() {
        use utoipa::openapi::HttpMethod;
        let doc = AdminDoc::openapi();
        for (path, item) in &doc.paths.paths {
            if path == "/openapi.json" {
                continue;
            }
            for (name, method, operation) in [
                ("GET", HttpMethod::Get, &item.get),
                ("POST", HttpMethod::Post, &item.post),
                ("PUT", HttpMethod::Put, &item.put),
                ("PATCH", HttpMethod::Patch, &item.patch),
                ("DELETE", HttpMethod::Delete, &item.delete),
            ] {
                if operation.is_some() {
                    assert!(
                        ROUTES
                            .iter()
                            .any(|r| r.path == path && r.verb.openapi() == method),
                        "{name} {path} is documented but not routed"
                    );
                }
            }
        }
    }
}
