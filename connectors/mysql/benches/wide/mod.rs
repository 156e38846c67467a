//! The wide 50-column `wide50` MySQL table shared by the `decode` and `snapshot` benches, filled
//! by the server itself (MariaDB's sequence engine) so 100k+ rows load in seconds.
//!
//! Every integer width signed and unsigned, DECIMAL(5,4)..(38,10), DOUBLE and FLOAT,
//! DATETIME(6)/DATETIME/DATE, CHAR/VARCHAR/TEXT of 2 to ~500 bytes with some non-ASCII text
//! (accents, CJK, Cyrillic, emoji), ENUM, two JSON columns, and ~10 % NULLs in each of its 20
//! nullable columns. Values are a function of the row number only.
#![allow(dead_code)]

/// Words `note` / `description` are cut from.
const WORDS: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua";

/// (name, MySQL type, SQL expression over `seq`); `NULL` columns wrap the value in [`nullable`].
const COLUMNS: &[(&str, &str, &str)] = &[
    ("id", "BIGINT UNSIGNED NOT NULL PRIMARY KEY", "seq"),
    ("tenant_id", "TINYINT NOT NULL", "seq % 200 - 100"),
    ("region", "TINYINT UNSIGNED NOT NULL", "seq * 7 % 256"),
    ("qty", "SMALLINT NOT NULL", "seq % 50 + 1"),
    ("port", "SMALLINT UNSIGNED NOT NULL", "seq * 31 % 65536"),
    (
        "delta",
        "MEDIUMINT NOT NULL",
        "seq * 37 % 16000000 - 8000000",
    ),
    ("umed", "MEDIUMINT UNSIGNED NULL", "seq * 13 % 16000000"),
    ("customer_id", "INT NOT NULL", "seq * 7919 % 100000"),
    (
        "uint_col",
        "INT UNSIGNED NOT NULL",
        "seq * 2654435761 % 4294967296",
    ),
    ("big_col", "BIGINT NOT NULL", "seq * 1000003 - 500000000000"),
    (
        "ubig_col",
        "BIGINT UNSIGNED NULL",
        "seq * 1000000007 + 9000000000000000000",
    ),
    ("is_active", "TINYINT(1) NOT NULL", "seq % 2"),
    (
        "price",
        "DECIMAL(12,2) NOT NULL",
        "(seq % 100000) / 100 + 0.99",
    ),
    ("tax_rate", "DECIMAL(5,4) NULL", "(seq % 10000) / 10000"),
    (
        "balance",
        "DECIMAL(20,6) NOT NULL",
        "(seq * 7919 % 100000000) / 1000000 - 50",
    ),
    ("big_dec", "DECIMAL(38,10) NULL", "seq * 123456.7890123"),
    ("score", "DOUBLE NOT NULL", "seq / 3"),
    ("ratio", "DOUBLE NULL", "seq / 7"),
    ("weight", "FLOAT NOT NULL", "(seq % 1000) / 8"),
    (
        "created_at",
        "DATETIME(6) NOT NULL",
        "TIMESTAMP('2024-01-01') + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND",
    ),
    (
        "updated_at",
        "DATETIME(6) NULL",
        "TIMESTAMP('2024-01-02') + INTERVAL seq SECOND + INTERVAL (seq % 999983) MICROSECOND",
    ),
    (
        "shipped_at",
        "DATETIME NULL",
        "TIMESTAMP('2024-01-03') + INTERVAL seq SECOND",
    ),
    (
        "birth_date",
        "DATE NOT NULL",
        "DATE('1950-01-01') + INTERVAL (seq * 7 % 20000) DAY",
    ),
    (
        "due_date",
        "DATE NULL",
        "DATE('2024-01-01') + INTERVAL (seq % 1000) DAY",
    ),
    (
        "email",
        "VARCHAR(64) NOT NULL",
        "CONCAT('user', seq % 100000, '@example.com')",
    ),
    ("sku", "CHAR(16) NOT NULL", "LPAD(HEX(seq), 16, 'S')"),
    (
        "first_name",
        "VARCHAR(32) NOT NULL",
        "ELT(1 + seq % 8, 'Anna', 'José', 'Zoë', 'Łukasz', '美玲', 'Ольга', 'Søren', 'Ahmed')",
    ),
    (
        "last_name",
        "VARCHAR(48) NULL",
        "ELT(1 + seq DIV 3 % 8, 'Müller', 'García López', 'O''Brien', 'Nguyễn', '山田', 'Иванова', 'Kowalski', 'Smith')",
    ),
    (
        "city",
        "VARCHAR(40) NOT NULL",
        "ELT(1 + seq DIV 7 % 8, 'München', 'São Paulo', 'Zürich', '東京', 'Kraków', 'Reykjavík', 'New York', 'Paris')",
    ),
    (
        "country",
        "CHAR(2) NOT NULL",
        "ELT(1 + seq DIV 7 % 8, 'DE', 'BR', 'CH', 'JP', 'PL', 'IS', 'US', 'FR')",
    ),
    (
        "phone",
        "VARCHAR(20) NULL",
        "CONCAT('+49 30 ', LPAD(seq * 7919 % 10000000, 7, '0'))",
    ),
    (
        "status",
        "ENUM('new','paid','packed','shipped','delivered','cancelled') NOT NULL",
        "1 + seq % 6",
    ),
    (
        "tags",
        "VARCHAR(100) NULL",
        "SUBSTRING_INDEX('red,green,blue,black,white', ',', 1 + seq % 5)",
    ),
    (
        "note",
        "VARCHAR(255) NULL",
        "SUBSTRING_INDEX('{WORDS}', ' ', 3 + seq % 16)",
    ),
    (
        "description",
        "TEXT NULL",
        "CONCAT('Beschreibung für Artikel ', seq, ': ', REPEAT('{WORDS} ', 1 + seq % 4))",
    ),
    (
        "comment",
        "TEXT NULL",
        "ELT(1 + seq % 6, 'ok ✓', '', 'bitte schnell liefern', '🎁 gift', 'call first', 'n/a')",
    ),
    (
        "url",
        "VARCHAR(255) NOT NULL",
        "CONCAT('https://shop.example.com/p/', seq, '?ref=', HEX(seq % 9973))",
    ),
    (
        "user_agent",
        "VARCHAR(200) NULL",
        "ELT(1 + seq % 3, 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148', 'curl/8.5.0')",
    ),
    (
        "ip",
        "VARCHAR(45) NOT NULL",
        "CONCAT(seq % 256, '.', seq * 7 % 256, '.', seq * 13 % 256, '.', seq * 31 % 256)",
    ),
    (
        "uuid",
        "CHAR(36) NOT NULL",
        "CONCAT_WS('-', LPAD(HEX(seq), 8, '0'), 'a1b2', '4c3d', HEX(8000 + seq % 4096), LPAD(HEX(seq * 2654435761), 12, '0'))",
    ),
    (
        "attrs",
        "JSON NULL",
        "JSON_OBJECT('color', ELT(1 + seq % 5, 'red', 'green', 'blue', 'black', 'white'), 'size', seq % 5, 'gift', seq % 2 = 0, 'label', CONCAT('größe ', seq % 50))",
    ),
    (
        "payload",
        "JSON NOT NULL",
        "JSON_ARRAY(seq, seq % 7, 'x', JSON_OBJECT('k', seq % 1000))",
    ),
    (
        "currency",
        "CHAR(3) NOT NULL",
        "ELT(1 + seq % 5, 'EUR', 'USD', 'JPY', 'PLN', 'BRL')",
    ),
    (
        "lang",
        "VARCHAR(8) NOT NULL",
        "ELT(1 + seq % 5, 'de-DE', 'en-US', 'ja-JP', 'pl', 'pt-BR')",
    ),
    ("version", "INT NULL", "seq % 17"),
    ("priority", "TINYINT NULL", "seq % 5"),
    ("discount", "DECIMAL(6,2) NULL", "(seq % 5000) / 100"),
    (
        "lat",
        "DOUBLE NOT NULL",
        "(seq * 7919 % 180000000) / 1000000 - 90",
    ),
    (
        "lon",
        "DOUBLE NOT NULL",
        "(seq * 104729 % 360000000) / 1000000 - 180",
    ),
    (
        "etag",
        "VARCHAR(40) NOT NULL",
        "LPAD(HEX(seq * 2654435761 % 4294967296), 40, '0')",
    ),
];

/// `CREATE TABLE db.wide50 (...)`.
pub fn ddl(db: &str) -> String {
    let cols: Vec<String> = COLUMNS.iter().map(|(n, t, _)| format!("{n} {t}")).collect();
    format!(
        "CREATE TABLE {db}.wide50 ({}) DEFAULT CHARSET = utf8mb4",
        cols.join(", ")
    )
}

/// The select expression of one column; a nullable column is NULL in ~10 % of the rows
/// (which rows depends on the column).
fn expr(i: usize, name: &str, ty: &str, e: &str) -> String {
    let e = e.replace("{WORDS}", WORDS);
    if ty.contains("NOT NULL") {
        e
    } else {
        format!("IF((seq + {i}) * 2654435761 % 10 = 3, NULL, {e}) AS {name}")
    }
}

/// `INSERT INTO db.wide50 SELECT … FROM db.seq_lo_to_hi`: rows `lo..=hi` as one statement
/// (`seq` cast to signed, so expressions may go negative).
pub fn fill_sql(db: &str, lo: u64, hi: u64) -> String {
    let exprs: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (n, t, e))| expr(i, n, t, e))
        .collect();
    format!(
        "INSERT INTO {db}.wide50 SELECT {} FROM (SELECT CAST(seq AS SIGNED) AS seq FROM {db}.seq_{lo}_to_{hi}) s",
        exprs.join(", ")
    )
}

/// Statements that fill `db.wide50` with ids `1..=n`, `chunk` rows per statement (transaction).
pub fn fill_statements(db: &str, n: u64, chunk: u64) -> Vec<String> {
    (1..=n)
        .step_by(chunk as usize)
        .map(|lo| fill_sql(db, lo, (lo + chunk - 1).min(n)))
        .collect()
}

/// Number of columns (checked by the benches).
pub const COLUMN_COUNT: usize = COLUMNS.len();
