//! The API over the in-memory store: JSON shapes, parameters, errors and
//! status codes as Prometheus's web/api/v1 produces them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::sync::Arc;

use cairn_api::*;
use cairn_model::{labels, Labels, Sample};
use cairn_storage::{MemStorage, Metadata, MetricType};

fn store() -> MemStorage {
    let st = MemStorage::new();
    st.add(
        labels!("__name__" => "up", "job" => "node", "instance" => "a"),
        [Sample::new(1000, 1.0), Sample::new(2000, 0.0)],
    );
    st.add(
        labels!("__name__" => "up", "job" => "dcgm", "instance" => "b"),
        [Sample::new(1000, 1.0)],
    );
    st.add(
        labels!("__name__" => "DCGM_FI_DEV_GPU_UTIL", "gpu" => "0", "Hostname" => "n1"),
        [Sample::new(1500, 87.0)],
    );
    st
}

fn req(method: &str, path: &str, q: &str) -> ApiRequest {
    ApiRequest {
        method: method.into(),
        path: path.into(),
        params: parse_form(q),
        accept: String::new(),
    }
}

fn json(r: &ApiResponse) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// Answers `vector(<n>)`-style queries from the request text: enough to check the
/// JSON layer, not PromQL.
struct EchoEngine;
impl QueryEngine for EchoEngine {
    fn instant(&self, q: &str, t: i64, _: &QueryOptions) -> Result<QueryResult, QueryError> {
        match q {
            "scalar" => Ok(QueryResult {
                output: QueryOutput::Scalar { t, v: 2.5 },
                warnings: vec![],
                infos: vec!["i".into()],
            }),
            "vector" => Ok(QueryResult {
                output: QueryOutput::Vector(vec![(
                    labels!("a" => "1"),
                    t,
                    SampleValue::Float(f64::INFINITY),
                )]),
                warnings: vec!["w".into()],
                infos: vec![],
            }),
            _ => Err(QueryError::BadData(format!(
                "1:1: parse error: unexpected {q}"
            ))),
        }
    }
    fn range(
        &self,
        _: &str,
        start: i64,
        end: i64,
        step: i64,
        _: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        let pts: Vec<(i64, f64)> = (0..)
            .map(|i| start + i * step)
            .take_while(|t| *t <= end)
            .map(|t| (t, 1.0))
            .collect();
        Ok(QueryResult {
            output: QueryOutput::Matrix(vec![RangeSeries::floats(Labels::empty(), pts)]),
            warnings: vec![],
            infos: vec![],
        })
    }
}

fn api() -> Api {
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(store());
    Api::new(ApiConfig::default(), st).with_engine(Arc::new(EchoEngine))
}

#[test]
fn series_requires_match_and_returns_label_sets() {
    let a = api();
    let r = a.handle(&req("GET", "/api/v1/series", "")).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        json(&r),
        serde_json::json!({"status":"error","errorType":"bad_data","error":"no match[] parameter provided"})
    );
    let r = a
        .handle(&req("POST", "/api/v1/series", "match[]=up&start=0&end=5"))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        json(&r),
        serde_json::json!({"status":"success","data":[
            {"__name__":"up","instance":"a","job":"node"},
            {"__name__":"up","instance":"b","job":"dcgm"}]})
    );
    let r = a
        .handle(&req("GET", "/api/v1/series", "match[]=up&limit=1"))
        .unwrap();
    let v = json(&r);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"][0], "results truncated due to limit");
    let r = a
        .handle(&req("GET", "/api/v1/series", "match[]=sum(up)"))
        .unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn labels_and_values() {
    let a = api();
    let v = json(&a.handle(&req("GET", "/api/v1/labels", "")).unwrap());
    assert_eq!(
        v["data"],
        serde_json::json!(["Hostname", "__name__", "gpu", "instance", "job"])
    );
    let v = json(
        &a.handle(&req("GET", "/api/v1/labels", "match[]=up"))
            .unwrap(),
    );
    assert_eq!(
        v["data"],
        serde_json::json!(["__name__", "instance", "job"])
    );
    let v = json(
        &a.handle(&req(
            "GET",
            "/api/v1/label/job/values",
            "match[]={instance=\"a\"}",
        ))
        .unwrap(),
    );
    assert_eq!(v["data"], serde_json::json!(["node"]));
    let v = json(
        &a.handle(&req("GET", "/api/v1/label/__name__/values", ""))
            .unwrap(),
    );
    assert_eq!(v["data"], serde_json::json!(["DCGM_FI_DEV_GPU_UTIL", "up"]));
    let r = a
        .handle(&req("GET", "/api/v1/label/job/values", "start=yesterday"))
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(json(&r)["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"start\""));
}

#[test]
fn query_json_shapes_and_errors() {
    let a = api();
    let r = a
        .handle(&req("GET", "/api/v1/query", "query=scalar&time=1.5"))
        .unwrap();
    assert_eq!(
        json(&r),
        serde_json::json!({"status":"success","data":{"resultType":"scalar","result":[1.5,"2.5"]},"infos":["i"]})
    );
    let r = a
        .handle(&req(
            "POST",
            "/api/v1/query",
            "query=vector&time=2015-07-01T20:10:51.781Z",
        ))
        .unwrap();
    assert_eq!(
        json(&r),
        serde_json::json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1435781451.781,"+Inf"]}]},"warnings":["w"]})
    );
    let r = a.handle(&req("GET", "/api/v1/query", "query=bad")).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(json(&r)["errorType"], "bad_data");
    let r = a
        .handle(&req(
            "GET",
            "/api/v1/query_range",
            "query=x&start=10&end=20&step=5",
        ))
        .unwrap();
    assert_eq!(
        json(&r)["data"],
        serde_json::json!({"resultType":"matrix","result":[{"metric":{},"values":[[10,"1"],[15,"1"],[20,"1"]]}]})
    );
    for (q, msg) in [
        ("query=x&start=20&end=10&step=5", "end timestamp must not be before start time"),
        ("query=x&start=0&end=10&step=0", "zero or negative query resolution step widths are not accepted. Try a positive integer"),
        ("query=x&start=0&end=100000&step=1", "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"),
    ] {
        let r = a.handle(&req("GET", "/api/v1/query_range", q)).unwrap();
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(json(&r)["error"], msg);
    }
    let r = a
        .handle(&req("DELETE", "/api/v1/query", "query=x"))
        .unwrap();
    assert_eq!(r.status, 405);
}

struct Meta;
impl MetadataSource for Meta {
    fn metadata(&self) -> Vec<(String, Metadata)> {
        vec![(
            "up".into(),
            Metadata {
                kind: MetricType::Gauge,
                unit: "".into(),
                help: "Target is up.".into(),
            },
        )]
    }
}

#[test]
fn metadata_buildinfo_exemplars_format_federate() {
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(store());
    let a = Api::new(ApiConfig::default(), st).with_metadata(Arc::new(Meta));
    let v = json(&a.handle(&req("GET", "/api/v1/metadata", "")).unwrap());
    assert_eq!(
        v["data"],
        serde_json::json!({"up":[{"type":"gauge","help":"Target is up.","unit":""}]})
    );
    let v = json(
        &a.handle(&req("GET", "/api/v1/status/buildinfo", ""))
            .unwrap(),
    );
    assert!(v["data"]["version"].is_string());
    let v = json(
        &a.handle(&req("GET", "/api/v1/query_exemplars", "query=up"))
            .unwrap(),
    );
    assert_eq!(v["data"], serde_json::json!([]));
    let v = json(
        &a.handle(&req("GET", "/api/v1/format_query", "query=sum(up)by(job)"))
            .unwrap(),
    );
    assert_eq!(v["data"], "sum by (job) (up)");
    // parse_query answers the syntax tree, not the formatted text.
    let v = json(
        &a.handle(&req("GET", "/api/v1/parse_query", "query=sum(up)by(job)"))
            .unwrap(),
    );
    assert_eq!(v["data"]["type"], "aggregation", "{v}");
    assert_eq!(v["data"]["grouping"], serde_json::json!(["job"]));
    assert_eq!(v["data"]["expr"]["type"], "vectorSelector");
    let bad = a
        .handle(&req("GET", "/api/v1/parse_query", "query=sum("))
        .unwrap();
    assert_eq!(bad.status, 400);
    // The configuration page shows what the server was given.
    let cfg = ApiConfig {
        config_yaml: "global:\n  evaluation_interval: 1m\n".into(),
        ..ApiConfig::default()
    };
    let with_cfg = Api::new(cfg, Arc::new(MemStorage::new()));
    let v = json(
        &with_cfg
            .handle(&req("GET", "/api/v1/status/config", ""))
            .unwrap(),
    );
    assert_eq!(
        v["data"],
        serde_json::json!({"yaml": "global:\n  evaluation_interval: 1m\n"})
    );
    assert!(a.handle(&req("GET", "/api/v2/nothing", "")).is_none());
}

struct Admin(std::sync::Mutex<Vec<String>>);
impl AdminSource for Admin {
    fn delete_series(
        &self,
        m: &[Vec<cairn_model::Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<(), AdminError> {
        self.0
            .lock()
            .unwrap()
            .push(format!("delete {} {mint} {maxt}", m.len()));
        Ok(())
    }
    fn clean_tombstones(&self) -> Result<(), AdminError> {
        self.0.lock().unwrap().push("clean".into());
        Err(AdminError::Storage(cairn_storage::StorageError::Closed))
    }
    fn snapshot(&self, skip_head: bool) -> Result<String, AdminError> {
        self.0.lock().unwrap().push(format!("snapshot {skip_head}"));
        Ok("20261122T000000Z-0123456789abcdef".into())
    }
}

#[test]
fn an_api_without_queries_refuses_what_selects_series_and_serves_the_rest() {
    let why = "unavailable: this Cairn runs with --mode=ingest";
    let off = api().without_queries(why);
    for (m, path, q) in [
        ("GET", "/api/v1/query", "query=vector"),
        (
            "POST",
            "/api/v1/query_range",
            "query=vector&start=0&end=10&step=1",
        ),
        ("GET", "/api/v1/series", "match[]=up"),
        ("GET", "/api/v1/labels", ""),
        ("GET", "/api/v1/label/job/values", ""),
        ("GET", "/api/v1/query_exemplars", "query=up&start=0&end=10"),
        ("GET", "/federate", "match[]=up"),
    ] {
        let r = off.handle(&req(m, path, q)).unwrap();
        assert_eq!(r.status, 422, "{path}");
        assert_eq!(
            json(&r),
            serde_json::json!({"status":"error","errorType":"execution","error":why}),
            "{path}"
        );
        // The same request is answered where queries are on.
        assert_eq!(
            api().handle(&req(m, path, q)).unwrap().status,
            200,
            "{path}"
        );
    }
    for path in [
        "/api/v1/status/buildinfo",
        "/api/v1/metadata",
        "/api/v1/rules",
    ] {
        assert_eq!(
            off.handle(&req("GET", path, "")).unwrap().status,
            200,
            "{path}"
        );
    }
    assert!(off.handle(&req("GET", "/api/v1/nothing", "")).is_none());
}

#[test]
fn admin_api_is_gated_and_dispatches() {
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(store());
    let off = Api::new(ApiConfig::default(), st.clone());
    let r = off
        .handle(&req("POST", "/api/v1/admin/tsdb/clean_tombstones", ""))
        .unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(
        json(&r),
        serde_json::json!({"status":"error","errorType":"unavailable","error":"admin APIs disabled"})
    );
    let admin = Arc::new(Admin(Default::default()));
    let on = Api::new(ApiConfig::default(), st).with_admin(admin.clone());
    assert_eq!(
        on.handle(&req("POST", "/api/v1/admin/tsdb/delete_series", ""))
            .unwrap()
            .status,
        400
    );
    let r = on
        .handle(&req(
            "PUT",
            "/api/v1/admin/tsdb/delete_series",
            "match[]=up&start=1&end=2",
        ))
        .unwrap();
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    // A failed admin call is a 500 `internal` with the error's text.
    let r = on
        .handle(&req("POST", "/api/v1/admin/tsdb/clean_tombstones", ""))
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(
        json(&r),
        serde_json::json!({"status":"error","errorType":"internal",
            "error": cairn_storage::StorageError::Closed.to_string()})
    );
    let r = on
        .handle(&req(
            "POST",
            "/api/v1/admin/tsdb/snapshot",
            "skip_head=true",
        ))
        .unwrap();
    assert_eq!(
        json(&r)["data"]["name"],
        "20261122T000000Z-0123456789abcdef"
    );
    assert_eq!(
        on.handle(&req("GET", "/api/v1/admin/tsdb/snapshot", ""))
            .unwrap()
            .status,
        405
    );
    assert_eq!(
        *admin.0.lock().unwrap(),
        vec![
            "delete 1 1000 2000".to_string(),
            "clean".into(),
            "snapshot true".into()
        ]
    );
}

#[test]
fn federate_prints_the_latest_samples_in_text_format() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let st = MemStorage::new();
    st.add(
        labels!("__name__" => "temp", "path" => "C:\\x \"y\"\nz", "gpu" => "0"),
        [Sample::new(now - 2000, 1.5), Sample::new(now - 1000, 2.5)],
    );
    st.add(labels!("__name__" => "temp"), [Sample::new(now - 500, 7.0)]);
    st.add(
        labels!("__name__" => "old"),
        [Sample::new(now - 3_600_000, 1.0)],
    );
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(st);
    let a = Api::new(ApiConfig::default(), st);
    let r = a
        .handle(&req("GET", "/federate", "match[]={__name__=~\"temp|old\"}"))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    let want = format!(
        "# TYPE temp untyped\ntemp 7 {}\ntemp{{gpu=\"0\",path=\"C:\\\\x \\\"y\\\"\\nz\"}} 2.5 {}\n",
        now - 500,
        now - 1000
    );
    assert_eq!(String::from_utf8(r.body).unwrap(), want);
}

/// The text format cannot hold native histograms: a series whose newest
/// sample is one is left out, not shown with an older float.
#[test]
fn federate_leaves_out_series_whose_newest_sample_is_a_histogram() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let st = MemStorage::new();
    let h = Arc::new(cairn_model::FloatHistogram {
        count: 3.0,
        sum: 1.0,
        ..Default::default()
    });
    let mixed = labels!("__name__" => "lat", "gpu" => "0");
    st.add(mixed.clone(), [Sample::new(now - 2000, 1.0)]);
    st.add_float_histograms(mixed, [(now - 1000, h.clone())]);
    let back = labels!("__name__" => "lat", "gpu" => "1");
    st.add_float_histograms(back.clone(), [(now - 2000, h)]);
    st.add(back, [Sample::new(now - 1000, 4.0)]);
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(st);
    let a = Api::new(ApiConfig::default(), st);
    let r = a.handle(&req("GET", "/federate", "match[]=lat")).unwrap();
    assert_eq!(r.status, 200);
    let want = format!("# TYPE lat untyped\nlat{{gpu=\"1\"}} 4 {}\n", now - 1000);
    assert_eq!(String::from_utf8(r.body).unwrap(), want);
}

/// Asked for the protobuf exposition format, `/federate` sends native
/// histograms too: one `HISTOGRAM` family beside the `UNTYPED` family of
/// the same name's floats, with float counts and the sample's timestamp.
#[test]
fn federate_sends_native_histograms_in_the_protobuf_format() {
    use cairn_proto::exposition as pb;
    use prost::Message;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let st = MemStorage::new();
    let h = Arc::new(cairn_model::FloatHistogram {
        count: 5.0,
        sum: 2.5,
        schema: 1,
        zero_threshold: 0.001,
        zero_count: 1.0,
        positive_spans: vec![cairn_model::Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![3.0, 1.0],
        ..Default::default()
    });
    st.add_float_histograms(
        labels!("__name__" => "lat", "gpu" => "0"),
        [(now - 1000, h)],
    );
    st.add(
        labels!("__name__" => "lat", "gpu" => "1"),
        [Sample::new(now - 500, 4.0)],
    );
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(st);
    let a = Api::new(ApiConfig::default(), st);
    let mut r = req("GET", "/federate", "match[]=lat");
    r.accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3".into();
    let resp = a.handle(&r).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_type, pb::CONTENT_TYPE);
    let mut buf = &resp.body[..];
    let mut fams = Vec::new();
    while !buf.is_empty() {
        fams.push(pb::MetricFamily::decode_length_delimited(&mut buf).unwrap());
    }
    assert_eq!(fams.len(), 2, "{fams:?}");
    assert_eq!(
        (fams[0].name.as_str(), fams[0].r#type),
        ("lat", pb::MetricType::Untyped as i32)
    );
    assert_eq!(fams[0].metric[0].untyped.as_ref().unwrap().value, 4.0);
    assert_eq!(fams[0].metric[0].timestamp_ms, now - 500);
    assert_eq!(fams[1].r#type, pb::MetricType::Histogram as i32);
    let m = &fams[1].metric[0];
    assert_eq!(m.timestamp_ms, now - 1000);
    assert_eq!(
        m.label,
        vec![pb::LabelPair {
            name: "gpu".into(),
            value: "0".into()
        }]
    );
    let got = m.histogram.as_ref().unwrap();
    assert_eq!(
        (
            got.sample_count_float,
            got.sample_sum,
            got.schema,
            got.zero_count_float
        ),
        (5.0, 2.5, 1, 1.0)
    );
    assert_eq!(got.positive_count, vec![3.0, 1.0]);
    assert_eq!(got.positive_span.len(), 1);
    // The text format still leaves the histogram out.
    let resp = a.handle(&req("GET", "/federate", "match[]=lat")).unwrap();
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        format!("# TYPE lat untyped\nlat{{gpu=\"1\"}} 4 {}\n", now - 500)
    );
}

#[test]
fn walreplay_answers_from_its_source_and_only_with_one() {
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(store());
    let bare = Api::new(ApiConfig::default(), st.clone());
    assert!(bare
        .handle(&req("GET", "/api/v1/status/walreplay", ""))
        .is_none());
    let now = Arc::new(std::sync::atomic::AtomicU32::new(7));
    let seen = now.clone();
    let a = Api::new(ApiConfig::default(), st).with_wal_replay(Arc::new(move || {
        (5, 9, seen.load(std::sync::atomic::Ordering::Relaxed))
    }));
    let v = json(
        &a.handle(&req("GET", "/api/v1/status/walreplay", ""))
            .unwrap(),
    );
    assert_eq!(
        v,
        serde_json::json!({"status":"success","data":{"min":5,"max":9,"current":7}})
    );
    now.store(9, std::sync::atomic::Ordering::Relaxed);
    let v = json(
        &a.handle(&req("GET", "/api/v1/status/walreplay", ""))
            .unwrap(),
    );
    assert_eq!(v["data"]["current"], 9);
    let r = a
        .handle(&req("POST", "/api/v1/status/walreplay", ""))
        .unwrap();
    assert_eq!(r.status, 405);
}

#[test]
fn runtimeinfo_reads_the_config_and_the_runtime_source() {
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(store());
    let cfg = || ApiConfig {
        start_time_ms: 1_700_000_000_000,
        storage_retention: "15d or 10GiB".into(),
        ..ApiConfig::default()
    };
    let v = json(
        &Api::new(cfg(), st.clone())
            .handle(&req("GET", "/api/v1/status/runtimeinfo", ""))
            .unwrap(),
    );
    let d = &v["data"];
    assert_eq!(d["startTime"], "2023-11-14T22:13:20Z");
    assert_eq!(d["lastConfigTime"], "2023-11-14T22:13:20Z");
    assert_eq!(d["reloadConfigSuccess"], true);
    assert_eq!(d["storageRetention"], "15d or 10GiB");
    assert_eq!(d["corruptionCount"], 0);
    assert!(d["goroutineCount"].as_u64().unwrap() >= 1, "{v}");
    let a = Api::new(cfg(), st).with_runtime(Arc::new(|| cairn_api::RuntimeState {
        reload_success: false,
        last_config_ms: 1_700_000_060_500,
        corruptions: 2,
    }));
    let v = json(
        &a.handle(&req("GET", "/api/v1/status/runtimeinfo", ""))
            .unwrap(),
    );
    let d = &v["data"];
    assert_eq!(d["reloadConfigSuccess"], false);
    assert_eq!(d["lastConfigTime"], "2023-11-14T22:14:20.500Z");
    assert_eq!(d["corruptionCount"], 2);
}

#[test]
fn tsdb_blocks_lists_the_sources_block_metas() {
    struct Blocks;
    impl cairn_api::TsdbStatsSource for Blocks {
        fn tsdb_stats(&self, _limit: usize) -> cairn_api::TsdbStats {
            cairn_api::TsdbStats::default()
        }
        fn block_metas(&self) -> Vec<serde_json::Value> {
            vec![serde_json::json!({"ulid": "01H", "minTime": 0, "maxTime": 7200000, "version": 1})]
        }
    }
    let st: Arc<dyn cairn_storage::Queryable> = Arc::new(store());
    let v = json(
        &Api::new(ApiConfig::default(), st.clone())
            .handle(&req("GET", "/api/v1/status/tsdb/blocks", ""))
            .unwrap(),
    );
    assert_eq!(v["data"], serde_json::json!({"blocks": []}));
    let a = Api::new(ApiConfig::default(), st).with_stats(Arc::new(Blocks));
    let v = json(
        &a.handle(&req("GET", "/api/v1/status/tsdb/blocks", ""))
            .unwrap(),
    );
    assert_eq!(v["data"]["blocks"][0]["maxTime"], 7200000);
    let r = a
        .handle(&req("POST", "/api/v1/status/tsdb/blocks", ""))
        .unwrap();
    assert_eq!(r.status, 405);
}

#[test]
fn scrape_endpoints_answer_what_a_server_without_targets_answers() {
    let a = api();
    let get = |path: &str, q: &str| {
        let r = a.handle(&req("GET", path, q)).unwrap();
        (r.status, json(&r))
    };
    // Prometheus 3's shapes for a server without scrape configs.
    assert_eq!(
        get("/api/v1/targets", ""),
        (
            200,
            serde_json::json!({"status":"success","data":{
                "activeTargets":[],"droppedTargets":[],"droppedTargetCounts":{}}})
        )
    );
    // state=active leaves dropped targets out: their counts are Go's nil map.
    assert_eq!(
        get("/api/v1/targets", "state=Active").1["data"]["droppedTargetCounts"],
        serde_json::Value::Null
    );
    assert_eq!(
        get("/api/v1/targets", "state=dropped").1["data"]["droppedTargetCounts"],
        serde_json::json!({})
    );
    assert_eq!(
        get("/api/v1/scrape_pools", ""),
        (
            200,
            serde_json::json!({"status":"success","data":{"scrapePools":[]}})
        )
    );
    assert_eq!(
        get(
            "/api/v1/targets/metadata",
            "metric=up&limit=5&match_target={job=\"x\"}"
        ),
        (200, serde_json::json!({"status":"success","data":[]}))
    );
    // Parameters are checked as Prometheus checks them.
    assert_eq!(
        get("/api/v1/targets/metadata", "limit=many"),
        (
            400,
            serde_json::json!({"status":"error","errorType":"bad_data","error":"limit must be a number"})
        )
    );
    let (status, body) = get("/api/v1/targets/metadata", "match_target={");
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"match_target\": "),
        "{body}"
    );
    for path in [
        "/api/v1/targets",
        "/api/v1/scrape_pools",
        "/api/v1/targets/metadata",
    ] {
        assert_eq!(
            a.handle(&req("POST", path, "")).unwrap().status,
            405,
            "{path}"
        );
    }
}
