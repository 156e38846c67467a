//! Conformance tests of the Stream Load emulator against the rules of
//! `/work/shared/reference/stream-load.md` section 4, driven with a plain HTTP client (reqwest,
//! redirects disabled so the 307s are visible), raw TCP where the wire matters (`Expect`), and a
//! MySQL client for the query port. Modules follow the spec's rule groups 4.1–4.5; each test
//! names the rule numbers it checks.

use std::time::Duration;

use cdcflow_testkit::emulator::{Emulator, EmulatorConfig, Fault, FaultPoint, Mode, TxnState};
use serde_json::Value as Json;

/// Shared test plumbing: one emulator, one HTTP client, credentials.
struct H {
    emu: Emulator,
    http: reqwest::Client,
    user: &'static str,
    pass: &'static str,
}

const DB: &str = "db1";

impl H {
    async fn start(cfg: EmulatorConfig) -> H {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cfg = cfg.with_user("loader", "s3:cret");
        let emu = Emulator::start(cfg).await.expect("emulator starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client builds");
        H {
            emu,
            http,
            user: "loader",
            pass: "s3:cret",
        }
    }

    async fn doris() -> H {
        let h = H::start(EmulatorConfig::doris()).await;
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE IF NOT EXISTS `db1`.`t` (`id` INT NOT NULL, `name` VARCHAR(10), `amount` DECIMALV3(5,2), \
                 `ts` DATETIMEV2(3)) UNIQUE KEY(`id`) DISTRIBUTED BY HASH(`id`) BUCKETS AUTO PROPERTIES ('replication_num' = '1')",
            )
            .expect("table created");
        h
    }

    async fn starrocks() -> H {
        let h = H::start(EmulatorConfig::starrocks()).await;
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE IF NOT EXISTS `db1`.`t` (`id` INT NOT NULL, `name` VARCHAR(10) NULL, `amount` DECIMAL(5, 2) NULL, \
                 `ts` DATETIME NULL) PRIMARY KEY (`id`) DISTRIBUTED BY HASH (`id`) PROPERTIES (\"replication_num\" = \"1\")",
            )
            .expect("table created");
        h
    }

    fn be(&self) -> String {
        format!("http://{}", self.emu.be_addrs()[0])
    }

    /// PUT to the FE with no body, as a Rust client must (rule 4), returning the raw response.
    async fn fe_put(&self, path: &str, headers: &[(&str, &str)], auth: bool) -> reqwest::Response {
        let mut rb = self.http.put(format!("{}{path}", self.emu.fe_url()));
        if auth {
            rb = rb.basic_auth(self.user, Some(self.pass));
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.expect("FE answers")
    }

    /// Sends `body` to `url` with auth and headers; returns (HTTP status, parsed JSON body).
    async fn put_json(&self, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Json) {
        let mut rb = self
            .http
            .put(url)
            .basic_auth(self.user, Some(self.pass))
            .body(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.expect("server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("JSON reply expected ({e}): {text}")),
        )
    }

    /// A full stream load: FE probe without body → 307 → replay at Location with auth + body.
    async fn load(&self, table: &str, headers: &[(&str, &str)], body: &str) -> Json {
        self.load_bytes(table, headers, body.as_bytes().to_vec())
            .await
    }

    async fn load_bytes(&self, table: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Json {
        let mut hs = headers.to_vec();
        hs.push(("Expect", "100-continue"));
        let fe = self
            .fe_put(&format!("/api/{DB}/{table}/_stream_load"), &hs, true)
            .await;
        assert_eq!(
            fe.status().as_u16(),
            307,
            "FE answers a stream load with 307"
        );
        let loc = reqwest::Url::parse(fe.headers()["location"].to_str().unwrap()).unwrap();
        let mut target = loc.clone();
        let _ = target.set_username("");
        let _ = target.set_password(None);
        let (status, json) = self.put_json(target.as_str(), headers, body).await;
        assert_eq!(
            status, 200,
            "BE answers every load outcome with HTTP 200 (rule 10)"
        );
        json
    }

    async fn get_json(&self, url: &str) -> Json {
        let resp = self
            .http
            .get(url)
            .basic_auth(self.user, Some(self.pass))
            .send()
            .await
            .expect("answer");
        serde_json::from_str(&resp.text().await.unwrap()).expect("JSON")
    }

    async fn load_state(&self, label: &str) -> Json {
        self.get_json(&format!(
            "{}/api/{DB}/get_load_state?label={label}",
            self.emu.fe_url()
        ))
        .await
    }

    fn ids(&self) -> Vec<i64> {
        self.emu
            .rows(DB, "t")
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    }
}

fn s(v: &Json, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("`{k}` should be a string in {v}"))
        .to_string()
}

fn n(v: &Json, k: &str) -> i64 {
    v[k].as_i64()
        .unwrap_or_else(|| panic!("`{k}` should be an integer in {v}"))
}

/// Raw HTTP/1.1 exchange: writes `head` (no body) and returns what the server sends first.
async fn raw_first_response(addr: std::net::SocketAddr, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("server replies")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Opens a load that stops after its headers: returns the open stream once the server has
/// answered `100 Continue` (so the load has begun and is waiting for its body).
async fn begin_hanging_load(addr: std::net::SocketAddr, head: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("100 Continue")
        .unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(first.starts_with("HTTP/1.1 100 Continue"), "{first}");
    stream
}

fn basic_header(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

mod routing_4_1 {
    use super::*;

    #[tokio::test]
    async fn rules_1_3_5_doris_fe_requires_expect_and_redirects_with_userinfo() {
        let h = H::doris().await;
        let r = h
            .fe_put(
                &format!("/api/{DB}/t/_stream_load"),
                &[("label", "a")],
                true,
            )
            .await;
        let body: Json = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"status": "FAILED", "msg": "There is no 100-continue header"}),
            "rule 3"
        );

        let r = h
            .fe_put(
                &format!("/api/{DB}/t/_stream_load"),
                &[("Expect", "100-continue")],
                true,
            )
            .await;
        assert_eq!(r.status().as_u16(), 307, "rule 5");
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let be = h.emu.be_addrs()[0];
        assert_eq!(
            loc,
            format!("http://loader:s3:cret@{be}/api/{DB}/t/_stream_load?"),
            "rule 5: userinfo + trailing ?"
        );

        let r = h
            .http
            .post(format!("{}/api/{DB}/t/_stream_load", h.emu.fe_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            405,
            "rule 1: only PUT is a stream load"
        );
        assert_eq!(h.emu.counters().redirects, 1);
        h.http
            .put(format!("{}/api/{DB}/t/_stream_load", h.emu.fe_url()))
            .basic_auth(h.user, Some(h.pass))
            .header("Expect", "100-continue")
            .body("1\ta\t1\t\\N\n")
            .send()
            .await
            .unwrap();
        assert_eq!(
            h.emu.counters().fe_bodies,
            1,
            "rule 4: a body sent to the FE is recorded"
        );
    }

    #[tokio::test]
    async fn rules_5_9_starrocks_fe_redirect_has_no_userinfo_and_auth_fails_with_401() {
        let h = H::starrocks().await;
        let r = h
            .fe_put(
                &format!("/api/{DB}/t/_stream_load"),
                &[("Expect", "100-continue")],
                true,
            )
            .await;
        assert_eq!(r.status().as_u16(), 307);
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(
            loc,
            format!("http://{}/api/{DB}/t/_stream_load", h.emu.be_addrs()[0]),
            "rule 5: no userinfo"
        );

        let r = h
            .http
            .put(format!("{}/api/{DB}/t/_stream_load", h.emu.fe_url()))
            .basic_auth("loader", Some("wrong"))
            .header("Expect", "100-continue")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "rule 9");
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"\"");
        let body: Json = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(s(&body, "status"), "FAILED");
        assert!(
            s(&body, "msg").starts_with("Access denied for loader@"),
            "{body}"
        );

        let r = h
            .fe_put(&format!("/api/{DB}/t/_stream_load"), &[], true)
            .await;
        let body: Json = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(
            s(&body, "Message"),
            "class com.starrocks.common.DdlException: There is no 100-continue header",
            "rule 3"
        );
    }

    #[tokio::test]
    async fn rules_4_41_fe_never_sends_100_continue_unless_configured() {
        for continue_first in [false, true] {
            let mut cfg = EmulatorConfig::doris();
            cfg.fe_sends_continue = continue_first;
            let h = H::start(cfg).await;
            let head = format!(
                "PUT /api/{DB}/t/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
                basic_header(h.user, h.pass)
            );
            let first = raw_first_response(h.emu.fe_addr(), &head).await;
            let expected = if continue_first {
                "HTTP/1.1 100 Continue"
            } else {
                "HTTP/1.1 307"
            };
            assert!(
                first.starts_with(expected),
                "fe_sends_continue={continue_first}: {first}"
            );
        }
    }

    #[tokio::test]
    async fn rule_8_doris_fe_auth_failure_is_http_200_with_code_401() {
        let h = H::doris().await;
        let r = h
            .http
            .put(format!("{}/api/{DB}/t/_stream_load", h.emu.fe_url()))
            .header("Expect", "100-continue")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body: Json = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"msg": "Unauthorized", "code": 401, "data": "Need auth information.", "count": 0})
        );
    }

    #[tokio::test]
    async fn rules_7_10_be_without_authorization_fails_in_status() {
        for h in [H::doris().await, H::starrocks().await] {
            let r = h
                .http
                .put(format!("{}/api/{DB}/t/_stream_load", h.be()))
                .body("1\ta\t1.00\t\\N\n")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "rule 10");
            let body: Json = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            assert_eq!(s(&body, "Status"), "Fail");
            assert!(
                s(&body, "Message").contains("no valid Basic authorization"),
                "rule 7: {body}"
            );
            assert!(h.ids().is_empty());
        }
    }

    #[tokio::test]
    async fn rule_2_db_and_table_are_url_decoded() {
        let h = H::doris().await;
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE `my tbl` (`id` INT) DUPLICATE KEY(`id`) DISTRIBUTED BY HASH(`id`)",
            )
            .unwrap();
        let r = h.load("my%20tbl", &[("label", "url1")], "7\n").await;
        assert_eq!(s(&r, "Status"), "Success", "{r}");
        assert_eq!(h.emu.rows(DB, "my tbl").unwrap().len(), 1);
    }
}

mod headers_4_2 {
    use super::*;

    #[tokio::test]
    async fn rule_11_doris_be_requires_exactly_one_body_framing() {
        let h = H::doris().await;
        let head = format!(
            "PUT /api/{DB}/t/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nlabel: frame1\r\n\r\n",
            basic_header(h.user, h.pass)
        );
        let reply = raw_first_response(h.emu.be_addrs()[0], &head).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(
            reply.contains("content_length is empty and transfer-encoding!=chunked"),
            "{reply}"
        );
    }

    #[tokio::test]
    async fn rules_12_13_14_label_syntax_and_generated_labels() {
        let d = H::doris().await;
        let ok = d
            .load("t", &[("label", "cdc:db_t-1")], "1\ta\t1\t\\N\n")
            .await;
        assert_eq!(
            s(&ok, "Status"),
            "Success",
            "rule 12: ':' allowed on Doris: {ok}"
        );
        let long = "x".repeat(129);
        let bad = d.load("t", &[("label", &long)], "2\ta\t1\t\\N\n").await;
        assert!(
            s(&bad, "Message").contains("Label format error. regex: ^[-_A-Za-z0-9:]{1,128}$"),
            "rule 12: {bad}"
        );
        let gen_ = d.load("t", &[], "3\ta\t1\t\\N\n").await;
        assert_eq!(
            s(&gen_, "Label").len(),
            36,
            "rule 14: a UUID label is generated: {gen_}"
        );

        let r = H::starrocks().await;
        let bad = r.load("t", &[("label", "a:b")], "1\ta\t1\t\\N\n").await;
        assert_eq!(s(&bad, "Status"), "Fail");
        assert!(
            s(&bad, "Message").contains("Label format error. regex: ^[-\\w]{1,128}$"),
            "rule 13: {bad}"
        );
    }

    #[tokio::test]
    async fn rules_15_16_unknown_formats_are_rejected() {
        let d = H::doris().await;
        let r = d.load("t", &[("format", "xml")], "x").await;
        assert_eq!(
            s(&r, "Message"),
            "unknown data format, format=xml",
            "rule 15"
        );
        let sr = H::starrocks().await;
        let r = sr.load("t", &[("format", "arrow")], "x").await;
        assert_eq!(
            s(&r, "Message"),
            "unknown data format, format=arrow",
            "rule 16: arrow is Doris-only here"
        );
    }

    #[tokio::test]
    async fn rule_17_doris_gz_and_lz4_bodies_are_decoded() {
        use std::io::Write;
        let h = H::doris().await;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"id": 1, "name": "gz"}"#).unwrap();
        let r = h
            .load_bytes(
                "t",
                &[
                    ("label", "gz1"),
                    ("format", "json"),
                    ("compress_type", "gz"),
                ],
                gz.finish().unwrap(),
            )
            .await;
        assert_eq!(s(&r, "Status"), "Success", "{r}");
        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(b"2\tlz\t\\N\t\\N\n").unwrap();
        let r = h
            .load_bytes(
                "t",
                &[("label", "lz1"), ("compress_type", "lz4")],
                lz.finish().unwrap(),
            )
            .await;
        assert_eq!(s(&r, "Status"), "Success", "{r}");
        assert_eq!(h.ids(), [1, 2]);
        let r = h
            .load_bytes(
                "t",
                &[("label", "gz2"), ("compress_type", "gz")],
                b"not gzip".to_vec(),
            )
            .await;
        assert_eq!(
            s(&r, "Status"),
            "Fail",
            "the body must really be encoded that way: {r}"
        );
    }

    #[tokio::test]
    async fn rule_18_starrocks_compression_headers() {
        let h = H::starrocks().await;
        let r = h
            .load(
                "t",
                &[("compression", "gzip"), ("Content-Encoding", "gzip")],
                "",
            )
            .await;
        assert_eq!(
            s(&r, "Message"),
            "Only one of http header content-encoding and compression can be set"
        );
        let body = zstd::encode_all(&b"[{\"id\": 5, \"name\": \"z\"}]"[..], 1).unwrap();
        let r = h
            .load_bytes(
                "t",
                &[
                    ("format", "json"),
                    ("strip_outer_array", "true"),
                    ("compression", "zstd"),
                ],
                body,
            )
            .await;
        assert_eq!(s(&r, "Status"), "Success", "{r}");
        assert_eq!(h.ids(), [5]);
    }

    #[tokio::test]
    async fn rules_19_20_21_separators_use_each_systems_header_names() {
        let d = H::doris().await;
        let r = d
            .load(
                "t",
                &[("column_separator", "\\x01"), ("line_delimiter", "\\x02")],
                "1\u{1}a\u{1}1.5\u{1}\\N\u{2}2\u{1}b\u{1}2\u{1}\\N\u{2}",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 2, "rules 19, 21: {r}");
        let sr = H::starrocks().await;
        let r = sr
            .load(
                "t",
                &[("column_separator", "|"), ("row_delimiter", "\\x0A")],
                "1|a|1|\\N\n2|b|2|\\N\n",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 2, "rule 20: {r}");
        let r = sr
            .load(
                "t",
                &[("column_separator", "|"), ("line_delimiter", ";")],
                "3|c|1|\\N;4|d|2|\\N;",
            )
            .await;
        assert_eq!(
            s(&r, "Status"),
            "Fail",
            "rule 20: StarRocks ignores line_delimiter, so the row shape breaks: {r}"
        );
    }

    #[tokio::test]
    async fn rules_22_23_24_25_26_header_values_are_validated() {
        let d = H::doris().await;
        let cases = [
            (
                vec![("strict_mode", "yes")],
                "Invalid strict mode format. Must be bool type",
            ),
            (vec![("timeout", "abc")], "Invalid timeout format"),
            (
                vec![("partitions", "p1"), ("temporary_partitions", "p2")],
                "Can not specify both partitions and temporary partitions",
            ),
            (
                vec![("merge_type", "MERGE")],
                "Excepted DELETE ON clause when merge type is MERGE.",
            ),
            (
                vec![("delete", "id=1")],
                "Not support DELETE ON clause when merge type is not MERGE.",
            ),
            (vec![("merge_type", "UPSERT")], "Invalid merge type UPSERT"),
            (vec![("enclose", "ab")], "enclose must be single-char"),
        ];
        for (headers, msg) in cases {
            let r = d.load("t", &headers, "1\ta\t1\t\\N\n").await;
            assert_eq!(s(&r, "Status"), "Fail");
            assert!(s(&r, "Message").contains(msg), "{headers:?}: {r}");
        }
        let r = d
            .load(
                "t",
                &[("label", "tpc1"), ("two_phase_commit", "TRUE")],
                "1\ta\t1\t\\N\n",
            )
            .await;
        assert_eq!(
            s(&r, "TwoPhaseCommit"),
            "false",
            "rule 23: only lowercase true enables 2PC"
        );
        assert_eq!(d.ids(), [1]);
    }

    #[tokio::test]
    async fn rules_30_36_doris_group_commit() {
        let h = H::doris().await;
        let r = h
            .load(
                "t",
                &[("label", "g1"), ("group_commit", "async_mode")],
                "1\ta\t1\t\\N\n",
            )
            .await;
        assert_eq!(
            s(&r, "Message"),
            "label and group_commit can't be set at the same time",
            "rule 30"
        );
        let r = h
            .load("t", &[("group_commit", "fast")], "1\ta\t1\t\\N\n")
            .await;
        assert!(
            s(&r, "Message").contains("group_commit can only be"),
            "rule 30: {r}"
        );
        let r = h
            .load("t", &[("group_commit", "sync_mode")], "1\ta\t1\t\\N\n")
            .await;
        assert_eq!(r["GroupCommit"], Json::Bool(true), "rule 36: {r}");
        assert!(
            r.get("TwoPhaseCommit").is_none()
                && r.get("BeginTxnTimeMs").is_none()
                && r.get("CommitAndPublishTimeMs").is_none()
        );
        assert!(s(&r, "Label").starts_with("group_commit_"));
    }

    #[tokio::test]
    async fn rule_31_json_size_cap_without_line_mode() {
        let mut cfg = EmulatorConfig::doris();
        cfg.json_max_bytes = 64;
        let h = H::start(cfg).await;
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE t (id INT, name STRING) UNIQUE KEY(id) DISTRIBUTED BY HASH(id)",
            )
            .unwrap();
        let rows: Vec<String> = (0..10)
            .map(|i| format!("{{\"id\": {i}, \"name\": \"n{i}\"}}"))
            .collect();
        let array = format!("[{}]", rows.join(","));
        let r = h
            .load(
                "t",
                &[("format", "json"), ("strip_outer_array", "true")],
                &array,
            )
            .await;
        assert!(
            s(&r, "Message").contains("exceed the max size [64] of json type data"),
            "{r}"
        );
        let r = h
            .load(
                "t",
                &[("format", "json"), ("read_json_by_line", "true")],
                &rows.join("\n"),
            )
            .await;
        assert_eq!(
            n(&r, "NumberLoadedRows"),
            10,
            "line mode is not capped: {r}"
        );
    }
}

mod responses_4_3 {
    use super::*;

    #[tokio::test]
    async fn rules_32_35_doris_success_reply_keys_and_types() {
        let h = H::doris().await;
        let fe = h
            .fe_put(
                &format!("/api/{DB}/t/_stream_load"),
                &[("Expect", "100-continue")],
                true,
            )
            .await;
        let loc = fe.headers()["location"]
            .to_str()
            .unwrap()
            .replace("loader:s3:cret@", "");
        let resp = h
            .http
            .put(loc)
            .basic_auth(h.user, Some(h.pass))
            .header("label", "shape1")
            .header("comment", "hello")
            .body("1\ta\t1.25\t2024-01-02 03:04:05.678\n")
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        assert!(text.ends_with("}\n"), "Doris replies end with a newline");
        let r: Json = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            &keys[..6],
            [
                "TxnId",
                "Label",
                "Comment",
                "TwoPhaseCommit",
                "Status",
                "Message"
            ],
            "emission order"
        );
        assert_eq!(s(&r, "Status"), "Success");
        assert_eq!(s(&r, "Message"), "OK");
        assert_eq!(s(&r, "TwoPhaseCommit"), "false", "a string, not a bool");
        assert_eq!(s(&r, "Comment"), "hello");
        assert!(n(&r, "TxnId") > 0);
        for k in [
            "NumberTotalRows",
            "NumberLoadedRows",
            "NumberFilteredRows",
            "NumberUnselectedRows",
            "LoadBytes",
            "LoadTimeMs",
            "StreamLoadPutTimeMs",
        ] {
            n(&r, k);
        }
        assert!(r.get("ExistingJobStatus").is_none(), "rule 33");
        let rows = h.emu.rows(DB, "t").unwrap();
        assert_eq!(rows[0]["amount"], "1.25");
        assert_eq!(rows[0]["ts"], "2024-01-02 03:04:05.678");
    }

    #[tokio::test]
    async fn rule_35_starrocks_reply_keys() {
        let h = H::starrocks().await;
        let r = h.load("t", &[("label", "srshape")], "1\ta\t1\t\\N\n").await;
        assert_eq!(s(&r, "Status"), "Success");
        n(&r, "StreamLoadPlanTimeMs");
        for absent in ["TwoPhaseCommit", "Comment", "StreamLoadPutTimeMs"] {
            assert!(r.get(absent).is_none(), "{absent} is Doris-only: {r}");
        }
    }

    #[tokio::test]
    async fn rules_37_38_42_filter_ratio_accounting_and_error_log() {
        let h = H::doris().await;
        let body = "1\ta\t1\t\\N\n2\tabcdefghijklmnop\t1\t\\N\n3\tc\t1\t\\N\n";
        let r = h.load("t", &[("label", "f1")], body).await;
        assert_eq!(s(&r, "Status"), "Fail", "rule 38: default ratio 0: {r}");
        assert!(s(&r, "Message").contains("too many filtered rows"));
        assert_eq!(
            (
                n(&r, "NumberTotalRows"),
                n(&r, "NumberFilteredRows"),
                n(&r, "NumberLoadedRows")
            ),
            (3, 1, 0)
        );
        assert!(
            h.ids().is_empty(),
            "rule 38: nothing of a failed load is visible"
        );
        let log = h
            .http
            .get(s(&r, "ErrorURL"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            log.contains("too long"),
            "error log explains the filtered row: {log}"
        );

        let r = h
            .load(
                "t",
                &[
                    ("label", "f1"),
                    ("max_filter_ratio", "0.5"),
                    ("where", "id > 1"),
                ],
                body,
            )
            .await;
        assert_eq!(
            s(&r, "Status"),
            "Success",
            "rule 42: the failed label is free again: {r}"
        );
        let (total, loaded, filtered, unselected) = (
            n(&r, "NumberTotalRows"),
            n(&r, "NumberLoadedRows"),
            n(&r, "NumberFilteredRows"),
            n(&r, "NumberUnselectedRows"),
        );
        assert_eq!(
            (total, loaded, filtered, unselected),
            (3, 1, 1, 1),
            "rule 37"
        );
        assert_eq!(total, loaded + filtered + unselected, "rule 37 invariant");
        assert_eq!(h.ids(), [3]);
    }

    #[tokio::test]
    async fn rule_32_publish_timeout_counts_as_committed() {
        let h = H::doris().await;
        h.emu
            .inject(FaultPoint::BeStreamLoad, Fault::PublishTimeout, 1);
        let r = h.load("t", &[("label", "pt1")], "1\ta\t1\t\\N\n").await;
        assert_eq!(s(&r, "Status"), "Publish Timeout");
        assert_eq!(h.ids(), [1]);
        assert_eq!(s(&h.load_state("pt1").await, "data"), "COMMITTED");
    }
}

mod labels_4_4 {
    use super::*;

    #[tokio::test]
    async fn rules_39_40_34_committed_label_is_deduplicated() {
        let h = H::doris().await;
        let r = h.load("t", &[("label", "dup1")], "1\ta\t1\t\\N\n").await;
        let txn = n(&r, "TxnId");
        let again = h.load("t", &[("label", "dup1")], "2\tb\t1\t\\N\n").await;
        assert_eq!(s(&again, "Status"), "Label Already Exists");
        assert_eq!(s(&again, "ExistingJobStatus"), "FINISHED", "rule 40");
        assert!(
            s(&again, "Message").contains(&format!(
                "Label [dup1] has already been used, relate to txn [{txn}]"
            )),
            "rule 34: {again}"
        );
        assert_eq!(h.ids(), [1], "rule 39: nothing loaded by the duplicate");

        let sr = H::starrocks().await;
        sr.load("t", &[("label", "dup1")], "1\ta\t1\t\\N\n").await;
        let again = sr.load("t", &[("label", "dup1")], "2\tb\t1\t\\N\n").await;
        assert_eq!(s(&again, "ExistingJobStatus"), "FINISHED");
        assert_eq!(
            s(&again, "Message"),
            "Label [dup1] has already been used.",
            "rule 34 (StarRocks)"
        );
    }

    #[tokio::test]
    async fn rule_33_existing_job_status_for_running_and_precommitted() {
        let h = H::doris().await;
        h.emu.set_label_state(DB, "t", "run1", TxnState::Prepare);
        let r = h.load("t", &[("label", "run1")], "1\ta\t1\t\\N\n").await;
        assert_eq!(s(&r, "ExistingJobStatus"), "RUNNING");
        h.load(
            "t",
            &[("label", "pre1"), ("two_phase_commit", "true")],
            "1\ta\t1\t\\N\n",
        )
        .await;
        let r = h.load("t", &[("label", "pre1")], "1\ta\t1\t\\N\n").await;
        assert_eq!(s(&r, "ExistingJobStatus"), "PRECOMMITTED");
        h.emu.set_label_state(DB, "t", "ab1", TxnState::Aborted);
        let r = h.load("t", &[("label", "ab1")], "1\ta\t1\t\\N\n").await;
        assert_eq!(
            s(&r, "Status"),
            "Success",
            "rule 39: an aborted label can be reused"
        );
    }

    #[tokio::test]
    async fn rule_41_duplicate_label_is_answered_before_the_body() {
        for h in [H::doris().await, H::starrocks().await] {
            h.load("t", &[("label", "early")], "1\ta\t1\t\\N\n").await;
            let head = |label: &str| {
                format!(
                    "PUT /api/{DB}/t/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nlabel: {label}\r\nExpect: 100-continue\r\nContent-Length: 12\r\n\r\n",
                    basic_header(h.user, h.pass)
                )
            };
            let dup = raw_first_response(h.emu.be_addrs()[0], &head("early")).await;
            assert!(
                dup.starts_with("HTTP/1.1 200"),
                "final reply, no 100 Continue: {dup}"
            );
            assert!(dup.contains("Label Already Exists"), "{dup}");
            let fresh = raw_first_response(h.emu.be_addrs()[0], &head("fresh")).await;
            assert!(
                fresh.starts_with("HTTP/1.1 100 Continue"),
                "a new label gets 100 Continue: {fresh}"
            );
        }
    }

    #[tokio::test]
    async fn rule_43_labels_are_forgotten_after_retention() {
        let mut cfg = EmulatorConfig::doris();
        cfg.label_keep = Duration::ZERO;
        let h = H::start(cfg).await;
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE t (id INT, name STRING) DUPLICATE KEY(id) DISTRIBUTED BY HASH(id)",
            )
            .unwrap();
        h.load("t", &[("label", "ret1")], "1\ta\n").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let r = h.load("t", &[("label", "ret1")], "1\ta\n").await;
        assert_eq!(
            s(&r, "Status"),
            "Success",
            "past retention the label is new again: {r}"
        );
        assert_eq!(
            h.ids(),
            [1, 1],
            "so a replay loads twice (why cdcflow never replays old batches)"
        );
    }

    #[tokio::test]
    async fn rules_44_45_46_doris_two_phase_commit() {
        let h = H::doris().await;
        let r = h
            .load(
                "t",
                &[("label", "2pc1"), ("two_phase_commit", "true")],
                "1\ta\t1\t\\N\n",
            )
            .await;
        assert_eq!(
            (s(&r, "Status").as_str(), s(&r, "TwoPhaseCommit").as_str()),
            ("Success", "true"),
            "rule 44"
        );
        let txn = n(&r, "TxnId");
        assert!(h.ids().is_empty(), "rule 44: invisible until commit");
        assert_eq!(s(&h.load_state("2pc1").await, "data"), "PRECOMMITTED");

        let fe_2pc = |headers: Vec<(&'static str, String)>| {
            let h = &h;
            async move {
                let mut rb = h
                    .http
                    .put(format!("{}/api/{DB}/_stream_load_2pc", h.emu.fe_url()))
                    .basic_auth(h.user, Some(h.pass))
                    .header("Expect", "100-continue");
                for (k, v) in headers {
                    rb = rb.header(k, v);
                }
                rb.send().await.unwrap()
            }
        };
        let r = fe_2pc(vec![("txn_operation", "commit".into())]).await;
        let body: Json = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(
            s(&body, "msg"),
            "No transaction id or label selected.",
            "rule 45"
        );
        let r = fe_2pc(vec![("txn_id", txn.to_string())]).await;
        let body: Json = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(
            s(&body, "msg"),
            "No transaction operation('commit' or 'abort') selected.",
            "rule 45"
        );

        let r = fe_2pc(vec![
            ("txn_id", txn.to_string()),
            ("txn_operation", "commit".into()),
        ])
        .await;
        assert_eq!(r.status().as_u16(), 307, "the FE redirects 2PC to a BE");
        let loc = r.headers()["location"]
            .to_str()
            .unwrap()
            .replace("loader:s3:cret@", "");
        let (_, body) = h
            .put_json(
                &loc,
                &[("txn_id", &txn.to_string()), ("txn_operation", "commit")],
                Vec::new(),
            )
            .await;
        assert_eq!(
            body,
            serde_json::json!({"status": "Success", "msg": format!("transaction [{txn}] commit successfully.")}),
            "rule 45"
        );
        assert_eq!(h.ids(), [1]);
        let url = format!("{}/api/{DB}/_stream_load_2pc", h.be());
        let (_, again) = h
            .put_json(
                &url,
                &[("txn_id", &txn.to_string()), ("txn_operation", "commit")],
                Vec::new(),
            )
            .await;
        assert_eq!(
            s(&again, "msg"),
            format!("transaction [{txn}] is already visible, not pre-committed."),
            "rule 46"
        );

        h.load(
            "t",
            &[("label", "2pc2"), ("two_phase_commit", "true")],
            "2\tb\t1\t\\N\n",
        )
        .await;
        let (_, ab) = h
            .put_json(
                &format!("{}/api/{DB}/t/_stream_load_2pc", h.be()),
                &[("label", "2pc2"), ("txn_operation", "abort")],
                Vec::new(),
            )
            .await;
        assert_eq!(
            s(&ab, "status"),
            "Success",
            "rule 45: abort by label, table form of the URL: {ab}"
        );
        assert_eq!(h.ids(), [1], "rule 44: aborted rows disappear");
        let (_, gone) = h
            .put_json(
                &url,
                &[("txn_id", "999999"), ("txn_operation", "abort")],
                Vec::new(),
            )
            .await;
        assert!(s(&gone, "msg").contains("not found"), "rule 46: {gone}");
        let (_, bad) = h
            .put_json(
                &url,
                &[("txn_id", &txn.to_string()), ("txn_operation", "COMMIT")],
                Vec::new(),
            )
            .await;
        assert_eq!(
            s(&bad, "msg"),
            "transaction operation should be 'commit' or 'abort'",
            "rule 45: exact lowercase"
        );
    }

    #[tokio::test]
    async fn rule_47_precommitted_transactions_time_out() {
        let mut cfg = EmulatorConfig::doris();
        cfg.precommit_timeout = Duration::ZERO;
        let h = H::start(cfg).await;
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE t (id INT) DUPLICATE KEY(id) DISTRIBUTED BY HASH(id)",
            )
            .unwrap();
        let r = h
            .load(
                "t",
                &[("label", "slow"), ("two_phase_commit", "true")],
                "1\n",
            )
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let url = format!("{}/api/{DB}/_stream_load_2pc", h.be());
        let (_, c) = h
            .put_json(
                &url,
                &[
                    ("txn_id", &n(&r, "TxnId").to_string()),
                    ("txn_operation", "commit"),
                ],
                Vec::new(),
            )
            .await;
        assert!(s(&c, "msg").contains("is already aborted"), "{c}");
        assert!(h.ids().is_empty());
    }

    async fn txn(
        h: &H,
        via_fe: bool,
        op: &str,
        label: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> (u16, Json, Option<String>) {
        let base = if via_fe { h.emu.fe_url() } else { h.be() };
        let method = if op == "load" {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let mut rb = h
            .http
            .request(method, format!("{base}/api/transaction/{op}"))
            .basic_auth(h.user, Some(h.pass))
            .header("label", label)
            .header("db", DB)
            .header("table", "t")
            .body(body.to_string());
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::Null),
            loc,
        )
    }

    #[tokio::test]
    async fn rules_49_to_53_starrocks_transaction_api() {
        let h = H::starrocks().await;
        let (st, _, loc) = txn(&h, true, "begin", "tx1", &[], "").await;
        assert_eq!(st, 307, "rule 49: the FE sends begin to a BE");
        assert!(loc.unwrap().starts_with(&h.be()), "redirect goes to the BE");
        let (_, b, _) = txn(&h, false, "begin", "tx1", &[], "").await;
        assert_eq!(s(&b, "Status"), "OK", "rule 50: {b}");
        let (_, again, _) = txn(&h, false, "begin", "tx1", &[], "").await;
        assert_eq!(s(&again, "Status"), "LABEL_ALREADY_EXISTS", "rule 50");
        assert_eq!(s(&again, "ExistingJobStatus"), "RUNNING");

        let mut wrong_db = h
            .http
            .put(format!("{}/api/transaction/load", h.be()))
            .basic_auth(h.user, Some(h.pass));
        wrong_db = wrong_db
            .header("label", "tx1")
            .header("db", "other")
            .header("table", "t")
            .body("9\tx\t1\t\\N\n");
        let wrong: Json =
            serde_json::from_str(&wrong_db.send().await.unwrap().text().await.unwrap()).unwrap();
        assert_eq!(
            s(&wrong, "Message"),
            format!("Request database other not equal transaction database {DB}"),
            "rule 49"
        );

        let (_, l1, _) = txn(&h, false, "load", "tx1", &[], "1\ta\t1\t\\N\n").await;
        assert_eq!(s(&l1, "Status"), "OK", "{l1}");
        let (_, l2, _) = txn(&h, false, "load", "tx1", &[], "2\tb\t1\t\\N\n").await;
        assert_eq!(s(&l2, "Status"), "OK", "{l2}");
        assert!(h.ids().is_empty(), "rule 53: invisible until commit");
        let (_, p, _) = txn(&h, false, "prepare", "tx1", &[], "").await;
        assert_eq!(
            (s(&p, "Status").as_str(), n(&p, "NumberLoadedRows")),
            ("OK", 2),
            "{p}"
        );
        assert_eq!(s(&h.load_state("tx1").await, "state"), "PREPARED");
        let (st, c, _) = txn(&h, true, "commit", "tx1", &[], "").await;
        assert_eq!(
            (st, s(&c, "Status").as_str()),
            (200, "OK"),
            "rule 52: the FE commits a PREPARED txn itself: {c}"
        );
        assert_eq!(h.ids(), [1, 2]);
        let (_, c2, _) = txn(&h, false, "commit", "tx1", &[], "").await;
        assert!(
            s(&c2, "Message").contains("has already committed"),
            "rule 52: {c2}"
        );
        let (_, rb, _) = txn(&h, false, "rollback", "tx1", &[], "").await;
        assert_eq!(
            s(&rb, "Status"),
            "FAILED",
            "rule 52: cannot roll back a committed txn"
        );

        txn(&h, false, "begin", "tx2", &[], "").await;
        let (_, p, _) = txn(&h, false, "prepare", "tx2", &[], "").await;
        assert!(
            s(&p, "Message").contains("hasn't send any data yet"),
            "rule 51: {p}"
        );
        assert_eq!(
            s(&h.load_state("tx2").await, "state"),
            "ABORTED",
            "rule 51: failed prepare rolls back"
        );
        let (_, c, _) = txn(&h, false, "commit", "tx2", &[], "").await;
        assert_eq!(
            s(&c, "Status"),
            "FAILED",
            "rule 52: commit of an aborted txn fails"
        );
        let (_, r, _) = txn(&h, false, "rollback", "tx2", &[], "").await;
        assert_eq!(
            s(&r, "Status"),
            "OK",
            "rule 52: rollback of an aborted txn is OK"
        );
        let (_, u, _) = txn(&h, false, "load", "nope", &[], "1\n").await;
        assert_eq!(s(&u, "Status"), "TXN_NOT_EXISTS", "rule 50");
    }

    #[tokio::test]
    async fn starrocks_transaction_sticks_to_the_be_that_began_it() {
        let h = H::start(EmulatorConfig::starrocks().with_be_count(2)).await;
        h.emu
            .create_table_sql(DB, "CREATE TABLE t (id INT NOT NULL, name VARCHAR(10)) PRIMARY KEY (id) DISTRIBUTED BY HASH (id)")
            .unwrap();
        let (_, _, begin_loc) = txn(&h, true, "begin", "stick", &[], "").await;
        let begin_loc = begin_loc.expect("307 to a BE");
        let chosen = reqwest::Url::parse(&begin_loc).unwrap();
        let (_, b) = h
            .put_json(
                begin_loc.as_str(),
                &[("label", "stick"), ("db", DB), ("table", "t")],
                Vec::new(),
            )
            .await;
        assert_eq!(s(&b, "Status"), "OK", "{b}");
        let (_, _, load_loc) = txn(&h, true, "load", "stick", &[], "").await;
        let load_url = reqwest::Url::parse(&load_loc.expect("307")).unwrap();
        assert_eq!(
            load_url.port(),
            chosen.port(),
            "the FE sends every call of a label to its BE"
        );
        let other = h
            .emu
            .be_addrs()
            .into_iter()
            .find(|a| Some(a.port()) != chosen.port())
            .unwrap();
        let (_, wrong) = h
            .put_json(
                &format!("http://{other}/api/transaction/load"),
                &[("label", "stick"), ("db", DB), ("table", "t")],
                b"1\ta\n".to_vec(),
            )
            .await;
        assert_eq!(
            s(&wrong, "Status"),
            "TXN_NOT_EXISTS",
            "another BE has no context for the label"
        );
        let (_, ok) = h
            .put_json(
                load_url.as_str(),
                &[("label", "stick"), ("db", DB), ("table", "t")],
                b"1\ta\n".to_vec(),
            )
            .await;
        assert_eq!(s(&ok, "Status"), "OK", "{ok}");
    }

    #[tokio::test]
    async fn rule_54_transaction_csv_chunks_are_concatenated() {
        let h = H::starrocks().await;
        txn(&h, false, "begin", "cat1", &[], "").await;
        txn(&h, false, "load", "cat1", &[], "1\ta\t1\t\\N").await;
        txn(&h, false, "load", "cat1", &[], "2\tb\t1\t\\N\n").await;
        let (_, p, _) = txn(&h, false, "prepare", "cat1", &[], "").await;
        assert_eq!(
            s(&p, "Message"),
            "too many filtered rows",
            "a chunk without its trailing row delimiter merges with the next: {p}"
        );
        assert_eq!(n(&p, "NumberTotalRows"), 1);
        assert_eq!(
            s(&h.load_state("cat1").await, "state"),
            "ABORTED",
            "rule 51"
        );

        txn(&h, false, "begin", "cat2", &[], "").await;
        txn(&h, false, "load", "cat2", &[], "1\ta\t1\t\\N\n").await;
        txn(&h, false, "load", "cat2", &[], "2\tb\t1\t\\N\n").await;
        let (_, c, _) = txn(&h, false, "commit", "cat2", &[], "").await;
        assert_eq!(
            (s(&c, "Status").as_str(), n(&c, "NumberLoadedRows")),
            ("OK", 2),
            "commit straight from PREPARE: {c}"
        );
        assert_eq!(h.ids(), [1, 2]);
    }

    #[tokio::test]
    async fn doris_lingering_transaction_probe_with_empty_body() {
        // The Doris connector probes labels with empty-body 2PC loads and aborts what it finds.
        let h = H::doris().await;
        let first = h
            .load(
                "t",
                &[("label", "job_1"), ("two_phase_commit", "true")],
                "1\ta\t1\t\\N\n",
            )
            .await;
        let url = format!("{}/api/{DB}/t/_stream_load", h.be());
        let probe = |label: &'static str| {
            h.http
                .put(&url)
                .basic_auth(h.user, Some(h.pass))
                .header("label", label)
                .header("two_phase_commit", "true")
                .header("Content-Length", "0")
                .send()
        };
        let r: Json =
            serde_json::from_str(&probe("job_1").await.unwrap().text().await.unwrap()).unwrap();
        assert_eq!(
            (
                s(&r, "Status").as_str(),
                s(&r, "ExistingJobStatus").as_str()
            ),
            ("Label Already Exists", "PRECOMMITTED")
        );
        assert!(s(&r, "Message").contains(&format!("relate to txn [{}]", n(&first, "TxnId"))));
        let r: Json =
            serde_json::from_str(&probe("job_2").await.unwrap().text().await.unwrap()).unwrap();
        assert_eq!(
            (s(&r, "Status").as_str(), n(&r, "NumberTotalRows")),
            ("Success", 0),
            "an empty probe load succeeds: {r}"
        );
        let abort_url = format!("{}/api/{DB}/_stream_load_2pc", h.be());
        for id in [n(&first, "TxnId"), n(&r, "TxnId")] {
            let (_, a) = h
                .put_json(
                    &abort_url,
                    &[("txn_id", &id.to_string()), ("txn_operation", "abort")],
                    Vec::new(),
                )
                .await;
            assert_eq!(s(&a, "status"), "Success", "{a}");
        }
        assert!(h.ids().is_empty());
        assert_eq!(h.emu.label_state(DB, "job_1"), Some(TxnState::Aborted));
    }

    #[tokio::test]
    async fn rules_33_55_in_flight_load_reads_running_and_prepare() {
        let h = H::doris().await;
        let head = format!(
            "PUT /api/{DB}/t/_stream_load HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nlabel: inflight\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n",
            basic_header(h.user, h.pass)
        );
        let open = begin_hanging_load(h.emu.be_addrs()[0], &head).await;
        assert_eq!(
            s(&h.load_state("inflight").await, "data"),
            "PREPARE",
            "rule 55"
        );
        let r = h
            .load("t", &[("label", "inflight")], "1\ta\t1\t\\N\n")
            .await;
        assert_eq!(s(&r, "ExistingJobStatus"), "RUNNING", "rule 33");
        drop(open);
    }

    #[tokio::test]
    async fn rule_50_concurrent_transaction_load_is_txn_in_processing() {
        let h = H::starrocks().await;
        txn(&h, false, "begin", "busy1", &[], "").await;
        let head = format!(
            "PUT /api/transaction/load HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nlabel: busy1\r\ndb: {DB}\r\ntable: t\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n",
            basic_header(h.user, h.pass)
        );
        let open = begin_hanging_load(h.emu.be_addrs()[0], &head).await;
        let (_, r, _) = txn(&h, false, "load", "busy1", &[], "1\ta\t1\t\\N\n").await;
        assert_eq!(s(&r, "Status"), "TXN_IN_PROCESSING", "rule 50: {r}");
        assert_eq!(s(&r, "Label"), "busy1");
        drop(open);
    }

    #[tokio::test]
    async fn hang_and_reset_faults_look_like_a_slow_or_dead_server() {
        let h = H::doris().await;
        h.emu.inject(
            FaultPoint::BeStreamLoad,
            Fault::Hang(Duration::from_secs(1)),
            1,
        );
        let url = format!("{}/api/{DB}/t/_stream_load", h.be());
        let r = h
            .http
            .put(&url)
            .basic_auth(h.user, Some(h.pass))
            .header("label", "hang1")
            .timeout(Duration::from_millis(300))
            .body("1\ta\t1\t\\N\n")
            .send()
            .await;
        assert!(r.is_err(), "the client times out");
        assert_eq!(
            h.emu.label_state(DB, "hang1"),
            Some(TxnState::Prepare),
            "the hanging load holds its label"
        );
        let mut state = h.emu.label_state(DB, "hang1");
        for _ in 0..200 {
            if state != Some(TxnState::Prepare) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            state = h.emu.label_state(DB, "hang1");
        }
        assert_eq!(
            state,
            Some(TxnState::Visible),
            "the slow load still commits after the client left"
        );
        assert_eq!(h.ids(), [1]);
        h.emu
            .inject(FaultPoint::FeStreamLoad, Fault::ConnectionReset, 1);
        let r = h
            .http
            .put(format!("{}/api/{DB}/t/_stream_load", h.emu.fe_url()))
            .basic_auth(h.user, Some(h.pass))
            .header("Expect", "100-continue")
            .send()
            .await;
        assert!(r.is_err(), "reset: no reply at all");
        let ok = h.load("t", &[("label", "after")], "2\tb\t1\t\\N\n").await;
        assert_eq!(s(&ok, "Status"), "Success", "faults are one-shot");
        assert_eq!(h.ids(), [1, 2]);
    }

    #[tokio::test]
    async fn rule_55_get_load_state_shapes() {
        let d = H::doris().await;
        d.load("t", &[("label", "st1")], "1\ta\t1\t\\N\n").await;
        assert_eq!(
            d.load_state("st1").await,
            serde_json::json!({"msg": "success", "code": 0, "data": "VISIBLE", "count": 0})
        );
        assert_eq!(d.load_state("never").await["data"], "UNKNOWN");
        let sr = H::starrocks().await;
        sr.load("t", &[("label", "st1")], "1\ta\t1\t\\N\n").await;
        assert_eq!(
            sr.load_state("st1").await,
            serde_json::json!({"status": "OK", "msg": "Success", "state": "VISIBLE"})
        );
    }

    #[tokio::test]
    async fn faults_reset_and_lost_reply_are_resolved_by_label() {
        let h = H::doris().await;
        h.emu
            .inject(FaultPoint::BeStreamLoad, Fault::HttpStatus(503), 1);
        let url = format!("{}/api/{DB}/t/_stream_load", h.be());
        let r = h
            .http
            .put(&url)
            .basic_auth(h.user, Some(h.pass))
            .header("label", "f1")
            .body("1\ta\t1\t\\N\n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 503);
        h.emu
            .inject(FaultPoint::BeStreamLoad, Fault::DropReplyAfterCommit, 1);
        let r = h
            .http
            .put(&url)
            .basic_auth(h.user, Some(h.pass))
            .header("label", "f1")
            .body("1\ta\t1\t\\N\n")
            .send()
            .await;
        assert!(r.is_err(), "the reply is lost");
        assert_eq!(
            s(&h.load_state("f1").await, "data"),
            "VISIBLE",
            "but the load committed"
        );
        let again = h.load("t", &[("label", "f1")], "1\ta\t1\t\\N\n").await;
        assert_eq!(s(&again, "ExistingJobStatus"), "FINISHED");
        assert_eq!(h.ids(), [1]);
        assert!(h.emu.counters().be_stream_loads >= 3);
    }
}

mod encoding_4_5 {
    use super::*;

    #[tokio::test]
    async fn rule_56_csv_null_empty_and_field_count() {
        let h = H::doris().await;
        let r = h
            .load(
                "t",
                &[("max_filter_ratio", "1")],
                "1\t\t\\N\t\\N\n2\t\\N\t1\t\\N\n3\tonly-three\t1\n",
            )
            .await;
        assert_eq!(
            (n(&r, "NumberLoadedRows"), n(&r, "NumberFilteredRows")),
            (2, 1),
            "{r}"
        );
        let rows = h.emu.rows(DB, "t").unwrap();
        assert_eq!(rows[0]["name"], "", "empty field is an empty string");
        assert_eq!(rows[1]["name"], Json::Null, "\\N is NULL");
    }

    #[tokio::test]
    async fn strict_mode_and_type_checks() {
        let h = H::doris().await;
        let body = "1\ta\t999.999\t2024-01-01\n2\tb\tabc\t2024-13-01\n3\tc\t1.005\tnot-a-date\n";
        let r = h
            .load(
                "t",
                &[("strict_mode", "true"), ("max_filter_ratio", "1")],
                body,
            )
            .await;
        assert_eq!(
            (n(&r, "NumberLoadedRows"), n(&r, "NumberFilteredRows")),
            (0, 3),
            "strict mode filters bad values: {r}"
        );
        let r = h.load("t", &[("strict_mode", "false")], body).await;
        assert_eq!(
            n(&r, "NumberLoadedRows"),
            3,
            "non-strict mode turns bad values into NULL: {r}"
        );
        let rows = h.emu.rows(DB, "t").unwrap();
        assert_eq!(
            rows[0]["amount"],
            Json::Null,
            "999.999 rounds to 1000.00, over DECIMAL(5,2)"
        );
        assert_eq!(rows[0]["ts"], "2024-01-01 00:00:00.000");
        assert_eq!(rows[2]["amount"], "1.01", "rounded half up to the scale");
        let r = h.load("t", &[], "4\ttoo-long-for-10\t1\t\\N\n").await;
        assert_eq!(
            s(&r, "Status"),
            "Fail",
            "VARCHAR length in bytes is enforced even without strict mode"
        );
        let r = h.load("t", &[], "\\N\tx\t1\t\\N\n").await;
        assert_eq!(
            n(&r, "NumberFilteredRows"),
            1,
            "NULL into NOT NULL is filtered"
        );
    }

    #[tokio::test]
    async fn rule_57_doris_delete_sign_and_sequence_column() {
        let h = H::doris().await;
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE s (id INT, v STRING) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1 \
                 PROPERTIES (\"function_column.sequence_type\" = \"BIGINT\")",
            )
            .unwrap();
        let json_hdrs = [
            ("format", "json"),
            ("read_json_by_line", "true"),
            ("hidden_columns", "__DORIS_DELETE_SIGN__"),
        ];
        let r = h
            .load(
                "s",
                &json_hdrs,
                "{\"id\":1,\"v\":\"a\",\"__DORIS_DELETE_SIGN__\":0}",
            )
            .await;
        assert!(
            s(&r, "Message").contains("need to specify the sequence column"),
            "{r}"
        );
        let mut hs = json_hdrs.to_vec();
        hs.push(("function_column.sequence_col", "seq"));
        let body = "{\"id\":1,\"v\":\"a\",\"seq\":5,\"__DORIS_DELETE_SIGN__\":0}\n{\"id\":2,\"v\":\"b\",\"seq\":5,\"__DORIS_DELETE_SIGN__\":0}";
        let r = h.load("s", &hs, body).await;
        assert_eq!(n(&r, "NumberLoadedRows"), 2, "{r}");
        h.load(
            "s",
            &hs,
            "{\"id\":1,\"v\":\"old\",\"seq\":4,\"__DORIS_DELETE_SIGN__\":0}",
        )
        .await;
        h.load(
            "s",
            &hs,
            "{\"id\":2,\"v\":\"b\",\"seq\":3,\"__DORIS_DELETE_SIGN__\":1}",
        )
        .await;
        let rows = h.emu.rows(DB, "s").unwrap();
        assert_eq!(
            rows.len(),
            2,
            "a delete with a lower sequence does not apply"
        );
        assert_eq!(rows[0]["v"], "a", "a lower sequence does not overwrite");
        h.load(
            "s",
            &hs,
            "{\"id\":2,\"v\":\"b\",\"seq\":6,\"__DORIS_DELETE_SIGN__\":1}",
        )
        .await;
        assert_eq!(
            h.emu.rows(DB, "s").unwrap().len(),
            1,
            "a delete with a higher sequence applies"
        );

        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE d (id INT) DUPLICATE KEY(id) DISTRIBUTED BY HASH(id)",
            )
            .unwrap();
        let r = h.load("d", &[("merge_type", "DELETE")], "1\n").await;
        assert!(
            s(&r, "Message").contains("batch delete"),
            "deletes need a Unique Key table: {r}"
        );
        let r = h
            .load(
                "t",
                &[
                    ("label", "csvdel"),
                    ("hidden_columns", "__DORIS_DELETE_SIGN__"),
                ],
                "7\ta\t1\t\\N\t0\n8\tb\t1\t\\N\t0\n",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 2, "{r}");
        h.load(
            "t",
            &[("hidden_columns", "__DORIS_DELETE_SIGN__")],
            "7\ta\t1\t\\N\t1\n",
        )
        .await;
        assert_eq!(h.ids(), [8], "CSV delete sign as a trailing hidden column");
    }

    #[tokio::test]
    async fn rule_28_partial_updates_keep_unlisted_columns() {
        let h = H::doris().await;
        h.load("t", &[], "1\ta\t1\t2024-01-01\n").await;
        let r = h
            .load(
                "t",
                &[("partial_columns", "true"), ("columns", "id,amount")],
                "1\t2.5\n",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 1, "{r}");
        let row = &h.emu.rows(DB, "t").unwrap()[0];
        assert_eq!(
            (row["name"].as_str(), row["amount"].as_str()),
            (Some("a"), Some("2.50"))
        );
        let r = h
            .load(
                "t",
                &[("unique_key_update_mode", "UPDATE_FLEXIBLE_COLUMNS")],
                "1\n",
            )
            .await;
        assert!(
            s(&r, "Message").contains("only support json format"),
            "rule 28: {r}"
        );
        let r = h
            .load("t", &[("unique_key_update_mode", "SOMETIMES")], "1\n")
            .await;
        assert!(
            s(&r, "Message").contains("UPDATE_FIXED_COLUMNS"),
            "rule 28: {r}"
        );
    }

    #[tokio::test]
    async fn aggregate_and_duplicate_models() {
        let h = H::doris().await;
        h.emu
            .create_table_sql(DB, "CREATE TABLE agg (k INT, s BIGINT SUM, m INT MAX, r STRING REPLACE) AGGREGATE KEY(k) DISTRIBUTED BY HASH(k)")
            .unwrap();
        h.load("agg", &[], "1\t5\t3\tx\n1\t7\t2\ty\n").await;
        h.load("agg", &[], "1\t1\t9\tz\n").await;
        let rows = h.emu.rows(DB, "agg").unwrap();
        assert_eq!(
            (
                rows[0]["s"].as_i64(),
                rows[0]["m"].as_i64(),
                rows[0]["r"].as_str()
            ),
            (Some(13), Some(9), Some("z"))
        );
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE dup (k INT, v STRING) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k)",
            )
            .unwrap();
        h.load("dup", &[], "2\tb\n1\ta\n2\tb\n").await;
        let keys: Vec<i64> = h
            .emu
            .rows(DB, "dup")
            .unwrap()
            .iter()
            .map(|r| r["k"].as_i64().unwrap())
            .collect();
        assert_eq!(keys, [1, 2, 2], "duplicates are all kept, sorted by key");
    }

    #[tokio::test]
    async fn rule_58_starrocks_op_column() {
        let h = H::starrocks().await;
        let r = h
            .load(
                "t",
                &[("columns", "`id`,`name`,`amount`,`ts`,__op")],
                "1\ta\t1\t\\N\t0\n2\tb\t1\t\\N\t0\n",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 2, "{r}");
        h.load(
            "t",
            &[("columns", "`id`,`name`,`amount`,`ts`,__op")],
            "1\ta\t1\t\\N\t1\n",
        )
        .await;
        assert_eq!(h.ids(), [2]);
        let body = "[{\"id\": 2, \"name\": \"b2\", \"__op\": 0}, {\"id\": 3, \"name\": \"c\", \"__op\": 0}, {\"id\": 2, \"__op\": 1}]";
        h.load(
            "t",
            &[
                ("format", "json"),
                ("strip_outer_array", "true"),
                ("ignore_json_size", "true"),
            ],
            body,
        )
        .await;
        assert_eq!(h.ids(), [3], "JSON __op without a columns header");
        h.load("t", &[], "3\tc\t5\t\\N\n").await;
        let r = h
            .load("t", &[("merge_condition", "amount")], "3\told\t4\t\\N\n")
            .await;
        assert_eq!(s(&r, "Status"), "Success");
        assert_eq!(
            h.emu.rows(DB, "t").unwrap()[0]["name"],
            "c",
            "merge_condition keeps the newer stored value"
        );
        let r = h
            .load("t", &[("merge_condition", "id")], "3\tx\t9\t\\N\n")
            .await;
        assert!(
            s(&r, "Message").contains("primary key column"),
            "rule 29: {r}"
        );
        h.emu
            .create_table_sql(
                DB,
                "CREATE TABLE dup (id INT, v INT) DUPLICATE KEY(id) DISTRIBUTED BY HASH(id)",
            )
            .unwrap();
        let r = h
            .load("dup", &[("columns", "id,v,__op")], "1\t1\t1\n")
            .await;
        assert_eq!(
            s(&r, "Status"),
            "Fail",
            "__op only on Primary Key tables: {r}"
        );
    }

    #[tokio::test]
    async fn rule_59_doris_json_modes() {
        let h = H::doris().await;
        let r = h
            .load("t", &[("format", "json")], "{\"id\": 1}\n{\"id\": 2}\n")
            .await;
        assert_eq!(
            n(&r, "NumberLoadedRows"),
            2,
            "read_json_by_line defaults to true: {r}"
        );
        let r = h
            .load(
                "t",
                &[("format", "json"), ("read_json_by_line", "false")],
                "[{\"id\": 3}]",
            )
            .await;
        assert!(
            s(&r, "Message").contains("strip_outer_array` must be TRUE"),
            "arrays need strip_outer_array: {r}"
        );
        let r = h
            .load(
                "t",
                &[("format", "json"), ("strip_outer_array", "true")],
                "[{\"id\": 3}, {\"id\": 4, \"name\": null}]",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 2, "{r}");
        let r = h
            .load(
                "t",
                &[
                    ("format", "json"),
                    ("jsonpaths", "[\"$.k\", \"$.n.v\"]"),
                    ("columns", "id,name"),
                ],
                "{\"k\": 9, \"n\": {\"v\": \"deep\"}}",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 1, "{r}");
        assert_eq!(h.emu.rows(DB, "t").unwrap().last().unwrap()["name"], "deep");
    }

    #[tokio::test]
    async fn json_numbers_convert_exactly_like_the_be_reader() {
        let h = H::doris().await;
        h.emu
            .create_table_sql(DB, "CREATE TABLE big (id LARGEINT, d DECIMALV3(38,10), f DOUBLE) UNIQUE KEY(id) DISTRIBUTED BY HASH(id)")
            .unwrap();
        let body = "{\"id\": 170141183460469231731687303715884105727, \"d\": 1234567890123456789012345678.0123456789, \"f\": 0.5}";
        let r = h.load("big", &[("format", "json")], body).await;
        assert_eq!(n(&r, "NumberLoadedRows"), 1, "{r}");
        let row = &h.emu.rows(DB, "big").unwrap()[0];
        assert_eq!(
            row["id"], "170141183460469231731687303715884105727",
            "LARGEINT beyond u64 renders as a string"
        );
        assert_eq!(
            row["d"], "1234567890123456789012345678.0123456789",
            "no f64 rounding"
        );
        assert_eq!(row["f"], 0.5);
    }

    #[tokio::test]
    async fn csv_enclose_escape_and_names_header() {
        let h = H::doris().await;
        let r = h
            .load(
                "t",
                &[
                    ("column_separator", ","),
                    ("enclose", "'"),
                    ("escape", "\\"),
                ],
                "1,'a,b',1,\\N\n2,'it\\'s',2,\\N\n",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 2, "{r}");
        let rows = h.emu.rows(DB, "t").unwrap();
        assert_eq!(
            (rows[0]["name"].as_str(), rows[1]["name"].as_str()),
            (Some("a,b"), Some("it's"))
        );
        let r = h
            .load(
                "t",
                &[("format", "csv_with_names"), ("column_separator", ",")],
                "name,id\nz,3\n",
            )
            .await;
        assert_eq!(n(&r, "NumberLoadedRows"), 1, "{r}");
        assert_eq!(
            h.emu.rows(DB, "t").unwrap()[2]["name"],
            "z",
            "columns come from the header line"
        );
    }

    #[tokio::test]
    async fn rule_60_doris_arrow_ipc_streams_concatenated() {
        use arrow::array::{Int32Array, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        use arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        let h = H::doris().await;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut body = Vec::new();
        for chunk in [[1, 2], [3, 4]] {
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int32Array::from(chunk.to_vec())),
                    Arc::new(StringArray::from(vec![Some("x"), None])),
                ],
            )
            .unwrap();
            let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut body, &schema).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
        }
        let r = h
            .load_bytes("t", &[("format", "arrow"), ("label", "arrow1")], body)
            .await;
        assert_eq!(
            n(&r, "NumberLoadedRows"),
            4,
            "two IPC streams back to back: {r}"
        );
        assert_eq!(h.ids(), [1, 2, 3, 4]);
    }
}

mod ddl {
    use super::*;

    async fn sql(h: &H, db: &str, stmt: &str) -> Json {
        let r = h
            .http
            .post(format!("{}/api/query/default_cluster/{db}", h.emu.fe_url()))
            .basic_auth(h.user, Some(h.pass))
            .header("Content-Type", "application/json")
            .body(serde_json::json!({ "stmt": stmt }).to_string())
            .send()
            .await
            .unwrap();
        serde_json::from_str(&r.text().await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn doris_sql_over_http_creates_and_evolves_tables() {
        let h = H::start(EmulatorConfig::doris()).await;
        let ok = sql(&h, "app", "CREATE DATABASE IF NOT EXISTS `app`").await;
        assert_eq!(
            ok,
            serde_json::json!({"msg": "success", "code": 0, "data": {"type": "exec_status", "status": {}}, "count": 0})
        );
        let create = "CREATE TABLE IF NOT EXISTS `app`.`orders` (`id` BIGINT COMMENT 'pk', `price` DECIMALV3(10,2) COMMENT '', \
                      `note` VARCHAR(765) DEFAULT 'none' COMMENT 'n', `created` DATETIMEV2(6) COMMENT '', `body` STRING COMMENT '') \
                      UNIQUE KEY(`id`) COMMENT 'orders' DISTRIBUTED BY HASH(`id`) BUCKETS AUTO PROPERTIES ('replication_num'='1', 'light_schema_change'='true')";
        assert_eq!(sql(&h, "app", create).await["code"], 0);
        assert_eq!(
            sql(
                &h,
                "app",
                "ALTER TABLE `app`.`orders` ADD COLUMN `qty` INT COMMENT 'q'"
            )
            .await["code"],
            0
        );
        assert_eq!(
            sql(
                &h,
                "app",
                "ALTER TABLE `app`.`orders` RENAME COLUMN `qty` `quantity`"
            )
            .await["code"],
            0
        );
        assert_eq!(
            sql(
                &h,
                "app",
                "ALTER TABLE `app`.`orders` MODIFY COLUMN `price` DECIMALV3(12,2) COMMENT ''"
            )
            .await["code"],
            0
        );
        assert_eq!(
            sql(&h, "app", "ALTER TABLE `app`.`orders` DROP COLUMN `body`").await["code"],
            0
        );
        let narrow = sql(
            &h,
            "app",
            "ALTER TABLE `app`.`orders` MODIFY COLUMN `note` VARCHAR(10)",
        )
        .await;
        assert_eq!(narrow["code"], 1, "narrowing is refused: {narrow}");
        let q = sql(&h, "app", "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'orders'").await;
        assert_eq!(q["data"]["type"], "result_set");
        let names: Vec<&str> = q["data"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_str().unwrap())
            .collect();
        assert_eq!(names, ["id", "price", "note", "created", "quantity"]);
        let schema = h.emu.schema("app", "orders").unwrap();
        assert_eq!(schema.columns[1].ty.to_string(), "DECIMAL(12, 2)");
        let q = sql(
            &h,
            "app",
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'app'",
        )
        .await;
        assert_eq!(q["data"]["data"], serde_json::json!([["app"]]));
        assert_eq!(
            sql(&h, "app", "TRUNCATE TABLE `app`.`orders`").await["code"],
            0
        );
        assert_eq!(sql(&h, "app", "DROP TABLE `app`.`orders`").await["code"], 0);
        assert!(h.emu.schema("app", "orders").is_err());
    }

    #[tokio::test]
    async fn starrocks_ddl_over_the_mysql_protocol() {
        use mysql_async::prelude::Queryable;
        let h = H::start(EmulatorConfig::starrocks()).await;
        let addr = h.emu.query_addr();
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .user(Some("loader"))
            .pass(Some("s3:cret"));
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .expect("MySQL handshake with the query port");
        let version: Option<String> = conn.query_first("select current_version()").await.unwrap();
        assert!(version.unwrap().starts_with("3."));
        conn.query_drop("CREATE DATABASE IF NOT EXISTS `shop`")
            .await
            .unwrap();
        conn.query_drop(
            "CREATE TABLE IF NOT EXISTS `shop`.`items` (`id` BIGINT NOT NULL COMMENT \"pk\", `name` VARCHAR(300) NULL, \
             `price` DECIMAL(10, 2) NULL) PRIMARY KEY (`id`) DISTRIBUTED BY HASH (`id`) PROPERTIES (\"replication_num\" = \"1\");",
        )
        .await
        .unwrap();
        conn.query_drop("ALTER TABLE `shop`.`items` ADD COLUMN `stock` INT NULL PROPERTIES (\"timeout\" = \"600\")").await.unwrap();
        let cols: Vec<(String, String)> = conn
            .query("SELECT COLUMN_NAME, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'items' ORDER BY ORDINAL_POSITION")
            .await
            .unwrap();
        assert_eq!(cols[0], ("id".to_string(), "PRI".to_string()));
        assert_eq!(cols.len(), 4);
        let job: Option<mysql_async::Row> = conn
            .query_first("SHOW ALTER TABLE COLUMN FROM `shop` WHERE TableName = 'items' ORDER BY JobId DESC LIMIT 1")
            .await
            .unwrap();
        let state: Option<String> = job.and_then(|r| r.get(9));
        assert_eq!(
            state.as_deref(),
            Some("FINISHED"),
            "schema change jobs finish at once"
        );
        let err = conn
            .query_drop("CREATE TABLE `shop`.`items` (`id` INT) PRIMARY KEY (`id`)")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        conn.disconnect().await.unwrap();

        let bad = mysql_async::OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .user(Some("loader"))
            .pass(Some("nope"));
        assert!(
            mysql_async::Conn::new(bad).await.is_err(),
            "wrong password is refused"
        );
        let _ = Mode::StarRocks;
    }
}

/// The outage and stall switches ([`Emulator::set_down`], [`Emulator::set_stalled`]): not part of
/// the spec, but what sink fault tests and the stalled-sink benchmark rely on.
mod switches {
    use super::*;

    const ROW1: &str = "1\ta\t1\t\\N\n";
    const ROW2: &str = "2\tb\t2\t\\N\n";

    async fn be_load(h: &H, label: &str, body: &str, extra: &[(&str, &str)]) -> (u16, Json) {
        let mut hs = vec![("label", label)];
        hs.extend_from_slice(extra);
        h.put_json(
            &format!("{}/api/{DB}/t/_stream_load", h.be()),
            &hs,
            body.as_bytes().to_vec(),
        )
        .await
    }

    async fn query_conn(emu: &Emulator) -> Result<mysql_async::Conn, mysql_async::Error> {
        let addr = emu.query_addr();
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .user(Some("root"))
            .pass(Some(""));
        mysql_async::Conn::new(opts).await
    }

    #[tokio::test]
    async fn down_closes_every_connection_and_keeps_the_data() {
        use mysql_async::prelude::Queryable;
        let h = H::doris().await;
        let (_, ok) = be_load(&h, "before", ROW1, &[]).await;
        assert_eq!(s(&ok, "Status"), "Success", "{ok}");
        let mut open = query_conn(&h.emu).await.expect("query port up");

        h.emu.set_down(true);
        // FE (new and kept-alive connections), BE and the query port all close unanswered.
        let fe = h
            .http
            .put(format!("{}/api/{DB}/t/_stream_load", h.emu.fe_url()))
            .basic_auth(h.user, Some(h.pass))
            .header("label", "during")
            .send()
            .await;
        assert!(fe.is_err(), "FE answered while down: {fe:?}");
        let be = h
            .http
            .put(format!("{}/api/{DB}/t/_stream_load", h.be()))
            .basic_auth(h.user, Some(h.pass))
            .header("label", "during")
            .body(ROW2)
            .send()
            .await;
        assert!(be.is_err(), "BE answered while down: {be:?}");
        let state = h
            .http
            .get(format!(
                "{}/api/{DB}/get_load_state?label=before",
                h.emu.fe_url()
            ))
            .send()
            .await;
        assert!(state.is_err(), "get_load_state answered while down");
        assert!(
            query_conn(&h.emu).await.is_err(),
            "a new query connection is refused while down"
        );
        assert!(
            open.query_drop("SELECT 1").await.is_err(),
            "an open query session is dropped while down"
        );
        assert_eq!(
            h.emu.label_state(DB, "during"),
            None,
            "nothing was handled while down"
        );
        assert_eq!(h.ids(), vec![1], "the data survives the outage");

        h.emu.set_down(false);
        let (_, ok) = be_load(&h, "after", ROW2, &[]).await;
        assert_eq!(s(&ok, "Status"), "Success", "{ok}");
        let json = h
            .load("t", &[("label", "after_fe")], "3\tc\t3\t\\N\n")
            .await;
        assert_eq!(
            s(&json, "Status"),
            "Success",
            "FE redirect works again: {json}"
        );
        assert_eq!(s(&h.load_state("before").await, "data"), "VISIBLE");
        let mut conn = query_conn(&h.emu).await.expect("query port up again");
        conn.query_drop("SELECT 1")
            .await
            .expect("query works again");
        assert_eq!(h.ids(), vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_request_in_flight_when_going_down_finishes() {
        let h = H::doris().await;
        h.emu.inject(
            FaultPoint::BeStreamLoad,
            Fault::Hang(Duration::from_millis(800)),
            1,
        );
        let load = be_load(&h, "inflight", ROW1, &[]);
        tokio::pin!(load);
        // Wait until the BE holds the label (body received), then take the cluster down.
        let mut went_down = false;
        for _ in 0..100 {
            tokio::select! {
                _ = &mut load => panic!("the load should still hang"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if h.emu.label_state(DB, "inflight").is_some() {
                h.emu.set_down(true);
                went_down = true;
                break;
            }
        }
        assert!(went_down, "the load reached the BE");
        let (status, json) = load.await;
        assert_eq!(status, 200);
        assert_eq!(s(&json, "Status"), "Success", "{json}");
        h.emu.set_down(false);
        assert_eq!(h.ids(), vec![1]);
    }

    #[tokio::test]
    async fn stalled_loads_and_2pc_wait_until_released() {
        let h = H::doris().await;
        h.emu.set_stalled(true);
        let load = be_load(&h, "stalled", ROW1, &[("two_phase_commit", "true")]);
        tokio::pin!(load);
        assert!(
            tokio::time::timeout(Duration::from_millis(700), &mut load)
                .await
                .is_err(),
            "a stalled load does not answer"
        );
        assert_eq!(
            h.emu.label_state(DB, "stalled"),
            None,
            "nothing is started while stalled"
        );
        // Lookups are not stalled.
        assert_eq!(
            s(&h.load_state("stalled").await, "data"),
            "UNKNOWN",
            "get_load_state answers while stalled"
        );
        h.emu.set_stalled(false);
        let (_, json) = load.await;
        assert_eq!(s(&json, "Status"), "Success", "{json}");
        assert_eq!(
            h.emu.label_state(DB, "stalled"),
            Some(TxnState::Precommitted)
        );

        h.emu.set_stalled(true);
        let url = format!("{}/api/{DB}/_stream_load_2pc", h.be());
        let commit = h.put_json(
            &url,
            &[("label", "stalled"), ("txn_operation", "commit")],
            Vec::new(),
        );
        tokio::pin!(commit);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut commit)
                .await
                .is_err(),
            "a stalled 2PC commit does not answer"
        );
        assert!(h.ids().is_empty(), "not committed while stalled");
        h.emu.set_stalled(false);
        let (_, json) = commit.await;
        assert_eq!(s(&json, "status"), "Success", "{json}");
        assert_eq!(h.ids(), vec![1]);
    }

    #[tokio::test]
    async fn stalled_starrocks_transactions_wait_until_released() {
        let h = H::starrocks().await;
        h.emu.set_stalled(true);
        let begin = async {
            let r = h
                .http
                .post(format!("{}/api/transaction/begin", h.be()))
                .basic_auth(h.user, Some(h.pass))
                .header("label", "srtx")
                .header("db", DB)
                .header("table", "t")
                .send()
                .await
                .expect("BE answers");
            serde_json::from_str::<Json>(&r.text().await.expect("body")).expect("JSON")
        };
        tokio::pin!(begin);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut begin)
                .await
                .is_err(),
            "a stalled transaction call does not answer"
        );
        assert_eq!(h.emu.label_state(DB, "srtx"), None);
        h.emu.set_stalled(false);
        let json = begin.await;
        assert_eq!(s(&json, "Status"), "OK", "{json}");
        assert!(h.emu.label_state(DB, "srtx").is_some());
    }
}
