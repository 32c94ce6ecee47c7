//! `/api/v1/admin/tsdb/*`: delete series, clean tombstones, snapshot,
//! through the [`crate::AdminSource`] the binary attaches.

use crate::params::{match_sets, param_time, Params, MAX_TIME, MIN_TIME};
use crate::reply::{Fail, Out, Reply};
use crate::Api;

impl Api {
    pub(crate) fn admin_call(&self, what: &str, p: &Params) -> Result<Reply, Fail> {
        let Some(admin) = &self.admin else {
            return Err(Fail::Unavailable("admin APIs disabled".into()));
        };
        match what {
            "admin/tsdb/delete_series" => {
                let sets = match_sets(p)?;
                if sets.is_empty() {
                    return Err(Fail::BadData("no match[] parameter provided".into()));
                }
                let start = param_time(p, "start", MIN_TIME)?;
                let end = param_time(p, "end", MAX_TIME)?;
                admin.delete_series(&sets, start, end)?;
                Ok(Reply::NoContent)
            }
            "admin/tsdb/clean_tombstones" => {
                admin.clean_tombstones()?;
                Ok(Reply::NoContent)
            }
            _ => {
                let skip_head = match p.non_empty("skip_head") {
                    None => false,
                    Some(v) => v.parse::<bool>().map_err(|_| {
                        Fail::BadData(format!(
                            "unable to parse boolean 'skip_head' argument: {v:?}"
                        ))
                    })?,
                };
                let name = admin.snapshot(skip_head)?;
                Ok(Reply::Data(Out::data(
                    serde_json::json!({ "name": name }).to_string(),
                )))
            }
        }
    }
}
