#!/usr/bin/env node
// `npx ccflux-receiver`: runs the bundle that `npm run build` writes.
require('../dist/ccflux-receiver.cjs');
