import { describe, expect, it } from 'vitest';
import { leftovers } from '../global-setup';

describe('global teardown check', () => {
  it('fails on ccflux-* entries left in the run temp folder and only lists the others', () => {
    expect(leftovers(['ccflux-pg-b', 'claude-1000', 'ccflux-cmd-home-a', 'v8-compile-cache'])).toEqual({
      offenders: ['ccflux-cmd-home-a', 'ccflux-pg-b'],
      others: ['claude-1000', 'v8-compile-cache'],
    });
    expect(leftovers([])).toEqual({ offenders: [], others: [] });
  });
});
