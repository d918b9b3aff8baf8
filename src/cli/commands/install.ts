/**
 * `ccflux install`: puts the plugin folder this ccflux runs from (or `--from`) into a Claude Code
 * data dir and enables it, without a marketplace. `src/client/commands/install.ts` does the work.
 */
import { join } from 'node:path';
import { type DataDirCandidate, displayPath, resolveDataDir } from '../../client/local/data-dirs';
import { CcfluxError, ERROR_CODES } from '../../client/local/errors';
import { findRunningPluginRoot, type InstallResult, installPlugin, readPluginFolder } from '../../client/commands/install';
import { installShim, type ShimResult } from '../../client/commands/shim';
import { dataDirMenu, isInteractive } from '../prompt';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

/**
 * The data dir to act on: `--config-dir`, else `CLAUDE_CONFIG_DIR`, else the one `~/.claude*`
 * folder; with several, the user picks on a terminal, and elsewhere it is an error listing them.
 * `prefer` narrows several candidates to the relevant ones (uninstall: where ccflux is installed).
 */
export async function chooseDataDir(
  ctx: CliContext,
  configDir: unknown,
  prefer?: (candidates: DataDirCandidate[]) => Promise<DataDirCandidate[]>,
): Promise<string> {
  const interactive = isInteractive(ctx);
  const { dataDir, source, candidates } = await resolveDataDir(
    { configDir: typeof configDir === 'string' ? configDir : undefined, env: ctx.env, home: ctx.home, cwd: ctx.cwd },
    interactive ? { pick: dataDirMenu(ctx, ctx.home) } : {},
  );
  if (source !== 'default' || candidates.length <= 1) return dataDir;
  const preferred = prefer ? await prefer(candidates) : candidates;
  if (preferred.length === 1) return (preferred[0] as DataDirCandidate).path;
  const list = candidates.map((c) => displayPath(c.path, ctx.home)).join(', ');
  throw new CcfluxError(ERROR_CODES.USAGE, `several Claude Code data dirs exist (${list}) and none was named`, {
    hint: 'name one: --config-dir <dir> (or set CLAUDE_CONFIG_DIR)',
  });
}

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
  const dataDir = await chooseDataDir(ctx, options.configDir);
  const result = await installPlugin({ dataDir, source, platform: process.platform, arch: process.arch, now: ctx.now });
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
      .option('--config-dir <dir>', 'Claude Code data dir (default: $CLAUDE_CONFIG_DIR, else ~/.claude; asks when several ~/.claude* exist)')
      .option('--from <dir>', 'plugin folder to install (default: the one this ccflux runs from)')
      .option('--no-shim', 'do not put a `ccflux` command in ~/.local/bin (a symlink to the installed plugin\'s bin/ccflux)')
      .option('--json', 'print the result as JSON');
  },
  run,
};
