import { describe, expect, it } from 'vitest';
import { isStaleRun, leftovers } from '../global-setup';

describe('global teardown check', () => {
  it('fails on ccflux-* entries left in the run temp folder and only lists the others', () => {
    expect(leftovers(['ccflux-pg-b', 'claude-1000', 'ccflux-cmd-home-a', 'v8-compile-cache'])).toEqual({
      offenders: ['ccflux-cmd-home-a', 'ccflux-pg-b'],
      others: ['claude-1000', 'v8-compile-cache'],
    });
    expect(leftovers([])).toEqual({ offenders: [], others: [] });
  });

  it("does not count the run folder's owner file as a leftover", () => {
    expect(leftovers(['.owner-pid', 'ccflux-x'])).toEqual({ offenders: ['ccflux-x'], others: [] });
  });

  it("a killed run's folder is stale once its owner is dead; an unknown owner is left alone", () => {
    const alive = (pid: number) => pid === 42;
    expect(isStaleRun('41\n', alive)).toBe(true);
    expect(isStaleRun('42\n', alive)).toBe(false);
    expect(isStaleRun(null, alive)).toBe(false);
    expect(isStaleRun('garbage', alive)).toBe(false);
    expect(isStaleRun('0', alive)).toBe(false);
  });
});
