import { hookCommand } from '../hook-command';

export const sessionEndCommand = hookCommand('session-end', {
  summary: 'Report what is left of a session, mark it closed, then deliver',
  claudeCodeHook: 'SessionEnd',
  example: `echo '{"session_id":"3f2a…","transcript_path":"~/.claude/projects/-home-u-repo/3f2a….jsonl"}' | ccflux session-end`,
});
