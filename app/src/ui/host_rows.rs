//! Which rows the hosts table shows, in which order: the search, the sort and the grouping,
//! worked out once per change of snapshot or view and kept, so a frame only lays out the rows
//! on screen. Pure (no egui), so every ordering rule is a plain unit test.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use bastionless_core::engine::Snapshot;
use bastionless_core::inventory::{Host, HostQuery};

/// A column the table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortColumn {
    Name,
    InstanceId,
    Account,
    Region,
    State,
    Os,
    PrivateIp,
    Route,
}

/// The sort the user picked by clicking a header (a second click reverses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: SortColumn,
    pub descending: bool,
}

/// Account, region and VPC: what grouped rows are gathered under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub account_id: String,
    pub region: String,
    /// `None` for instances outside any VPC (EC2-Classic leftovers, or unknown).
    pub vpc_id: Option<String>,
}

impl GroupKey {
    fn of(host: &Host) -> Self {
        Self {
            account_id: host.account_id.clone(),
            region: host.region.clone(),
            vpc_id: host.vpc_id.clone(),
        }
    }

    /// "111122223333 › us-east-1 › vpc-0abc".
    pub fn title(&self) -> String {
        format!(
            "{} › {} › {}",
            self.account_id,
            self.region,
            self.vpc_id.as_deref().unwrap_or("no VPC")
        )
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// A group's heading, with how many hosts it holds (shown or not).
    Group {
        key: GroupKey,
        hosts: usize,
        collapsed: bool,
    },
    /// An index into the snapshot's hosts.
    Host(usize),
}

/// How the user wants the table: everything that decides the rows besides the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub query: HostQuery,
    pub sort: Option<Sort>,
    pub grouped: bool,
    pub collapsed: BTreeSet<GroupKey>,
    /// Only these hosts (account id, instance id): the favorites view.
    pub only: Option<BTreeSet<(String, String)>>,
}

/// The rows for `view` of `snapshot`, and how many hosts match (collapsed or not).
pub fn rows(snapshot: &Snapshot, view: &View) -> (Vec<Row>, usize) {
    let mut matching: Vec<usize> = snapshot
        .hosts
        .iter()
        .enumerate()
        .filter(|(_, host)| {
            view.only.as_ref().is_none_or(|only| {
                only.contains(&(host.account_id.clone(), host.instance_id.clone()))
            })
        })
        .filter(|(_, host)| snapshot.matches(&view.query, host))
        .map(|(index, _)| index)
        .collect();
    let count = matching.len();
    if let Some(sort) = view.sort {
        // Stable, so equal keys keep the snapshot's (profile, region, name) order.
        matching.sort_by(|&a, &b| {
            let order = compare(
                snapshot,
                &snapshot.hosts[a],
                &snapshot.hosts[b],
                sort.column,
            );
            if sort.descending {
                order.reverse()
            } else {
                order
            }
        });
    }
    if !view.grouped {
        return (matching.into_iter().map(Row::Host).collect(), count);
    }
    // Groups in key order; within a group, the order just worked out.
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<usize>> = Default::default();
    for index in matching {
        groups
            .entry(GroupKey::of(&snapshot.hosts[index]))
            .or_default()
            .push(index);
    }
    let mut rows = Vec::with_capacity(count + groups.len());
    for (key, members) in groups {
        let collapsed = view.collapsed.contains(&key);
        rows.push(Row::Group {
            hosts: members.len(),
            collapsed,
            key,
        });
        if !collapsed {
            rows.extend(members.into_iter().map(Row::Host));
        }
    }
    (rows, count)
}

/// The route badge text a host sorts and shows by (`EIC`, `SSM?`, `none`, `…` when unknown).
pub fn route_badge(snapshot: &Snapshot, host: &Host) -> String {
    snapshot
        .route(host)
        .map_or_else(|| "…".to_owned(), |report| report.badge())
}

fn compare(snapshot: &Snapshot, a: &Host, b: &Host, column: SortColumn) -> Ordering {
    let text = |host: &Host| -> String {
        match column {
            SortColumn::Name => host.display_name().to_lowercase(),
            SortColumn::InstanceId => host.instance_id.clone(),
            SortColumn::Account => format!("{} {}", host.account_id, host.profile),
            SortColumn::Region => host.region.clone(),
            SortColumn::State => host.state.as_str().to_owned(),
            SortColumn::Os => host.platform.as_str().to_owned(),
            SortColumn::PrivateIp => String::new(),
            SortColumn::Route => route_badge(snapshot, host),
        }
    };
    match column {
        // Numerically, so 10.0.0.9 comes before 10.0.0.10; hosts without one last.
        SortColumn::PrivateIp => ip_key(a).cmp(&ip_key(b)),
        _ => text(a).cmp(&text(b)),
    }
}

fn ip_key(host: &Host) -> (bool, Option<std::net::Ipv4Addr>) {
    let ip = host.private_ip.as_deref().and_then(|ip| ip.parse().ok());
    (ip.is_none(), ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bastionless_core::inventory::{InstanceState, Platform};

    fn host(name: &str, ip: &str, vpc: &str) -> Host {
        Host {
            instance_id: format!("i-{name}"),
            name: Some(name.to_owned()),
            tags: Default::default(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: Some(ip.to_owned()),
            public_ip: None,
            vpc_id: Some(vpc.to_owned()),
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            security_group_ids: Vec::new(),
            profile: "dev".to_owned(),
            account_id: "111122223333".to_owned(),
            region: "us-east-1".to_owned(),
            stale: false,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            hosts: vec![
                host("web-2", "10.0.0.10", "vpc-b"),
                host("db", "10.0.0.9", "vpc-a"),
                host("web-1", "10.0.1.1", "vpc-b"),
            ],
            ..Snapshot::default()
        }
    }

    fn names(snapshot: &Snapshot, rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|row| match row {
                Row::Host(i) => snapshot.hosts[*i].display_name().to_owned(),
                Row::Group { key, hosts, .. } => {
                    format!("[{} {hosts}]", key.vpc_id.as_deref().unwrap())
                }
            })
            .collect()
    }

    #[test]
    fn unsorted_rows_keep_the_snapshot_order_and_the_search_narrows_them() {
        let s = snapshot();
        let mut view = View::default();
        assert_eq!(names(&s, &rows(&s, &view).0), ["web-2", "db", "web-1"]);
        view.query = HostQuery::parse("web");
        let (rows, count) = rows(&s, &view);
        assert_eq!(names(&s, &rows), ["web-2", "web-1"]);
        assert_eq!(count, 2);
    }

    #[test]
    fn sorting_by_name_either_way_and_by_ip_numerically() {
        let s = snapshot();
        let mut view = View {
            sort: Some(Sort {
                column: SortColumn::Name,
                descending: false,
            }),
            ..View::default()
        };
        assert_eq!(names(&s, &rows(&s, &view).0), ["db", "web-1", "web-2"]);
        view.sort = Some(Sort {
            column: SortColumn::Name,
            descending: true,
        });
        assert_eq!(names(&s, &rows(&s, &view).0), ["web-2", "web-1", "db"]);
        view.sort = Some(Sort {
            column: SortColumn::PrivateIp,
            descending: false,
        });
        assert_eq!(names(&s, &rows(&s, &view).0), ["db", "web-2", "web-1"]);
    }

    #[test]
    fn the_favorites_view_keeps_only_favorites() {
        let s = snapshot();
        let view = View {
            only: Some([("111122223333".to_owned(), "i-db".to_owned())].into()),
            ..View::default()
        };
        assert_eq!(names(&s, &rows(&s, &view).0), ["db"]);
    }

    #[test]
    fn grouping_gathers_hosts_under_their_vpc_and_a_collapsed_group_hides_them() {
        let s = snapshot();
        let mut view = View {
            grouped: true,
            ..View::default()
        };
        assert_eq!(
            names(&s, &rows(&s, &view).0),
            ["[vpc-a 1]", "db", "[vpc-b 2]", "web-2", "web-1"]
        );
        view.collapsed.insert(GroupKey::of(&s.hosts[0]));
        let (rows, count) = rows(&s, &view);
        assert_eq!(names(&s, &rows), ["[vpc-a 1]", "db", "[vpc-b 2]"]);
        assert_eq!(count, 3, "collapsed hosts still count as matching");
    }
}
