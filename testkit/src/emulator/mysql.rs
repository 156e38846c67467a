//! The FE query port: a small MySQL wire-protocol server (protocol 41, `mysql_native_password`,
//! text result sets) in front of the emulator's SQL, so a StarRocks sink can run its DDL and
//! `information_schema` lookups with a normal MySQL client, as it would against port 9030.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Shared;
use super::http::run_sql_in;
use super::sql::SqlOutput;
use super::types::Value;

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_FOUND_ROWS: u32 = 0x2;
const CLIENT_LONG_FLAG: u32 = 0x4;
const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x2_0000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x20_0000;
const SERVER_CAPS: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC;
const STATUS_AUTOCOMMIT: u16 = 0x2;

/// Accepts MySQL connections until the task is aborted.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = tokio::task::JoinSet::new();
    let mut conn_id: u32 = 1;
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        if shared.is_down() {
            tracing::debug!(%peer, "Emulator is down; closing the query connection unanswered.");
            drop(stream);
            continue;
        }
        conn_id = conn_id.wrapping_add(1);
        let shared = shared.clone();
        let id = conn_id;
        conns.spawn(async move {
            let session = Session {
                stream,
                seq: 0,
                shared,
                db: None,
            };
            if let Err(e) = session.run(id).await {
                tracing::debug!(%peer, error = %e, "MySQL session ended with an error.");
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

struct Session {
    stream: TcpStream,
    seq: u8,
    shared: Arc<Shared>,
    db: Option<String>,
}

fn lenenc_int(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v < 1 << 16 {
        out.push(0xfc);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v < 1 << 24 {
        out.push(0xfd);
        out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xfe);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    lenenc_int(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn read_lenenc(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *buf.get(*pos)?;
    *pos += 1;
    let n = match first {
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        v => return Some(u64::from(v)),
    };
    let bytes = buf.get(*pos..pos.saturating_add(n))?;
    *pos = pos.saturating_add(n);
    let mut arr = [0u8; 8];
    arr[..n].copy_from_slice(bytes);
    Some(u64::from_le_bytes(arr))
}

fn read_nul(buf: &[u8], pos: &mut usize) -> Option<String> {
    let rest = buf.get(*pos..)?;
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let s = String::from_utf8_lossy(&rest[..end]).into_owned();
    *pos += end + 1;
    Some(s)
}

impl Session {
    async fn write_packet(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let len = payload.len() as u32;
        let mut head = len.to_le_bytes();
        head[3] = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.stream.write_all(&head).await?;
        self.stream.write_all(payload).await
    }

    async fn read_packet(&mut self) -> std::io::Result<Vec<u8>> {
        let mut head = [0u8; 4];
        self.stream.read_exact(&mut head).await?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        self.seq = head[3].wrapping_add(1);
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await?;
        Ok(buf)
    }

    async fn ok(&mut self) -> std::io::Result<()> {
        let mut p = vec![0x00];
        lenenc_int(&mut p, 0);
        lenenc_int(&mut p, 0);
        p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        self.write_packet(&p).await
    }

    async fn err(&mut self, code: u16, msg: &str) -> std::io::Result<()> {
        let mut p = vec![0xff];
        p.extend_from_slice(&code.to_le_bytes());
        p.extend_from_slice(if code == 1045 { b"#28000" } else { b"#HY000" });
        p.extend_from_slice(msg.as_bytes());
        self.write_packet(&p).await
    }

    async fn eof(&mut self) -> std::io::Result<()> {
        let mut p = vec![0xfe];
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
        self.write_packet(&p).await
    }

    async fn run(mut self, conn_id: u32) -> std::io::Result<()> {
        let nonce: [u8; 20] = std::array::from_fn(|_| rand::random::<u8>() % 94 + 33);
        let mut hs = vec![0x0a];
        hs.extend_from_slice(b"5.7.99-cdcflow-emulator\0");
        hs.extend_from_slice(&conn_id.to_le_bytes());
        hs.extend_from_slice(&nonce[..8]);
        hs.push(0);
        hs.extend_from_slice(&(SERVER_CAPS as u16).to_le_bytes());
        hs.push(33);
        hs.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
        hs.extend_from_slice(&((SERVER_CAPS >> 16) as u16).to_le_bytes());
        hs.push(21);
        hs.extend_from_slice(&[0u8; 10]);
        hs.extend_from_slice(&nonce[8..]);
        hs.push(0);
        hs.extend_from_slice(b"mysql_native_password\0");
        self.seq = 0;
        self.write_packet(&hs).await?;

        let resp = self.read_packet().await?;
        if resp.len() < 32 {
            return self.err(1043, "Bad handshake").await;
        }
        let caps = u32::from_le_bytes([resp[0], resp[1], resp[2], resp[3]]);
        let mut pos = 32;
        let user = read_nul(&resp, &mut pos).unwrap_or_default();
        let auth: Vec<u8> = if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
            let n = read_lenenc(&resp, &mut pos).unwrap_or(0) as usize;
            let a = resp
                .get(pos..pos.saturating_add(n))
                .unwrap_or_default()
                .to_vec();
            pos = pos.saturating_add(n);
            a
        } else {
            let n = usize::from(*resp.get(pos).unwrap_or(&0));
            pos += 1;
            let a = resp
                .get(pos..pos.saturating_add(n))
                .unwrap_or_default()
                .to_vec();
            pos = pos.saturating_add(n);
            a
        };
        if caps & CLIENT_CONNECT_WITH_DB != 0 {
            self.db = read_nul(&resp, &mut pos).filter(|d| !d.is_empty());
        }
        let user_name = user.split('@').next().unwrap_or(&user).to_string();
        let authorized = self.shared.cfg.users.iter().any(|(u, p)| {
            *u == user_name
                && if p.is_empty() {
                    auth.is_empty()
                } else {
                    mysql_common::scramble::scramble_native(&nonce, p.as_bytes())
                        .is_some_and(|s| s[..] == auth[..])
                }
        });
        if !authorized {
            let msg = format!(
                "Access denied for user '{user_name}' (using password: {})",
                if auth.is_empty() { "NO" } else { "YES" }
            );
            return self.err(1045, &msg).await;
        }
        if let Some(db) = &self.db
            && !self.shared.lock().catalog.dbs.contains_key(db)
        {
            let msg = format!("Unknown database '{db}'");
            return self.err(1049, &msg).await;
        }
        self.ok().await?;

        loop {
            let pkt = match self.read_packet().await {
                Ok(p) => p,
                Err(_) => return Ok(()),
            };
            if self.shared.is_down() {
                // An open session of a client: drop it like a server that went away.
                return Ok(());
            }
            let Some((&cmd, rest)) = pkt.split_first() else {
                continue;
            };
            match cmd {
                0x01 => return Ok(()),
                0x0e | 0x1f => self.ok().await?,
                0x02 => {
                    let db = String::from_utf8_lossy(rest).into_owned();
                    let sql = format!("USE `{}`", db.replace('`', "``"));
                    self.query(&sql).await?;
                }
                0x03 => {
                    let sql = String::from_utf8_lossy(rest).into_owned();
                    self.query(&sql).await?;
                }
                0x19 => {}
                _ => {
                    self.err(
                        1047,
                        "Unsupported command: the emulator speaks the text protocol only",
                    )
                    .await?
                }
            }
        }
    }

    async fn query(&mut self, sql: &str) -> std::io::Result<()> {
        let sql = sql.trim().trim_end_matches(';');
        let mut db = self.db.clone();
        let result = run_sql_in(&self.shared, &mut db, sql);
        self.db = db;
        match result {
            Ok(SqlOutput::Ok) => self.ok().await,
            Err(e) => self.err(e.code, &e.to_string()).await,
            Ok(SqlOutput::Rows { columns, rows }) => {
                let mut p = Vec::new();
                lenenc_int(&mut p, columns.len() as u64);
                self.write_packet(&p).await?;
                for (i, c) in columns.iter().enumerate() {
                    let is_int = rows
                        .iter()
                        .map(|r| &r[i])
                        .find(|v| !v.is_null())
                        .is_some_and(|v| matches!(v, Value::Int(_)));
                    let mut d = Vec::new();
                    for s in ["def", self.db.as_deref().unwrap_or(""), "", ""] {
                        lenenc_str(&mut d, s.as_bytes());
                    }
                    lenenc_str(&mut d, c.as_bytes());
                    lenenc_str(&mut d, c.as_bytes());
                    d.push(0x0c);
                    d.extend_from_slice(&33u16.to_le_bytes());
                    d.extend_from_slice(&(if is_int { 20u32 } else { 65_535u32 }).to_le_bytes());
                    d.push(if is_int { 0x08 } else { 0xfd });
                    d.extend_from_slice(&0u16.to_le_bytes());
                    d.push(0);
                    d.extend_from_slice(&[0, 0]);
                    self.write_packet(&d).await?;
                }
                self.eof().await?;
                for r in &rows {
                    let mut p = Vec::new();
                    for v in r {
                        match v.to_text() {
                            None => p.push(0xfb),
                            Some(s) => lenenc_str(&mut p, s.as_bytes()),
                        }
                    }
                    self.write_packet(&p).await?;
                }
                self.eof().await
            }
        }
    }
}
