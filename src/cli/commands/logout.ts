/**
 * `ccflux logout`: removes `config.json` and the token cache (with `--forget-key` also the signing
 * key and its markers), after saying what it will remove. Queued reports are kept: they are
 * delivered after the next `ccflux login`.
 */
import { lstat, unlink } from '../../client/local/fs';
import { loadCredentials } from '../../client/local/credentials';
import { displayPath } from '../../client/local/data-dirs';
import { CcfluxError, ERROR_CODES } from '../../client/local/errors';
import { createLogger, nullLogger } from '../../client/local/log';
import { statePaths } from '../../client/local/paths';
import { createFsQueue } from '../../client/deliver/queue';
import { isInteractive, promptConfirm } from '../prompt';
import { readTargets } from '../targets';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

interface Item {
  path: string;
  what: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** The folder named, else the one set up; with several set up, removing from all at once is not guessed. */
async function oneTarget(ctx: CliContext, configDir: unknown): Promise<string> {
  const { dataDirs } = await readTargets(ctx, configDir);
  if (dataDirs.length === 1) return dataDirs[0] as string;
  const shown = dataDirs.map((d) => displayPath(d, ctx.home));
  throw new CcfluxError(ERROR_CODES.USAGE, `ccflux is set up in several data folders (${shown.join(', ')}); nothing was removed`, {
    hint: `name the one to log out of: ${shown.map((d) => `\`ccflux logout --config-dir ${d}\``).join(' or ')}`,
  });
}

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const forgetKey = options.forgetKey === true;
  const dataDir = await oneTarget(ctx, options.configDir);
  const paths = statePaths(dataDir);
  const show = (path: string) => displayPath(path, ctx.home);

  const endpoint = await loadCredentials({ env: {}, paths, pluginStore: false }).then(
    (c) => c?.endpoint ?? null,
    () => null,
  );
  const planned: Item[] = [
    { path: paths.config, what: 'endpoint and refresh token' },
    { path: paths.tokenCache, what: 'cached access token' },
  ];
  if (forgetKey) {
    planned.push(
      { path: paths.signingKey, what: 'device signing key' },
      { path: paths.keyRegistered, what: 'key registration marker' },
      { path: paths.keyRevoked, what: 'key revocation marker' },
    );
  }
  const present: Item[] = [];
  for (const item of planned) if (await exists(item.path)) present.push(item);
  const queued = await createFsQueue(paths, { log: nullLogger })
    .size()
    .catch(() => 0);

  const kept = [
    ...(forgetKey ? [] : ['the device key (add --forget-key to remove it)']),
    ...(queued > 0 ? [`${queued} queued report${queued === 1 ? '' : 's'} (delivered after the next login)`] : []),
  ];
  const keptLine = kept.length > 0 ? `Kept ${kept.join(' and ')}.` : '';

  if (present.length === 0) {
    return {
      exitCode: EXIT.ok,
      human: [`Nothing to remove in ${show(paths.dir)}: not logged in there.`, keptLine].filter(Boolean).join('\n'),
      json: { ok: true, dataDir, removed: [], kept: { signingKey: !forgetKey, queuedReports: queued } },
    };
  }

  if (isInteractive(ctx) && options.yes !== true) {
    ctx.stderr.write(`This removes from ${show(paths.dir)}:\n${present.map((i) => `  ${show(i.path)}  (${i.what})`).join('\n')}\n`);
    if (!(await promptConfirm(ctx, 'Remove them?'))) {
      return { exitCode: EXIT.ok, human: 'Nothing was removed.', json: { ok: true, dataDir, removed: [], cancelled: true } };
    }
  }

  const removed: Item[] = [];
  for (const item of present) {
    try {
      await unlink(item.path);
      removed.push(item);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  const log = createLogger(paths, ctx.now);
  log.activity(`logout: removed ${removed.map((i) => i.path.slice(paths.dir.length + 1)).join(', ')}`);
  await log.flush();

  const head = endpoint ? `Logged out of ${endpoint}.` : 'Logged out.';
  const lines = [`${head} Removed ${removed.map((i) => `${show(i.path)} (${i.what})`).join(', ')}.`];
  if (keptLine) lines.push(keptLine);
  if (ctx.env.CLAUDE_PLUGIN_OPTION_API_TOKEN) {
    lines.push('The plugin options in Claude Code still hold credentials: clear them in /plugin to stop reporting.');
  }
  return {
    exitCode: EXIT.ok,
    human: lines.join('\n'),
    json: {
      ok: true,
      dataDir,
      removed: removed.map((i) => ({ path: i.path, what: i.what })),
      kept: { signingKey: !forgetKey, queuedReports: queued },
    },
  };
}

export const logoutCommand: CommandSpec = {
  name: 'logout',
  summary: 'Remove the saved endpoint, refresh token and token cache (and with --forget-key the device key)',
  example: 'ccflux logout\nccflux logout --forget-key --yes',
  configure(cmd) {
    cmd
      .option('--forget-key', 'also remove the device signing key and its registration markers (a new key is made and registered next time)')
      .option('-y, --yes', 'do not ask for confirmation on a terminal')
      .option('--config-dir <dir>', 'Claude Code data folder (default: $CLAUDE_CONFIG_DIR, else the one folder `ccflux login` or `ccflux install` set up, else ~/.claude; with several set up, name one)')
      .option('--json', 'print what was removed as JSON');
  },
  run,
};
