// Bundled by bench/run.mjs (esbuild) into a temp file and run in its own process: the device's
// transcript reader and parsers over one file from offset 0, exactly as collection uses them
// (candidate filter, the byte scanner of usage and cost-state lines, a response's repeated lines taken as the one before, group merge), without ledger
// or state writes. Prints {lines, groups, outputTokens, loopMs} like the bare loop it is compared with.
import { foldTotals, type ModelTotals, parseCostStateBytes } from '../src/client/count/cost-state';
import { LineMatcher, readNewLineBytes } from '../src/client/count/transcript';
import { CANDIDATE_LINE_RULES, COST_STATE_RULE_BIT, type GroupTotal, type LineParse, mergeRecord, USAGE_RULE_BIT, UsageLineParser } from '../src/client/count/usage';

const path = process.argv[2] ?? '';
const t0 = process.hrtime.bigint();
const groups = new Map<string, GroupTotal>();
const costState: ModelTotals = new Map();
const matcher = new LineMatcher(CANDIDATE_LINE_RULES);
const usageLines = new UsageLineParser('bench');
let folded: LineParse | null = null;
const read = await readNewLineBytes(
  path,
  undefined,
  (bytes, start, end, rules, chunk) => {
    const totals = (rules & COST_STATE_RULE_BIT) !== 0 ? parseCostStateBytes(bytes, start, end) : null;
    if (totals !== null) foldTotals(costState, totals);
    else if ((rules & USAGE_RULE_BIT) !== 0) {
      const parsed = usageLines.parse(bytes, start, end, chunk);
      if (parsed !== folded) for (const record of parsed.records) mergeRecord(groups, record, null);
      folded = parsed;
    }
  },
  { matcher },
);
let outputTokens = 0;
for (const g of groups.values()) outputTokens += g.usage.output_tokens;
process.stdout.write(JSON.stringify({ lines: read.lines, groups: groups.size, outputTokens, loopMs: Number(process.hrtime.bigint() - t0) / 1e6 }));
