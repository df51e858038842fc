//! Notification rules and the delivery log.

use crate::{Client, Result};
use reqwest::Method;
use weir_core::api::Page;
use weir_core::api::notifications::{
    Delivery, DeliveryQuery, NotificationRule, NotificationRuleSpec, RuleSource,
    UpsertNotificationRule,
};

impl Client {
    /// `GET /api/v1/notifications`.
    pub async fn notification_rules(&self, project: Option<&str>) -> Result<Vec<NotificationRule>> {
        let rb = self.req(Method::GET, "/api/v1/notifications");
        let rb = match project {
            Some(p) => rb.query(&[("project", p)]),
            None => rb,
        };
        self.send(rb).await
    }

    /// `PUT /api/v1/projects/{project}/notifications/{name}`.
    pub async fn upsert_notification_rule(
        &self,
        project: &str,
        name: &str,
        spec: &NotificationRuleSpec,
        source: RuleSource,
    ) -> Result<NotificationRule> {
        let body = UpsertNotificationRule {
            spec: spec.clone(),
            source,
        };
        self.send(
            self.req(
                Method::PUT,
                &format!("/api/v1/projects/{project}/notifications/{name}"),
            )
            .json(&body),
        )
        .await
    }

    /// `DELETE /api/v1/projects/{project}/notifications/{name}`.
    pub async fn delete_notification_rule(
        &self,
        project: &str,
        name: &str,
    ) -> Result<NotificationRule> {
        self.send(self.req(
            Method::DELETE,
            &format!("/api/v1/projects/{project}/notifications/{name}"),
        ))
        .await
    }

    /// `POST /api/v1/projects/{project}/notifications/{name}/test`.
    pub async fn test_notification(&self, project: &str, name: &str) -> Result<Delivery> {
        self.send(self.req(
            Method::POST,
            &format!("/api/v1/projects/{project}/notifications/{name}/test"),
        ))
        .await
    }

    /// `GET /api/v1/notifications/deliveries`.
    pub async fn deliveries(&self, q: &DeliveryQuery) -> Result<Page<Delivery>> {
        self.send(
            self.req(Method::GET, "/api/v1/notifications/deliveries")
                .query(q),
        )
        .await
    }
}
