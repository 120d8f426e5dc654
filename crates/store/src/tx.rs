//! A write transaction that sends consecutive writes together.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every statement is a
//! round trip between threads (two wake-ups each way); at ~40 statements a message that, not
//! SQLite, was most of `switchboard run`'s time. Writes whose result nobody reads (inserts of
//! new rows, counters, the audit log) are therefore queued with [`Tx::defer`] and sent as one
//! multi-statement query just before the transaction next reads, runs a write whose row count
//! matters, opens a savepoint or commits. The statements, their order and what each one sees are
//! exactly those of sending them one by one; only the number of round trips changes.
//!
//! PostgreSQL has no multi-statement prepared queries: there the queue runs statement by
//! statement, as before.

use std::borrow::Cow;

use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection, Arguments};

use crate::{Op, ROWS_PER_INSERT, StoreError, values_rows};

/// A bound value of a deferred statement. Nulls keep their type: PostgreSQL checks a
/// parameter's type against its column.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Real(f64),
    NullText,
    NullInt,
    NullReal,
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(v.clone())
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Real(v)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        v.map_or(Arg::NullText, Arg::Text)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        v.map_or(Arg::NullText, Arg::from)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        v.map_or(Arg::NullInt, Arg::Int)
    }
}
impl From<Option<f64>> for Arg {
    fn from(v: Option<f64>) -> Arg {
        v.map_or(Arg::NullReal, Arg::Real)
    }
}

impl Arg {
    fn add_to(self, args: &mut AnyArguments) -> Result<(), sqlx::Error> {
        match self {
            Arg::Text(v) => args.add(v),
            Arg::Int(v) => args.add(v),
            Arg::Real(v) => args.add(v),
            Arg::NullText => args.add(None::<String>),
            Arg::NullInt => args.add(None::<i64>),
            Arg::NullReal => args.add(None::<f64>),
        }
        .map_err(sqlx::Error::Encode)
    }
}

/// A write queued until the transaction next needs the connection.
pub(crate) struct Deferred {
    op: &'static str,
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

impl Deferred {
    pub(crate) fn bind(&mut self, value: impl Into<Arg>) -> &mut Deferred {
        self.args.push(value.into());
        self
    }
}

/// Parameters one multi-statement query may carry (SQLite allows 32,766).
const MAX_PARAMS_SENT_TOGETHER: usize = 4_000;

/// A write transaction (or a savepoint inside one) with its queue of deferred writes.
pub(crate) struct Tx<'c> {
    inner: sqlx::Transaction<'c, Any>,
    sqlite: bool,
    pending: Vec<Deferred>,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(inner: sqlx::Transaction<'c, Any>, sqlite: bool) -> Tx<'c> {
        Tx {
            inner,
            sqlite,
            pending: Vec::new(),
        }
    }

    /// Queue a write whose result is not needed; bind its `$1, $2, …` on the returned value.
    pub(crate) fn defer(
        &mut self,
        op: &'static str,
        sql: impl Into<Cow<'static, str>>,
    ) -> &mut Deferred {
        self.pending.push(Deferred {
            op,
            sql: sql.into(),
            args: Vec::new(),
        });
        self.pending.last_mut().expect("just pushed")
    }

    /// Queue one multi-row `INSERT` per [`ROWS_PER_INSERT`] items: `head` is the statement up to
    /// `VALUES`, `row` one row with `?` for each parameter, `bind` binds one item's.
    pub(crate) fn defer_rows<T>(
        &mut self,
        op: &'static str,
        head: &str,
        row: &str,
        items: &[T],
        bind: impl Fn(&mut Deferred, &T),
    ) {
        for chunk in items.chunks(ROWS_PER_INSERT) {
            let sql = format!("{head} VALUES {}", values_rows(chunk.len(), row));
            let deferred = self.defer(op, sql);
            for item in chunk {
                bind(deferred, item);
            }
        }
    }

    /// The connection, after every deferred write has run: for reads and for writes whose
    /// row count matters.
    pub(crate) async fn conn(&mut self) -> Result<&mut AnyConnection, StoreError> {
        self.flush().await?;
        Ok(&mut self.inner)
    }

    /// Run the deferred writes: on SQLite as few multi-statement queries as the parameter limit
    /// allows, elsewhere one by one.
    pub(crate) async fn flush(&mut self) -> Result<(), StoreError> {
        let mut pending = std::mem::take(&mut self.pending).into_iter().peekable();
        while let Some(first) = pending.next() {
            if !self.sqlite || pending.peek().is_none() {
                let mut args = AnyArguments::default();
                for a in first.args {
                    a.add_to(&mut args).op(first.op)?;
                }
                sqlx::query_with(sqlx::AssertSqlSafe(first.sql.into_owned()), args)
                    .execute(&mut *self.inner)
                    .await
                    .op(first.op)?;
                continue;
            }
            let mut sql = String::new();
            let mut args = AnyArguments::default();
            let mut ops = vec![first.op];
            let mut params = 0;
            let mut next = Some(first);
            while let Some(d) = next.take() {
                renumbered(&mut sql, &d.sql, params);
                sql.push_str(";\n");
                params += d.args.len();
                for a in d.args {
                    a.add_to(&mut args).op(d.op)?;
                }
                if !ops.contains(&d.op) {
                    ops.push(d.op);
                }
                if pending
                    .peek()
                    .is_some_and(|n| params + n.args.len() <= MAX_PARAMS_SENT_TOGETHER)
                {
                    next = pending.next();
                }
            }
            sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                .execute(&mut *self.inner)
                .await
                .map_err(|source| StoreError::Sent {
                    ops: ops.join(", "),
                    source,
                })?;
        }
        Ok(())
    }

    /// A savepoint: the deferred writes so far run first, so they are not rolled back with it.
    pub(crate) async fn savepoint(&mut self) -> Result<Tx<'_>, StoreError> {
        self.flush().await?;
        let inner = sqlx::Connection::begin(&mut *self.inner)
            .await
            .op("opening a savepoint")?;
        Ok(Tx::new(inner, self.sqlite))
    }

    /// Run what is deferred, then commit (or release the savepoint).
    pub(crate) async fn commit(mut self, op: &'static str) -> Result<(), StoreError> {
        self.flush().await?;
        self.inner.commit().await.op(op)
    }

    /// Drop what is deferred and roll back.
    pub(crate) async fn rollback(self, op: &'static str) -> Result<(), StoreError> {
        self.inner.rollback().await.op(op)
    }
}

/// Append `statement` to `out` with each `$n` parameter moved to `$(n + offset)`. The store's
/// SQL numbers its parameters this way only; `$` followed by a digit appears nowhere else in it.
fn renumbered(out: &mut String, statement: &str, offset: usize) {
    let mut rest = statement;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: usize = rest[..digits].parse().expect("ascii digits");
            out.push_str(&(n + offset).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_moved_past_the_earlier_statements() {
        let mut out = String::new();
        renumbered(&mut out, "INSERT INTO t VALUES ($1, $2, $1, '$.a')", 0);
        out.push(';');
        renumbered(&mut out, "UPDATE t SET a = $2 WHERE b = $1", 3);
        assert_eq!(
            out,
            "INSERT INTO t VALUES ($1, $2, $1, '$.a');UPDATE t SET a = $5 WHERE b = $4"
        );
    }
}
