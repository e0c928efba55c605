//! Which rows the hosts table shows, in which order: the search, the sort and the grouping,
//! worked out once per change of snapshot or view and kept, so a frame only lays out the rows
//! on screen. Pure (no egui), so every ordering rule is a plain unit test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bastionless_core::engine::Snapshot;
use bastionless_core::inventory::{Host, HostKey, HostQuery};
use bastionless_core::route::RouteReport;

/// The hosts and routes of a snapshot, by identity: what rows (and column widths) are worked
/// out from. The engine hands each snapshot's hosts and routes on to the next one unless they
/// changed, while the generation also moves for a tunnel's byte count or a scan's progress,
/// several times a second; work over 10,000 hosts is redone only when these change. The
/// `Arc`s are kept, so their addresses cannot be reused by newer data while compared.
#[derive(Debug, Clone)]
pub struct Basis {
    hosts: Arc<Vec<Host>>,
    routes: Arc<BTreeMap<HostKey, RouteReport>>,
}

impl Basis {
    pub fn of(snapshot: &Snapshot) -> Self {
        Self {
            hosts: snapshot.hosts.clone(),
            routes: snapshot.routes.clone(),
        }
    }

    /// Whether `snapshot` has the very hosts and routes this was taken from.
    pub fn is_of(&self, snapshot: &Snapshot) -> bool {
        Arc::ptr_eq(&self.hosts, &snapshot.hosts) && Arc::ptr_eq(&self.routes, &snapshot.routes)
    }
}

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
    #[cfg(test)]
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
    /// Only these hosts: the favorites view.
    pub only: Option<HostSet>,
}

/// The rows for `view` of `snapshot`, and how many hosts match (collapsed or not), worked out
/// from scratch.
#[cfg(test)]
pub fn rows(snapshot: &Snapshot, view: &View) -> (Vec<Row>, usize) {
    RowMaker::default().rows(snapshot, view)
}

/// Hosts by (account id, instance id).
pub type HostSet = BTreeSet<(String, String)>;

/// Works out rows as [`rows`] does, keeping what a next search can start from: the hosts each
/// recent query kept, and the order of every host for the sort. A search typed a character at
/// a time then only looks through the hosts the previous character kept (a backspace finds its
/// answer kept), and a keystroke never sorts: it picks the kept hosts out of the sorted order.
#[derive(Debug, Default)]
pub struct RowMaker {
    /// The hosts, routes and favorites the kept work is for.
    basis: Option<(Basis, Option<HostSet>)>,
    /// Recent queries, each narrowing the one before, with the hosts it kept (snapshot indexes,
    /// ascending).
    searches: Vec<(HostQuery, Vec<u32>)>,
    /// Every host index, in `sort`'s order.
    order: Option<(Sort, Vec<u32>)>,
}

/// How many searches [`RowMaker`] keeps; a query longer than this still narrows from the last.
const SEARCHES_KEPT: usize = 32;

impl RowMaker {
    /// The rows for `view` of `snapshot`, and how many hosts match (collapsed or not).
    pub fn rows(&mut self, snapshot: &Snapshot, view: &View) -> (Vec<Row>, usize) {
        let same_data = self.basis.as_ref().is_some_and(|(b, _)| b.is_of(snapshot));
        let same_only = self
            .basis
            .as_ref()
            .is_some_and(|(_, only)| *only == view.only);
        if !(same_data && same_only) {
            self.searches.clear();
            if !same_data {
                self.order = None;
            }
            self.basis = Some((Basis::of(snapshot), view.only.clone()));
        }
        let matching = self.search(snapshot, view);
        let count = matching.len();
        let mut kept: Vec<u32> = match view.sort {
            None => matching.to_vec(),
            Some(sort) => {
                let mut wanted = vec![false; snapshot.hosts.len()];
                for &index in matching {
                    wanted[index as usize] = true;
                }
                self.order(snapshot, sort)
                    .iter()
                    .copied()
                    .filter(|&index| wanted[index as usize])
                    .collect()
            }
        };
        if !view.grouped {
            return (
                kept.drain(..).map(|i| Row::Host(i as usize)).collect(),
                count,
            );
        }
        // Groups in key order; within a group, the order just worked out. Keyed by borrowed
        // text, so only one `GroupKey` is built per group rather than per host.
        let mut groups: std::collections::BTreeMap<(&str, &str, Option<&str>), Vec<usize>> =
            Default::default();
        for index in kept {
            let host = &snapshot.hosts[index as usize];
            groups
                .entry((&host.account_id, &host.region, host.vpc_id.as_deref()))
                .or_default()
                .push(index as usize);
        }
        let mut rows = Vec::with_capacity(count + groups.len());
        for ((account_id, region, vpc_id), members) in groups {
            let key = GroupKey {
                account_id: account_id.to_owned(),
                region: region.to_owned(),
                vpc_id: vpc_id.map(str::to_owned),
            };
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

    /// The hosts `view` keeps, in snapshot order, from the narrowest kept search its query
    /// narrows (or from every host).
    fn search(&mut self, snapshot: &Snapshot, view: &View) -> &[u32] {
        if let Some(at) = self.searches.iter().position(|(q, _)| *q == view.query) {
            self.searches.truncate(at + 1);
            return &self.searches[at].1;
        }
        while self
            .searches
            .last()
            .is_some_and(|(query, _)| !view.query.narrows(query))
        {
            self.searches.pop();
        }
        let keeps = |host: &Host| {
            view.only.as_ref().is_none_or(|only| {
                only.contains(&(host.account_id.clone(), host.instance_id.clone()))
            }) && snapshot.matches(&view.query, host)
        };
        let kept: Vec<u32> = match self.searches.last() {
            Some((_, within)) => within
                .iter()
                .copied()
                .filter(|&index| keeps(&snapshot.hosts[index as usize]))
                .collect(),
            None => (0..snapshot.hosts.len() as u32)
                .filter(|&index| keeps(&snapshot.hosts[index as usize]))
                .collect(),
        };
        if self.searches.len() == SEARCHES_KEPT {
            self.searches.remove(0);
        }
        self.searches.push((view.query.clone(), kept));
        &self.searches[self.searches.len() - 1].1
    }

    /// Every host index in `sort`'s order, worked out once per snapshot and sort. Stable, so
    /// equal keys keep the snapshot's (profile, region, name) order either way.
    fn order(&mut self, snapshot: &Snapshot, sort: Sort) -> &[u32] {
        if self
            .order
            .as_ref()
            .is_none_or(|(made_for, _)| *made_for != sort)
        {
            let keys: Vec<SortKey> = snapshot
                .hosts
                .iter()
                .map(|host| sort_key(snapshot, host, sort.column))
                .collect();
            let mut order: Vec<u32> = (0..snapshot.hosts.len() as u32).collect();
            order.sort_by(|&a, &b| {
                let order = keys[a as usize].cmp(&keys[b as usize]);
                if sort.descending {
                    order.reverse()
                } else {
                    order
                }
            });
            self.order = Some((sort, order));
        }
        self.order.as_ref().map_or(&[], |(_, order)| order)
    }
}

/// The route badge text a host sorts and shows by (`EIC`, `SSM?`, `none`, `…` when unknown).
pub fn route_badge(snapshot: &Snapshot, host: &Host) -> String {
    snapshot
        .route(host)
        .map_or_else(|| "…".to_owned(), |report| report.badge())
}

/// What a host sorts by in one column.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Text(String),
    /// Numerically, so 10.0.0.9 comes before 10.0.0.10; hosts without one last.
    Ip(bool, Option<std::net::Ipv4Addr>),
}

fn sort_key(snapshot: &Snapshot, host: &Host, column: SortColumn) -> SortKey {
    SortKey::Text(match column {
        SortColumn::Name => host.display_name().to_lowercase(),
        SortColumn::InstanceId => host.instance_id.clone(),
        SortColumn::Account => format!("{} {}", host.account_id, host.profile),
        SortColumn::Region => host.region.clone(),
        SortColumn::State => host.state.as_str().to_owned(),
        SortColumn::Os => host.platform.as_str().to_owned(),
        SortColumn::Route => route_badge(snapshot, host),
        SortColumn::PrivateIp => {
            let (missing, ip) = ip_key(host);
            return SortKey::Ip(missing, ip);
        }
    })
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
            ]
            .into(),
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
    fn a_search_typed_and_erased_a_character_at_a_time_keeps_what_a_fresh_one_finds() {
        let host_names = ["web-1", "web-2", "db", "web-db", "cache", "WEB-3"];
        let s = Snapshot {
            generation: 1,
            hosts: host_names
                .iter()
                .enumerate()
                .map(|(i, n)| host(n, &format!("10.0.0.{i}"), ["vpc-a", "vpc-b"][i % 2]))
                .collect::<Vec<_>>()
                .into(),
            ..Snapshot::default()
        };
        let mut maker = RowMaker::default();
        let mut view = View {
            sort: Some(Sort {
                column: SortColumn::Name,
                descending: true,
            }),
            grouped: true,
            ..View::default()
        };
        let typed = "web d";
        let texts = (0..=typed.len())
            .map(|n| &typed[..n])
            .chain((0..typed.len()).rev().map(|n| &typed[..n]))
            .chain(["db", "x", "web", "eb"]);
        for text in texts {
            view.query = HostQuery::parse(text);
            assert_eq!(maker.rows(&s, &view), rows(&s, &view), "{text:?}");
        }
        // A new snapshot starts over: its hosts differ.
        let mut changed = s.clone();
        changed.generation = 2;
        std::sync::Arc::make_mut(&mut changed.hosts).truncate(2);
        assert_eq!(maker.rows(&changed, &view), rows(&changed, &view));
        assert_eq!(
            names(&changed, &maker.rows(&changed, &view).0),
            ["[vpc-a 1]", "web-1", "[vpc-b 1]", "web-2"]
        );
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
