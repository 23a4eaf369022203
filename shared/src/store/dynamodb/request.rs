//! Request primitives over the SDK: consistent reads, conditional writes and transactions,
//! paginated queries and scans, the mapping of SDK errors to `StoreError` (DynamoDB's error code,
//! never its message, which can quote key values back), and the one retry of a write that lost a
//! race, [`retry_contention`] over `crate::retry::CONTENTION`.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};

use super::DynamoDbStore;
use super::keys::{Item, Key};
use crate::ports::{StoreError, StoreResult};
use crate::retry::CONTENTION;

/// An expression value: the `:placeholder` and its value.
pub(super) type Value = (String, AttributeValue);

pub(super) fn val(placeholder: &str, v: AttributeValue) -> Value {
    (placeholder.to_owned(), v)
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// How a conditional write ended when it did not fail outright. A single-item write ends like a
/// transaction of one.
pub(super) enum Tx {
    Committed,
    /// Which items' conditions failed, in request order; nothing was written.
    ConditionFailed(Vec<bool>),
    /// Another transaction held one of the items; nothing was written, so trying again is safe.
    Contended,
}

/// Whether the condition of the `index`th item of a cancelled transaction failed.
pub(super) fn failed_at(flags: &[bool], index: usize) -> bool {
    flags.get(index).copied().unwrap_or(false)
}

impl DynamoDbStore {
    pub(super) async fn get(&self, op: &'static str, key: &Key) -> StoreResult<Option<Item>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| unavailable(op, &e))
    }

    /// A conditional UpdateItem, not yet sent. A condition is required: UpdateItem on a missing
    /// key would otherwise create a stray item.
    pub(super) fn update_request(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        values: Vec<Value>,
    ) -> UpdateItemFluentBuilder {
        let (names, values) = expression_maps(&[update, condition], values);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
    }

    /// Sends a conditional UpdateItem once.
    pub(super) async fn send_update(
        &self,
        op: &'static str,
        request: UpdateItemFluentBuilder,
    ) -> StoreResult<Tx> {
        match request.send().await {
            Ok(_) => Ok(Tx::Committed),
            Err(e) => match e.as_service_error() {
                Some(s) if s.is_conditional_check_failed_exception() => {
                    Ok(Tx::ConditionFailed(vec![true]))
                }
                // The item is part of a transaction in flight; nothing was written.
                Some(s) if s.is_transaction_conflict_exception() => Ok(Tx::Contended),
                _ => Err(unavailable(op, &e)),
            },
        }
    }

    /// A conditional UpdateItem of one item that nothing else is decided on: `Ok(false)` when the
    /// condition does not hold; caught in another transaction, it is tried again (`CONTENTION`).
    pub(super) async fn update(
        &self,
        op: &'static str,
        key: &Key,
        update: &str,
        condition: &str,
        values: Vec<Value>,
    ) -> StoreResult<bool> {
        let request = self.update_request(key, update, condition, values);
        retry_contention(op, (), |()| {
            let request = request.clone();
            async move {
                Ok(match self.send_update(op, request).await? {
                    Tx::Committed => Attempt::Done(true),
                    Tx::ConditionFailed(_) => Attempt::Done(false),
                    Tx::Contended => Attempt::Lost(()),
                })
            }
        })
        .await
    }

    pub(super) fn put_op(
        &self,
        item: Item,
        condition: Option<&str>,
        values: Vec<Value>,
    ) -> StoreResult<TransactWriteItem> {
        let (names, values) = expression_maps(condition.as_slice(), values);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build();
        Ok(TransactWriteItem::builder().put(built(put)?).build())
    }

    pub(super) fn update_op(
        &self,
        key: &Key,
        update: &str,
        condition: &str,
        values: Vec<Value>,
    ) -> StoreResult<TransactWriteItem> {
        let (names, values) = expression_maps(&[update, condition], values);
        let op = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build();
        Ok(TransactWriteItem::builder().update(built(op)?).build())
    }

    /// A transaction item that writes nothing and holds only if `condition` does on `key`.
    pub(super) fn condition_check_op(
        &self,
        key: &Key,
        condition: &str,
        values: Vec<Value>,
    ) -> StoreResult<TransactWriteItem> {
        let (names, values) = expression_maps(&[condition], values);
        let op = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build();
        Ok(TransactWriteItem::builder()
            .condition_check(built(op)?)
            .build())
    }

    pub(super) fn delete_op(
        &self,
        key: &Key,
        condition: &str,
        values: Vec<Value>,
    ) -> StoreResult<TransactWriteItem> {
        let (names, values) = expression_maps(&[condition], values);
        let op = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build();
        Ok(TransactWriteItem::builder().delete(built(op)?).build())
    }

    /// Runs one transaction and sorts a cancellation into a condition failure (with which items
    /// failed) or contention with another transaction; anything else is `Unavailable`.
    pub(super) async fn transact(
        &self,
        op: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> StoreResult<Tx> {
        let e = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(Tx::Committed),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            e.as_service_error()
        else {
            return Err(unavailable(op, &e));
        };
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        let failed: Vec<bool> = codes
            .iter()
            .map(|c| *c == "ConditionalCheckFailed")
            .collect();
        if failed.contains(&true) {
            return Ok(Tx::ConditionFailed(failed));
        }
        if codes.contains(&"TransactionConflict") {
            return Ok(Tx::Contended);
        }
        // Throttling, validation, capacity: the reason codes say which, the items are not ours
        // to log.
        let other = codes
            .iter()
            .find(|c| **c != "None")
            .unwrap_or(&"no reason given");
        Err(StoreError::Unavailable(format!(
            "{op}: transaction cancelled ({other})"
        )))
    }

    /// Runs a query through the SDK's paginator until it ends, or until `limit` items came back
    /// (then no further page is read).
    pub(super) async fn query(
        &self,
        op: &'static str,
        query: QueryFluentBuilder,
        limit: Option<usize>,
    ) -> StoreResult<Vec<Item>> {
        if limit == Some(0) {
            // DynamoDB refuses a `Limit` of 0.
            return Ok(Vec::new());
        }
        let mut pages = query.into_paginator();
        if let Some(limit) = limit {
            pages = pages.page_size(i32::try_from(limit).unwrap_or(i32::MAX));
        }
        let mut stream = pages.items().send();
        let mut items = Vec::new();
        while limit.is_none_or(|l| items.len() < l) {
            match stream.next().await {
                Some(item) => items.push(item.map_err(|e| unavailable(op, &e))?),
                None => break,
            }
        }
        Ok(items)
    }

    /// Every item a scan finds, through the SDK's paginator. Meant for operators listing the
    /// registry, never for a request path.
    pub(super) async fn scan(
        &self,
        op: &'static str,
        scan: ScanFluentBuilder,
    ) -> StoreResult<Vec<Item>> {
        scan.into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| unavailable(op, &e))
    }
}

/// What one try of a write that can lose a race came to.
pub(super) enum Attempt<T, S = ()> {
    /// The write landed, or the answer is known.
    Done(T),
    /// Lost a race with another write (nothing was written): wait, then try again with `S`.
    Lost(S),
    /// The try learned what the next one must expect (a start key's current owner). No race was
    /// lost, so the next try follows at once.
    Again(S),
}

/// The one retry of a write that lost a race inside one store call (see `crate::retry`): runs
/// `attempt` until it is done, at most `CONTENTION.tries` times, waiting `CONTENTION`'s backoff
/// after each lost race, and reports `Unavailable` once the tries are used up. Each try gets
/// what the one before it learned (`first` for the first).
pub(super) async fn retry_contention<T, S, F, Fut>(
    op: &str,
    first: S,
    mut attempt: F,
) -> StoreResult<T>
where
    F: FnMut(S) -> Fut,
    Fut: Future<Output = StoreResult<Attempt<T, S>>>,
{
    let mut state = first;
    for try_no in 1..=CONTENTION.tries {
        state = match attempt(state).await? {
            Attempt::Done(v) => return Ok(v),
            Attempt::Again(next) => next,
            Attempt::Lost(next) => {
                if try_no < CONTENTION.tries {
                    CONTENTION.wait(try_no).await;
                }
                next
            }
        };
    }
    Err(StoreError::Unavailable(format!(
        "{op}: still contended after {} tries",
        CONTENTION.tries
    )))
}

type Names = HashMap<String, String>;
type Values = HashMap<String, AttributeValue>;

/// Expression attribute names and values for a set of expressions. Every attribute in an
/// expression is written `#name` (reserved words such as `status` then need no special care), and
/// only the `:values` the expressions use are sent, since DynamoDB rejects unused ones.
pub(super) fn expression_maps(
    expressions: &[&str],
    values: Vec<Value>,
) -> (Option<Names>, Option<Values>) {
    let tokens: HashSet<&str> = expressions
        .iter()
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || "_#:".contains(c))))
        .collect();
    let names: Names = tokens
        .iter()
        .filter_map(|t| Some((t.to_string(), t.strip_prefix('#')?.to_owned())))
        .collect();
    let values: Values = values
        .into_iter()
        .filter(|(k, _)| tokens.contains(k.as_str()))
        .collect();
    // DynamoDB rejects empty maps as well.
    (
        (!names.is_empty()).then_some(names),
        (!values.is_empty()).then_some(values),
    )
}

/// `SET #a = :set_a, #b = :set_b` for the named attributes of an encoded item, with their
/// values: an update that writes them exactly as a put of the item would. (`:set_`, so that the
/// values cannot collide with a condition's, such as the `:rev` a write expects.)
pub(super) fn set_from(mut item: Item, names: &[&str]) -> StoreResult<(String, Vec<Value>)> {
    let mut sets = Vec::new();
    let mut values = Vec::new();
    for name in names {
        let v = item.remove(*name).ok_or_else(|| {
            StoreError::Unavailable(format!("could not build a DynamoDB update of {name}"))
        })?;
        sets.push(format!("#{name} = :set_{name}"));
        values.push((format!(":set_{name}"), v));
    }
    Ok((format!("SET {}", sets.join(", ")), values))
}

pub(super) fn built<T>(r: Result<T, BuildError>) -> StoreResult<T> {
    r.map_err(|_| StoreError::Unavailable("could not build a DynamoDB request".into()))
}

pub(super) fn unavailable<E: ProvideErrorMetadata, R>(op: &str, e: &SdkError<E, R>) -> StoreError {
    StoreError::Unavailable(format!("{op}: {}", describe(e)))
}

/// The error code, not the service's message: messages can quote key values back.
fn describe<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("unknown service error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "could not reach DynamoDB".into(),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "could not build the request".into(),
        _ => "unknown error".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn expression_maps_alias_every_name_and_drop_unused_values() {
        let (names, values) = expression_maps(
            &[
                "SET #status = :s, #version = #version + :one",
                "attribute_exists(#pk)",
            ],
            vec![val(":s", s("x")), val(":one", n(1)), val(":unused", n(2))],
        );
        let names = names.expect("names");
        assert_eq!(names.get("#status").map(String::as_str), Some("status"));
        assert_eq!(names.get("#pk").map(String::as_str), Some("pk"));
        assert_eq!(names.len(), 3);
        let values = values.expect("values");
        assert!(values.contains_key(":s") && values.contains_key(":one"));
        assert!(!values.contains_key(":unused"));
        assert_eq!(expression_maps(&[], vec![val(":x", n(1))]), (None, None));
    }

    #[test]
    fn an_update_from_an_item_sets_exactly_the_named_attributes() {
        let item = HashMap::from([
            ("name".to_owned(), s("T")),
            ("disabled".to_owned(), AttributeValue::Bool(true)),
            ("tokens".to_owned(), AttributeValue::M(HashMap::new())),
        ]);
        let (update, values) = set_from(item.clone(), &["name", "disabled"]).expect("set");
        assert_eq!(update, "SET #name = :set_name, #disabled = :set_disabled");
        assert_eq!(
            values,
            vec![
                val(":set_name", s("T")),
                val(":set_disabled", AttributeValue::Bool(true))
            ]
        );
        assert!(set_from(item, &["rev"]).is_err());
    }

    #[tokio::test]
    async fn a_write_that_keeps_losing_is_tried_contentions_number_of_times_then_unavailable() {
        let tries = &AtomicU32::new(0);
        let out: StoreResult<()> = retry_contention("op", (), |()| async move {
            tries.fetch_add(1, Ordering::SeqCst);
            Ok(Attempt::Lost(()))
        })
        .await;
        assert_eq!(tries.load(Ordering::SeqCst), CONTENTION.tries);
        assert_eq!(
            out,
            Err(StoreError::Unavailable(format!(
                "op: still contended after {} tries",
                CONTENTION.tries
            )))
        );
    }

    #[tokio::test]
    async fn a_try_gets_what_the_one_before_learned_and_an_error_is_not_retried() {
        let seen = &std::sync::Mutex::new(Vec::new());
        let out = retry_contention("op", 0u32, |n| {
            seen.lock().expect("lock").push(n);
            async move {
                Ok(match n {
                    0 => Attempt::Again(1),
                    1 => Attempt::Lost(2),
                    _ => Attempt::Done(n),
                })
            }
        })
        .await;
        assert_eq!(out, Ok(2));
        assert_eq!(*seen.lock().expect("lock"), vec![0, 1, 2]);
        let tries = &AtomicU32::new(0);
        let out: StoreResult<()> = retry_contention("op", (), |()| async move {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::Unavailable("op: ThrottlingException".into()))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(
            tries.load(Ordering::SeqCst),
            1,
            "the SDK already retried it"
        );
    }
}
