/**
 * `ccflux uninstall`: reverses `ccflux install`. The device state (`<data>/ccflux`: signing key,
 * queue, offsets) is kept unless `--remove-state` (or yes at the terminal's question): undelivered
 * reports and the registered key survive a reinstall.
 */
import { displayPath } from '../../client/local/data-dirs';
import { installStatus, LOCAL_PLUGIN_ID, type UninstallResult, uninstallPlugin } from '../../client/commands/install';
import { isInteractive, promptConfirm } from '../prompt';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';
import { chooseSetupDir, forgetSetup } from '../targets';

function summary(result: UninstallResult, home: string): string {
  const where = displayPath(result.dataDir, home);
  const lines: string[] = [];
  if (result.installed) lines.push(`Removed ${LOCAL_PLUGIN_ID} from ${where}; restart Claude Code to unload it.`);
  else lines.push(`${LOCAL_PLUGIN_ID} was not installed in ${where}; nothing to remove.`);
  for (const id of result.otherInstalls) lines.push(`ccflux is also installed there as ${id}: remove it in Claude Code with /plugin uninstall ${id}`);
  const state = displayPath(result.stateDir, home);
  if (result.stateRemoved) {
    lines.push(`Deleted the ccflux state in ${state}${result.pendingReports > 0 ? ` (${result.pendingReports} undelivered reports with it)` : ''}.`);
  } else if (result.stateExists) {
    lines.push(`Kept the ccflux state in ${state} (device key, queue); delete it with: ccflux uninstall --remove-state`);
  }
  return lines.join('\n');
}

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const dataDir = await chooseSetupDir(ctx, options.configDir, {
    retry: (dir) => `ccflux uninstall --config-dir ${dir}`,
    prefer: async (candidates) => {
      const statuses = await Promise.all(candidates.map(async (c) => ({ c, s: await installStatus(c.path) })));
      return statuses.filter(({ s }) => s.installed).map(({ c }) => c);
    },
  });
  const status = await installStatus(dataDir);
  let removeState = options.removeState === true;
  if (!removeState && options.keepState !== true && status.stateExists && isInteractive(ctx)) {
    const pending = status.pendingReports > 0 ? `, ${status.pendingReports} reports not yet delivered` : '';
    removeState = await promptConfirm(ctx, `Also delete ccflux's state in ${displayPath(status.stateDir, ctx.home)} (device signing key${pending})?`);
  }
  const result = await uninstallPlugin({ dataDir, removeState });
  // Nothing of ccflux left there: status, doctor and flush stop looking at it.
  if (result.stateRemoved || !result.stateExists) await forgetSetup(ctx, dataDir);
  return { exitCode: EXIT.ok, human: summary(result, ctx.home), json: { ok: true, pluginId: LOCAL_PLUGIN_ID, ...result } };
}

export const uninstallCommand: CommandSpec = {
  name: 'uninstall',
  summary: 'Remove the plugin that `ccflux install` put in a Claude Code data dir (keeps ccflux state unless asked)',
  example: ['ccflux uninstall', 'ccflux uninstall --config-dir ~/.claude-work --remove-state'].join('\n'),
  configure(cmd) {
    cmd
      .option('--config-dir <dir>', 'Claude Code data dir (default: $CLAUDE_CONFIG_DIR, else the ~/.claude* folder ccflux is installed in)')
      .option('--remove-state', 'also delete <data dir>/ccflux: device key, undelivered reports, offsets')
      .option('--keep-state', 'keep <data dir>/ccflux without asking (the default off a terminal)')
      .option('--json', 'print the result as JSON');
  },
  run,
};
