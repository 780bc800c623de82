"""Webhook endpoints and their delivery log as the API shows them."""

from app.models import DeliveryStatus, WebhookEndpoint
from app.schemas.webhooks import AttemptRead, DeliveryRead, WebhookCreated, WebhookRead
from app.services.delivery_log import LoggedDelivery


def webhook_read(endpoint: WebhookEndpoint) -> WebhookRead:
    return WebhookRead.model_validate(endpoint)


def webhook_created(endpoint: WebhookEndpoint) -> WebhookCreated:
    """The endpoint with its (new) secret: only the answers that create one show it."""
    return WebhookCreated(**webhook_read(endpoint).model_dump(), secret=endpoint.secret)


def delivery_read(logged: LoggedDelivery) -> DeliveryRead:
    d = logged.delivery
    return DeliveryRead(
        id=d.id,
        event_id=d.event_id,
        event_type=logged.event_type,
        status=DeliveryStatus(d.status),
        next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code,
        created_at=d.created_at,
        updated_at=d.updated_at,
        attempts=[AttemptRead.model_validate(a) for a in logged.attempts],
    )
