import crypto from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createQueues } from '../../src/queues.ts';
import { scheduleMaintenance } from '../../workers/maintenance.ts';
import { deletePrefix, TEST_REDIS_URL } from '../helpers/context.ts';

describe('the maintenance schedules a worker registers at start and every minute', () => {
  const url = new URL(TEST_REDIS_URL);
  const prefix = `test-${crypto.randomBytes(5).toString('hex')}`;
  const queues = createQueues({ host: url.hostname, port: Number(url.port || 6379) }, prefix);
  afterAll(async () => {
    vi.useRealTimers();
    await queues.close();
    // Every queue's keys, not only the maintenance queue's: the others keep their meta.
    await deletePrefix(prefix);
  });

  it('keep a digest check held back past its quarter hour behind a long job, and come back once Redis lost them', async () => {
    await scheduleMaintenance(queues);
    const due = Number((await queues.maintenance.getJobScheduler('digest'))!.next);
    // The maintenance worker is still busy 5 s after the quarter hour when another worker starts,
    // or when this one's renewal runs.
    vi.useFakeTimers({ toFake: ['Date'], now: due + 5_000 });
    await scheduleMaintenance(queues);
    vi.useRealTimers();
    expect(await queues.maintenance.getJobState(`repeat:digest:${due}`)).toBe('delayed');

    // A release that changed what a schedule's job keeps: registered again with it.
    await queues.maintenance.upsertJobScheduler('sweep', { every: 30_000 }, { name: 'sweep', data: { task: 'sweep' }, opts: { removeOnComplete: true } });
    await scheduleMaintenance(queues);
    expect((await queues.maintenance.getJobScheduler('sweep'))!.template?.opts).toEqual({ removeOnComplete: { count: 50 }, removeOnFail: { count: 200 } });

    // Redis restarted empty: every schedule is registered again.
    for (const id of ['sweep', 'purge', 'digest']) await queues.maintenance.removeJobScheduler(id);
    await scheduleMaintenance(queues);
    expect((await queues.maintenance.getJobSchedulers()).map((s) => s.key).sort()).toEqual(['digest', 'purge', 'sweep']);
  });
});
