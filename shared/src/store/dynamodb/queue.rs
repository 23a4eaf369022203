//! The delivery queue: `DeliveryQueue` (what the functions lease, settle and find due) and
//! `QueueAdmin` (operators' timelines, stuck deliveries, redelivery). Deliveries live in their
//! assessment's partition, sorted by sequence number; the sparse `due` index lists the pending
//! ones by next attempt and the parked or dead ones by creation. The index is eventually
//! consistent, so every claim it leads to is conditional on the delivery itself.

use async_trait::async_trait;

use super::DynamoDbStore;
use super::items::{DeliveryItem, IndexEntry, state_value};
use super::keys::{self, DELIVERY_PREFIX, DUE, DUE_INDEX, Item, STUCK};
use super::request::{expression_maps, n, s, val};
use crate::clock::Timestamp;
use crate::domain::{AssessmentId, Delivery, DeliveryState};
use crate::ports::{DeliveryQueue, DueRef, QueueAdmin, Retry, StoreResult};

impl DynamoDbStore {
    /// An assessment's deliveries in sequence order (consistent read), delivered ones only when
    /// `with_delivered`.
    async fn deliveries_of(
        &self,
        op: &'static str,
        id: AssessmentId,
        with_delivered: bool,
    ) -> StoreResult<Vec<Delivery>> {
        let keys = "#pk = :pk AND begins_with(#sk, :prefix)";
        let filter = "#state <> :delivered";
        let mut values = vec![
            val(":pk", s(keys::assessment_pk(id))),
            val(":prefix", s(DELIVERY_PREFIX)),
        ];
        if !with_delivered {
            values.push(val(":delivered", state_value(&DeliveryState::Delivered)));
        }
        let expressions: &[&str] = if with_delivered {
            &[keys]
        } else {
            &[keys, filter]
        };
        let (names, values) = expression_maps(expressions, values);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(keys)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .consistent_read(true)
            .scan_index_forward(true);
        if !with_delivered {
            query = query.filter_expression(filter);
        }
        self.query(op, query, None)
            .await?
            .into_iter()
            .map(DeliveryItem::decode)
            .collect()
    }

    /// Entries of the `due` index in one partition (`DUE` or `STUCK`), in sort-key order, up to
    /// `upto` if given, at most `limit`. Keys only, and eventually consistent.
    async fn index(
        &self,
        op: &'static str,
        partition: &str,
        upto: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<Item>> {
        let keys = match upto {
            Some(_) => "#gsi1pk = :partition AND #gsi1sk <= :upto",
            None => "#gsi1pk = :partition",
        };
        let mut values = vec![val(":partition", s(partition))];
        values.extend(upto.map(|u| val(":upto", s(u))));
        let (names, values) = expression_maps(&[keys], values);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression(keys)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .scan_index_forward(true);
        self.query(op, query, Some(limit)).await
    }
}

#[async_trait]
impl DeliveryQueue for DynamoDbStore {
    async fn open_deliveries(&self, id: AssessmentId) -> StoreResult<Vec<Delivery>> {
        self.deliveries_of("open_deliveries", id, false).await
    }

    async fn claim_delivery(
        &self,
        id: AssessmentId,
        seq: u64,
        now_ms: Timestamp,
        until_ms: Timestamp,
    ) -> StoreResult<bool> {
        self.update(
            "claim_delivery",
            &keys::delivery(id, seq),
            "SET #lease_until_ms = :until, #attempts = #attempts + :one",
            "attribute_exists(#pk) AND #state = :pending AND #lease_until_ms <= :now",
            vec![
                val(":until", n(until_ms)),
                val(":now", n(now_ms)),
                val(":one", n(1)),
                val(":pending", state_value(&DeliveryState::Pending)),
            ],
        )
        .await
    }

    async fn delivery_succeeded(&self, id: AssessmentId, seq: u64) -> StoreResult<()> {
        self.update(
            "delivery_succeeded",
            &keys::delivery(id, seq),
            "SET #state = :delivered, #lease_until_ms = :zero \
             REMOVE #last_error, #gsi1pk, #gsi1sk",
            "attribute_exists(#pk)",
            vec![
                val(":delivered", state_value(&DeliveryState::Delivered)),
                val(":zero", n(0)),
            ],
        )
        .await?;
        Ok(())
    }

    async fn delivery_failed(
        &self,
        id: AssessmentId,
        seq: u64,
        error: &str,
        retry: &Retry,
    ) -> StoreResult<()> {
        let key = keys::delivery(id, seq);
        let mut values = vec![
            val(":pending", state_value(&DeliveryState::Pending)),
            val(":zero", n(0)),
            val(":error", s(error)),
        ];
        let update = match retry {
            Retry::At(at) => {
                values.extend([
                    val(":at", n(*at)),
                    val(":due", s(DUE)),
                    val(":index_sk", s(keys::index_sk(*at, id, seq))),
                ]);
                "SET #lease_until_ms = :zero, #last_error = :error, #next_attempt_ms = :at, \
                 #gsi1pk = :due, #gsi1sk = :index_sk"
            }
            Retry::Park(why) | Retry::Dead(why) => {
                // Stuck deliveries are listed by creation time, which only the item knows (and
                // never changes).
                let Some(item) = self.get("delivery_failed", &key).await? else {
                    return Ok(());
                };
                let created_ms = DeliveryItem::created_ms(item)?;
                let state = match retry {
                    Retry::Park(_) => DeliveryState::Parked(why.clone()),
                    _ => DeliveryState::Dead(why.clone()),
                };
                values.extend([
                    val(":stopped", state_value(&state)),
                    val(":reason", s(why)),
                    val(":stuck", s(STUCK)),
                    val(":index_sk", s(keys::index_sk(created_ms, id, seq))),
                ]);
                "SET #lease_until_ms = :zero, #last_error = :error, #state = :stopped, \
                 #reason = :reason, #gsi1pk = :stuck, #gsi1sk = :index_sk"
            }
        };
        // Only a pending delivery: one settled meanwhile (by a vendor's answer) stays settled.
        self.update(
            "delivery_failed",
            &key,
            update,
            "attribute_exists(#pk) AND #state = :pending",
            values,
        )
        .await?;
        Ok(())
    }

    async fn due_deliveries(&self, now_ms: Timestamp, limit: usize) -> StoreResult<Vec<DueRef>> {
        let upto = keys::index_sk_upto(now_ms);
        self.index("due_deliveries", DUE, Some(upto), limit)
            .await?
            .into_iter()
            .map(|entry| {
                let (next_attempt_ms, assessment_id, seq) = IndexEntry::decode(entry)?;
                Ok(DueRef {
                    assessment_id,
                    seq,
                    next_attempt_ms,
                })
            })
            .collect()
    }

    async fn stuck_deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let mut stuck = Vec::new();
        for entry in self.index("stuck_deliveries", STUCK, None, limit).await? {
            let (_, id, seq) = IndexEntry::decode(entry)?;
            // The index lags: read the delivery itself, and skip it if it moved on meanwhile.
            let Some(item) = self
                .get("stuck_deliveries", &keys::delivery(id, seq))
                .await?
            else {
                continue;
            };
            let d = DeliveryItem::decode(item)?;
            if matches!(d.state, DeliveryState::Parked(_) | DeliveryState::Dead(_)) {
                stuck.push(d);
            }
        }
        Ok(stuck)
    }

    async fn redeliver(&self, id: AssessmentId, seq: u64, now_ms: Timestamp) -> StoreResult<bool> {
        self.update(
            "redeliver",
            &keys::delivery(id, seq),
            "SET #state = :pending, #next_attempt_ms = :now, #lease_until_ms = :zero, \
             #created_ms = :now, #attempts = :zero, #gsi1pk = :due, #gsi1sk = :index_sk \
             REMOVE #reason",
            "attribute_exists(#pk) AND #state IN (:parked, :dead)",
            vec![
                val(":pending", state_value(&DeliveryState::Pending)),
                val(":now", n(now_ms)),
                val(":zero", n(0)),
                val(":due", s(DUE)),
                val(":index_sk", s(keys::index_sk(now_ms, id, seq))),
                val(
                    ":parked",
                    state_value(&DeliveryState::Parked(String::new())),
                ),
                val(":dead", state_value(&DeliveryState::Dead(String::new()))),
            ],
        )
        .await
    }
}

#[async_trait]
impl QueueAdmin for DynamoDbStore {
    async fn deliveries(&self, id: AssessmentId) -> StoreResult<Vec<Delivery>> {
        self.deliveries_of("deliveries", id, true).await
    }
}
