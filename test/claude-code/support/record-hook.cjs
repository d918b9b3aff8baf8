// A user-settings hook for recording fixtures from the real client (support/recorder.ts): appends
// the hook's stdin JSON and the size of every transcript under projects/ at that moment to the
// file named by argv[2]. Prints nothing, exits 0.
const fs = require('node:fs');
const path = require('node:path');

const out = process.argv[2];
const chunks = [];
process.stdin.on('data', (d) => chunks.push(d));
process.stdin.on('end', () => {
  const root = path.join(process.env.CLAUDE_CONFIG_DIR || '', 'projects');
  const sizes = {};
  const walk = (dir) => {
    let entries = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.jsonl')) sizes[path.relative(root, p)] = fs.statSync(p).size;
    }
  };
  walk(root);
  let input = null;
  try {
    input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return;
  }
  fs.appendFileSync(out, `${JSON.stringify({ input, sizes })}\n`);
});
