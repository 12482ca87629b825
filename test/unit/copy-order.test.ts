import { describe, expect, it } from 'vitest';
import { inDependencyOrder } from '../../src/db/copy.ts';

describe('the order tables are copied in', () => {
  it('puts every table after those its foreign keys reference, by name among equals', () => {
    const keys = [
      { table: 'signatures', references: 'campaigns' },
      { table: 'signatures', references: 'digests' },
      { table: 'digests', references: 'campaigns' },
      { table: 'campaigns', references: 'cases' },
      { table: 'deliveries', references: 'campaigns' },
    ];
    expect(inDependencyOrder(['signatures', 'deliveries', 'digests', 'campaigns', 'cases', 'settings'], keys)).toEqual([
      'cases', 'settings', 'campaigns', 'deliveries', 'digests', 'signatures',
    ]);
  });

  it('ignores a key to a table that is not copied, and refuses a cycle', () => {
    expect(inDependencyOrder(['a'], [{ table: 'a', references: 'schema_migrations' }])).toEqual(['a']);
    expect(() => inDependencyOrder(['a', 'b', 'c'], [{ table: 'a', references: 'b' }, { table: 'b', references: 'a' }])).toThrow(/cycle among a, b/);
  });
});
