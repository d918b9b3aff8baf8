/**
 * `ccflux install`: puts the plugin folder this ccflux runs from (or `--from`) into a Claude Code
 * data dir and enables it, without a marketplace. `src/client/commands/install.ts` does the work.
 */
import { join } from 'node:path';
import { displayPath } from '../../client/local/data-dirs';
import { findRunningPluginRoot, type InstallResult, installPlugin, readPluginFolder } from '../../client/commands/install';
import { installShim, type ShimResult } from '../../client/commands/shim';
import { chooseSetupDir, rememberSetup, SETUP_DIR_HELP } from '../targets';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

function runnerLine(result: InstallResult): string {
  if (result.runner === 'binary') return 'the platform binary in bin/';
  if (result.runner === 'node') return 'node with dist/ccflux.cjs (needs Node.js 20 or newer on PATH)';
  return 'nothing yet: the platform binary is downloaded and verified on first use (or install Node.js 20+)';
}

function shimLines(shim: ShimResult | null, home: string): string[] {
  if (shim === null) return [];
  if (shim.kind === 'unsupported') return [`  command        no shim on ${shim.reason}`];
  const where = displayPath(shim.path, home);
  if (shim.kind === 'kept-other') return [`  command        kept the existing ${where} (not made by ccflux install); the plugin's own is ${displayPath(shim.target, home)}`];
  const lines = [`  command        ${where} → ${displayPath(shim.target, home)}`];
  if (!shim.onPath) {
    lines.push('  ~/.local/bin is not on your PATH: add it, e.g. `echo \'export PATH="$HOME/.local/bin:$PATH"\' >> ~/.profile`, then open a new shell');
  }
  return lines;
}

function summary(result: InstallResult, home: string, shim: ShimResult | null): string {
  return [
    `Installed ccflux ${result.version} into ${displayPath(result.dataDir, home)} as ${result.pluginId}${result.reinstalled ? ' (replaced the previous install)' : ''}.`,
    `  plugin folder  ${displayPath(result.installPath, home)}`,
    `  hooks run      ${runnerLine(result)}${result.hooks === 'powershell' ? ', through PowerShell' : ''}`,
    `  enabled in     ${displayPath(result.settingsFile, home)}`,
    ...shimLines(shim, home),
    `Next: restart Claude Code, then set the plugin options in /plugin (or run \`${shim && shim.kind !== 'unsupported' && shim.onPath ? 'ccflux' : displayPath(join(result.installPath, 'bin', 'ccflux'), home)} login\`).`,
  ].join('\n');
}

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const from = typeof options.from === 'string' ? options.from : await findRunningPluginRoot(ctx.selfCommand);
  const source = await readPluginFolder(from);
  const dataDir = await chooseSetupDir(ctx, options.configDir, { retry: (dir) => `ccflux install --config-dir ${dir}` });
  const result = await installPlugin({ dataDir, source, platform: process.platform, arch: process.arch, now: ctx.now });
  await rememberSetup(ctx, dataDir);
  const shim =
    options.shim === false
      ? null
      : await installShim({ home: ctx.home, launcher: join(result.installPath, 'bin', 'ccflux'), env: ctx.env, platform: process.platform }).catch(
          (err: unknown): ShimResult => ({ kind: 'unsupported', reason: `this system (${err instanceof Error ? err.message : String(err)})` }),
        );
  return { exitCode: EXIT.ok, human: summary(result, ctx.home, shim), json: { ok: true, ...result, source: source.root, shim } };
}

export const installCommand: CommandSpec = {
  name: 'install',
  summary: 'Install this ccflux plugin into a Claude Code data dir, without a marketplace',
  example: ['ccflux install', 'ccflux install --config-dir ~/.claude-work', '~/Downloads/ccflux-plugin/bin/ccflux-linux-x64 install'].join('\n'),
  configure(cmd) {
    cmd
      .option('--config-dir <dir>', SETUP_DIR_HELP)
      .option('--from <dir>', 'plugin folder to install (default: the one this ccflux runs from)')
      .option('--no-shim', 'do not put a `ccflux` command in ~/.local/bin (a symlink to the installed plugin\'s bin/ccflux)')
      .option('--json', 'print the result as JSON');
  },
  run,
};
