/** config.engine (per-client state, baselines, windows) and config.severity (score bands). */
import { int, num, obj } from './kit.ts';

const windowSpec = (seconds: number, buckets: number, what: string) =>
  obj(`${what} Sliding window made of buckets that expire one at a time.`, {
    seconds: int(seconds, 1, `Length of the window, seconds. Default ${seconds}.`),
    buckets: int(buckets, 2, `Buckets the window is cut into (its time resolution = seconds/buckets), count. Default ${buckets}.`, 600),
  });

export const engineSchema = obj('Per-client state, baselines and windows.', {
  warmupEvents: int(30, 0, 'Events a client must have sent before its own baseline can flag it, events. Default 30.'),
  warmupSeconds: int(60, 0, 'Time since the first event of a client before its own baseline can flag it, seconds. Default 60. (Population detections apply from the first event.)'),
  baselineHalfLifeSeconds: int(3600, 10, 'Half-life of the per-client exponentially weighted baselines (mean and variance of per-second counts), seconds: older behaviour counts half as much after this. Default 3600.'),
  learnClampSigma: num(4, 1, 'A second far above the baseline is learned only up to mean + this many σ (or twice the mean), so an attacker cannot drag its own baseline up, σ. Default 4.'),
  maxClients: int(200000, 100, 'Clients kept in memory, at most; beyond it the least recently seen are evicted, clients. Default 200000.'),
  idleEvictSeconds: int(86400, 60, 'A client not seen for this long is dropped (and its checkpoint deleted), seconds. Default 86400.'),
  sweepIntervalSeconds: int(10, 1, 'How often the engine folds idle epochs and evicts idle clients, seconds of event time. Default 10.'),
  windows: obj('The three sliding windows every client keeps.', {
    short: windowSpec(1, 10, 'Bursts.'),
    medium: windowSpec(60, 12, 'Failures, enumeration, probing, sustained rate.'),
    long: windowSpec(900, 15, 'Slow attacks spread over minutes.'),
  }),
});

export const severitySchema = obj('Severity from score = observed / threshold (a detection fires at score 1).', {
  medium: num(1.5, 1, 'Score from which an anomaly is medium, ×threshold. Default 1.5.'),
  high: num(2.5, 1, 'Score from which an anomaly is high, ×threshold. Default 2.5.'),
  critical: num(5, 1, 'Score from which an anomaly is critical, ×threshold. Default 5.'),
});
