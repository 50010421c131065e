/**
 * `palisade detector`: the anomaly detector service. Consumes the decisions
 * topic in a consumer group, publishes alerts and blocks, serves /livez,
 * /readyz and /metrics on PALISADE_DETECTOR_ADMIN_PORT (default 9902).
 * Needs Kafka (PALISADE_KAFKA_*); config from PALISADE_DETECTOR_CONFIG.
 */
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { encodeAlert } from '../../../detectors/alerts/ocsf.ts';
import { DETECTION_IDS, loadDetectorConfig, SEVERITIES } from '../../../detectors/config.ts';
import { startKafkaDetector, type KafkaDetector } from '../../../detectors/kafka/service.ts';
import { loadDetectorSettings } from '../../../detectors/settings.ts';
import { createLogger } from '../../log/logger.ts';
import { addMetricsRoute } from '../../telemetry/admin-metrics.ts';
import { createDetectorMetrics } from '../../../detectors/metrics.ts';
import { parseFlags } from '../args.ts';
import { kafkaSettings, quietKafkajsTimerWarnings } from '../kafka-required.ts';
import { runUntilSignal } from '../shutdown.ts';

export async function run(argv: string[]): Promise<number> {
  quietKafkajsTimerWarnings();
  const { values } = parseFlags(argv, { config: { type: 'string' }, 'admin-port': { type: 'string' }, brokers: { type: 'string' } }, 'palisade detector');
  const settings = kafkaSettings('palisade detector', process.env, values.brokers);
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
  await admin.listen({ host: ds.adminHost, port: ds.adminPort });
  logger.info({ adminPort: (admin.server.address() as { port: number }).port }, 'detector admin listening');

  kd = await startKafkaDetector({ settings, config, logger, metrics, encodeAlert });
  const running = kd;
  await runUntilSignal({
    logger,
    graceMs: settings.shutdownGraceMs,
    message: 'shutting down: last checkpoint, then leaving the group',
    close: async () => {
      closing = true;
      await running.close();
      await admin.close();
    },
  });
  logger.flush();
  return 0;
}
