#!/usr/bin/env node
// `npx ccflux` from a checkout: runs the bundled CLI that `npm run build` writes into plugin/.
require('../plugin/dist/ccflux.cjs').runCli();
