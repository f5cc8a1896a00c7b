"""Notifications of alert events: channels file, routing, channels, Redis state, attempts, and the notifier.

| module        | holds                                                                  |
|---------------|------------------------------------------------------------------------|
| config        | the channels file (SMARTGRID_CHANNELS_FILE) as a NotifyConfig          |
| alerts        | alert events as the notifier reads them                                |
| routing       | which routes take an alert event: targets (channel chain, recipient)   |
| message       | what a notification says: one alert event, an escalation, a digest     |
| signing       | HMAC-SHA256 signatures of webhook requests                             |
| channels/     | webhook, smtp and log channels                                         |
| ledger        | what was delivered, so that a redelivery sends nothing twice           |
| suppression   | no new notification of a flapping alert within the window              |
| ratelimit     | per channel and per recipient limits                                   |
| digest        | bursts held back and sent as one digest                                |
| escalation    | unacknowledged alerts told to more people after a delay                |
| dispatch      | one notification to one target, with failover                          |
| attempts      | the `notification_attempts` table                                      |
| events        | `com.smartgrid.notification.sent` / `.failed`                          |
| notifier      | the whole: from a CloudEvent to notifications                          |
"""
