import { hookCommand } from '../hook-command';

export const reportTurnCommand = hookCommand('report-turn', {
  summary: "Count the turn's new token usage, queue the report durably, then deliver it",
  claudeCodeHook: 'Stop, SubagentStop',
  example: `echo '{"session_id":"3f2a…","transcript_path":"~/.claude/projects/-home-u-repo/3f2a….jsonl"}' | ccflux report-turn`,
});
