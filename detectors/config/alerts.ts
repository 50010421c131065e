/** config.alerts: de-duplication of alerts, Alertmanager and the optional webhook. */
import { int, obj, oneOf, SEVERITIES, str } from './kit.ts';

export const alertsSchema = obj('Alert de-duplication, Alertmanager and the optional webhook.', {
  cooldownSeconds: int(300, 0, 'After an alert for a client and detection, the same alert is not repeated for this long unless its severity rises, seconds. Default 300.'),
  alertmanager: obj('Alerts pushed to Alertmanager\'s API (POST /api/v2/alerts), re-sent while active and resolved (endsAt) when the block expires or is lifted.', {
    urls: { type: 'array' as const, uniqueItems: true, default: [] as string[], items: { type: 'string' as const }, description: 'Alertmanager base URLs (http or https, e.g. http://alertmanager:9093); every alert goes to <url>/api/v2/alerts of each, so list every replica of an HA cluster. Empty = no Alertmanager. Default [].' },
    resendIntervalSeconds: int(60, 1, 'Active alerts are sent again this often, so an Alertmanager that restarted or joined late has them; keep it well below Alertmanager\'s resolve_timeout (5 min by default), seconds. Default 60.'),
    alertOnlySeconds: int(300, 1, 'How long an alert that blocked nothing stays active (firing) in Alertmanager, seconds; an alert with a block stays active until the block expires or is lifted. Default 300.'),
    generatorUrl: str('', 'Link responders follow from the alert (its generatorURL), e.g. a dashboard; {alert_id}, {client}, {detection} are replaced (URL-encoded). Empty = no link. Default "".'),
    timeoutMs: int(5000, 100, 'Timeout of one POST, milliseconds. Default 5000.'),
    retries: int(2, 0, 'Retries of a failed POST to one Alertmanager (1 s, 2 s, ... backoff), count. Default 2.'),
    minSeverity: oneOf(SEVERITIES, 'low', 'Only alerts of this severity or higher go to Alertmanager. Default low.'),
  }),
  webhook: obj('Optional HTTP webhook receiving every published alert as a Slack-style message.', {
    url: str('', 'Webhook URL (http or https); empty = no webhook. Default "".'),
    formats: { type: 'array' as const, uniqueItems: true, minItems: 1, default: ['slack'], items: { type: 'string' as const, enum: ['slack'] as 'slack'[] }, description: 'Body formats sent, one POST each: slack (Slack-style {text, blocks}; Slack, Mattermost, Rocket.Chat incoming webhooks). Alertmanager is alerts.alertmanager. Default ["slack"].' },
    timeoutMs: int(5000, 100, 'Timeout of one POST, milliseconds. Default 5000.'),
    retries: int(2, 0, 'Retries of a failed POST (1 s, 2 s, ... backoff), count. Default 2.'),
    minSeverity: oneOf(SEVERITIES, 'low', 'Only alerts of this severity or higher go to the webhook. Default low.'),
  }),
});
