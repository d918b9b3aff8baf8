/** Every command, registered in one list (`receiver/test/cli.test.ts` checks `--help` for each). */
import { exportCommand } from './export';
import { keysCommand } from './keys';
import { migrateCommand } from './migrate';
import { serveCommand } from './serve';
import type { CommandSpec } from './types';
import { usersCommand } from './users';

export const COMMANDS: CommandSpec[] = [serveCommand, usersCommand, keysCommand, exportCommand, migrateCommand];
