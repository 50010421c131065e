/** config.alerts: de-duplication of alerts and the optional webhook. */
import { int, obj, oneOf, SEVERITIES, str } from './kit.ts';

export const alertsSchema = obj('Alert de-duplication and the optional webhook.', {
  cooldownSeconds: int(300, 0, 'After an alert for a client and detection, the same alert is not repeated for this long unless its severity rises, seconds. Default 300.'),
  webhook: obj('Optional HTTP webhook receiving every published alert.', {
    url: str('', 'Webhook URL (http or https); empty = no webhook. Default "".'),
    formats: { type: 'array' as const, uniqueItems: true, minItems: 1, default: ['alertmanager'], items: { type: 'string' as const, enum: ['alertmanager', 'slack'] as ('alertmanager' | 'slack')[] }, description: 'Body formats sent, one POST each: alertmanager (Alertmanager webhook, version 4) and/or slack (Slack-style {text, blocks}). Default ["alertmanager"].' },
    timeoutMs: int(5000, 100, 'Timeout of one POST, milliseconds. Default 5000.'),
    retries: int(2, 0, 'Retries of a failed POST (1 s, 2 s, ... backoff), count. Default 2.'),
    minSeverity: oneOf(SEVERITIES, 'low', 'Only alerts of this severity or higher go to the webhook. Default low.'),
  }),
});
