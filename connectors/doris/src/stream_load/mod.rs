//! The Stream Load client shared by the Doris and StarRocks sinks: HTTP exchange with hand-made
//! FE→BE redirects, reply classification, retries under the same label, label-state lookup,
//! Doris 2PC and StarRocks Transaction Stream Load.

mod client;
mod reply;

pub use client::{
    ClientConfig, LoadOutcome, LoadRequest, SrTxnOp, StreamLoadClient, TxnOp, TxnRef,
    install_crypto_provider,
};
pub use reply::{
    LabelState, LoadReply, ReplyKind, System, is_permanent_failure, is_success, parse_load_state,
    parse_reply, txn_id_in_message,
};
