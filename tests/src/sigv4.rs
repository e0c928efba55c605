//! Signature Version 4 verification, written from the AWS specification and independent of the
//! `aws-sigv4` crate the product signs with.
//!
//! The simulator is the oracle for the product's signing: if both sides shared one
//! implementation, a bug in it would sign and verify happily and fail only against real AWS.
//! So this module recomputes signatures the way an AWS service does — canonical request,
//! string to sign, derived key — for both forms a request can carry:
//!
//! - the `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header
//!   (every SDK call), and
//! - presigned query parameters (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//!   `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`), as in the EC2 Instance Connect
//!   `openTunnel` URL.
//!
//! It is pure: the caller supplies the request, the secret and the current time, which keeps
//! the published AWS test vectors usable as unit tests.

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's timestamp may be from the service's clock.
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(15);

/// The longest a presigned request may stay valid: seven days.
const MAX_PRESIGNED_EXPIRES_SECS: i64 = 7 * 24 * 60 * 60;

const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// RFC 3986 unreserved characters stay as they are; everything else is `%XX`-encoded.
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

type HmacSha256 = Hmac<Sha256>;

/// The parts of an HTTP request that a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path as it arrived on the wire (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without the `?`; empty when there is none.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// `date/region/service/aws4_request`: what a signature is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `YYYYMMDD`
    pub date: String,
    pub region: String,
    pub service: String,
}

impl std::fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureLocation {
    AuthorizationHeader,
    /// A presigned URL, valid for this many seconds from its `X-Amz-Date`.
    QueryString {
        expires_secs: i64,
    },
}

/// A request's claimed signature, parsed but not yet checked.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub access_key_id: String,
    pub scope: CredentialScope,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    request_time: DateTime<Utc>,
    location: SignatureLocation,
}

/// Why a request's signature was not accepted. Each service turns these into its own error
/// codes; the `Display` text is the wording AWS's query services use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Request is missing Authentication Token")]
    Missing,
    /// Present but malformed: the request "does not conform to AWS standards".
    #[error("{0}")]
    Incomplete(String),
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{request_date}', from '{amz_date}'."
    )]
    ScopeDateMismatch {
        scope_date: String,
        request_date: String,
        amz_date: String,
    },
    /// The request was signed too long ago (or its presigned validity has run out).
    #[error("Signature expired: {amz_date} is now earlier than {earliest} ({now} - {window}.)")]
    Expired {
        amz_date: String,
        earliest: String,
        now: String,
        window: String,
    },
    /// The request claims to be signed in the future.
    #[error("Signature not yet current: {amz_date} is still later than {latest} ({now} + 15 min.)")]
    NotYetCurrent {
        amz_date: String,
        latest: String,
        now: String,
    },
    /// `x-amz-content-sha256` does not describe the body that arrived.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch {
        /// What the simulator signed, for the log: the first thing to diff against the client.
        canonical_request: String,
        string_to_sign: String,
    },
}

impl Authorization {
    /// Reads the signature a request carries, from its `Authorization` header or, failing
    /// that, its presigned query parameters.
    pub fn from_request(request: &HttpRequest<'_>) -> Result<Authorization, SigV4Error> {
        if let Some(header) = request.headers.get("authorization") {
            let header = header.to_str().map_err(|_| {
                SigV4Error::Incomplete("Authorization header is not valid ASCII.".to_owned())
            })?;
            return Self::from_header(header, request.headers);
        }
        let params = query_pairs(request.query);
        if params.iter().any(|(key, _)| key == "X-Amz-Algorithm") {
            return Self::from_query(&params);
        }
        Err(SigV4Error::Missing)
    }

    fn from_header(header: &str, headers: &HeaderMap) -> Result<Authorization, SigV4Error> {
        let (algorithm, rest) = header.split_once(' ').unwrap_or((header, ""));
        if algorithm != ALGORITHM {
            return Err(SigV4Error::Incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'."
            )));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for component in rest.split(',').map(str::trim) {
            match component.split_once('=') {
                Some(("Credential", value)) => credential = Some(value),
                Some(("SignedHeaders", value)) => signed_headers = Some(value),
                Some(("Signature", value)) => signature = Some(value),
                _ => {}
            }
        }
        let mut missing = String::new();
        for (name, value) in [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ] {
            if value.is_none() {
                missing += &format!("Authorization header requires '{name}' parameter. ");
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            return Err(SigV4Error::Incomplete(format!(
                "{missing}Authorization={header}"
            )));
        };
        let amz_date = headers
            .get("x-amz-date")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                SigV4Error::Incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                        .to_owned(),
                )
            })?;
        Self::new(
            credential,
            signed_headers,
            signature,
            amz_date,
            SignatureLocation::AuthorizationHeader,
        )
    }

    fn from_query(params: &[(String, String)]) -> Result<Authorization, SigV4Error> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let mut missing = Vec::new();
        for name in [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        ] {
            if get(name).is_none() {
                missing.push(name);
            }
        }
        let (
            Some(algorithm),
            Some(credential),
            Some(amz_date),
            Some(expires),
            Some(signed_headers),
            Some(signature),
        ) = (
            get("X-Amz-Algorithm"),
            get("X-Amz-Credential"),
            get("X-Amz-Date"),
            get("X-Amz-Expires"),
            get("X-Amz-SignedHeaders"),
            get("X-Amz-Signature"),
        )
        else {
            return Err(SigV4Error::Incomplete(format!(
                "AWS query-string parameters must include {}.",
                missing.join(", ")
            )));
        };
        if algorithm != ALGORITHM {
            return Err(SigV4Error::Incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'."
            )));
        }
        let expires_secs = expires
            .parse::<i64>()
            .ok()
            .filter(|secs| (1..=MAX_PRESIGNED_EXPIRES_SECS).contains(secs))
            .ok_or_else(|| {
                SigV4Error::Incomplete(format!(
                    "X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_SECS}; got '{expires}'."
                ))
            })?;
        Self::new(
            credential,
            signed_headers,
            signature,
            amz_date,
            SignatureLocation::QueryString { expires_secs },
        )
    }

    fn new(
        credential: &str,
        signed_headers: &str,
        signature: &str,
        amz_date: &str,
        location: SignatureLocation,
    ) -> Result<Authorization, SigV4Error> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, "aws4_request"] = parts[..] else {
            return Err(SigV4Error::Incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            )));
        };
        let request_time = NaiveDateTime::parse_from_str(amz_date, AMZ_DATE_FORMAT)
            .map_err(|_| {
                SigV4Error::Incomplete(format!(
                    "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
                ))
            })?
            .and_utc();
        let signed_headers: Vec<String> = signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect();
        if !signed_headers.iter().any(|name| name == "host") {
            return Err(SigV4Error::Incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                    .to_owned(),
            ));
        }
        Ok(Authorization {
            access_key_id: access_key_id.to_owned(),
            scope: CredentialScope {
                date: date.to_owned(),
                region: region.to_owned(),
                service: service.to_owned(),
            },
            signed_headers,
            signature: signature.to_owned(),
            amz_date: amz_date.to_owned(),
            request_time,
            location,
        })
    }

    /// `X-Amz-Expires` of a presigned request; `None` for a signed `Authorization` header.
    pub fn presigned_expires_secs(&self) -> Option<i64> {
        match self.location {
            SignatureLocation::QueryString { expires_secs } => Some(expires_secs),
            SignatureLocation::AuthorizationHeader => None,
        }
    }

    /// Checks the signature against `secret_access_key`, as of `now`.
    pub fn verify(
        &self,
        request: &HttpRequest<'_>,
        secret_access_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SigV4Error> {
        // `amz_date` parsed as `%Y%m%dT%H%M%SZ`, so it starts with eight ASCII digits.
        let request_date = self.amz_date.get(..8).unwrap_or_default();
        if self.scope.date != request_date {
            return Err(SigV4Error::ScopeDateMismatch {
                scope_date: self.scope.date.clone(),
                request_date: request_date.to_owned(),
                amz_date: self.amz_date.clone(),
            });
        }
        self.check_time(now)?;

        let payload_hash = payload_hash(request)?;
        let canonical_request = self.canonical_request(request, &payload_hash);
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut mac = HmacSha256::new_from_slice(&self.signing_key(secret_access_key))
            .expect("HMAC accepts keys of any length");
        mac.update(string_to_sign.as_bytes());
        let claimed = hex::decode(&self.signature).unwrap_or_default();
        // `verify_slice` compares in constant time.
        mac.verify_slice(&claimed)
            .map_err(|_| SigV4Error::SignatureMismatch {
                canonical_request,
                string_to_sign,
            })
    }

    fn check_time(&self, now: DateTime<Utc>) -> Result<(), SigV4Error> {
        let (valid_until, window) = match self.location {
            SignatureLocation::AuthorizationHeader => {
                (self.request_time + MAX_CLOCK_SKEW, "15 min".to_owned())
            }
            SignatureLocation::QueryString { expires_secs } => (
                self.request_time + TimeDelta::seconds(expires_secs),
                format!("{expires_secs} sec"),
            ),
        };
        if now > valid_until {
            return Err(SigV4Error::Expired {
                amz_date: self.amz_date.clone(),
                earliest: amz_date(now - (valid_until - self.request_time)),
                now: amz_date(now),
                window,
            });
        }
        if self.request_time > now + MAX_CLOCK_SKEW {
            return Err(SigV4Error::NotYetCurrent {
                amz_date: self.amz_date.clone(),
                latest: amz_date(now + MAX_CLOCK_SKEW),
                now: amz_date(now),
            });
        }
        Ok(())
    }

    fn canonical_request(&self, request: &HttpRequest<'_>, payload_hash: &str) -> String {
        let exclude_signature = matches!(self.location, SignatureLocation::QueryString { .. });
        let mut canonical = format!(
            "{}\n{}\n{}\n",
            request.method,
            canonical_uri(request.path),
            canonical_query(request.query, exclude_signature)
        );
        for name in &self.signed_headers {
            let values: Vec<String> = request
                .headers
                .get_all(name.as_str())
                .iter()
                .map(|value| collapse_whitespace(&String::from_utf8_lossy(value.as_bytes())))
                .collect();
            canonical += &format!("{name}:{}\n", values.join(","));
        }
        canonical += &format!("\n{}\n{payload_hash}", self.signed_headers.join(";"));
        canonical
    }

    fn signing_key(&self, secret_access_key: &str) -> Vec<u8> {
        let mut key = format!("AWS4{secret_access_key}").into_bytes();
        for part in [
            self.scope.date.as_str(),
            &self.scope.region,
            &self.scope.service,
            "aws4_request",
        ] {
            let mut mac =
                HmacSha256::new_from_slice(&key).expect("HMAC accepts keys of any length");
            mac.update(part.as_bytes());
            key = mac.finalize().into_bytes().to_vec();
        }
        key
    }
}

/// The signing name a request claims, read leniently so that even a request whose signature is
/// malformed can be answered in its service's own error format.
pub fn claimed_service(request: &HttpRequest<'_>) -> Option<String> {
    let credential = match request.headers.get("authorization") {
        Some(header) => {
            let header = header.to_str().ok()?;
            let start = header.find("Credential=")? + "Credential=".len();
            header[start..].split(',').next()?.trim().to_owned()
        }
        None => {
            query_pairs(request.query)
                .into_iter()
                .find(|(key, _)| key == "X-Amz-Credential")?
                .1
        }
    };
    credential.split('/').nth(3).map(str::to_owned)
}

/// The hash the signature covers: `x-amz-content-sha256` when sent (and then it must describe
/// the body that arrived), otherwise the SHA-256 of the body.
fn payload_hash(request: &HttpRequest<'_>) -> Result<String, SigV4Error> {
    let actual = hex::encode(Sha256::digest(request.body));
    match request.headers.get("x-amz-content-sha256") {
        None => Ok(actual),
        Some(declared) if declared.as_bytes().eq_ignore_ascii_case(actual.as_bytes()) => {
            Ok(String::from_utf8_lossy(declared.as_bytes()).into_owned())
        }
        Some(_) => Err(SigV4Error::PayloadHashMismatch),
    }
}

/// The path with `.`/`..` and empty segments removed, each segment URI-encoded once more (the
/// non-S3 rule: the on-the-wire path is encoded again).
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut canonical = String::from("/");
    canonical += &segments
        .iter()
        .map(|segment| utf8_percent_encode(segment, URI_ENCODE).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let trailing_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if trailing_slash && !segments.is_empty() {
        canonical.push('/');
    }
    canonical
}

/// Every parameter decoded, re-encoded the AWS way and sorted; the presigned signature itself
/// is left out.
fn canonical_query(query: &str, exclude_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(key, _)| !(exclude_signature && key == "X-Amz-Signature"))
        .map(|(key, value)| (uri_encode(&key), uri_encode(&value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Splits a raw query string into percent-decoded pairs (`+` is left as it is, as SigV4 does).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn uri_encode(text: &str) -> String {
    utf8_percent_encode(text, URI_ENCODE).to_string()
}

/// Trims a header value and folds each run of spaces into one.
fn collapse_whitespace(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn amz_date(time: DateTime<Utc>) -> String {
    time.format(AMZ_DATE_FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    //! Vectors from the AWS SigV4 test suite (`aws-sig-v4-test-suite`, as shipped with the
    //! smithy-rs `aws-sigv4` crate): AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1, `service`.

    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

    fn at_signing_time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z")
            .expect("valid time")
            .with_timezone(&Utc)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        map
    }

    fn verify(request: &HttpRequest<'_>, now: DateTime<Utc>) -> Result<(), SigV4Error> {
        Authorization::from_request(request)?.verify(request, SECRET, now)
    }

    fn authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    #[test]
    fn the_get_vanilla_vector_verifies() {
        let headers = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &authorization(
                    "host;x-amz-date",
                    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ),
            ),
        ]);
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(verify(&request, at_signing_time()), Ok(()));
    }

    #[test]
    fn one_changed_byte_anywhere_fails_the_get_vanilla_vector() {
        let signature = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let good = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &authorization("host;x-amz-date", signature),
            ),
        ]);
        let other_host = headers(&[
            ("host", "example.amazonaws.con"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &authorization("host;x-amz-date", signature),
            ),
        ]);
        let other_signature = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &authorization("host;x-amz-date", &signature.replacen('5', "6", 1)),
            ),
        ]);
        let cases = [
            ("method", "PUT", "/", "", &good, &b""[..]),
            ("path", "GET", "/a", "", &good, b""),
            ("query", "GET", "/", "a=b", &good, b""),
            ("host header", "GET", "/", "", &other_host, b""),
            ("body", "GET", "/", "", &good, b"x"),
            ("signature", "GET", "/", "", &other_signature, b""),
        ];
        for (what, method, path, query, headers, body) in cases {
            let request = HttpRequest {
                method,
                path,
                query,
                headers,
                body,
            };
            let result = verify(&request, at_signing_time());
            assert!(
                matches!(result, Err(SigV4Error::SignatureMismatch { .. })),
                "a changed {what} was accepted: {result:?}"
            );
        }
        let wrong_secret = Authorization::from_request(&HttpRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &good,
            body: b"",
        })
        .and_then(|auth| {
            auth.verify(
                &HttpRequest {
                    method: "GET",
                    path: "/",
                    query: "",
                    headers: &good,
                    body: b"",
                },
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ",
                at_signing_time(),
            )
        });
        assert!(matches!(
            wrong_secret,
            Err(SigV4Error::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn the_get_vanilla_presigned_vector_verifies() {
        let headers = headers(&[("host", "example.amazonaws.com")]);
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d";
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query,
            headers: &headers,
            body: b"",
        };
        assert_eq!(verify(&request, at_signing_time()), Ok(()));
        // Still valid 59 minutes later, expired after the hour it was signed for.
        assert_eq!(
            verify(&request, at_signing_time() + TimeDelta::minutes(59)),
            Ok(())
        );
        assert!(matches!(
            verify(&request, at_signing_time() + TimeDelta::minutes(61)),
            Err(SigV4Error::Expired { .. })
        ));
        let tampered = query.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
        assert!(matches!(
            verify(
                &HttpRequest {
                    query: &tampered,
                    ..request
                },
                at_signing_time()
            ),
            Err(SigV4Error::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn the_post_form_parameters_vector_verifies_and_checks_the_declared_body_hash() {
        let body_hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
        let headers = headers(&[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "example.amazonaws.com"),
            ("content-length", "13"),
            ("x-amz-date", "20150830T123600Z"),
            ("x-amz-content-sha256", body_hash),
            (
                "authorization",
                &authorization(
                    "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
                    "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
                ),
            ),
        ]);
        let request = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"Param1=value1",
        };
        assert_eq!(verify(&request, at_signing_time()), Ok(()));
        assert_eq!(
            verify(
                &HttpRequest {
                    body: b"Param1=value2",
                    ..request
                },
                at_signing_time()
            ),
            Err(SigV4Error::PayloadHashMismatch)
        );
    }

    #[test]
    fn header_values_are_trimmed_and_their_inner_spaces_folded() {
        // get-header-value-trim
        let headers = headers(&[
            ("host", "example.amazonaws.com"),
            ("my-header1", " value1"),
            ("my-header2", "\"a   b   c\""),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &authorization(
                    "host;my-header1;my-header2;x-amz-date",
                    "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
                ),
            ),
        ]);
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(verify(&request, at_signing_time()), Ok(()));
    }

    #[test]
    fn query_parameters_are_sorted_and_re_encoded() {
        // get-vanilla-query-order-encoded
        let headers = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &authorization(
                    "host;x-amz-date",
                    "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
                ),
            ),
        ]);
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
            headers: &headers,
            body: b"",
        };
        assert_eq!(verify(&request, at_signing_time()), Ok(()));
    }

    #[test]
    fn dot_segments_are_normalised_out_of_the_path() {
        // get-relative-relative-normalized: signs the same as get-vanilla.
        let headers = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                &authorization(
                    "host;x-amz-date",
                    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ),
            ),
        ]);
        let request = HttpRequest {
            method: "GET",
            path: "/example1/example2/../..",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(verify(&request, at_signing_time()), Ok(()));
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(
            canonical_uri("/functions/arn%3Aaws%3Alambda/invocations"),
            "/functions/arn%253Aaws%253Alambda/invocations"
        );
    }

    #[test]
    fn a_request_outside_the_fifteen_minute_window_is_refused_before_its_signature() {
        let headers = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", &authorization("host;x-amz-date", "00")),
        ]);
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let late = verify(&request, at_signing_time() + TimeDelta::minutes(16));
        assert_eq!(
            late.map_err(|e| e.to_string()),
            Err("Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T125200Z - 15 min.)".to_owned())
        );
        let early = verify(&request, at_signing_time() - TimeDelta::minutes(16));
        assert!(matches!(early, Err(SigV4Error::NotYetCurrent { .. })));
        // Inside the window the (bogus) signature is what fails.
        assert!(matches!(
            verify(&request, at_signing_time() + TimeDelta::minutes(14)),
            Err(SigV4Error::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn a_credential_scope_dated_another_day_is_refused() {
        let headers = headers(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150831T000100Z"),
            ("authorization", &authorization("host;x-amz-date", "00")),
        ]);
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert!(matches!(
            verify(&request, at_signing_time()),
            Err(SigV4Error::ScopeDateMismatch { .. })
        ));
    }

    #[test]
    fn malformed_authorization_is_incomplete_and_absent_authorization_is_missing() {
        let cases = [
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, Signature=00",
            "AWS4-HMAC-SHA512 Credential=x, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date, Signature=00",
        ];
        for header in cases {
            let headers = headers(&[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", header),
            ]);
            let request = HttpRequest {
                method: "GET",
                path: "/",
                query: "",
                headers: &headers,
                body: b"",
            };
            assert!(
                matches!(
                    Authorization::from_request(&request),
                    Err(SigV4Error::Incomplete(_))
                ),
                "{header}"
            );
        }
        let unsigned = headers(&[("host", "example.amazonaws.com")]);
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "Action=GetCallerIdentity",
            headers: &unsigned,
            body: b"",
        };
        assert!(matches!(
            Authorization::from_request(&request),
            Err(SigV4Error::Missing)
        ));
    }

    #[test]
    fn the_claimed_service_is_read_from_either_signature_form() {
        let signed = headers(&[("authorization", &authorization("host", "00"))]);
        let empty = headers(&[]);
        let header_form = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &signed,
            body: b"",
        };
        let query_form = HttpRequest {
            query: "X-Amz-Credential=AKID%2F20150830%2Feu-west-1%2Fsts%2Faws4_request",
            headers: &empty,
            ..header_form
        };
        assert_eq!(claimed_service(&header_form).as_deref(), Some("service"));
        assert_eq!(claimed_service(&query_form).as_deref(), Some("sts"));
    }
}
