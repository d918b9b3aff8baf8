/**
 * Every command, registered in one list. `test/unit/cli-help.test.ts` walks this list and checks
 * that `--help` works for each.
 */
import type { CommandSpec } from '../types';
import { doctorCommand } from './doctor';
import { fetchBinaryCommand } from './fetch-binary';
import { flushCommand } from './flush';
import { initCommand } from './init';
import { installCommand } from './install';
import { loginCommand } from './login';
import { logoutCommand } from './logout';
import { reportTurnCommand } from './report-turn';
import { sessionEndCommand } from './session-end';
import { statusCommand } from './status';
import { uninstallCommand } from './uninstall';

export const COMMANDS: CommandSpec[] = [
  // user commands, first in `ccflux --help`
  loginCommand,
  statusCommand,
  doctorCommand,
  flushCommand,
  logoutCommand,
  // setup
  installCommand,
  uninstallCommand,
  fetchBinaryCommand,
  // hooks (called by plugin/scripts/ccflux-hook.sh; print nothing, always exit 0)
  initCommand,
  reportTurnCommand,
  sessionEndCommand,
];
