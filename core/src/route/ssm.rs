//! The Session Manager route: a host whose SSM Agent is registered and online, and new enough
//! for what Bastionless asks of it (spec `ssm.md` §7.1). Port forwarding needs 2.3.672.0 or
//! later; several connections over one session (smux) need an agent newer than 3.0.196.0, the
//! same strict comparison the session-manager-plugin makes; forwarding through the host to
//! another address needs 3.1.1374.0 or later. Versions are four numbers; anything else is not
//! trusted with a feature, as the plugin does not trust it.

use super::{Findings, Method, RouteVerdict, SsmFacts, Verdict};
use crate::inventory::PingStatus;

const PORT_FORWARDING: [u32; 4] = [2, 3, 672, 0];
const MULTIPLEXING_AFTER: [u32; 4] = [3, 0, 196, 0];
const REMOTE_HOST: [u32; 4] = [3, 1, 1374, 0];

pub(super) fn assess(ssm: SsmFacts<'_>) -> RouteVerdict {
    let mut found = Findings::new(Method::Ssm);
    let info = match ssm {
        SsmFacts::Unknown(why) => {
            found.note(Verdict::Unsure, why.to_owned());
            return found.done();
        }
        SsmFacts::NotRegistered => {
            found.note(
                Verdict::Blocked,
                "not managed by Systems Manager: install the SSM Agent and give the instance a \
                 role with AmazonSSMManagedInstanceCore"
                    .to_owned(),
            );
            return found.done();
        }
        SsmFacts::Registered(info) => info,
    };
    if info.ping_status != PingStatus::Online {
        found.note(
            Verdict::Blocked,
            format!(
                "the SSM Agent is {}: it is not checking in with Systems Manager; check that it \
                 runs and can reach the ssm and ssmmessages endpoints",
                info.ping_status.as_str()
            ),
        );
        return found.done();
    }
    let Some((text, version)) = info
        .agent_version
        .as_deref()
        .and_then(|text| Some((text, parse(text)?)))
    else {
        found.note(
            Verdict::Unsure,
            format!(
                "the SSM Agent is online, but its version ({}) is not four numbers, so port \
                 forwarding cannot be relied on",
                info.agent_version.as_deref().unwrap_or("not reported")
            ),
        );
        return found.done();
    };
    if version < PORT_FORWARDING {
        found.note(
            Verdict::Blocked,
            format!(
                "SSM Agent {text} cannot forward ports (that needs 2.3.672.0 or later); update \
                 the agent"
            ),
        );
        return found.done();
    }
    found.note(
        Verdict::Ready,
        if version > MULTIPLEXING_AFTER {
            format!("SSM Agent {text} is online and forwards several connections at once")
        } else {
            format!(
                "SSM Agent {text} is online but forwards one connection at a time (several \
                 need an agent newer than 3.0.196.0)"
            )
        },
    );
    found.note(
        Verdict::Ready,
        if version >= REMOTE_HOST {
            "it can also forward to other hosts its network reaches".to_owned()
        } else {
            "it cannot forward to other hosts (that needs 3.1.1374.0 or later)".to_owned()
        },
    );
    found.done()
}

/// `a.b.c.d` as four numbers, or `None`.
fn parse(version: &str) -> Option<[u32; 4]> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let parsed = [
        parts.next()??,
        parts.next()??,
        parts.next()??,
        parts.next()??,
    ];
    parts.next().is_none().then_some(parsed)
}
