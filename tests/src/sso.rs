//! IAM Identity Center: the SSO OIDC service (device-authorization sign-in, token refresh) and
//! the AWS access portal API (the accounts and roles a signed-in user has, and credentials for
//! them).
//!
//! Neither is SigV4-signed: OIDC calls are anonymous and the portal takes the OIDC access
//! token in the `x-amz-sso_bearer_token` header, so they are routed by path before the
//! control plane's signature check, as their own hosts would be at AWS
//! (`oidc.REGION.amazonaws.com`, `portal.sso.REGION.amazonaws.com`). Both speak `restJson1`;
//! OIDC errors carry the OAuth `error`/`error_description` body.
//!
//! The simulator has one user per instance, always signed in to the portal, so "approving" a
//! device code is the only thing a person does: a test calls
//! [`IdentityCenter::approve`], and a browser opening the verification URL gets a page with an
//! Approve button.

mod oidc;
mod portal;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::Rng as _;

use crate::sigv4::HttpRequest;
use crate::world::World;

/// Everything Identity Center remembers: registered clients, device authorizations, tokens.
#[derive(Debug, Default)]
pub struct IdentityCenter {
    state: Mutex<State>,
    /// `https://127.0.0.1:PORT`, for the verification URLs.
    base_url: OnceLock<String>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<String, Client>,
    /// By device code.
    devices: HashMap<String, Device>,
    /// By access token.
    access_tokens: HashMap<String, Grant>,
    /// By refresh token.
    refresh_tokens: HashMap<String, Grant>,
}

#[derive(Debug, Clone)]
struct Client {
    secret: String,
    expires: DateTime<Utc>,
    /// Registered with `sso:account:access`: its tokens come with refresh tokens.
    refreshable: bool,
}

#[derive(Debug, Clone)]
struct Device {
    client_id: String,
    /// The scenario SSO instance the start URL names.
    instance: String,
    user_code: String,
    expires: DateTime<Utc>,
    interval_seconds: i64,
    last_poll: Option<DateTime<Utc>>,
    approved: bool,
}

#[derive(Debug, Clone)]
struct Grant {
    instance: String,
    client_id: String,
    expires: Option<DateTime<Utc>>,
}

impl IdentityCenter {
    /// Sets the control plane's URL (known once it is bound).
    pub fn set_base_url(&self, url: String) {
        let _ = self.base_url.set(url);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Approves the pending device authorization with `user_code`, as the signed-in user does
    /// in the browser. Returns whether one was pending.
    pub fn approve(&self, user_code: &str) -> bool {
        let mut state = self.lock();
        let now = Utc::now();
        match state
            .devices
            .values_mut()
            .find(|d| d.user_code.eq_ignore_ascii_case(user_code) && d.expires > now)
        {
            Some(device) => {
                device.approved = true;
                true
            }
            None => false,
        }
    }

    /// The user codes waiting for approval.
    pub fn pending_user_codes(&self) -> Vec<String> {
        let now = Utc::now();
        self.lock()
            .devices
            .values()
            .filter(|d| !d.approved && d.expires > now)
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// Ends every session of the SSO instance `name`: its access and refresh tokens stop
    /// working, as when the session's maximum duration passes or an admin revokes it.
    pub fn sign_out(&self, name: &str) {
        let mut state = self.lock();
        state
            .access_tokens
            .retain(|_, grant| grant.instance != name);
        state
            .refresh_tokens
            .retain(|_, grant| grant.instance != name);
    }

    /// Makes every access token of the SSO instance `name` expire now, keeping its refresh
    /// tokens: what an hour-old token looks like to the portal.
    pub fn expire_access_tokens(&self, name: &str) {
        let now = Utc::now();
        for grant in self.lock().access_tokens.values_mut() {
            if grant.instance == name {
                grant.expires = Some(now);
            }
        }
    }

    /// Where a person approves a device code.
    fn verification_uri(&self) -> String {
        format!(
            "{}/device",
            self.base_url.get().map(String::as_str).unwrap_or("")
        )
    }
}

/// Serves `request` if it is an OIDC or portal call (or the approval page); `None` leaves it
/// to the SigV4-signed services.
pub fn serve(world: &World, request: &HttpRequest<'_>, request_id: &str) -> Option<Response> {
    let response = match (request.method, request.path) {
        ("POST", "/client/register") => oidc::register_client(world, request.body),
        ("POST", "/device_authorization") => oidc::start_device_authorization(world, request.body),
        ("POST", "/token") => oidc::create_token(world, request.body),
        ("GET", "/federation/credentials") => portal::get_role_credentials(world, request),
        ("GET", "/assignment/accounts") => portal::list_accounts(world, request),
        ("GET", "/assignment/roles") => portal::list_account_roles(world, request),
        ("POST", "/logout") => portal::logout(world, request),
        ("GET", "/device") => return Some(approval_page(request.query)),
        ("POST", "/device") => return Some(approve_from_form(world, request.body)),
        _ => return None,
    };
    world.calls.record(response.action);
    tracing::info!(%request_id, action = response.action, status = %response.status, "sso call");
    let mut http = (response.status, Body::from(response.body.to_string())).into_response();
    let headers = http.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(error_type) = response.error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    Some(http)
}

/// One answered call: the action (for call counts), status, JSON body, and the modelled error
/// type when it failed.
struct Answer {
    action: &'static str,
    status: StatusCode,
    body: serde_json::Value,
    error_type: Option<&'static str>,
}

impl Answer {
    fn ok(action: &'static str, body: serde_json::Value) -> Self {
        Answer {
            action,
            status: StatusCode::OK,
            body,
            error_type: None,
        }
    }
}

/// A random token of `len` URL-safe characters.
fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The page a browser opening the verification URL gets: the code and an Approve button.
fn approval_page(query: &str) -> Response {
    let code = query_value(query, "user_code").unwrap_or_default();
    let code = crate::xml::escape(&code);
    let html = format!(
        "<!doctype html><title>bastionless-sim: authorize device</title>\
         <h1>Authorize request</h1><p>A device asks to sign in with code <b>{code}</b>.</p>\
         <form method=post action=/device><input name=user_code value=\"{code}\">\
         <button type=submit>Approve</button></form>"
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn approve_from_form(world: &World, body: &[u8]) -> Response {
    let form = String::from_utf8_lossy(body);
    let code = query_value(&form, "user_code").unwrap_or_default();
    let (status, text) = if world.sso.approve(&code) {
        (
            StatusCode::OK,
            "Request approved. You can close this window.",
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "No pending request has that code (it may have expired).",
        )
    };
    (status, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

/// `name`'s value in a `k=v&…` string, percent-decoded.
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}
