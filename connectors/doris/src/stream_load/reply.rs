//! Stream Load replies and what they mean: success, retry, give up, or "ask about the label".
//!
//! Success is judged only by the JSON `Status` (HTTP 200 is not enough): `Success` and
//! `Publish Timeout` (committed, visibility delayed) count as loaded; `Label Already Exists` is
//! resolved through `ExistingJobStatus`; `Fail` is retried unless its message names a user or data
//! error that a retry cannot fix.

use serde_json::Value;

/// Which server family speaks on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum System {
    /// Apache Doris.
    Doris,
    /// StarRocks.
    StarRocks,
}

impl System {
    /// Lower-case name for messages and labels.
    pub fn name(self) -> &'static str {
        match self {
            System::Doris => "doris",
            System::StarRocks => "starrocks",
        }
    }
}

/// The fields of a BE stream-load reply cdcflow uses (unknown keys are ignored).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReply {
    /// `TxnId` (-1 before begin).
    pub txn_id: i64,
    /// `Label`.
    pub label: String,
    /// `Status`.
    pub status: String,
    /// `ExistingJobStatus` (only with `Label Already Exists`).
    pub existing_job_status: Option<String>,
    /// `Message`.
    pub message: String,
    /// `NumberTotalRows`.
    pub total_rows: u64,
    /// `NumberLoadedRows`.
    pub loaded_rows: u64,
    /// `NumberFilteredRows`.
    pub filtered_rows: u64,
    /// `LoadBytes`.
    pub load_bytes: u64,
    /// `ErrorURL`, when non-empty.
    pub error_url: Option<String>,
}

/// What one HTTP reply body says.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyKind {
    /// A BE stream-load reply (or StarRocks FE `{"Status":"FAILED","Message":…}`).
    Load(LoadReply),
    /// An FE-level error `{"status":"FAILED","msg":…}`.
    FeError(String),
    /// Doris FE authentication failure `{"code":401,…}`.
    Unauthorized(String),
}

/// Parses a reply body; `None` when it is not JSON of a known shape.
pub fn parse_reply(body: &[u8]) -> Option<ReplyKind> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    if obj.get("code").and_then(Value::as_i64) == Some(401) {
        let why = obj
            .get("data")
            .and_then(Value::as_str)
            .or_else(|| obj.get("msg").and_then(Value::as_str));
        return Some(ReplyKind::Unauthorized(
            why.unwrap_or("Unauthorized").to_string(),
        ));
    }
    if let Some(status) = obj.get("Status").and_then(Value::as_str) {
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let n = |k: &str| obj.get(k).and_then(Value::as_u64).unwrap_or(0);
        return Some(ReplyKind::Load(LoadReply {
            txn_id: obj.get("TxnId").and_then(Value::as_i64).unwrap_or(-1),
            label: s("Label").unwrap_or_default(),
            status: status.to_string(),
            existing_job_status: s("ExistingJobStatus"),
            message: s("Message").or_else(|| s("Msg")).unwrap_or_default(),
            total_rows: n("NumberTotalRows"),
            loaded_rows: n("NumberLoadedRows"),
            filtered_rows: n("NumberFilteredRows"),
            load_bytes: n("LoadBytes"),
            error_url: s("ErrorURL").filter(|u| !u.is_empty()),
        }));
    }
    if let Some(status) = obj.get("status").and_then(Value::as_str) {
        let msg = obj.get("msg").and_then(Value::as_str).unwrap_or("");
        return Some(ReplyKind::FeError(format!("{status}: {msg}")));
    }
    None
}

/// Whether a load or transaction status counts as committed (`OK` is the transaction API's word).
pub fn is_success(status: &str) -> bool {
    matches!(status, "Success" | "Publish Timeout" | "OK")
}

/// Messages of failures that a retry cannot fix: bad data, bad settings, missing privileges.
pub fn is_permanent_failure(message: &str) -> bool {
    const PATTERNS: &[&str] = &[
        "too many filtered rows",
        "access denied",
        "label format error",
        "unknown data format",
        "invalid",
        "primary key size exceed",
        "only primary key table support partial update",
        "no valid basic authorization",
        "not authorized",
        "unauthorized",
        "no 100-continue header",
        "no database selected",
        "no table selected",
        "unknown table",
        "unknown database",
        "is not supported",
        "must be bool type",
        "can't be set at the same time",
        "not support delete on clause",
        "excepted delete on clause",
        // Data quality and schema mismatch (the table does not match the rows we send).
        "data_quality_error",
        "unknown column",
        "has no default value",
        "need to upgrade table to support batch delete",
        "need to specify the sequence column",
        "no sequence column in the table",
        "table support partial update",
        "is not nullable",
    ];
    let m = message.to_ascii_lowercase();
    PATTERNS.iter().any(|p| m.contains(p))
}

/// A label's transaction state from `get_load_state` (or `ExistingJobStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelState {
    /// No transaction has the label (or it was forgotten).
    Unknown,
    /// Loading (`PREPARE`, `RUNNING`).
    Running,
    /// Doris 2PC `PRECOMMITTED` / StarRocks `PREPARED`: written, invisible, awaiting commit.
    Prepared,
    /// `COMMITTED` / `VISIBLE` / `FINISHED`.
    Committed,
    /// `ABORTED`: the label is free again.
    Aborted,
}

impl LabelState {
    /// Maps the server's word.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "PREPARE" | "RUNNING" => LabelState::Running,
            "PRECOMMITTED" | "PREPARED" => LabelState::Prepared,
            "COMMITTED" | "VISIBLE" | "FINISHED" => LabelState::Committed,
            "ABORTED" | "CANCELLED" => LabelState::Aborted,
            _ => LabelState::Unknown,
        }
    }
}

/// Extracts the state from a `get_load_state` reply of either system.
pub fn parse_load_state(body: &[u8]) -> Option<LabelState> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let s = v
        .get("state")
        .and_then(Value::as_str)
        .or_else(|| v.get("data").and_then(Value::as_str))?;
    Some(LabelState::parse(s))
}

/// Extracts the transaction id from Doris's `Label [l] has already been used, relate to txn [N]`.
pub fn txn_id_in_message(message: &str) -> Option<i64> {
    let at = message.find("relate to txn [")? + "relate to txn [".len();
    let rest = &message[at..];
    rest[..rest.find(']')?].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doris_be_reply_parses() {
        let body = br#"{"TxnId": 7, "Label": "l", "Comment": "", "TwoPhaseCommit": "false", "Status": "Success",
            "Message": "OK", "NumberTotalRows": 3, "NumberLoadedRows": 3, "NumberFilteredRows": 0,
            "NumberUnselectedRows": 0, "LoadBytes": 30, "LoadTimeMs": 1, "ErrorURL": ""}"#;
        match parse_reply(body) {
            Some(ReplyKind::Load(r)) => {
                assert_eq!(
                    (r.txn_id, r.status.as_str(), r.loaded_rows),
                    (7, "Success", 3)
                );
                assert_eq!(r.error_url, None, "empty ErrorURL means none");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fe_errors_and_auth_are_told_apart() {
        assert_eq!(
            parse_reply(
                br#"{"msg":"Unauthorized","code":401,"data":"Access denied for u@h","count":0}"#
            ),
            Some(ReplyKind::Unauthorized("Access denied for u@h".into()))
        );
        assert!(matches!(
            parse_reply(br#"{"status":"FAILED","msg":"There is no 100-continue header"}"#),
            Some(ReplyKind::FeError(m)) if m.contains("100-continue")
        ));
        assert_eq!(parse_reply(b"<html>"), None);
    }

    #[test]
    fn permanent_failures_are_recognised() {
        assert!(is_permanent_failure(
            "[DATA_QUALITY_ERROR]too many filtered rows"
        ));
        assert!(is_permanent_failure("Access denied for user"));
        assert!(!is_permanent_failure("[INTERNAL_ERROR]cancelled: closed"));
    }

    #[test]
    fn load_states_of_both_systems() {
        assert_eq!(
            parse_load_state(br#"{"msg":"success","code":0,"data":"VISIBLE","count":0}"#),
            Some(LabelState::Committed)
        );
        assert_eq!(
            parse_load_state(br#"{"status":"OK","msg":"Success","state":"PREPARED"}"#),
            Some(LabelState::Prepared)
        );
        assert_eq!(
            parse_load_state(br#"{"status":"OK","msg":"Success","state":"UNKNOWN"}"#),
            Some(LabelState::Unknown)
        );
    }

    #[test]
    fn txn_id_from_label_message() {
        let m =
            "errCode = 2, detailMessage = Label [x_1] has already been used, relate to txn [18036]";
        assert_eq!(txn_id_in_message(m), Some(18036));
        assert_eq!(txn_id_in_message("Label [x] has already been used."), None);
    }
}
