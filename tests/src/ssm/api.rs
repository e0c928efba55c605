//! AWS Systems Manager's control plane, `awsJson1_1` protocol (`X-Amz-Target:
//! AmazonSSM.<Operation>`, SigV4 service `ssm`, API version 2014-11-06): the operations a
//! Session Manager client needs.
//!
//! | operation | errors |
//! |---|---|
//! | `DescribeInstanceInformation` | see `describe` |
//! | `StartSession` | `InvalidDocument`, `InvalidParameters`, `TargetNotConnected` |
//! | `ResumeSession` | `DoesNotExistException`; a session that is over gets no token |
//! | `TerminateSession` | none: terminating a session that is over, or unknown, succeeds |
//! | `GetConnectionStatus` | none: `connected` or `notconnected` |
//!
//! Every operation also answers `ValidationException` ("1 validation error detected: …", the
//! model's constraints), `SerializationException` (a body that is not the request's JSON
//! shape) and `AccessDeniedException` (an action in the profile's `denied_actions`). Client
//! errors are HTTP 400, as the SSM API reference lists them; error names are the service
//! model's (aws-sdk-go `models/apis/ssm/2014-11-06/api-2.json`). `InvalidParameters` for
//! StartSession's document parameters, the wording of messages other than TargetNotConnected's
//! ("<target> is not connected."), and TerminateSession's leniency are the simulator's choices.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::describe;
use super::documents::SessionKind;
use super::sessions::NewSession;
use crate::auth::Caller;
use crate::error::AwsError;
use crate::scenario::{Instance, InstanceState, PingStatus};
use crate::world::World;

/// The SigV4 signing name (the model's `endpointPrefix`).
pub const SIGNING_NAME: &str = "ssm";

/// `X-Amz-Target` is this prefix and the operation name.
pub const TARGET_PREFIX: &str = "AmazonSSM.";

pub fn call(
    world: &World,
    caller: Caller<'_>,
    action: &str,
    body: &[u8],
) -> Result<String, AwsError> {
    let input = Input::parse(body)?;
    let response = match action {
        "DescribeInstanceInformation" => {
            describe::describe_instance_information(world, caller, &input)?
        }
        "StartSession" => start_session(world, caller, &input)?,
        "ResumeSession" => resume_session(world, caller, &input)?,
        "TerminateSession" => terminate_session(world, caller, &input)?,
        "GetConnectionStatus" => get_connection_status(world, caller, &input)?,
        other => {
            return Err(AwsError::bad_request(
                "UnknownOperationException",
                format!("The operation {other} is not supported by the simulated Systems Manager."),
            ));
        }
    };
    Ok(response.to_string())
}

/// A request body: a JSON object, with typed accessors that answer AWS's errors.
pub struct Input {
    fields: Map<String, Value>,
    violations: std::cell::RefCell<Vec<String>>,
}

impl Input {
    fn parse(body: &[u8]) -> Result<Input, AwsError> {
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}".as_slice()
        } else {
            body
        };
        match serde_json::from_slice(body) {
            Ok(Value::Object(fields)) => Ok(Input {
                fields,
                violations: std::cell::RefCell::new(Vec::new()),
            }),
            _ => Err(serialization("The request body is not a JSON object.")),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name).filter(|value| !value.is_null())
    }

    /// A string member; `required` and length constraints are recorded as violations.
    pub fn string(
        &self,
        name: &str,
        required: bool,
        length: std::ops::RangeInclusive<usize>,
    ) -> Result<Option<&str>, AwsError> {
        let value = match self.get(name) {
            None => {
                if required {
                    self.violation(format!(
                        "Value null at '{}' failed to satisfy constraint: Member must not be null",
                        member(name)
                    ));
                }
                return Ok(None);
            }
            Some(Value::String(text)) => text.as_str(),
            Some(_) => {
                return Err(serialization(format!(
                    "STRING_VALUE can not be converted to a String for {name}"
                )));
            }
        };
        self.check_length(name, value, length);
        Ok(Some(value))
    }

    fn check_length(&self, name: &str, value: &str, length: std::ops::RangeInclusive<usize>) {
        let chars = value.chars().count();
        if chars < *length.start() {
            self.violation(format!(
                "Value '{value}' at '{}' failed to satisfy constraint: Member must have length greater than or equal to {}",
                member(name),
                length.start()
            ));
        }
        if chars > *length.end() {
            self.violation(format!(
                "Value '{value}' at '{}' failed to satisfy constraint: Member must have length less than or equal to {}",
                member(name),
                length.end()
            ));
        }
    }

    /// Records a broken constraint of member `name`.
    pub fn violation(&self, text: String) {
        self.violations.borrow_mut().push(text);
    }

    /// `ValidationException` with every recorded violation, if there are any.
    pub fn validated(&self) -> Result<(), AwsError> {
        let violations = self.violations.borrow();
        if violations.is_empty() {
            return Ok(());
        }
        let count = violations.len();
        let noun = if count == 1 { "error" } else { "errors" };
        Err(AwsError::bad_request(
            "ValidationException",
            format!(
                "{count} validation {noun} detected: {}",
                violations.join("; ")
            ),
        ))
    }
}

/// The model's member names are written with a lower-case first letter in messages.
pub fn member(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

pub fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::bad_request("SerializationException", message)
}

/// `AccessDeniedException` unless the caller's policy allows `action` on `resource`.
pub fn authorize(caller: Caller<'_>, action: &str, resource: &str) -> Result<(), AwsError> {
    if caller.profile.may_on(action, resource) {
        return Ok(());
    }
    Err(AwsError::bad_request(
        "AccessDeniedException",
        format!(
            "User: arn:aws:iam::{account}:user/{user} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
            account = caller.account(),
            user = caller.profile.user_name(),
        ),
    ))
}

/// The caller's instance `target`, if it exists in the caller's account and region.
fn instance<'w>(world: &'w World, caller: Caller<'_>, target: &str) -> Option<&'w Instance> {
    let scenario = &world.scenario;
    scenario.instances.iter().find(|instance| {
        instance.instance_id == target
            && scenario.placement(instance).is_some_and(|placement| {
                placement.account == caller.account() && placement.region == caller.region
            })
    })
}

/// Whether Session Manager can reach `instance` now: it runs and its agent is online.
fn connected(instance: &Instance) -> bool {
    instance.state == InstanceState::Running
        && instance
            .ssm_agent
            .as_ref()
            .is_some_and(|agent| agent.ping_status == PingStatus::Online)
}

fn start_session(world: &World, caller: Caller<'_>, input: &Input) -> Result<Value, AwsError> {
    let target = input.string("Target", true, 1..=400)?;
    let document = input.string("DocumentName", false, 1..=usize::MAX)?;
    if let Some(document) = document
        && !is_document_name(document)
    {
        input.violation(format!(
            "Value '{document}' at 'documentName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.:/]{{3,128}}$"
        ));
    }
    if let Some(reason) = input.string("Reason", false, 1..=256)?
        && reason.contains(['\n', '\r'])
    {
        input.violation(format!(
            "Value '{reason}' at 'reason' failed to satisfy constraint: Member must satisfy regular expression pattern: ^.{{1,256}}$"
        ));
    }
    let parameters = parameters(input)?;
    input.validated()?;
    let target = target.unwrap_or_default();
    authorize(
        caller,
        "ssm:StartSession",
        &format!(
            "arn:aws:ec2:{}:{}:instance/{target}",
            caller.region,
            caller.account()
        ),
    )?;
    // A document may be named by its ARN: arn:aws:ssm:<region>::document/<name>.
    let document = document.map(|name| name.rsplit_once(":document/").map_or(name, |(_, n)| n));
    // StartSession is authorized on the document too (a shell's is SSM-SessionManagerRunShell).
    authorize(
        caller,
        "ssm:StartSession",
        &format!(
            "arn:aws:ssm:{}::document/{}",
            caller.region,
            document.unwrap_or("SSM-SessionManagerRunShell")
        ),
    )?;
    let kind = SessionKind::from_request(document, &parameters)?;
    let instance = instance(world, caller, target)
        .filter(|instance| connected(instance))
        .ok_or_else(|| {
            AwsError::bad_request("TargetNotConnected", format!("{target} is not connected."))
        })?;
    let agent_version = instance
        .ssm_agent
        .as_ref()
        .map(|agent| agent.version.clone())
        .unwrap_or_default();
    let grant = world.ssm.start(
        NewSession {
            account: caller.account().to_owned(),
            region: caller.region.to_owned(),
            user_name: caller.profile.user_name().to_owned(),
            instance_id: instance.instance_id.clone(),
            agent_version,
            kind,
        },
        world.clock.now(),
    );
    tracing::info!(
        session_id = %grant.session_id,
        target,
        document = document.unwrap_or("(shell)"),
        "session started"
    );
    Ok(json!({
        "SessionId": grant.session_id,
        "TokenValue": grant.token,
        "StreamUrl": grant.stream_url,
    }))
}

/// `Parameters`: a map of names (1–255) to lists of values (1–65535 each).
fn parameters(input: &Input) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
    let Some(value) = input.get("Parameters") else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(map) = value else {
        return Err(serialization(
            "Parameters must be a map of lists of strings",
        ));
    };
    let mut parameters = BTreeMap::new();
    for (name, values) in map {
        let Value::Array(values) = values else {
            return Err(serialization(format!(
                "Parameter {name} must be a list of strings"
            )));
        };
        if name.is_empty() || name.chars().count() > 255 {
            input.violation(format!(
                "Value '{name}' at 'parameters' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must have length greater than or equal to 1]"
            ));
        }
        let mut strings = Vec::with_capacity(values.len());
        for value in values {
            let Value::String(text) = value else {
                return Err(serialization(format!(
                    "Parameter {name} must be a list of strings"
                )));
            };
            if text.is_empty() || text.chars().count() > 65535 {
                input.violation(format!(
                    "Value '[{text}]' at 'parameters.{name}.member' failed to satisfy constraint: Member must have length between 1 and 65535"
                ));
            }
            strings.push(text.clone());
        }
        parameters.insert(name.clone(), strings);
    }
    Ok(parameters)
}

/// `^[a-zA-Z0-9_\-.:/]{3,128}$`
fn is_document_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
}

fn session_arn(caller: Caller<'_>, session_id: &str) -> String {
    format!(
        "arn:aws:ssm:{}:{}:session/{session_id}",
        caller.region,
        caller.account()
    )
}

fn resume_session(world: &World, caller: Caller<'_>, input: &Input) -> Result<Value, AwsError> {
    let session_id = input.string("SessionId", true, 1..=96)?;
    input.validated()?;
    let session_id = session_id.unwrap_or_default();
    authorize(
        caller,
        "ssm:ResumeSession",
        &session_arn(caller, session_id),
    )?;
    match world.ssm.resume(
        caller.account(),
        caller.region,
        session_id,
        world.clock.now(),
    ) {
        Ok(Some(grant)) => Ok(json!({
            "SessionId": grant.session_id,
            "TokenValue": grant.token,
            "StreamUrl": grant.stream_url,
        })),
        // Over: no token, which the plugin reports as "Session: <id> timed out." (§1.2).
        Ok(None) => Ok(json!({ "SessionId": session_id })),
        Err(()) => Err(AwsError::bad_request(
            "DoesNotExistException",
            format!("Session with id {session_id} does not exist."),
        )),
    }
}

fn terminate_session(world: &World, caller: Caller<'_>, input: &Input) -> Result<Value, AwsError> {
    let session_id = input.string("SessionId", true, 1..=96)?;
    input.validated()?;
    let session_id = session_id.unwrap_or_default();
    authorize(
        caller,
        "ssm:TerminateSession",
        &session_arn(caller, session_id),
    )?;
    if world
        .ssm
        .terminate(caller.account(), caller.region, session_id)
    {
        tracing::info!(%session_id, "session terminated by TerminateSession");
    }
    Ok(json!({ "SessionId": session_id }))
}

fn get_connection_status(
    world: &World,
    caller: Caller<'_>,
    input: &Input,
) -> Result<Value, AwsError> {
    let target = input.string("Target", true, 1..=400)?;
    input.validated()?;
    let target = target.unwrap_or_default();
    authorize(
        caller,
        "ssm:GetConnectionStatus",
        &format!(
            "arn:aws:ec2:{}:{}:instance/{target}",
            caller.region,
            caller.account()
        ),
    )?;
    let status = if instance(world, caller, target).is_some_and(connected) {
        "connected"
    } else {
        "notconnected"
    };
    Ok(json!({ "Target": target, "Status": status }))
}
