"""Webhook endpoints and their delivery log as the API shows them."""

from app.models import WebhookEndpoint
from app.schemas.webhooks import WebhookCreated, WebhookRead


def webhook_read(endpoint: WebhookEndpoint) -> WebhookRead:
    return WebhookRead.model_validate(endpoint)


def webhook_created(endpoint: WebhookEndpoint) -> WebhookCreated:
    """The endpoint with its (new) secret: only the answers that create one show it."""
    return WebhookCreated(**webhook_read(endpoint).model_dump(), secret=endpoint.secret)
