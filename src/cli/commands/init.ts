import { hookCommand } from '../hook-command';

export const initCommand = hookCommand('init', {
  summary: "Prepare a session's state and the device signing key",
  claudeCodeHook: 'SessionStart',
  example: `echo '{"session_id":"3f2a…","transcript_path":"~/.claude/projects/-home-u-repo/3f2a….jsonl"}' | ccflux init`,
});
