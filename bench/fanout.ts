// 3. Fan-out enqueue: placeholder until the alerts fan-out lands.
import { NotReadyError, type MeasurementResult, type Sizes } from './lib/result.ts';

export async function benchFanout(_sizes: Sizes): Promise<MeasurementResult> {
  throw new NotReadyError('the alerts fan-out (src/alerts, workers/fanout.ts) is not in the tree yet');
}
