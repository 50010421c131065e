/**
 * `palisade detector`: the anomaly detector service. Consumes the decisions
 * topic in a consumer group, publishes alerts and blocks, serves /livez,
 * /readyz and /metrics on PALISADE_DETECTOR_ADMIN_PORT (default 9902).
 * Needs Kafka (PALISADE_KAFKA_*); config from PALISADE_DETECTOR_CONFIG.
 */
import { startFleetWatch } from '../../fleet/watch.ts';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { encodeAlert } from '../../../detectors/alerts/ocsf.ts';
import { DETECTION_IDS, loadDetectorConfig, SEVERITIES } from '../../../detectors/config.ts';
import { startKafkaDetector, type KafkaDetector } from '../../../detectors/kafka/service.ts';
import { loadDetectorSettings } from '../../../detectors/settings.ts';
import { createLogger } from '../../log/logger.ts';
import { addMetricsRoute } from '../../telemetry/admin-metrics.ts';
import { createDetectorMetrics } from '../../../detectors/metrics.ts';
import { createKafkaClient } from '../../kafka/client.ts';
import { CommandFailed, listenFailure, parseCommand } from '../args.ts';
import { detectorClientId, kafkaProblem, kafkaSettings } from '../kafka-required.ts';
import { runUntilSignal } from '../shutdown.ts';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    name: 'palisade detector',
    usage:
      'usage: palisade detector [--config FILE] [--admin-port N] [--brokers LIST]\n\n' +
      'Runs the anomaly detector: consumes the decisions topic in a consumer group, publishes alerts\n' +
      'and blocks, serves /livez, /readyz and /metrics. Runs until SIGTERM/SIGINT. Settings: PALISADE_KAFKA_*\n' +
      'and PALISADE_DETECTOR_* (palisade settings shows them with their sources); its Kafka client id is\n' +
      'palisade-detector unless PALISADE_KAFKA_CLIENT_ID is set.\n\n' +
      'Options:\n' +
      '      --config FILE         detector config, YAML or JSON (default: PALISADE_DETECTOR_CONFIG; docs/detector.md)\n' +
      '      --admin-port N        admin listener port (default: PALISADE_DETECTOR_ADMIN_PORT, 9902)\n' +
      '      --brokers LIST        Kafka brokers, host:port,... (default: PALISADE_KAFKA_BROKERS)\n',
    options: { config: { type: 'string' }, 'admin-port': { type: 'string' }, brokers: { type: 'string' } },
  });
  const settings = kafkaSettings('palisade detector', process.env, values.brokers, detectorClientId(process.env));
  const ds = loadDetectorSettings(process.env, { configFile: values.config, adminPort: values['admin-port'] });
  const config = loadDetectorConfig(ds.configFile);
  const logger = createLogger({ level: ds.logLevel, name: 'palisade-detector' });
  const metrics = createDetectorMetrics(new Registry(), { detections: DETECTION_IDS, severities: SEVERITIES });

  let kd: KafkaDetector | null = null;
  let closing = false;
  const admin = Fastify({ logger: false });
  admin.get('/livez', async () => ({ status: 'ok' }));
  admin.get('/readyz', async (_req, reply) => {
    if (closing || !kd || !kd.ready()) return reply.code(503).send({ status: 'not ready', reason: closing ? 'shutting down' : !kd ? 'starting' : 'joining the group / restoring baselines' });
    const s = kd.stats();
    return { status: 'ready', partitions: s.assigned, clients: kd.detector.engine.clients.size };
  });
  addMetricsRoute(admin, metrics.registry);
  try {
    await admin.listen({ host: ds.adminHost, port: ds.adminPort });
  } catch (err) {
    throw listenFailure('palisade detector', err, [{ port: ds.adminPort, setting: 'PALISADE_DETECTOR_ADMIN_PORT', flag: '--admin-port' }]) ?? err;
  }
  logger.info({ adminPort: (admin.server.address() as { port: number }).port }, 'detector admin listening');

  // kafkajs's own log lines are held back until the detector has started: brokers that cannot be
  // reached at start are one line (which brokers, what to check) and exit 1, not a burst of
  // retry errors and a stack; once running, an outage is logged as usual.
  const kafkaLog = logger.child({ part: 'detector' });
  kafkaLog.level = 'silent';
  const kafka = createKafkaClient(settings, kafkaLog);
  try {
    kd = await startKafkaDetector({ settings, config, logger, metrics, encodeAlert, kafka });
  } catch (err) {
    await admin.close();
    const line = kafkaProblem(err, settings);
    if (line) throw new CommandFailed('palisade detector', line);
    throw err;
  }
  kafkaLog.level = ds.logLevel;
  const running = kd;
  // The fleet gauges (palisade_fleet_*: drift, sidecars behind on the block list) from the sidecars' status records.
  const fleet = startFleetWatch({ kafka, topic: settings.kafkaTopicSidecars, gauges: metrics, logger, blocklistTopic: settings.kafkaTopicBlocklist });
  await runUntilSignal({
    logger,
    graceMs: settings.shutdownGraceMs,
    message: 'shutting down: last checkpoint, then leaving the group',
    close: async () => {
      closing = true;
      await Promise.all([running.close(), fleet.close()]);
      await admin.close();
    },
  });
  logger.flush();
  return 0;
}
