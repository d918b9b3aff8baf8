// Bundled by bench/run.mjs (esbuild) into a temp file and run in its own process: the device's
// transcript reader and usage parser over one file from offset 0, exactly as collection uses them
// (candidate filter, JSON.parse of candidates, group merge), without ledger or state writes.
// Prints {lines, groups, outputTokens, loopMs} like the bare loop it is compared with.
import { LineMatcher, readNewLines } from '../src/client/count/transcript';
import { CANDIDATE_LINE_RULES, type GroupTotal, mergeRecord, parseUsageLine } from '../src/client/count/usage';

const path = process.argv[2] ?? '';
const t0 = process.hrtime.bigint();
const groups = new Map<string, GroupTotal>();
const matcher = new LineMatcher(CANDIDATE_LINE_RULES);
const read = await readNewLines(path, undefined, (line) => {
  for (const record of parseUsageLine(line, 'bench').records) mergeRecord(groups, record, null);
}, { matcher });
let outputTokens = 0;
for (const g of groups.values()) outputTokens += g.usage.output_tokens;
process.stdout.write(JSON.stringify({ lines: read.lines, groups: groups.size, outputTokens, loopMs: Number(process.hrtime.bigint() - t0) / 1e6 }));
