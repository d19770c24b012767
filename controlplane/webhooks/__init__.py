"""Webhooks: a project's URLs told of every deploy, rollback and guarded-rollout decision.

- ``events``: the event types;
- ``outbox``: :func:`enqueue`, called in the transaction of the decision it reports;
- ``delivery``: :class:`WebhookDelivery`, which sends the outbox, signed, with retries;
- ``signing``: the ``Promptline-Signature`` scheme and :func:`verify_signature`;
- ``targets``: which URLs may be sent to (no private addresses unless allowed);
- ``registry``: registering, listing and deleting webhooks.

docs/rollouts.md ("Webhooks") is the receiver's guide. Import from the modules: this
package imports none of them, so the routes can use the outbox without the deliverer.
"""
