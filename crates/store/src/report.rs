//! The reads behind the period report (`switchboard report`): raw counts and rows of one
//! tenant over a period. What they mean (shares, trends, scores) is the care layer's business.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// A reply that went out: its kind, its draft's guard findings (JSON) and who decided it.
#[derive(Debug, Clone)]
pub struct SentReply {
    pub kind: String,
    pub findings: Option<String>,
    pub decided_by: Option<String>,
}

/// A survey sent in the period: assignee, team, channel and the score, if answered.
#[derive(Debug, Clone)]
pub struct SurveyRow {
    pub assignee: Option<String>,
    pub team: Option<String>,
    pub channel: String,
    pub score: Option<i64>,
}

impl Store {
    /// The rows of `sql`, whose parameters are the tenant and the period's bounds.
    async fn period_rows(
        &self,
        op: &'static str,
        sql: &'static str,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<AnyRow>, StoreError> {
        sqlx::query(sql)
            .bind(tenant)
            .bind(since)
            .bind(until)
            .fetch_all(&self.pool)
            .await
            .map_err(|source| StoreError::Sql { op, source })
    }

    /// Customer messages (not edits or deletions) received in `[since, until)`, per channel.
    pub async fn report_volumes(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self.period_rows(
            "report: volumes",
            "SELECT channel, COUNT(*) FROM messages WHERE tenant = $1 AND received_at >= $2 AND received_at < $3 AND event_key = external_id GROUP BY channel ORDER BY channel",
            tenant,
            since,
            until,
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    }

    /// The decisions' actions (JSON arrays) on messages received in `[since, until)`.
    pub async fn report_decision_actions(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self.period_rows(
            "report: decisions",
            "SELECT d.actions FROM decisions d JOIN messages m ON m.id = d.message_id WHERE m.tenant = $1 AND m.received_at >= $2 AND m.received_at < $3",
            tenant,
            since,
            until,
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// The ten `topic:` labels (live, score ≥ 0.5) on most messages received in `[since,
    /// until)`, with their message counts.
    pub async fn report_top_topics(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self.period_rows(
            "report: topics",
            "SELECT l.name, COUNT(DISTINCT l.message_id) AS n FROM labels l JOIN messages m ON m.id = l.message_id WHERE m.tenant = $1 AND m.received_at >= $2 AND m.received_at < $3 AND l.role = 'live' AND l.name LIKE 'topic:%' AND l.score >= 0.5 GROUP BY l.name ORDER BY n DESC, l.name LIMIT 10",
            tenant,
            since,
            until,
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    }

    /// Customer messages received in `[since, until)`: the stored body (JSON) and when.
    pub async fn report_message_bodies(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self.period_rows(
            "report: keywords",
            "SELECT body, received_at FROM messages WHERE tenant = $1 AND received_at >= $2 AND received_at < $3 AND event_key = external_id",
            tenant,
            since,
            until,
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    }

    /// Replies sent in `[since, until)`.
    pub async fn report_sent_replies(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<SentReply>, StoreError> {
        Ok(self.period_rows(
            "report: replies",
            "SELECT o.kind, d.findings, d.decided_by FROM outbox o LEFT JOIN drafts d ON d.id = o.draft_id WHERE o.tenant = $1 AND o.status = 'sent' AND o.sent_at >= $2 AND o.sent_at < $3",
            tenant,
            since,
            until,
        )
        .await?
        .iter()
        .map(|r| SentReply {
            kind: r.get(0),
            findings: r.get(1),
            decided_by: r.get(2),
        })
        .collect())
    }

    /// Surveys requested in `[since, until)`.
    pub async fn report_surveys(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<SurveyRow>, StoreError> {
        Ok(self.period_rows(
            "report: satisfaction",
            "SELECT assignee, team, channel, score FROM surveys WHERE tenant = $1 AND requested_at >= $2 AND requested_at < $3",
            tenant,
            since,
            until,
        )
        .await?
        .iter()
        .map(|r| SurveyRow {
            assignee: r.get(0),
            team: r.get(1),
            channel: r.get(2),
            score: r.get(3),
        })
        .collect())
    }

    /// Incidents opened in `[since, until)`.
    pub async fn report_incidents_opened(
        &self,
        tenant: &str,
        since: i64,
        until: i64,
    ) -> Result<i64, StoreError> {
        Ok(self.period_rows(
            "report: incidents",
            "SELECT COUNT(*) FROM incidents WHERE tenant = $1 AND opened_at >= $2 AND opened_at < $3",
            tenant,
            since,
            until,
        )
        .await?
        .first()
        .map_or(0, |r| r.get(0)))
    }
}
