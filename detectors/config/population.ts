/** config.population: the per-route model of all clients that the population.* detections compare with. */
import { bool, int, obj } from './kit.ts';

export const populationSchema = obj('The per-route population model shared by the population.* detections.', {
  epochSeconds: int(10, 1, 'Length of a client epoch on a route; each finished epoch is one sample of the route\'s distribution, seconds. Default 10.'),
  minSamples: int(50, 1, 'Samples (client epochs) a route needs before population detections use it, samples. Default 50.'),
  halfLifeSamples: int(2000, 10, 'Half-life of the route distribution, samples. Default 2000.'),
  maxRoutes: int(2000, 1, 'Routes modelled, at most (route templates are bounded by the policy; unknown routes share one), routes. Default 2000.'),
  applyToWarmClients: bool(true, 'Judge warm clients against the population too (false: the population only covers clients still in warm-up). Default true.'),
});
