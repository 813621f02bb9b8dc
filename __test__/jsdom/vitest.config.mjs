// vitest configuration for the jsdom tests, run by __test__/dep-jsdom.test.js
// as `npx vitest run --config __test__/jsdom/vitest.config.mjs`.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  test: {
    root: path.resolve(here, '..', '..'),
    include: ['__test__/jsdom/*.jsdom.test.js'],
    environment: 'jsdom',
    // Each test takes milliseconds; one that hangs fails fast, so that the
    // whole run stays well within the parent test's limit.
    testTimeout: 2000,
    hookTimeout: 2000,
    fileParallelism: false
  }
});
