/**
 * Every command, registered in one list. `test/unit/cli-help.test.ts` walks this list and checks
 * that `--help` works for each.
 */
import type { CommandSpec } from '../types';

export const COMMANDS: CommandSpec[] = [];
